import Foundation
@testable import MailEngine
import MailMessage
import MailRules
import Testing
import ShippedFixtures

/// Issue 9, "What the engine gets wrong": the behaviour that lives in Swift (the rule pack's
/// part is in rules/tests/).

/// The sample CRM export (examples/crm), optionally with its rows shuffled.
func sampleRecords(shuffledWith seed: UInt64? = nil) throws -> [CRMRecord] {
    var records: [CRMRecord] = []
    for object in ["Account", "Contact", "Lead", "Opportunity", "Case", "User", "EmailMessage", "EmailMessageRelation", "Task"] {
        let text = try String(contentsOf: packageRoot.appendingPathComponent("examples/crm/\(object).csv"), encoding: .utf8)
        records += try InMemoryDirectory.parseCSV(text, object: object)
    }
    if let seed {
        var generator = SeededGenerator(seed: seed)
        records.shuffle(using: &generator)
    }
    return records
}

/// SplitMix64: the same shuffles on every run.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func engine(_ extra: [CRMRecord] = [], shuffledWith seed: UInt64? = nil) throws -> Engine {
    var records = try sampleRecords() + extra
    if let seed {
        var generator = SeededGenerator(seed: seed)
        records.shuffle(using: &generator)
    }
    return Engine(pack: try shippedPack(), directory: InMemoryDirectory(records: records))
}

let strangerMessage = "From: stranger@unknown.example\nTo: ann@contoso.com\nSubject: Hello\nMessage-ID: <sel@unknown.example>\n\nHi."

@Suite struct BusinessOnlyTests {
    @Test func anAccountByWebsiteAloneIsSavedAndLinked() throws {
        let (decision, _, _) = try engine().decide(try message("From: someone@northwind.example\nTo: ann@contoso.com\nSubject: Hi\n\nHi."),
                                                   context: ProcessContext(mailbox: "ann@contoso.com"))
        #expect(decision.verdict == .save)
        #expect(decision.reasons.first?.rule == "general-mode-business")
        #expect(decision.what == "0015e00000Nor01")
        #expect(decision.who.isEmpty)
    }
}

@Suite struct CaseCapabilityTests {
    func pack(_ capabilities: String) throws -> RulePack {
        let text = "capabilities: \(capabilities)\n"
        let file = SourceFile(path: "override.yaml", text: text)
        let (root, _) = YAMLLoader.load(file)
        let entries: [(key: YScalar, value: YNode)]
        if case .mapping(let found, _)? = root { entries = found } else { entries = [] }
        #expect(!entries.isEmpty)
        let (pack, problems) = try shippedPack().overriding(entries, file: file)
        #expect(problems.isEmpty)
        return pack
    }

    /// Every way a Contact and a Case could end up on one Task: the thread's Case, a Case
    /// number in the subject, the Save dialog. Without both capabilities none of them does.
    @Test(arguments: ["{email_to_case: false, email_drafts_for_cases: true}", "{email_to_case: true, email_drafts_for_cases: false}",
                      "{email_to_case: false, email_drafts_for_cases: false}"])
    func neverAContactAndACaseOnATask(capabilities: String) throws {
        let engine = Engine(pack: try pack(capabilities), directory: InMemoryDirectory(records: try sampleRecords()))
        let messages = [
            try String(contentsOf: packageRoot.appendingPathComponent("examples/messages/04-case-thread.eml"), encoding: .utf8),
            "From: carla@northwind.example\nTo: ann@contoso.com\nSubject: Re: Case 00001042\nDate: Tue, 3 Mar 2026 08:05:00 -0800\n\nStill failing.",
        ]
        let contexts = [ProcessContext(mailbox: "ann@contoso.com"),
                        ProcessContext(mailbox: "ann@contoso.com", trigger: "button",
                                       selection: [("contact", "0035e00000Car01"), ("case", "5005e00000Cas01")])]
        for text in messages {
            for context in contexts {
                let (decision, _, _) = try engine.decide(try message(text), context: context)
                #expect(decision.verdict == .save)
                #expect(decision.saveAs == "Task")
                #expect(decision.who == ["0035e00000Car01"])
                #expect(decision.what.map { SalesforceID.object(of: $0) } != "Case")
                #expect(decision.observations.contains { $0.hasPrefix("Case 5005e00000Cas01 is not linked") })
            }
        }
    }
}

/// A Case the thread names that is another customer's is not linked (`thread.foreign_case`):
/// anyone can type a Case number or forward a thread token.
@Suite struct ForeignCaseTests {
    static let foreignNote = "Case 5005e00000Cas01 named in the email is not linked: it is another customer's (its Contact and Account are none of the message's Contacts')"

    /// The decision on a short reply from `from` to Ann with `subject`.
    func decide(from: String, subject: String, engine: Engine,
                context: ProcessContext = ProcessContext(mailbox: "ann@contoso.com")) throws -> (Decision, EngineFacts) {
        let text = "From: \(from)\nTo: ann@contoso.com\nSubject: \(subject)\nDate: Tue, 3 Mar 2026 08:05:00 -0800\n\nAny news?"
        let (decision, facts, _) = try engine.decide(try message(text), context: context)
        return (decision, facts)
    }

    func contact(_ id: String, account: String?) -> CRMRecord {
        CRMRecord(object: "Contact", id: id, fields: account.map { ["AccountId": $0] } ?? [:])
    }

    /// Ids compare in their 15-character form; the Case's Contact or its Account is enough;
    /// with no known Contact nothing says the Case is someone else's, nor for a Case with
    /// neither Contact nor Account (Email-to-Case from an address then unknown).
    @Test func aCaseIsForeignOnlyWhenKnownContactsAreNeitherItsContactNorOfItsAccount() {
        let found = CRMRecord(object: "Case", id: "5005e00000Cas01", fields: ["ContactId": "0035e00000Car01AAA", "AccountId": "0015e00000Nor01"])
        #expect(!FactsBuilder.isForeign(found, contacts: [contact("0035e00000Car01", account: nil)]))
        #expect(!FactsBuilder.isForeign(found, contacts: [contact("0035e00000Oth01", account: "0015e00000Nor01AAA")]))
        #expect(FactsBuilder.isForeign(found, contacts: [contact("0035e00000Bob01", account: "0015e00000Fab01")]))
        #expect(!FactsBuilder.isForeign(found, contacts: [contact("0035e00000Bob01", account: "0015e00000Fab01"),
                                                          contact("0035e00000Car01AAA", account: "0015e00000Nor01")]))
        #expect(!FactsBuilder.isForeign(found, contacts: []))
        let orphan = CRMRecord(object: "Case", id: "5005e00000Cas09", fields: [:])
        #expect(!FactsBuilder.isForeign(orphan, contacts: [contact("0035e00000Bob01", account: "0015e00000Fab01")]))
        let accountOnly = CRMRecord(object: "Case", id: "5005e00000Cas08", fields: ["AccountId": "0015e00000Nor01"])
        #expect(FactsBuilder.isForeign(accountOnly, contacts: [contact("0035e00000Bob01", account: nil)]))
        // A participant's Account (found by website) counts as a Contact's does.
        #expect(FactsBuilder.isForeign(found, contacts: [], accounts: ["0015e00000Fab01"]))
        #expect(!FactsBuilder.isForeign(found, contacts: [], accounts: ["0015e00000Nor01AAA"]))
        #expect(!FactsBuilder.isForeign(found, contacts: [contact("0035e00000Bob01", account: "0015e00000Fab01")], accounts: ["0015e00000Nor01"]))
    }

    /// Naming another customer's Case first does not hide the sender's own; an unknown sender
    /// at another customer's domain (its Account found by website) does not get a Case either.
    @Test func theFirstCaseThatMayBeLinkedIsTheThreadsAndAnAccountByDomainCounts() throws {
        let engine = try engine()
        for subject in ["Re: Case 00000977 and Case 00001042", "Re: Case 00001042 and Case 00000977"] {
            let (decision, facts) = try decide(from: "bob@fabrikam.com", subject: subject, engine: engine)
            #expect(facts.threadCase == "5005e00000Cas02" && facts.foreignCase == nil, "\(subject)")
            #expect(decision.what == "5005e00000Cas02" && !decision.observations.contains(Self.foreignNote), "\(subject)")
        }
        let (decision, facts) = try decide(from: "someone@fabrikam.com", subject: "Re: Case 00001042", engine: engine)
        #expect(facts.participants.first?.account == "0015e00000Fab01")
        #expect(facts.foreignCase == "5005e00000Cas01" && facts.threadCase == nil && decision.what != "5005e00000Cas01")
    }

    /// Two Contacts share Carla's address; the search links the one it ranks first, and her
    /// Case is on the other: still her Case.
    @Test func aCaseOnAnotherContactOfTheSameAddressIsNotForeign() throws {
        let twin = CRMRecord(object: "Contact", id: "0035e00000Car00", fields: ["Email": "carla@northwind.example", "LastName": "Gómez",
                                                                               "AccountId": "0015e00000Aaa01"])
        let elsewhere = CRMRecord(object: "Case", id: "5005e00000Cas07", fields: ["CaseNumber": "00001077", "ContactId": "0035e00000Car01",
                                                                                 "AccountId": "0015e00000Nor01", "Status": "Working"])
        let (decision, facts) = try decide(from: "carla@northwind.example", subject: "Re: Case 00001077", engine: engine([twin, elsewhere]))
        #expect(facts.foreignCase == nil && facts.threadCase == "5005e00000Cas07")
        #expect(decision.what == "5005e00000Cas07")
    }

    /// Bob (Fabrikam) names Carla's Case (Northwind) by number and by thread token: neither
    /// links it, and the decision says so; Carla's own email and a stranger's still do.
    @Test func anotherCustomersCaseIsNotLinkedHoweverTheEmailNamesIt() throws {
        let engine = try engine()
        for subject in ["Re: Case 00001042", "Re: Login fails [ ref:_00D5e0ABCD._5005e00000Cas01:ref ]"] {
            let (decision, facts) = try decide(from: "bob@fabrikam.com", subject: subject, engine: engine)
            #expect(decision.verdict == .save, "\(subject)")
            #expect(decision.who == ["0035e00000Bob01"] && decision.what != "5005e00000Cas01", "\(subject)")
            #expect(facts.threadCase == nil && !facts.related.cases.contains("5005e00000Cas01"), "\(subject)")
            #expect(decision.observations.contains(Self.foreignNote), "\(subject)")
        }
        for from in ["carla@northwind.example", "stranger@unknown.example"] {
            let (decision, facts) = try decide(from: from, subject: "Re: Case 00001042", engine: engine)
            #expect(decision.what == "5005e00000Cas01" && facts.threadCase == "5005e00000Cas01", "\(from)")
            #expect(!decision.observations.contains(Self.foreignNote), "\(from)")
        }
        // The user chose the Case in the Save dialog (by its 18-character id): linked, and no
        // word about another customer.
        let chosen = ProcessContext(mailbox: "ann@contoso.com", trigger: "button", selection: [("case", "5005e00000Cas01AAA")])
        let (decision, facts) = try decide(from: "bob@fabrikam.com", subject: "Re: Case 00001042", engine: engine, context: chosen)
        #expect(facts.foreignCase == "5005e00000Cas01" && decision.what.map(SalesforceID.canonical) == "5005e00000Cas01")
        #expect(!decision.observations.contains(Self.foreignNote))
    }
}

@Suite struct SelectionTests {
    static let extra = [
        CRMRecord(object: "Contact", id: "0035e00000Dan01", fields: ["Email": "dan@contoso.com", "LastName": "Manager"]),
        CRMRecord(object: "Contact", id: "0035e00000New01", fields: ["Email": "news@newsletters.example", "LastName": "News"]),
        CRMRecord(object: "Lead", id: "00Q5e00000Alr01", fields: ["Email": "alerts@vendor.example", "LastName": "Alerts"]),
        CRMRecord(object: "Account", id: "0015e00000Con01", fields: ["Name": "Contoso", "Website": "https://www.contoso.com"]),
        CRMRecord(object: "Opportunity", id: "0065e00000Int01", fields: ["AccountId": "0015e00000Con01", "CloseDate": "2026-04-01"]),
    ]

    func refusal(_ kind: String, _ id: String, mailbox: String = "ann@contoso.com") throws -> String? {
        let context = ProcessContext(mailbox: mailbox, trigger: "button", selection: [(kind, id)])
        do {
            _ = try engine(Self.extra).decide(try message(strangerMessage), context: context)
            return nil
        } catch let error as SelectionError {
            #expect(error.id == id)
            return error.description
        }
    }

    @Test func idsMustExistAndBeOfTheKindNamed() throws {
        #expect(try refusal("contact", "0035e00000Zzz01") == "--select contact=0035e00000Zzz01: no such record in the CRM; nothing was saved")
        #expect(try refusal("contact", "5005e00000Cas01")?.contains("5005e00000Cas01 is a Case, not a Contact") == true)
        #expect(try refusal("case", "0035e00000Car01")?.contains("is a Contact, not a Case") == true)
        #expect(try refusal("contact", "0035e00000Car01") == nil)
        #expect(try refusal("case", "5005e00000Cas01") == nil)
        #expect(try refusal("user", "0055e00000Dan01") == nil) // the org's own people
        // A converted Lead is nobody's record any more: the Contact it became is to be chosen.
        #expect(try refusal("lead", "00Q5e00000Old01")?.contains("Lead 00Q5e00000Old01 is converted; select the Contact it became") == true)
    }

    @Test func internalAndBlocklistedRecordsAreRefused() throws {
        #expect(try refusal("contact", "0035e00000Dan01")?.contains("is internal (contoso.com)") == true)
        #expect(try refusal("contact", "0035e00000New01")?.contains("is on the org blocklist (newsletters.example)") == true)
        // The individual layer: Ann's own blocklist, not Dan's.
        #expect(try refusal("lead", "00Q5e00000Alr01")?.contains("is on the individual blocklist (alerts@vendor.example)") == true)
        #expect(try refusal("lead", "00Q5e00000Alr01", mailbox: "dan@contoso.com") == nil)
        #expect(try refusal("account", "0015e00000Con01")?.contains("Account 0015e00000Con01 (contoso.com) is internal") == true)
        #expect(try refusal("opportunity", "0065e00000Int01")?.contains("Opportunity 0065e00000Int01 of Account 0015e00000Con01") == true)
    }

    @Test func automaticSyncIgnoresTheSelection() throws {
        // Not checked (an unknown id is not an error) and not linked.
        let context = ProcessContext(mailbox: "ann@contoso.com", selection: [("contact", "0035e00000Zzz01"), ("case", "5005e00000Cas01")])
        let (decision, facts, _) = try engine().decide(try message(
            "From: bob@fabrikam.com\nTo: ann@contoso.com\nSubject: Hi\nDate: Mon, 2 Mar 2026 09:15:00 +0000\n\nHi."), context: context)
        #expect(decision.who == ["0035e00000Bob01"])
        #expect(decision.what == "0065e00000Opp01")
        #expect(facts.object["selection"].map { "\($0)" }?.contains("0035e00000Zzz01") == false)
    }
}

@Suite struct RankingTests {
    static func rankingRecords() throws -> [CRMRecord] {
        var records: [CRMRecord] = []
        let folder = packageRoot.appendingPathComponent("rules/tests/crm/ranking-a")
        for object in ["Account", "Contact", "Opportunity", "Case"] {
            let text = try String(contentsOf: folder.appendingPathComponent("\(object).csv"), encoding: .utf8)
            records += try InMemoryDirectory.parseCSV(text, object: object)
        }
        return records
    }

    /// The same CRM in 50 row orders gives the same ranked lists and the same links.
    @Test func theExportsRowOrderNeverMatters() throws {
        let base = try Self.rankingRecords()
        let messages = [
            "From: rita@ranking.example\nTo: ann@contoso.com, sam@ranking-services.example, dana@ranking.example\nDate: Mon, 2 Mar 2026 09:00:00 +0000\n\nHi.",
            "From: someone@eu.parent.example\nTo: ann@contoso.com\nDate: Mon, 2 Mar 2026 09:00:00 +0000\n\nHi.",
        ]
        for text in messages {
            var first: String?
            for seed in 0..<50 as Range<UInt64> {
                var records = base
                var generator = SeededGenerator(seed: seed)
                records.shuffle(using: &generator)
                let engine = Engine(pack: try shippedPack(), directory: InMemoryDirectory(records: records))
                let (decision, facts, _) = try engine.decide(try message(text), context: ProcessContext(mailbox: "ann@contoso.com"))
                let summary = "\(facts.related.contacts) \(facts.related.accounts) \(facts.related.opportunities) \(facts.related.cases) "
                    + "\(decision.who) \(decision.what ?? "-")"
                if first == nil { first = summary }
                #expect(summary == first, "seed \(seed)")
            }
        }
    }

    @Test func theRankingRules() throws {
        let engine = Engine(pack: try shippedPack(), directory: InMemoryDirectory(records: try Self.rankingRecords().reversed()))
        let facts = try engine.facts(try message(
            "From: rita@ranking.example\nTo: ann@contoso.com, sam@ranking-services.example, dana@ranking.example\nDate: Mon, 2 Mar 2026 09:00:00 +0000\n\nHi."),
            context: ProcessContext(mailbox: "ann@contoso.com"))
        // Open before closed; nearest close date (18, 18, 59, 105 days); the id on a tie.
        #expect(facts.related.opportunities == ["0065e00000Rnk02", "0065e00000Rnk03", "0065e00000Rnk01", "0065e00000Rnk05", "0065e00000Rnk04"])
        // Open and recent only (the search), the most recent first, to the minute.
        #expect(facts.related.cases == ["5005e00000Rnk04", "5005e00000Rnk02", "5005e00000Rnk01"])
        // Dana's two Contacts: the one with an Account.
        #expect(facts.related.contacts == ["0035e00000Rnk01", "0035e00000Rnk02", "0035e00000Dup02"])
        #expect(facts.related.accounts == ["0015e00000Rnk01", "0015e00000Rnk02"]) // each Account once
        let byDomain = try engine.facts(try message("From: someone@eu.parent.example\nTo: ann@contoso.com\n\nHi."),
                                        context: ProcessContext(mailbox: "ann@contoso.com"))
        #expect(byDomain.related.accounts == ["0015e00000Par02", "0015e00000Par03", "0015e00000Par01"])
        #expect(byDomain.participants.first?.account == "0015e00000Par02")
        #expect(byDomain.participants.first?.accountByWebsite == "eu.parent.example")
    }
}

@Suite struct FolderRoleTests {
    func role(_ folder: String, given: String? = nil) throws -> String {
        let facts = try engine().facts(try message("From: bob@fabrikam.com\nTo: ann@contoso.com\n\nhi"),
                                       context: ProcessContext(mailbox: "ann@contoso.com", folder: folder, folderRole: given))
        guard case .object(let mailbox)? = facts.object["mailbox"], case .string(let role)? = mailbox["folder_role"] else { return "?" }
        return role
    }

    @Test func namesMapToRoles() throws {
        for folder in ["Inbox", "INBOX", "inbox/Deals/2026", "Posteingang", "Boîte de réception"] { #expect(try role(folder) == "inbox", "\(folder)") }
        for folder in ["Sent", "Sent Items", "Sent Mail", "[Gmail]/Sent Mail", "[Google Mail]/Gesendet", "Gesendete Elemente",
                       "Éléments envoyés", "INBOX.Sent", "INBOX/Sent", "Sent Items/2025"] {
            #expect(try role(folder) == "sent", "\(folder)")
        }
        for folder in ["Salesforce Emails", "salesforce emails/Deals", "Salesforce"] { #expect(try role(folder) == "salesforce", "\(folder)") }
        for folder in ["Archive", "[Gmail]/All Mail", "Drafts", "Deleted Items", "Projects/Inbox", "Unsent"] { #expect(try role(folder) == "other", "\(folder)") }
    }

    @Test func theCallersRoleWins() throws {
        #expect(try role("Verschickt", given: "sent") == "sent")
        #expect(try role("Inbox", given: "other") == "other")
    }

    @Test func callersNameRolesTheirOwnWay() {
        #expect(ProcessContext.folderRole(named: "sentitems") == "sent") // Microsoft Graph wellKnownName
        #expect(ProcessContext.folderRole(named: "SENT") == "sent") // Gmail system label
        #expect(ProcessContext.folderRole(named: "\\Sent") == "sent") // IMAP SPECIAL-USE
        #expect(ProcessContext.folderRole(named: "INBOX") == "inbox")
        #expect(ProcessContext.folderRole(named: "archive") == "other")
        #expect(ProcessContext.folderRole(named: "\\All") == "other")
        #expect(ProcessContext.folderRole(named: "postbox") == nil)
    }
}

/// `never_save_body` blanked the body fields only: an org's mapping that put the body into
/// another field (`Subject: message.subject + " | " + message.body`) saved it all the same.
@Suite struct NeverSaveBodyTests {
    @Test func noFieldOfTheMappingCarriesTheBody() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("never-save-body-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.copyItem(at: packageRoot.appendingPathComponent("rules"), to: folder)
        let org = folder.appendingPathComponent("org.yaml")
        var text = try String(contentsOf: org, encoding: .utf8)
        text = text.replacingOccurrences(of: "  never_save_body: false", with: "  never_save_body: true")
        let subject = "    Task:\n      Subject: message.subject\n"
        #expect(text.contains(subject))
        text = text.replacingOccurrences(of: subject, with: "    Task:\n      Subject: 'message.subject + \" | \" + message.body'\n")
        try text.write(to: org, atomically: true, encoding: .utf8)
        guard case .success(let pack) = try Linter.load(folder.path) else { Issue.record("the pack does not load"); return }
        let engine = Engine(pack: pack, directory: InMemoryDirectory(records: try sampleRecords()))
        let (decision, _, _) = try engine.decide(try sampleMessage("01-customer-question.eml"), context: ProcessContext(mailbox: "ann@contoso.com"))
        let fields = Dictionary(uniqueKeysWithValues: (decision.record?.fields ?? []).map { ($0.name, $0.value) })
        #expect(fields["Subject"] == .string("Quote for 20 licences | "))
        // A Task's Description keeps the addresses (DESIGN point 14), not the body.
        #expect(fields["Description"] == .string("From: bob@fabrikam.com\nTo: Ann Seller <ann@contoso.com>\nCc: Carla Gomez <carla@northwind.example>\n\n"))
    }
}

/// Salesforce counts a field's length in UTF-16 units; the cut keeps whole characters, and
/// cuts a character alone too long between its scalars.
@Suite struct FieldLengthTests {
    @Test func textIsCutToItsLimitInUTF16Units() {
        let party = "Party! " + String(repeating: "\u{1F389}", count: 130)
        let cut = SalesforceField.truncated(party, toUTF16: 255)
        #expect(cut == "Party! " + String(repeating: "\u{1F389}", count: 124))
        #expect(SalesforceField.truncated("short", toUTF16: 255) == nil)
        let marks = "a" + String(repeating: "\u{301}", count: 5000)
        #expect(SalesforceField.truncated(marks, toUTF16: 10)?.unicodeScalars.count == 10)
        let family = String(repeating: "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}", count: 40) // 8 units each
        #expect(SalesforceField.truncated(family, toUTF16: 255)?.utf16.count == 248)
    }
}

/// `message.bulk`: a list's or a bulk sender's message, for a pack to leave unsaved or to
/// create no record for (the shipped pack has no rule on it: an org's choice).
@Suite struct BulkFactTests {
    @Test func listAndPrecedenceHeadersMakeBulkMail() throws {
        func bulk(_ headers: String) throws -> Value? {
            let facts = try engine().facts(try message("From: news@fabrikam.com\nTo: ann@contoso.com\nSubject: News\n\(headers)\n\nHi."),
                                           context: ProcessContext(mailbox: "ann@contoso.com"))
            guard case .object(let message)? = facts.object["message"] else { return nil }
            return message["bulk"]
        }
        #expect(try bulk("List-Id: <news.fabrikam.com>") == .bool(true))
        #expect(try bulk("List-Unsubscribe: <mailto:unsubscribe@fabrikam.com>") == .bool(true))
        #expect(try bulk("Precedence: Bulk") == .bool(true))
        #expect(try bulk("Precedence: first-class") == .bool(false))
        #expect(try bulk("X-Mailer: Outlook") == .bool(false))
    }

    /// Salesforce refuses a whole save for a date field it cannot read (a mapping of
    /// `message.subject` into ActivityDate): such a value is left blank and said.
    @Test func aDateFieldTakesOnlyADate() throws {
        let date = try #require(SalesforceField.task.first { $0.name == "ActivityDate" })
        let dateTime = try #require(SalesforceField.emailMessage.first { $0.name == "MessageDate" })
        for good in ["2026-03-02", "2024-02-29", "0001-01-01"] { #expect(date.accepts(good), "\(good)") }
        for bad in ["2026-3-2", "2026-02-30", "2025-02-29", "2026-13-01", "Quote for 20 licences", "2026-03-02T09:15:00Z", ""] {
            #expect(!date.accepts(bad), "\(bad)")
        }
        for good in ["2026-03-02T09:15:00Z", "2026-03-02T09:15:00.250Z", "2026-03-02T09:15:00-08:00", "2026-03-02T23:59:60+14:00"] {
            #expect(dateTime.accepts(good), "\(good)")
        }
        for bad in ["2026-03-02", "2026-03-02T24:00:00Z", "2026-03-02T09:15:00", "2026-03-02T09:15:00+0800", "2026-03-02T09:15:00.Z"] {
            #expect(!dateTime.accepts(bad), "\(bad)")
        }
        #expect(SalesforceField.task.first { $0.name == "Subject" }?.accepts("anything") == true)
        // A pack mapping the Subject into ActivityDate.
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("date-field-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.copyItem(at: packageRoot.appendingPathComponent("rules"), to: folder)
        let org = folder.appendingPathComponent("org.yaml")
        let text = try String(contentsOf: org, encoding: .utf8)
        #expect(text.contains("ActivityDate: message.day"))
        try text.replacingOccurrences(of: "ActivityDate: message.day", with: "ActivityDate: message.subject").write(to: org, atomically: true, encoding: .utf8)
        guard case .success(let pack) = try Linter.load(folder.path) else { Issue.record("the pack does not load"); return }
        let engine = Engine(pack: pack, directory: InMemoryDirectory(records: try sampleRecords()))
        let (decision, _, _) = try engine.decide(try sampleMessage("01-customer-question.eml"), context: ProcessContext(mailbox: "ann@contoso.com"))
        let fields = Dictionary(uniqueKeysWithValues: (decision.record?.fields ?? []).map { ($0.name, $0.value) })
        #expect(fields["ActivityDate"] == .absent)
        #expect(decision.observations.contains("Task.ActivityDate: 'Quote for 20 licences' is not a date (YYYY-MM-DD); left blank"), "\(decision.observations)")
    }

    /// DESIGN point 14's mapping has the headers and the privacy: `message.headers` (what an
    /// EmailMessage's Headers holds, cut at 32,000 characters between two fields) and
    /// `message.sensitivity`; the shipped mapping fills Headers.
    @Test func headersAndSensitivityAreFacts() throws {
        let text = "From: bob@fabrikam.com\nTo: ann@contoso.com\nSubject: Offer\nSensitivity: Private\nX-Long: "
            + String(repeating: "x", count: 40_000) + "\nMessage-ID: <h-1@fabrikam.com>\n\nHi."
        let facts = try engine().facts(try message(text), context: ProcessContext(mailbox: "ann@contoso.com"))
        guard case .object(let fields)? = facts.object["message"] else { Issue.record("no message facts"); return }
        #expect(fields["sensitivity"] == .string("private"))
        #expect(fields["headers"] == .string("From: bob@fabrikam.com\nTo: ann@contoso.com\nSubject: Offer\nSensitivity: Private\n"))
        let plain = try engine().facts(try message("From: bob@fabrikam.com\nTo: ann@contoso.com\n\nHi."), context: ProcessContext(mailbox: "ann@contoso.com"))
        guard case .object(let none)? = plain.object["message"] else { return }
        #expect(none["sensitivity"] == .string(""))
        let pack = try shippedPack()
        #expect(pack.mapping["EmailMessage"]?.contains { $0.field.name == "Headers" } == true)
    }
}
