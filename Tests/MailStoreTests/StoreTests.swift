import Foundation
import MailEngine
import MailMessage
import MailRules
@testable import MailStore
import Testing
import ShippedFixtures


/// The sample CRM's records, read from examples/crm.
func sampleRecords() throws -> [CRMRecord] {
    var records: [CRMRecord] = []
    for object in ["Account", "Contact", "Lead", "Opportunity", "Case", "User", "EmailMessage", "EmailMessageRelation", "Task"] {
        let text = try String(contentsOf: packageRoot.appendingPathComponent("examples/crm/\(object).csv"), encoding: .utf8)
        records += try InMemoryDirectory.parseCSV(text, object: object)
    }
    return records
}

/// A store in a fresh folder under the test run's temporary folder (removed when the process ends).
func temporaryStore() throws -> CRMStore {
    let folder = storeRoot.appendingPathComponent(UUID().uuidString)
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    return try CRMStore(path: folder.appendingPathComponent("crm.sqlite").path)
}

let storeRoot: URL = {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("mailsave-store-tests-\(ProcessInfo.processInfo.processIdentifier)")
    atexit { try? FileManager.default.removeItem(at: FileManager.default.temporaryDirectory
        .appendingPathComponent("mailsave-store-tests-\(ProcessInfo.processInfo.processIdentifier)")) }
    return root
}()



/// The CRM protocol's contract: every backend answers these the same way.
@Suite struct CRMDirectoryContractTests {
    static func backends() throws -> [(String, any RecordLookups)] {
        let records = try sampleRecords()
        let store = try temporaryStore()
        try store.add(records)
        return [("memory", InMemoryDirectory(records: records)), ("sqlite", store)]
    }

    @Test func lookUpsAgreeOnEveryBackend() throws {
        for (name, directory) in try Self.backends() {
            #expect(try directory.contacts(email: "bob@fabrikam.com").map(\.id) == ["0035e00000Bob01"], "\(name)")
            #expect(try directory.leads(email: "bob@fabrikam.com").isEmpty, "\(name): a converted Lead is not matched")
            #expect(try directory.leads(email: "kim.lee.consulting@gmail.com").map(\.id) == ["00Q5e00000Kim01"], "\(name)")
            #expect(try directory.users(email: "ann@contoso.com").map(\.id) == ["0055e00000Ann01"], "\(name)")
            #expect(try directory.accounts(websiteDomain: "fabrikam.com").map(\.id) == ["0015e00000Fab01"], "\(name)")
            #expect(try directory.accounts(websiteDomain: "eu.northwind.example").map(\.id) == ["0015e00000Nor01"], "\(name): parent domain")
            #expect(try directory.accounts(websiteDomain: "gmail.com").isEmpty, "\(name)")
            #expect(try directory.people(phone: "+14155550134").map(\.id) == ["0035e00000Car01"], "\(name)")
            // A signature's company finds its Account by name, legal form and case aside.
            #expect(try directory.accounts(name: "lee consulting").map(\.id) == ["0015e00000Lee01"], "\(name)")
            #expect(try directory.accounts(name: "FABRIKAM, INC").map(\.id) == ["0015e00000Fab01"], "\(name)")
            #expect(try directory.accounts(name: "Contoso").isEmpty, "\(name)")
            #expect(Set(try directory.opportunities(accountID: "0015e00000Fab01").map(\.id)) == ["0065e00000Opp01", "0065e00000Opp02"], "\(name)")
            #expect(try directory.cases(contactID: "0035e00000Car01").map(\.id) == ["5005e00000Cas01"], "\(name)")
            #expect(try directory.caseRecord(number: "1042")?.id == "5005e00000Cas01", "\(name)")
            #expect(try directory.record(id: "0035e00000Car01")?["LastName"] == "Gómez, PhD", "\(name)")
            let anchor = try directory.emailMessage(messageIdentifier: "<sf-outbound-1@CONTOSO.com>")
            #expect(anchor?.record.id == "02s5e00000Ema01", "\(name)")
            #expect(Set(anchor?.relations ?? []) == ["0035e00000Bob01", "0055e00000Ann01"], "\(name)")
            #expect(try directory.savedRecord(messageID: "<order-5@fabrikam.com>") == "00T5e00000Tas01", "\(name)")
            #expect(try directory.savedRecord(messageID: "<nothing@x.example>") == nil, "\(name)")
        }
    }

    @Test func theEngineDecidesTheSameOnEveryBackend() throws {
        let pack = try shippedPack()
        let folder = packageRoot.appendingPathComponent("examples/messages").path
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".eml") }.sorted()
        var results: [String: [String]] = [:]
        for (name, directory) in try Self.backends() {
            let engine = Engine(pack: pack, directory: directory)
            results[name] = try files.map { file in
                let decision = try engine.decide(try sampleMessage(file), context: ProcessContext(mailbox: "ann@contoso.com")).0
                return "\(file) \(decision.verdict.rawValue) \(decision.who) \(decision.what ?? "-")"
            }
        }
        #expect(results["memory"] == results["sqlite"])
        #expect(results["memory"]?.count == files.count)
    }
}

@Suite struct StoreTests {
    /// Read-only connections run without GRDB's statement authorizer (`CRMStore.open`):
    /// a statement compiled on them reports no tables read, where one compiled on the store's
    /// writer reports the tables it names. The answers are the same either way (every test
    /// of this suite reads through such connections).
    @Test func readOnlyConnectionsCompileWithoutTheAuthorizer() throws {
        let writer = try temporaryStore()
        try writer.add(try sampleRecords())
        let sql = "SELECT record.id FROM lookup CROSS JOIN record ON record.id = lookup.id WHERE kind = ?"
        let written = try writer.database.read { db in try db.makeStatement(sql: sql).databaseRegion }
        #expect(written.isFullDatabase == false && written.isEmpty == false)
        let path = writer.path
        try writer.database.close()
        for store in [try CRMStore(path: path, access: .readOnly), try CRMStore(path: path, access: .readOnly, concurrentReads: true)] {
            let region = try store.database.read { db in try db.makeStatement(sql: sql).databaseRegion }
            #expect(region.isEmpty)
            // GRDB's own read (BEGIN, COMMIT) and the store's snapshot, with or without an
            // error inside (ROLLBACK), leave no transaction open.
            struct Inside: Error {}
            #expect(throws: Inside.self) { try store.snapshot { throw Inside() } }
            #expect(try store.database.read { db in db.isInsideTransaction } == true)
            #expect(try store.database.unsafeRead { db in db.isInsideTransaction } == false)
            if let readers = store.threadReaders {
                let perThread = try readers.current().read { db in try db.makeStatement(sql: sql).databaseRegion }
                #expect(perThread.isEmpty)
            }
            #expect(try store.snapshot { try store.people(email: "bob@fabrikam.com") }.contacts.isEmpty == false)
        }
    }

    @Test func idsLookLikeSalesforceIds() {
        #expect(SalesforceID.caseSafeSuffix("0015000000Gv7qJ") == "AAR") // Salesforce's documented example
        let id = SalesforceID.make(prefix: "00T", number: 62) // base 62: "10"
        #expect(id == "00T5e0000000010" + SalesforceID.caseSafeSuffix("00T5e0000000010"))
        #expect(id.count == 18)
    }

    @Test func aBadRowImportsNothing() throws {
        let store = try temporaryStore()
        #expect(throws: CRMStore.ImportProblem.self) {
            try store.importCSV("Id,Email\n0035e00000Aaa01,a@x.example\n0035e00000Bbb01,b@x.example,extra\n", object: "Contact")
        }
        #expect(try store.records(object: "Contact").isEmpty)
        #expect(throws: CRMStore.ImportProblem.self) { try store.importCSV("Id,Email\n001xx,a@x.example\n", object: "Contact") }
        #expect(try store.importCSV("\u{FEFF}Id,Email,Weird Column\r\n0035e00000Aaa01,A@X.example,1\r\n", object: "Contact") == 1)
        #expect(try store.contacts(email: "a@x.example").count == 1)
    }

    /// The decision on a message given as text, in an auto-save mode, for ann@contoso.com.
    func decide(_ store: CRMStore, text: String, mode: String) throws -> (Decision, Message) {
        let message = try MessageParser.parse(Array(text.utf8))
        return (try Engine(pack: try modePack(mode), directory: store).decide(message, context: ProcessContext(mailbox: "ann@contoso.com")).0, message)
    }

    /// The shipped pack in another auto-save mode (forced, flexible, ...).
    func modePack(_ mode: String) throws -> RulePack {
        let location = SourceLocation(path: "t", line: 1, column: 1)
        return try shippedPack().overriding([(YScalar(value: "auto_save_mode", location: location, style: .plain),
                                              .scalar(YScalar(value: mode, location: location, style: .plain)))],
                                            file: SourceFile(path: "t", text: "")).0
    }

    func decide(_ store: CRMStore, _ file: String, mailbox: String = "ann@contoso.com", settings: [String: String] = [:]) throws -> (Decision, Message) {
        var pack = try shippedPack()
        if !settings.isEmpty {
            let overrides = settings.map { (key: YScalar(value: $0.key, location: SourceLocation(path: "t", line: 1, column: 1), style: .plain),
                                             value: YNode.scalar(YScalar(value: $0.value, location: SourceLocation(path: "t", line: 1, column: 1), style: .plain))) }
            pack = pack.overriding(overrides, file: SourceFile(path: "t", text: "")).0
        }
        let message = try sampleMessage(file)
        return (try Engine(pack: pack, directory: store).decide(message, context: ProcessContext(mailbox: mailbox)).0, message)
    }

    @Test func savedOnceAndAgainOnlyWhenTheRecordIsGone() throws {
        let store = try temporaryStore()
        try store.add(try sampleRecords())
        let (decision, message) = try decide(store, "01-customer-question.eml")
        let first = try #require(try store.save(decision, message: message, mailbox: "ann@contoso.com"))
        #expect(first.created)
        #expect(try store.save(decision, message: message, mailbox: "dan@contoso.com") == SaveResult(id: first.id, created: false))
        let task = try #require(try store.record(id: first.id))
        #expect(task["WhoId"] == "0035e00000Bob01")
        #expect(task["WhatId"] == "0065e00000Opp01")
        #expect(task["OwnerId"] == "0055e00000Ann01")
        #expect(try store.savedRecord(messageID: "<CAB1234567@mail.fabrikam.com>") == first.id)
        // Deleted in the CRM: reconcile finds it, and the message may be saved again.
        try store.delete(id: first.id)
        #expect(try store.savedRecord(messageID: "<CAB1234567@mail.fabrikam.com>") == nil)
        #expect(try store.reconcile(remove: false).map(\.recordID) == [first.id])
        let second = try #require(try store.save(decision, message: message, mailbox: "ann@contoso.com"))
        #expect(second.created)
        #expect(second.id != first.id)
        #expect(try store.reconcile(remove: false).isEmpty)
    }

    /// A person with two email addresses is related by the one the message names, at its
    /// place (the first of hers in key order made her OtherAddress with her other address).
    @Test func aRelationNamesTheAddressTheMessageUses() throws {
        let store = try temporaryStore()
        try store.add(try sampleRecords().map { record in
            guard record.id == "0035e00000Bob01" else { return record }
            var bob = record
            bob.fields["Secondary_Email__c"] = "aaa.bob@fabrikam.com"
            return bob
        })
        let (decision, message) = try decide(store, "01-customer-question.eml", settings: ["save_as": "EmailMessage"])
        let saved = try #require(try store.save(decision, message: message, mailbox: "ann@contoso.com"))
        let relations = try store.records(object: "EmailMessageRelation").filter { $0["EmailMessageId"] == saved.id }
        let bob = try #require(relations.first { $0["RelationId"] == "0035e00000Bob01" })
        #expect(bob["RelationType"] == "FromAddress")
        #expect(bob["RelationAddress"] == "bob@fabrikam.com")
    }

    /// A person the message names by two of her addresses is linked once (twice, she got two
    /// identical relations).
    @Test func aPersonNamedByTwoAddressesIsLinkedOnce() throws {
        let store = try temporaryStore()
        try store.add(try sampleRecords() + [CRMRecord(object: "Contact", id: "0035e00000Mul01", fields: [
            "FirstName": "Zoe", "LastName": "Mul", "Email": "zoe@fabrikam.com", "Secondary_Email__c": "alice@fabrikam.com", "AccountId": "0015e00000Fab01",
        ])])
        var pack = try shippedPack()
        let location = SourceLocation(path: "t", line: 1, column: 1)
        pack = pack.overriding([(YScalar(value: "save_as", location: location, style: .plain),
                                 .scalar(YScalar(value: "EmailMessage", location: location, style: .plain)))], file: SourceFile(path: "t", text: "")).0
        let message = try MessageParser.parse(Array("From: Ann <ann@contoso.com>\r\nTo: zoe@fabrikam.com\r\nCc: alice@fabrikam.com\r\nSubject: Q\r\nMessage-ID: <two-addresses@contoso.com>\r\n\r\nHello\r\n".utf8))
        let decision = try Engine(pack: pack, directory: store).decide(message, context: ProcessContext(mailbox: "ann@contoso.com")).0
        #expect(decision.who.filter { $0 == "0035e00000Mul01" }.count == 1, "\(decision.who)")
        let saved = try #require(try store.save(decision, message: message, mailbox: "ann@contoso.com"))
        let relations = try store.records(object: "EmailMessageRelation").filter { $0["EmailMessageId"] == saved.id && $0["RelationId"] == "0035e00000Mul01" }
        #expect(relations.map { "\($0["RelationType"] ?? "") \($0["RelationAddress"] ?? "")" } == ["ToAddress zoe@fabrikam.com"])
    }

    @Test func anEmailMessageGetsOneRelationPerLinkedPerson() throws {
        let store = try temporaryStore()
        try store.add(try sampleRecords())
        let (decision, message) = try decide(store, "01-customer-question.eml", settings: ["save_as": "EmailMessage"])
        let saved = try #require(try store.save(decision, message: message, mailbox: "ann@contoso.com"))
        let email = try #require(try store.emailMessage(messageIdentifier: "<CAB1234567@mail.fabrikam.com>"))
        #expect(email.record.id == saved.id)
        #expect(Set(email.relations) == ["0035e00000Bob01", "0035e00000Car01"])
        let relations = try store.records(object: "EmailMessageRelation").filter { $0["EmailMessageId"] == saved.id }
        #expect(Set(relations.map { "\($0["RelationId"] ?? "") \($0["RelationType"] ?? "")" })
                == ["0035e00000Bob01 FromAddress", "0035e00000Car01 CcAddress"])
        #expect(email.record["RelatedToId"] == "0065e00000Opp01")
    }

    @Test func forcedModeCreatesALeadInTheSameTransaction() throws {
        let store = try temporaryStore()
        try store.add(try sampleRecords())
        let message = try MessageParser.parse(Array("From: \"Lee, Sam\" <sam@unknown.example>\r\nTo: ann@contoso.com\r\nSubject: Hi\r\nMessage-ID: <forced-1@unknown.example>\r\n\r\nHello\r\n\r\nBest regards,\r\nSam Lee\r\nBuyer\r\nAcme Widgets Ltd\r\n".utf8))
        var pack = try shippedPack()
        let location = SourceLocation(path: "t", line: 1, column: 1)
        pack = pack.overriding([(YScalar(value: "auto_save_mode", location: location, style: .plain),
                                 .scalar(YScalar(value: "forced", location: location, style: .plain)))], file: SourceFile(path: "t", text: "")).0
        let decision = try Engine(pack: pack, directory: store).decide(message, context: ProcessContext(mailbox: "ann@contoso.com")).0
        #expect(decision.createFor == ["sam@unknown.example"])
        let saved = try #require(try store.save(decision, message: message, mailbox: "ann@contoso.com"))
        let lead = try #require(try store.leads(email: "sam@unknown.example").first)
        #expect(lead["FirstName"] == "Sam")
        #expect(lead["LastName"] == "Lee")
        #expect(lead["Company"] == "Acme Widgets Ltd")
        #expect(lead.id.hasPrefix("00Q"))
        #expect(try store.record(id: saved.id)?["WhoId"] == lead.id)
    }

    /// Two messages of one unknown person decided at once (one process each, on the same
    /// snapshot: both decide to create her Lead), saved one after the other: one Lead, both
    /// activities on it, and only the first save reports it created.
    @Test func twoDecisionsOfOneSnapshotCreateOnePerson() throws {
        let store = try temporaryStore()
        try store.add(try sampleRecords())
        let pack = try modePack("forced")
        let messages = try (1...2).map { number in
            try MessageParser.parse(Array("From: Zed Newman <zed.newman@gmail.com>\r\nTo: ann@contoso.com\r\nSubject: Q\(number)\r\nMessage-ID: <zed-\(number)@gmail.com>\r\n\r\nHello\r\n".utf8))
        }
        let decisions = try messages.map { try Engine(pack: pack, directory: store).decide($0, context: ProcessContext(mailbox: "ann@contoso.com")).0 }
        #expect(decisions.map(\.createFor) == [["zed.newman@gmail.com"], ["zed.newman@gmail.com"]])
        let saved = try zip(decisions, messages).map { try #require(try store.save($0, message: $1, mailbox: "ann@contoso.com")) }
        let leads = try store.leads(email: "zed.newman@gmail.com")
        #expect(leads.count == 1)
        #expect(try saved.map { try store.record(id: $0.id)?["WhoId"] } == [leads.first?.id, leads.first?.id])
        #expect(saved.map(\.createdRecords.count) == [1, 0])
        #expect(saved.map(\.linkedRecords.count) == [0, 1])
    }

    /// A person linked by an edit stands where their address is in the EmailMessage's address
    /// fields, never where it is only in a display name.
    @Test func anEditPlacesANewLinkByAddressNotByDisplayName() throws {
        let store = try temporaryStore()
        try store.add(try sampleRecords() + [CRMRecord(object: "EmailMessage", id: "02s5e00000Dsp01", fields: [
            "MessageIdentifier": "<dsp@fabrikam.com>", "FromAddress": "bob@fabrikam.com", "Subject": "x",
            "ToAddress": "\"kim.lee.consulting@gmail.com\" <ann@contoso.com>; Carla Gomez <carla@northwind.example>", "OwnerId": "0055e00000Ann01",
        ])])
        let id = try store.editEmailMessage(messageID: "<dsp@fabrikam.com>", as: "0055e00000Ann01", set: [:],
                                            who: ["00Q5e00000Kim01"], what: "")
        let relations = try store.records(object: "EmailMessageRelation").filter { $0["EmailMessageId"] == id }
        #expect(relations.map { "\($0["RelationType"] ?? "") \($0["RelationAddress"] ?? "")" } == ["OtherAddress kim.lee.consulting@gmail.com"])
        let carla = try store.editEmailMessage(messageID: "<dsp@fabrikam.com>", as: "0055e00000Ann01", set: [:], who: ["0035e00000Car01"], what: nil)
        #expect(try store.records(object: "EmailMessageRelation").filter { $0["EmailMessageId"] == carla }.map { $0["RelationType"] ?? "" } == ["ToAddress"])
    }

    /// A converted Lead of the address is no one to link: the save creates the Lead the
    /// decision asked for (reusing the converted one linked the Task to a record nobody sees).
    @Test func aConvertedLeadIsNotReused() throws {
        let store = try temporaryStore()
        try store.add(try sampleRecords() + [CRMRecord(object: "Lead", id: "00Q5e00000Old01",
                                                       fields: ["Email": "zed.newman@gmail.com", "LastName": "Newman", "IsConverted": "true"])])
        let (decision, message) = try decide(store, text: "From: Zed Newman <zed.newman@gmail.com>\r\nTo: ann@contoso.com\r\nSubject: Q\r\nMessage-ID: <zed-c@gmail.com>\r\n\r\nHello\r\n", mode: "forced")
        #expect(decision.createFor == ["zed.newman@gmail.com"])
        let saved = try #require(try store.save(decision, message: message, mailbox: "ann@contoso.com"))
        let who = try store.record(id: saved.id)?["WhoId"]
        #expect(who != nil && who != "00Q5e00000Old01")
        #expect(saved.createdRecords.count == 1)
    }

    /// A Contact of the address made after the decision (another process saved mail of the
    /// same person, or an import): linked, as the decision's own look-up would have, though the
    /// decision meant to create a Lead.
    @Test func aContactMadeSinceTheDecisionIsLinkedNotALeadMade() throws {
        let store = try temporaryStore()
        try store.add(try sampleRecords())
        let (decision, message) = try decide(store, text: "From: Zed Newman <zed.newman@gmail.com>\r\nTo: ann@contoso.com\r\nSubject: Q\r\nMessage-ID: <zed-m@gmail.com>\r\n\r\nHello\r\n", mode: "forced")
        #expect(decision.toCreate.map(\.object) == ["Lead"])
        try store.add([CRMRecord(object: "Contact", id: "0035e00000Zed01", fields: ["Email": "Zed.Newman@gmail.com", "LastName": "Newman"])])
        let saved = try #require(try store.save(decision, message: message, mailbox: "ann@contoso.com"))
        #expect(try store.record(id: saved.id)?["WhoId"] == "0035e00000Zed01")
        #expect(saved.createdRecords.isEmpty)
        #expect(saved.linkedRecords.map(\.placeholder) == ["new:Lead:zed.newman@gmail.com"])
        #expect(saved.linkedRecords.map(\.id) == ["0035e00000Zed01"])
        #expect(try store.leads(email: "zed.newman@gmail.com").isEmpty)
    }

    /// A new Lead's Email is spelled as the message spells it (its local part's case kept); it
    /// is found again whatever the case.
    @Test func aNewLeadKeepsTheSpellingOfItsAddress() throws {
        let store = try temporaryStore()
        try store.add(try sampleRecords())
        let (decision, message) = try decide(store, text: "From: Gap Sun <GapS05@Unknown.example>\r\nTo: ann@contoso.com\r\nSubject: Q\r\nMessage-ID: <gap-1@unknown.example>\r\n\r\nHello\r\n", mode: "forced")
        #expect(decision.createFor == ["gaps05@unknown.example"])
        let saved = try #require(try store.save(decision, message: message, mailbox: "ann@contoso.com"))
        let lead = try #require(saved.createdRecords.first?.id)
        #expect(try store.record(id: lead)?["Email"] == "GapS05@unknown.example")
        #expect(try store.leads(email: "gaps05@unknown.example").map(\.id) == [lead])
    }

    /// A Contact planned under the Account its domain matches (flexible mode, the Account as
    /// WhatId): a Lead of the address made meanwhile is not linked in its place (a Task on a
    /// Lead relates to nothing else); the Contact is made as planned.
    @Test func aLeadMadeSinceTheDecisionDoesNotReplaceAPlannedContact() throws {
        let store = try temporaryStore()
        try store.add(try sampleRecords())
        let (decision, message) = try decide(store, text: "From: Nina Park <nina@northwind.example>\r\nTo: ann@contoso.com\r\nSubject: Q\r\nMessage-ID: <nina-m@northwind.example>\r\n\r\nHello\r\n", mode: "flexible")
        #expect(decision.toCreate.map(\.object) == ["Contact"])
        try store.add([CRMRecord(object: "Lead", id: "00Q5e00000Nin01", fields: ["Email": "nina@northwind.example", "LastName": "Park", "Company": "Northwind"])])
        let saved = try #require(try store.save(decision, message: message, mailbox: "ann@contoso.com"))
        #expect(saved.linkedRecords.isEmpty)
        let contact = try #require(saved.createdRecords.first?.id)
        #expect(try store.record(id: saved.id)?["WhoId"] == contact)
        #expect(try store.record(id: saved.id)?["WhatId"] == "0015e00000Nor01")
    }

    /// An imported id of another form after the prefix (any characters): the sequence's jump
    /// counts only ids of its own form, so saves go on.
    @Test func anOddImportedIdDoesNotStopTheSequence() throws {
        let store = try temporaryStore()
        try store.add(try sampleRecords())
        try store.add([CRMRecord(object: "Task", id: SalesforceID.make(prefix: "00T", number: 1), fields: ["Subject": "one"]),
                       CRMRecord(object: "Task", id: "00T5e~~~~~~~~~~", fields: ["Subject": "odd"])])
        let message = try sampleMessage("01-customer-question.eml")
        let decision = try Engine(pack: try shippedPack(), directory: store).decide(message, context: ProcessContext(mailbox: "ann@contoso.com")).0
        let saved = try #require(try store.save(decision, message: message, mailbox: "ann@contoso.com"))
        #expect(saved.created)
        #expect(try store.record(id: "00T5e~~~~~~~~~~")?["Subject"] == "odd")
    }

    /// A store holding records of its own id sequence (restored from its own export, or given
    /// another store's records): a new save takes an id no record holds, and replaces nothing.
    @Test func aNewRecordNeverTakesAnImportedId() throws {
        let store = try temporaryStore()
        try store.add(try sampleRecords())
        let first = SalesforceID.make(prefix: "00T", number: 1), third = SalesforceID.make(prefix: "00T", number: 3)
        try store.add([CRMRecord(object: "Task", id: first, fields: ["Subject": "restored one"]),
                       CRMRecord(object: "Task", id: String(third.prefix(15)), fields: ["Subject": "restored three"])])
        let message = try sampleMessage("01-customer-question.eml")
        let decision = try Engine(pack: try shippedPack(), directory: store).decide(message, context: ProcessContext(mailbox: "ann@contoso.com")).0
        let saved = try #require(try store.save(decision, message: message, mailbox: "ann@contoso.com"))
        #expect(saved.created)
        #expect(![first, third, String(third.prefix(15))].contains(saved.id))
        #expect(try store.record(id: first)?["Subject"] == "restored one")
        #expect(try store.record(id: String(third.prefix(15)))?["Subject"] == "restored three")
        #expect(try store.record(id: saved.id)?["Subject"] == "Quote for 20 licences")
    }

    @Test func aFreeMailLeadNamesItsCreatedRecordAndGetsNoDomainAsCompany() throws {
        let store = try temporaryStore()
        try store.add(try sampleRecords())
        let message = try MessageParser.parse(Array("From: Sam Lee <sam.lee@gmail.com>\r\nTo: ann@contoso.com\r\nSubject: Hi\r\nMessage-ID: <forced-2@gmail.com>\r\n\r\nHello\r\n".utf8))
        let pack = try modePack("forced")
        let decision = try Engine(pack: pack, directory: store).decide(message, context: ProcessContext(mailbox: "ann@contoso.com")).0
        // The decision names the record it creates, in the links and in the record.
        #expect(decision.who == ["new:Lead:sam.lee@gmail.com"])
        #expect(decision.record?.fields.first { $0.name == "WhoId" }?.value == .string("new:Lead:sam.lee@gmail.com"))
        let saved = try #require(try store.save(decision, message: message, mailbox: "ann@contoso.com"))
        let lead = try #require(try store.leads(email: "sam.lee@gmail.com").first)
        #expect(lead["Company"] == "[not provided]")
        #expect(saved.createdRecords.map(\.placeholder) == ["new:Lead:sam.lee@gmail.com"])
        #expect(saved.createdRecords.map(\.id) == [lead.id])
        #expect(try store.record(id: saved.id)?["WhoId"] == lead.id)
    }

    @Test func aKnownCompanyDomainGetsAContactUnderItsAccount() throws {
        let store = try temporaryStore()
        try store.add(try sampleRecords())
        let message = try MessageParser.parse(Array("From: Nina New <nina@northwind.example>\r\nTo: ann@contoso.com\r\nSubject: Hi\r\nMessage-ID: <flex-1@northwind.example>\r\n\r\nHello\r\n".utf8))
        let pack = try modePack("flexible")
        let decision = try Engine(pack: pack, directory: store).decide(message, context: ProcessContext(mailbox: "ann@contoso.com")).0
        #expect(decision.toCreate == [RecordToCreate(address: "nina@northwind.example", object: "Contact", accountID: "0015e00000Nor01")])
        #expect(decision.what == "0015e00000Nor01")
        #expect(decision.observations.contains("A Contact will be created for nina@northwind.example (Account 0015e00000Nor01)"))
        let saved = try #require(try store.save(decision, message: message, mailbox: "ann@contoso.com"))
        let contact = try #require(try store.contacts(email: "nina@northwind.example").first)
        #expect(contact["AccountId"] == "0015e00000Nor01")
        #expect(contact["LastName"] == "New")
        #expect(try store.record(id: saved.id)?["WhoId"] == contact.id)
        #expect(try store.record(id: saved.id)?["WhatId"] == "0015e00000Nor01")
    }

    @Test func onlyTheOwnerWithPermissionMayEditAnEmailMessage() throws {
        let store = try temporaryStore()
        try store.add(try sampleRecords())
        let (decision, message) = try decide(store, "01-customer-question.eml", settings: ["save_as": "EmailMessage"])
        let saved = try #require(try store.save(decision, message: message, mailbox: "ann@contoso.com"))
        #expect(throws: CRMStore.EditRefusal.self) {
            try store.editEmailMessage(messageID: "<CAB1234567@mail.fabrikam.com>", as: "0055e00000Dan01", set: ["Subject": "x"], who: nil, what: nil)
        }
        #expect(try store.record(id: saved.id)?["Subject"] == "Quote for 20 licences") // nothing changed
        let newID = try store.editEmailMessage(messageID: "<CAB1234567@mail.fabrikam.com>", as: "0055e00000Ann01",
                                               set: ["Subject": "Quote (revised)"], who: ["0035e00000Car01"], what: "5005e00000Cas01")
        #expect(newID != saved.id)
        #expect(try store.record(id: saved.id) == nil)
        let email = try #require(try store.emailMessage(messageIdentifier: "<CAB1234567@mail.fabrikam.com>"))
        #expect(email.record.id == newID)
        #expect(email.record["Subject"] == "Quote (revised)")
        #expect(email.record["RelatedToId"] == "5005e00000Cas01")
        #expect(email.relations == ["0035e00000Car01"])
        #expect(try store.savedRecord(messageID: "<CAB1234567@mail.fabrikam.com>") == newID) // the ledger follows
        #expect(throws: CRMStore.EditRefusal.self) {
            try store.editEmailMessage(messageID: "<CAB1234567@mail.fabrikam.com>", as: "0055e00000Ann01", set: ["OwnerId": "x"], who: nil, what: nil)
        }
        // An edit of the Subject alone keeps each relation's place in the message (Carla was
        // on Cc) and its address; a person linked anew gets her address, and no place.
        func relations(_ id: String) throws -> [String] {
            try store.records(object: "EmailMessageRelation").filter { $0["EmailMessageId"] == id }
                .map { "\($0["RelationId"] ?? "") \($0["RelationType"] ?? "") \($0["RelationAddress"] ?? "")" }.sorted()
        }
        #expect(try relations(newID) == ["0035e00000Car01 CcAddress carla@northwind.example"])
        let again = try store.editEmailMessage(messageID: "<CAB1234567@mail.fabrikam.com>", as: "0055e00000Ann01", set: ["Subject": "Quote (final)"], who: nil, what: nil)
        #expect(try relations(again) == ["0035e00000Car01 CcAddress carla@northwind.example"])
        let linked = try store.editEmailMessage(messageID: "<CAB1234567@mail.fabrikam.com>", as: "0055e00000Ann01", set: [:],
                                                who: ["0035e00000Car01", "0035e00000Bob01"], what: nil)
        // Bob is in the EmailMessage's FromAddress: linked again, he stands there.
        #expect(try relations(linked) == ["0035e00000Bob01 FromAddress bob@fabrikam.com", "0035e00000Car01 CcAddress carla@northwind.example"])
    }
}
