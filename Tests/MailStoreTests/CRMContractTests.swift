import Foundation
import MailEngine
import MailMessage
import MailRules
import MailStore
import Testing
import ShippedFixtures

/// The CRM contract at the engine's boundary: every backend gives the same `CRMAnswers` to the
/// same `LookupPlan`, a decision asks its backend once, and the facts come from the answers
/// alone. (The Salesforce backend runs the same plans against its test server in
/// `MailSalesforceTests`.)
@Suite struct CRMContractTests {
    /// Answers with every list in id order, so backends that return rows in another order compare equal.
    /// An empty field and a missing one are the same to the engine (`CRMRecord`'s subscript):
    /// a CSV export writes the first, the store and Salesforce's JSON the second.
    static func normalised(_ answers: CRMAnswers) -> CRMAnswers {
        func clean(_ record: CRMRecord) -> CRMRecord {
            CRMRecord(object: record.object, id: record.id, fields: record.fields.filter { !$0.value.isEmpty })
        }
        func sorted(_ map: [String: [CRMRecord]]) -> [String: [CRMRecord]] {
            map.filter { !$0.value.isEmpty }.mapValues { $0.map(clean).sorted { $0.id < $1.id } }
        }
        var copy = answers
        copy.contactsByAddress = sorted(answers.contactsByAddress)
        copy.leadsByAddress = sorted(answers.leadsByAddress)
        copy.usersByAddress = sorted(answers.usersByAddress)
        copy.accountsByDomain = sorted(answers.accountsByDomain)
        copy.accountsByName = sorted(answers.accountsByName)
        copy.peopleByPhone = sorted(answers.peopleByPhone)
        copy.opportunitiesByAccount = sorted(answers.opportunitiesByAccount)
        copy.casesByContact = sorted(answers.casesByContact)
        copy.emailMessages = answers.emailMessages.mapValues { EmailMessageAnswer(record: clean($0.record), relations: $0.relations.sorted()) }
        copy.records = answers.records.mapValues(clean)
        copy.casesByNumber = answers.casesByNumber.mapValues(clean)
        return copy
    }

    static func exampleFiles() throws -> [String] {
        let folder = packageRoot.appendingPathComponent("examples/messages").path
        return try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".eml") }.sorted()
    }

    /// An Account whose Website is a public suffix (`co.uk`, dirty data) is no one's company:
    /// neither backend links anyone@acme.co.uk to it; acme.co.uk's own Account still matches.
    @Test func anAccountOfAPublicSuffixMatchesNoOne() throws {
        let records = [
            CRMRecord(object: "Account", id: "0015e00000Suf01", fields: ["Name": "UK", "Website": "https://www.co.uk/"]),
            CRMRecord(object: "Account", id: "0015e00000Acm01", fields: ["Name": "Acme", "Website": "acme.co.uk"]),
        ]
        let store = try temporaryStore()
        try store.add(records)
        let memory = InMemoryDirectory(records: records)
        for directory in [store, memory] as [any RecordLookups] {
            #expect(try directory.accounts(websiteDomain: "mail.acme.co.uk").map(\.id) == ["0015e00000Acm01"])
            #expect(try directory.accounts(websiteDomain: "other.co.uk").isEmpty)
        }
        #expect(CRMDirectoryKeys.isPublicSuffix("co.uk") && CRMDirectoryKeys.isPublicSuffix("com.au") && CRMDirectoryKeys.isPublicSuffix("com"))
        #expect(!CRMDirectoryKeys.isPublicSuffix("acme.co.uk") && !CRMDirectoryKeys.isPublicSuffix("fabrikam.com")
                && !CRMDirectoryKeys.isPublicSuffix("co.example"))
    }

    /// A row Data Loader's "Export All" marks IsDeleted is no record (DESIGN point 4: a save
    /// whose record was deleted in the CRM may be made again; a deleted EmailMessage anchors
    /// no reply): the CSV directory leaves it out, the store does not import it and removes
    /// the record it had under that Id (in either form).
    @Test func aRowMarkedDeletedIsNoRecord() throws {
        let store = try temporaryStore()
        _ = try store.importCSV("Id,Subject,Email_Message_ID__c\n00T5e00000Del01,Quote,<gone-1@fabrikam.com>\n", object: "Task")
        #expect(try store.savedRecord(messageID: "<gone-1@fabrikam.com>") == "00T5e00000Del01")
        let deleted = try store.importCSV(bytes: Array("Id,Subject,Email_Message_ID__c,IsDeleted\n00T5e00000Del01AAA,Quote,<gone-1@fabrikam.com>,true\n".utf8), object: "Task")
        #expect(deleted == CRMStore.ImportSummary(count: 0, replaced: 0, deleted: 1))
        #expect(try store.savedRecord(messageID: "<gone-1@fabrikam.com>") == nil)
        #expect(try store.record(id: "00T5e00000Del01") == nil)
        let memory = InMemoryDirectory(records: [CRMRecord(object: "Task", id: "00T5e00000Del01",
                                                           fields: ["Email_Message_ID__c": "<gone-1@fabrikam.com>", "IsDeleted": "true"])])
        #expect(memory.savedRecord(messageID: "<gone-1@fabrikam.com>") == nil && memory.record(id: "00T5e00000Del01") == nil)
    }

    @Test func everyBackendAnswersEveryExamplePlanAlike() throws {
        let pack = try shippedPack()
        let records = try sampleRecords()
        let store = try temporaryStore()
        try store.add(records)
        let memory = InMemoryDirectory(records: records)
        var nonEmpty = 0
        for file in try Self.exampleFiles() {
            let plan = FactsBuilder(pack: pack).plan(try sampleMessage(file), context: ProcessContext(mailbox: "ann@contoso.com"))
            let fromMemory = Self.normalised(try memory.resolve(plan))
            let fromStore = Self.normalised(try store.resolve(plan))
            #expect(fromMemory == fromStore, "\(file)")
            if !fromMemory.contactsByAddress.isEmpty { nonEmpty += 1 }
        }
        // The comparison is not between two empty answers.
        #expect(nonEmpty >= 3)
    }

    @Test func thePlanAsksWhatTheMessageNamesAndNothingBlocked() throws {
        let pack = try shippedPack()
        let plan = FactsBuilder(pack: pack).plan(try sampleMessage("01-customer-question.eml"), context: ProcessContext(mailbox: "ann@contoso.com"))
        // Outside participants and body addresses; the internal recipient is never asked,
        // the mailbox is (its User owns the record).
        #expect(plan.addresses.contains("bob@fabrikam.com"))
        #expect(plan.addresses.contains("carla@northwind.example"))
        #expect(plan.addresses.contains("purchasing@fabrikam.com"))
        #expect(plan.addresses.last == "ann@contoso.com")
        #expect(plan.addresses.filter { $0 == "ann@contoso.com" }.count == 1)
        #expect(plan.websiteDomains.starts(with: ["fabrikam.com", "northwind.example"]))
        #expect(!plan.websiteDomains.contains("contoso.com"))
        #expect(plan.phones.contains("+12065550147"))
        #expect(plan.ledgerKey == "CAB1234567@mail.fabrikam.com")

        let reply = FactsBuilder(pack: pack).plan(try sampleMessage("11-reply-to-salesforce-email.eml"), context: ProcessContext(mailbox: "ann@contoso.com"))
        #expect(!reply.messageIdentifiers.isEmpty)
        let thread = FactsBuilder(pack: pack).plan(try sampleMessage("04-case-thread.eml"), context: ProcessContext(mailbox: "ann@contoso.com"))
        #expect(!thread.caseNumbers.isEmpty || !thread.recordIDs.isEmpty)
    }

    /// A decision asks its backend at most twice: the save-once ledger, then (when a rule reads
    /// the CRM, or to save) the rest of the plan, never the ledger again; a backend that does
    /// not search in steps is asked once.
    @Test func aDecisionAsksItsBackendAtMostTwiceAndTheLedgerOnce() throws {
        let pack = try shippedPack()
        let files = try Self.exampleFiles()
        for steps in [true, false] {
            let recording = RecordingDirectory(InMemoryDirectory(records: try sampleRecords()), steps: steps)
            let engine = Engine(pack: pack, directory: recording)
            for file in files {
                let before = recording.plans.count
                _ = try engine.decide(try sampleMessage(file), context: ProcessContext(mailbox: "ann@contoso.com"))
                let asked = recording.plans[before...]
                #expect((steps ? 1...2 : 1...1).contains(asked.count), "\(file)")
                #expect(asked.filter { !$0.ledgerKey.isEmpty }.count == 1, "\(file)")
                #expect(asked.filter { !$0.isEmpty }.count <= 1, "\(file)")
            }
        }
    }

    @Test func theFactsComeFromTheAnswersAlone() throws {
        let pack = try shippedPack()
        let message = try sampleMessage("01-customer-question.eml")
        var builder = FactsBuilder(pack: pack)
        // No CRM at all: written by hand.
        var answers = CRMAnswers()
        let contact = CRMRecord(object: "Contact", id: "0035e00000Zzz01", fields: ["Email": "bob@fabrikam.com", "AccountId": "0015e00000Zzz01"])
        answers.contactsByAddress["bob@fabrikam.com"] = [contact]
        answers.opportunitiesByAccount["0015e00000Zzz01"] = [CRMRecord(object: "Opportunity", id: "0065e00000Zzz01",
                                                                        fields: ["AccountId": "0015e00000Zzz01", "IsClosed": "false", "CloseDate": "2026-03-30"])]
        answers.savedRecord = "00T5e00000Zzz01"
        builder.answers = answers
        let facts = try builder.build(message, context: ProcessContext(mailbox: "ann@contoso.com"))
        #expect(facts.related.contacts == ["0035e00000Zzz01"])
        #expect(facts.related.accounts == ["0015e00000Zzz01"])
        #expect(facts.related.opportunities == ["0065e00000Zzz01"])
        #expect(facts.savedRecord == "00T5e00000Zzz01")
    }

    /// A backend that cannot answer: the decision fails with its error, never guesses.
    struct FailingDirectory: CRMDirectory {
        let error: CRMError
        func resolve(_ plan: LookupPlan) throws(CRMError) -> CRMAnswers { throw error }
    }

    @Test func aCRMThatCannotAnswerFailsTheDecisionWithItsKind() throws {
        let pack = try shippedPack()
        for kind in [CRMError.Kind.retryable, .permanent] {
            let engine = Engine(pack: pack, directory: FailingDirectory(error: CRMError(kind, "the CRM is away")))
            #expect(throws: CRMError(kind, "the CRM is away")) {
                try engine.decide(try sampleMessage("08-gmail-prospect.eml"), context: ProcessContext(mailbox: "ann@contoso.com"))
            }
        }
    }
}
