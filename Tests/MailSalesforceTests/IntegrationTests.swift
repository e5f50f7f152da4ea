import Foundation
import MailEngine
import MailMessage
import MailRules
@testable import MailSalesforce
import SalesforceTestServer
import Testing
import ShippedFixtures

/// The backend against the fake Salesforce server (Tests/FakeSalesforce), over real HTTP.
@Suite struct SalesforceServerTests {
    func seeded(batchSize: Int = 200) throws -> FakeServer {
        let server = try FakeServer(batchSize: batchSize)
        try server.declareTaskMessageIDField()
        try server.seed(try sampleRecords())
        return server
    }

    func plan(_ file: String, mailbox: String = "ann@contoso.com") throws -> LookupPlan {
        FactsBuilder(pack: try shippedPack()).plan(try sampleMessage(file), context: ProcessContext(mailbox: mailbox))
    }

    func failure(_ body: () throws -> Void) -> CRMError? {
        do {
            try body()
            return nil
        } catch let error as CRMError {
            return error
        } catch {
            return CRMError(.permanent, "unexpected \(error)")
        }
    }

    // MARK: Authentication

    @Test(arguments: ["jwt", "refresh", "client"]) func eachFlowLogsInAndAsks(_ flow: String) throws {
        let server = try seeded()
        let backend = try server.backend(flow)
        let answers = try backend.resolve(try plan("01-customer-question.eml"))
        #expect(answers.contacts(email: "bob@fabrikam.com").map { SalesforceID.canonical($0.id) } == ["0035e00000Bob01"])
        #expect(backend.statistics.logins == 1)
        #expect(backend.statistics.calls == 1)
    }

    @Test func aRefusedLoginSaysWhyWithoutTheSecret() throws {
        let server = try seeded()
        var environment = try server.environment("refresh")
        environment["MAILSAVE_SF_REFRESH_TOKEN"] = "wrong-refresh-token-77c1"
        let backend = SalesforceBackend(configuration: try SalesforceConfiguration(environment: environment), sleep: { _ in })
        let error = try #require(failure { _ = try backend.resolve(try plan("01-customer-question.eml")) })
        #expect(error.kind == .permanent)
        #expect(error.message.contains("invalid_grant"))
        #expect(!error.message.contains("wrong-refresh-token-77c1"))
        expectNoSecret(error.message, server)
    }

    @Test func theTokenIsCachedPrivatelyAndReused() throws {
        let server = try seeded()
        let first = try server.backend("jwt", cache: true)
        _ = try first.resolve(try plan("01-customer-question.eml"))
        let path = try #require(first.tokenCachePath)
        var status = stat()
        #expect(stat(path, &status) == 0)
        #expect(status.st_mode & 0o777 == 0o600)
        let second = try server.backend("jwt", cache: true)
        _ = try second.resolve(try plan("01-customer-question.eml"))
        #expect(second.statistics.logins == 0)
        #expect(try server.stats()["logins"]?.number == 1)
        // A cache others may read is not trusted: a new login replaces it.
        chmod(path, 0o644)
        let third = try server.backend("jwt", cache: true)
        _ = try third.resolve(try plan("01-customer-question.eml"))
        #expect(third.statistics.logins == 1)
        #expect(stat(path, &status) == 0 && status.st_mode & 0o777 == 0o600)
        // A key others may read stops the run even while a cached token would serve it.
        let fourth = try server.backend("jwt", cache: true)
        let key = try #require(try server.environment("jwt")["MAILSAVE_SF_KEY_FILE"])
        chmod(key, 0o644)
        let error = try #require(failure { _ = try fourth.resolve(try plan("01-customer-question.eml")) })
        #expect(error.kind == .permanent)
        #expect(error.message.contains("lets others read the JWT private key (MAILSAVE_SF_KEY_FILE)"), "\(error.message)")
        #expect(fourth.statistics.logins == 0 && fourth.statistics.calls == 0)
    }

    @Test func anExpiredSessionLogsInOnceAndReplays() throws {
        let server = try seeded()
        let backend = try server.backend("client", cache: true)
        _ = try backend.resolve(try plan("01-customer-question.eml"))
        try server.call("POST", "/__control/expire-tokens")
        let answers = try backend.resolve(try plan("01-customer-question.eml"))
        #expect(!answers.contacts(email: "bob@fabrikam.com").isEmpty)
        #expect(backend.statistics.logins == 2)
        // A session refused every time: one new login, then a permanent error, no loop.
        try server.fault(["kind": .string("status"), "status": .number(401), "match": .string("/services/data"), "times": .number(0)])
        let error = try #require(failure { _ = try backend.resolve(try plan("01-customer-question.eml")) })
        #expect(error.kind == .permanent)
        #expect(error.message.contains("INVALID_SESSION_ID"))
        #expect(backend.statistics.logins == 3)
        expectNoSecret(error.message, server)
    }

    @Test func aSessionNotValidForTheRESTAPIIsNotRetried() throws {
        let server = try seeded()
        let backend = try server.backend()
        try server.fault(["kind": .string("status"), "status": .number(401), "code": .string("INVALID_SESSION_ID"),
                          "message": .string("This session is not valid for use with the REST API"), "match": .string("/services/data"), "times": .number(0)])
        let error = try #require(failure { _ = try backend.resolve(try plan("01-customer-question.eml")) })
        #expect(error.kind == .permanent)
        #expect(error.message.contains("'api' scope"))
        #expect(backend.statistics.logins == 1)
        #expect(backend.statistics.calls == 1)
    }

    // MARK: Look-ups

    @Test func quotesBackslashesAndKeywordsCannotInject() throws {
        let server = try seeded()
        try server.seed([CRMRecord(object: "Contact", id: "0035e00000Qbr01", fields: ["LastName": "O'Brien", "Email": "o'brien@x.example"])])
        var plan = LookupPlan()
        plan.addresses = ["o'brien@x.example", #"a\'@x.example"#, "x@y.z')or(email!=null)or(email=('", "select@from.where", "a b@x.example') OR (Id != null"]
        plan.companyNames = ["O'Reilly % _ Media"]
        plan.websiteDomains = ["fab_rikam.com", "fabrikam.com') OR Name != ('"]
        let backend = try server.backend()
        let answers = try backend.resolve(plan)
        #expect(answers.contacts(email: "o'brien@x.example").map(\.id).map(SalesforceID.canonical) == ["0035e00000Qbr01"])
        for address in plan.addresses.dropFirst() { #expect(answers.contacts(email: address).isEmpty, "\(address)") }
        #expect(answers.accounts(websiteDomain: "fab_rikam.com").isEmpty)
        let soql = try server.soql().joined(separator: "\n")
        #expect(soql.contains(#"Email IN ('o\'brien@x.example', 'a\\\'@x.example', 'x@y.z\')or(email!=null)or(email=(\'', 'select@from.where')"#))
        // What cannot be an address or a domain is never sent.
        #expect(!soql.contains("a b@x.example") && !soql.contains("fab_rikam") && !soql.contains("Name != "))
        #expect(soql.contains(#"Name LIKE 'o%'"#) == false) // one-letter first words are not asked
        #expect(backend.statistics.calls == 1)
    }

    @Test func everyPageIsRead() throws {
        let server = try seeded(batchSize: 2)
        let people = (0..<7).map { CRMRecord(object: "Contact", id: SalesforceID.make(prefix: "003", number: 900 + $0),
                                             fields: ["LastName": "P\($0)", "Email": "p\($0)@northwind.example", "AccountId": "0015e00000Nor01"]) }
        try server.seed(people)
        var plan = LookupPlan()
        plan.addresses = people.map { $0["Email"] ?? "" } + ["carla@northwind.example"]
        let answers = try (try server.backend()).resolve(plan)
        for person in people { #expect(answers.contacts(email: person["Email"] ?? "").count == 1) }
        // Carla's Case and the Account's Opportunities (none) came along.
        #expect(answers.cases(contactID: try #require(answers.contacts(email: "carla@northwind.example").first).id).count == 1)
        #expect(try server.log().contains { ($0["path"]?.string ?? "").contains("/composite") })
        #expect(try server.stats()["by_kind"]?["query_more"]?.number ?? 0 > 0 || (try server.log().count) > 1)
    }

    @Test func longAddressListsAreSplitUnderTheLimit() throws {
        let server = try seeded()
        try server.call("POST", "/__control/soql-limit", .object(["max_length": .number(1500)]))
        var plan = LookupPlan()
        plan.addresses = (0..<80).map { "someone.with.a.long.name\($0)@example.org" } + ["bob@fabrikam.com"]
        let backend = try server.backend(settings: ["MAILSAVE_SF_MAX_SOQL_LENGTH": "1500"])
        let answers = try backend.resolve(plan)
        #expect(answers.contacts(email: "bob@fabrikam.com").count == 1)
        let statements = try server.soql()
        #expect(statements.count > 6)
        #expect(statements.allSatisfy { $0.count <= 1500 })
        for address in plan.addresses { #expect(statements.contains { $0.contains("'\(address)'") }, "\(address)") }
    }

    @Test func aTypicalMessageCostsOneCall() throws {
        let server = try seeded()
        let backend = try server.backend()
        let answers = try backend.resolve(try plan("01-customer-question.eml"))
        #expect(backend.statistics.calls == 1)
        #expect(try server.log().count == 1)
        #expect(!answers.opportunities(accountID: try #require(answers.contacts(email: "bob@fabrikam.com").first?["AccountId"])).isEmpty)
    }

    @Test(arguments: ["01-customer-question.eml", "03-outbound-reply.eml", "04-case-thread.eml", "08-gmail-prospect.eml",
                      "09-attachment.eml", "11-reply-to-salesforce-email.eml", "12-blocklisted-newsletter.eml"])
    func answersMatchTheInMemoryDirectory(_ file: String) throws {
        let server = try seeded()
        let plan = try plan(file)
        let expected = try InMemoryDirectory(records: try sampleRecords()).resolve(plan)
        // The in-memory directory checks Tasks for the Message-ID too: so does the backend once the field is named.
        let backend = try server.backend(settings: ["MAILSAVE_SF_TASK_MESSAGE_ID_FIELD": SalesforceSchema.taskMessageIdentifierField])
        let (found, wanted) = (canonical(try backend.resolve(plan)), canonical(expected))
        #expect(found == wanted, "Salesforce only: \(Set(found).subtracting(wanted)); in memory only: \(Set(wanted).subtracting(found))")
        // The same answers at the smallest statement length allowed: every query still fits
        // (at 200 the Contact and save-once queries were dropped, and the message skipped).
        let tight = try server.backend(settings: ["MAILSAVE_SF_TASK_MESSAGE_ID_FIELD": SalesforceSchema.taskMessageIdentifierField,
                                                  "MAILSAVE_SF_MAX_SOQL_LENGTH": "1500"])
        #expect(canonical(try tight.resolve(plan)) == wanted)
    }

    @Test func aHandWrittenPlanMatchesTheInMemoryDirectory() throws {
        let server = try seeded()
        var plan = LookupPlan()
        plan.addresses = ["bob@fabrikam.com", "kim.lee.consulting@gmail.com", "ann@contoso.com", "carla@northwind.example", "nobody@nowhere.example"]
        plan.websiteDomains = ["mail.fabrikam.com", "northwind.example", "unknown.example"]
        plan.companyNames = ["Fabrikam, Inc", "Northwind Traders Ltd", "Nothing"]
        plan.phones = ["+12065550147", "+498912345678", "+15555550000"]
        plan.caseNumbers = ["1042", "00000977", "5"]
        plan.recordIDs = ["5005e00000Cas01", "0065e00000Opp01", "0035e00000Car01", "0015e00000Nor01", "0035e00000Zzz01"]
        plan.messageIdentifiers = ["sf-outbound-1@contoso.com", "unknown@x.example"]
        plan.ledgerKey = "order-5@fabrikam.com"
        let expected = try InMemoryDirectory(records: try sampleRecords()).resolve(plan)
        let backend = try server.backend(settings: ["MAILSAVE_SF_TASK_MESSAGE_ID_FIELD": SalesforceSchema.taskMessageIdentifierField])
        let answers = try backend.resolve(plan)
        #expect(canonical(answers) == canonical(expected))
        #expect(answers.savedRecord.map(SalesforceID.canonical) == "00T5e00000Tas01")
        // 10 queries, 5 + 5 (the Contact ids ride in the Contacts query: `OR Id IN (...)`).
        #expect(backend.statistics.calls == 2)
    }

    // MARK: The Account of a domain's Contacts

    /// The Account by the Contacts of a domain: the same answers as the CSV directory, one
    /// semi-join per domain in a second call, and only for the domains it is wanted for.
    @Test func theAccountOfADomainsContactsIsAskedOnlyWhenWanted() throws {
        let server = try seeded()
        let extra = [
            CRMRecord(object: "Account", id: "0015e00000Tsp01", fields: ["Name": "Tailspin Toys"]),
            CRMRecord(object: "Contact", id: "0035e00000Tsp01", fields: ["Email": "j.doe@tailspin.example", "LastName": "Doe", "AccountId": "0015e00000Tsp01"]),
            CRMRecord(object: "Contact", id: "0035e00000Shr01", fields: ["Email": "a@shared.example", "LastName": "A", "AccountId": "0015e00000Fab01"]),
            CRMRecord(object: "Contact", id: "0035e00000Shr02", fields: ["Email": "b@shared.example", "LastName": "B", "AccountId": "0015e00000Nor01"]),
            // `%` and `_` are never wildcards, and the domain ends at the `@`: not at shared.example.
            CRMRecord(object: "Contact", id: "0035e00000Shr03", fields: ["Email": "c@xshared.example", "LastName": "C", "AccountId": "0015e00000Lee01"]),
        ]
        try server.seed(extra)
        let memory = InMemoryDirectory(records: try sampleRecords() + extra)
        var plan = LookupPlan()
        plan.addresses = ["bob@fabrikam.com", "new@fabrikam.com", "new@tailspin.example", "x@shared.example", "y@mail.tailspin.example"]
        plan.contactDomains = [
            ContactDomainQuestion(domain: "fabrikam.com", addresses: ["bob@fabrikam.com", "new@fabrikam.com"]), // Bob is a Contact: not wanted
            ContactDomainQuestion(domain: "tailspin.example", addresses: ["new@tailspin.example"]),
            ContactDomainQuestion(domain: "shared.example", addresses: ["x@shared.example"]),
            ContactDomainQuestion(domain: "mail.tailspin.example", addresses: ["y@mail.tailspin.example"]),
        ]
        let backend = try server.backend()
        let answers = try backend.resolve(plan)
        #expect(canonical(answers) == canonical(try memory.resolve(plan)))
        #expect(answers.account(contactDomain: "tailspin.example").map { if case .one(let id) = $0 { SalesforceID.canonical(id) } else { "several" } } == "0015e00000Tsp01")
        #expect(answers.account(contactDomain: "shared.example") == .several)
        #expect(answers.account(contactDomain: "fabrikam.com") == nil)
        #expect(answers.account(contactDomain: "mail.tailspin.example") == nil)
        // The first call, then one with the three wanted domains' semi-joins.
        #expect(backend.statistics.calls == 2)
        let asked = try server.soql().filter { $0.contains("IN (SELECT AccountId FROM Contact") }
        #expect(asked.count == 3)
        #expect(asked.contains("SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contact WHERE Email LIKE '%@shared.example') LIMIT 2"))

        // A message whose only outside sender is a Contact costs one call, as before.
        let known = try server.backend()
        _ = try known.resolve(try self.plan("01-customer-question.eml"))
        #expect(known.statistics.calls == 1)
    }

    @Test func anUnknownSenderAtAContactsDomainIsLinkedToItsAccountThroughSalesforce() throws {
        let server = try seeded()
        try server.seed([
            CRMRecord(object: "Account", id: "0015e00000Tsp01", fields: ["Name": "Tailspin Toys", "Website": "https://tailspin-toys.example"]),
            CRMRecord(object: "Contact", id: "0035e00000Tsp01", fields: ["Email": "j.doe@tailspin.example", "LastName": "Doe", "AccountId": "0015e00000Tsp01"]),
        ])
        let backend = try server.backend()
        let message = try MessageParser.parse(Array("From: new.person@tailspin.example\nTo: ann@contoso.com\nSubject: Quote\nMessage-ID: <q1@tailspin.example>\n\nHello.".utf8))
        let decision = try decide(backend, message)
        #expect(decision.verdict == .save)
        #expect(decision.what.map(SalesforceID.canonical) == "0015e00000Tsp01")
        #expect(backend.statistics.calls == 2)
    }

    // MARK: Saving

    func decide(_ backend: SalesforceBackend, _ message: Message, settings: [String: String] = [:]) throws -> Decision {
        try Engine(pack: try packWith(settings), directory: backend).decide(message, context: ProcessContext(mailbox: "ann@contoso.com")).0
    }

    @Test func aTaskIsSavedOnceInOneCall() throws {
        let server = try seeded()
        let backend = try server.backend()
        let message = try sampleMessage("01-customer-question.eml")
        let decision = try decide(backend, message)
        #expect(decision.verdict == .save)
        let saved = try #require(try backend.write(decision, message: message, mailbox: "ann@contoso.com"))
        #expect(saved.created)
        // One look-up (which also asked describe whether the Task's Message-ID field is
        // Unique), one save: no check before it, the org refuses a second Task itself.
        #expect(backend.statistics.byKind == ["lookup": 1, "save": 1])
        let task = try #require(try server.records("Task").first { $0["Id"]?.string == saved.id })
        #expect(task["WhoId"]?.string.map(SalesforceID.canonical) == "0035e00000Bob01")
        #expect(task["WhatId"]?.string.map(SalesforceID.canonical) == "0065e00000Opp01")
        #expect(task["TaskSubtype"]?.string == "Email")
        #expect(task[SalesforceSchema.taskMessageIdentifierField]?.string == "<CAB1234567@mail.fabrikam.com>")
        #expect(task["OwnerId"]?.string.map(SalesforceID.canonical) == "0055e00000Ann01")
        // Again, from another process: found, not created.
        let other = try server.backend()
        let again = try decide(other, message)
        #expect(try other.write(again, message: message, mailbox: "ann@contoso.com") == SaveResult(id: saved.id, created: false))
        #expect(try server.records("Task").count == 2)
        // The second save was one call too: the create, refused with DUPLICATE_VALUE naming the Task.
        #expect(other.statistics.byKind == ["lookup": 1, "save": 1])
    }

    @Test func aTaskFieldThatIsNotUniqueIsCheckedBeforeTheCreate() throws {
        let server = try seeded()
        try server.declareTaskMessageIDField(unique: false)
        let message = try sampleMessage("01-customer-question.eml")
        let backend = try server.backend()
        let saved = try #require(try backend.write(try decide(backend, message), message: message, mailbox: "ann@contoso.com"))
        #expect(saved.created)
        #expect(backend.statistics.byKind == ["lookup": 1, "save-check": 1, "save": 1])
        let other = try server.backend()
        #expect(try other.write(try decide(other, message), message: message, mailbox: "ann@contoso.com") == SaveResult(id: saved.id, created: false))
        #expect(other.statistics.byKind == ["lookup": 1, "save-check": 1])
        #expect(try server.records("Task").filter { $0[SalesforceSchema.taskMessageIdentifierField]?.string == "<CAB1234567@mail.fabrikam.com>" }.count == 1)
    }

    @Test func aBatchOfGraphsIsSplitAtSeventyFiveAndARefusalStaysWithItsMessage() throws {
        let server = try seeded()
        let backend = try server.backend()
        var saves: [PendingSave] = []
        for number in 0..<80 {
            let message = try parse("From: Person \(number) <p\(number)@unknown\(number).example>\r\nTo: ann@contoso.com\r\nSubject: Hi \(number)\r\n"
                                    + "Message-ID: <graph-\(number)@unknown.example>\r\n\r\nHello\r\n")
            var decision = try decide(backend, message, settings: ["auto_save_mode": "forced"])
            #expect(decision.createFor.count == 1)
            if number == 7, let subject = decision.record?.fields.firstIndex(where: { $0.name == "Subject" }) {
                decision.record?.fields[subject].value = .string(String(repeating: "x", count: 300))
            }
            saves.append(PendingSave(decision: decision, message: message, mailbox: "ann@contoso.com"))
        }
        let before = backend.statistics.byKind["save"] ?? 0
        let results = backend.write(batch: saves)
        // 80 messages of two records each: graphs of 75 and 5, each message all-or-none on its own.
        #expect((backend.statistics.byKind["save"] ?? 0) - before == 2)
        #expect(try server.stats()["by_kind"]?["composite_graph"]?.number == 2)
        for (number, result) in results.enumerated() {
            switch result {
            case .success(let saved):
                #expect(number != 7 && saved?.created == true && saved?.createdRecords.count == 1)
            case .failure(let error):
                #expect(number == 7 && error.kind == .permanent && error.message.contains("STRING_TOO_LONG"), "\(number): \(error.message)")
            }
        }
        #expect(try server.records("Lead").filter { ($0["Email"]?.string ?? "").hasPrefix("p") }.count == 79, "the refused message's Lead was rolled back")
        #expect(try !server.records("Lead").contains { $0["Email"]?.string == "p7@unknown7.example" })
    }

    /// A locked row refuses one record of a batch call and writes nothing for it: that message
    /// alone is sent again in the same run (no look-up first), the others are saved once.
    @Test(arguments: [false, true])
    func aLockedRowInABatchIsSentAgainInTheSameRun(graph: Bool) throws {
        let server = try seeded()
        let backend = try server.backend()
        var saves: [PendingSave] = []
        for number in 0..<4 {
            let from = graph ? "Person \(number) <p\(number)@unknown\(number).example>" : "Bob Buyer <bob@fabrikam.com>"
            let message = try parse("From: \(from)\r\nTo: ann@contoso.com\r\nSubject: Order \(number)\r\n"
                                    + "Message-ID: <locked-\(graph)-\(number)@fabrikam.com>\r\n\r\nPlease confirm.\r\n")
            let decision = try decide(backend, message, settings: graph ? ["auto_save_mode": "forced"] : [:])
            #expect(decision.createFor.isEmpty != graph)
            saves.append(PendingSave(decision: decision, message: message, mailbox: "ann@contoso.com"))
        }
        let tasks = try server.records("Task").count
        try server.fault(["kind": .string("error_code"), "code": .string("UNABLE_TO_LOCK_ROW"),
                          "match": .string(graph ? "composite/graph" : "composite/sobjects Task"), "times": .number(1)])
        let before = backend.statistics.byKind
        let results = backend.write(batch: saves)
        for result in results { #expect((try? result.get())??.created == true, "\(result)") }
        #expect(try server.records("Task").count == tasks + 4, "each message saved once")
        // One check, the call, and the locked message's second call; no check in between.
        #expect((backend.statistics.byKind["save"] ?? 0) - (before["save"] ?? 0) == 2, "\(backend.statistics.byKind)")
        #expect((backend.statistics.byKind["save-check"] ?? 0) - (before["save-check"] ?? 0) == 1, "\(backend.statistics.byKind)")
        #expect(backend.statistics.retries == 1)
    }

    /// A batch of three messages of one new person (each decision creates her Lead) and one of
    /// a person another client created after the decisions: one Lead made, in the first
    /// message's graph; the later messages link it, and the other person is linked, not made.
    @Test func aBatchMakesANewPersonOnceAndLinksOneMadeMeanwhile() throws {
        let server = try seeded()
        let backend = try server.backend()
        var saves: [PendingSave] = []
        for (number, address) in ["sam@unknown.example", "sam@unknown.example", "kim@unknown.example", "sam@unknown.example"].enumerated() {
            let message = try parse("From: Pat Doe <\(address)>\r\nTo: ann@contoso.com\r\nSubject: Order \(number)\r\n"
                                    + "Message-ID: <batch-person-\(number)@unknown.example>\r\n\r\nPlease confirm.\r\n")
            let decision = try decide(backend, message, settings: ["auto_save_mode": "forced"])
            #expect(decision.createFor == [address])
            saves.append(PendingSave(decision: decision, message: message, mailbox: "ann@contoso.com"))
        }
        try server.seed([CRMRecord(object: "Lead", id: "00Q5e00000Kim01", fields: ["Email": "kim@unknown.example", "LastName": "Doe", "Company": "Unknown"])])
        let results = backend.write(batch: saves).map { try? $0.get() }
        #expect(results.allSatisfy { $0?.created == true }, "\(results)")
        let sams = try server.records("Lead").filter { $0["Email"]?.string == "sam@unknown.example" }
        #expect(sams.count == 1)
        #expect(try server.records("Lead").filter { $0["Email"]?.string == "kim@unknown.example" }.count == 1)
        #expect(results.map { $0?.createdRecords.count } == [1, 0, 0, 0])
        #expect(results.map { $0?.linkedRecords.count } == [0, 1, 1, 1])
        let tasks = try server.records("Task")
        let whoIDs = results.map { result in tasks.first { $0["Id"]?.string == result?.id }?["WhoId"]?.string.map(SalesforceID.canonical) }
        let sam = sams.first?["Id"]?.string.map(SalesforceID.canonical)
        #expect(whoIDs == [sam, sam, SalesforceID.canonical("00Q5e00000Kim01"), sam])
    }

    /// Rows locked on every attempt: the batch's messages are parked (retryable) once the
    /// attempts are used up, with nothing saved and no more calls than the attempts.
    @Test func rowsLockedOnEveryAttemptAreParked() throws {
        let server = try seeded()
        let backend = try server.backend(settings: ["MAILSAVE_SF_RETRIES": "2"])
        var saves: [PendingSave] = []
        for number in 0..<3 {
            let message = try parse("From: Bob Buyer <bob@fabrikam.com>\r\nTo: ann@contoso.com\r\nSubject: Order \(number)\r\n"
                                    + "Message-ID: <stuck-\(number)@fabrikam.com>\r\n\r\nPlease confirm.\r\n")
            saves.append(PendingSave(decision: try decide(backend, message), message: message, mailbox: "ann@contoso.com"))
        }
        let tasks = try server.records("Task").count
        try server.fault(["kind": .string("error_code"), "code": .string("UNABLE_TO_LOCK_ROW"), "match": .string("composite/sobjects Task"), "times": .number(0)])
        let before = backend.statistics.byKind["save"] ?? 0
        let results = backend.write(batch: saves)
        for result in results {
            guard case .failure(let error) = result else { Issue.record("saved: \(result)"); continue }
            #expect(error.kind == .retryable && error.message.contains("UNABLE_TO_LOCK_ROW") && error.message.contains("nothing was saved"), "\(error.message)")
        }
        #expect((backend.statistics.byKind["save"] ?? 0) - before == 3, "three attempts: \(backend.statistics.byKind)")
        #expect(try server.records("Task").count == tasks)
    }

    /// A batch is looked for in the org once before it is sent, whatever its decisions found
    /// (they may be long past), and the caller's hook runs before every request it sends.
    @Test func aBatchIsCheckedOnceBeforeItIsSentAndTheHookSeesEveryCall() throws {
        let server = try seeded()
        let backend = try server.backend()
        var saves: [PendingSave] = []
        for number in 0..<3 {
            let message = try parse("From: Bob Buyer <bob@fabrikam.com>\r\nTo: ann@contoso.com\r\nSubject: Order \(number)\r\n"
                                    + "Message-ID: <hook-\(number)@fabrikam.com>\r\n\r\nPlease confirm.\r\n")
            saves.append(PendingSave(decision: try decide(backend, message), message: message, mailbox: "ann@contoso.com"))
        }
        let before = backend.statistics.calls
        let lock = NSLock()
        nonisolated(unsafe) var hooks = 0
        let results = backend.write(batch: saves, beforeEachCall: { lock.withLock { hooks += 1 } })
        #expect(results.allSatisfy { (try? $0.get())??.created == true })
        let calls = backend.statistics.calls - before
        #expect(backend.statistics.byKind["save-check"] ?? 0 >= 1, "\(backend.statistics.byKind)")
        #expect(calls == 2, "one check, one save call: \(backend.statistics.byKind)")
        #expect(lock.withLock { hooks } == calls)
    }

    @Test func aDuplicateOnACaseInsensitiveFieldIsLookedUpNotTrusted() throws {
        let server = try seeded()
        try server.declareTaskMessageIDField(unique: true)
        let message = try sampleMessage("01-customer-question.eml")
        let backend = try server.backend()
        let saved = try #require(try backend.write(try decide(backend, message), message: message, mailbox: "ann@contoso.com"))
        #expect(saved.created)
        #expect(backend.statistics.byKind == ["lookup": 1, "save": 1], "unique: no check before the create")
        // The same message again: refused as a duplicate, confirmed by a look-up of exactly its key.
        let other = try server.backend()
        #expect(try other.write(try decide(other, message), message: message, mailbox: "ann@contoso.com") == SaveResult(id: saved.id, created: false))
        #expect(other.statistics.byKind == ["lookup": 1, "save": 1, "save-check": 1])
        // Another message whose Message-ID differs only in case: the org calls it a duplicate,
        // but it is not saved, and never reported as saved.
        let variant = try parse("From: Bob Buyer <bob@fabrikam.com>\r\nTo: ann@contoso.com\r\nSubject: Other\r\nMessage-ID: <cab1234567@mail.fabrikam.com>\r\n\r\nHello\r\n")
        let third = try server.backend()
        let error = try #require(failure { _ = try third.write(try decide(third, variant), message: variant, mailbox: "ann@contoso.com") })
        #expect(error.kind == .permanent)
        #expect(error.message.contains("DUPLICATE_VALUE"), "\(error.message)")
        try server.declareTaskMessageIDField(unique: true, externalID: true, caseSensitive: true)
    }

    @Test func whetherTheFieldIsUniqueIsCachedWithTheToken() throws {
        let server = try seeded()
        let message = try sampleMessage("01-customer-question.eml")
        let first = try server.backend("jwt", cache: true)
        _ = try decide(first, message)
        let path = try #require(first.tokenCachePath)
        let cached = try String(contentsOfFile: path, encoding: .utf8)
        #expect(cached.contains("\"task_fields\":{\"email_message_id__c\":{\"caseSensitive\":true,\"unique\":true}}"), "\(cached)")
        // The next process reads it from the cache: its look-up carries no describe.
        let second = try server.backend("jwt", cache: true)
        try server.call("POST", "/__control/log/clear")
        _ = try decide(second, message)
        #expect(!"\(try server.log())".contains("describe"))
        #expect(second.statistics.logins == 0)
    }

    /// Describe's facts are cached with the token they came with, never over a newer token
    /// another process cached since.
    @Test func describeFactsNeverReplaceANewerCachedToken() throws {
        let server = try seeded()
        let older = try server.backend("jwt", cache: true)
        _ = try older.resolve(LookupPlan()) // logs in: the cache holds its token
        let cache = try #require(older.connection.cache)
        let olderToken = try #require(cache.load()?.accessToken)
        // Another process logs in afresh (the cache entry gone) and caches a newer token.
        cache.remove()
        let newer = try server.backend("jwt", cache: true)
        _ = try newer.resolve(LookupPlan())
        let newerToken = try #require(cache.load()?.accessToken)
        #expect(newerToken != olderToken)
        older.connection.rememberTaskField("Email_Message_ID__c", FieldFacts(unique: true, caseSensitive: true))
        #expect(cache.load()?.accessToken == newerToken, "the older token's facts did not replace the newer token")
        // With its own token still cached, a process keeps the facts with it.
        newer.connection.rememberTaskField("Email_Message_ID__c", FieldFacts(unique: true, caseSensitive: false))
        #expect(cache.load()?.accessToken == newerToken)
        #expect(cache.load()?.taskFields?["email_message_id__c"] == FieldFacts(unique: true, caseSensitive: false))
    }

    @Test func aTaskSaveWhoseAnswerIsLostIsLookedForNotSentAgain() throws {
        let server = try seeded()
        let backend = try server.backend()
        let message = try sampleMessage("01-customer-question.eml")
        let decision = try decide(backend, message)
        try server.fault(["kind": .string("drop_after_commit"), "match": .string("POST /services/data/v66.0/sobjects/Task"), "times": .number(1)])
        let saved = try #require(try backend.write(decision, message: message, mailbox: "ann@contoso.com"))
        #expect(!saved.created)
        let tasks = try server.records("Task").filter { $0[SalesforceSchema.taskMessageIdentifierField]?.string == "<CAB1234567@mail.fabrikam.com>" }
        #expect(tasks.count == 1)
        #expect(tasks.first?["Id"]?.string == saved.id)
        // The create, lost; the check found it; nothing was sent again.
        #expect(backend.statistics.byKind == ["lookup": 1, "save": 1, "save-check": 1])
    }

    /// The call that made a new person's Lead and the Task is lost after the org committed
    /// it: the check finds the Task and the Lead in one call, nothing is sent again, and the
    /// result names the Lead the Task points to (linked: this run cannot know which call made
    /// it), not just "not created".
    @Test func aLostSaveThatMadeAPersonReportsThePersonItFinds() throws {
        let server = try seeded()
        let backend = try server.backend()
        let message = try parse("From: \"Lee, Sam\" <sam@unknown.example>\r\nTo: ann@contoso.com\r\nSubject: Hi\r\nMessage-ID: <lost-lead@unknown.example>\r\n\r\nHello\r\n\r\nBest regards,\r\nSam Lee\r\nBuyer\r\nAcme Widgets Ltd\r\n")
        let decision = try decide(backend, message, settings: ["auto_save_mode": "forced"])
        #expect(decision.toCreate.map(\.placeholder) == ["new:Lead:sam@unknown.example"])
        try server.fault(["kind": .string("drop_after_commit"), "match": .string("POST /services/data/v66.0/sobjects/Task"), "times": .number(1)])
        let saved = try #require(try backend.write(decision, message: message, mailbox: "ann@contoso.com"))
        #expect(!saved.created)
        let leads = try server.records("Lead").filter { $0["Email"]?.string == "sam@unknown.example" }
        #expect(leads.count == 1)
        let lead = try #require(leads.first?["Id"]?.string)
        #expect(try server.records("Task").filter { $0["WhoId"]?.string == lead }.map { $0["Id"]?.string } == [saved.id])
        #expect(saved.createdRecords.isEmpty)
        #expect(saved.linkedRecords.map(\.placeholder) == ["new:Lead:sam@unknown.example"])
        #expect(saved.linkedRecords.map { SalesforceID.canonical($0.id) } == [SalesforceID.canonical(lead)])
    }

    @Test func anEmailMessageGetsItsRelationsAndNoSecondTask() throws {
        let server = try seeded()
        let backend = try server.backend()
        let message = try sampleMessage("01-customer-question.eml")
        let decision = try decide(backend, message, settings: ["save_as": "EmailMessage"])
        let tasks = try server.records("Task").count
        let saved = try #require(try backend.write(decision, message: message, mailbox: "ann@contoso.com"))
        #expect(saved.created && saved.id.hasPrefix("02s"))
        #expect(backend.statistics.calls == 2)
        let email = try #require(try server.records("EmailMessage").first { $0["Id"]?.string == saved.id })
        #expect(email["MessageIdentifier"]?.string == "<CAB1234567@mail.fabrikam.com>")
        #expect(email["RelatedToId"]?.string.map(SalesforceID.canonical) == "0065e00000Opp01")
        let relations = try server.records("EmailMessageRelation").filter { $0["EmailMessageId"]?.string == saved.id }
        #expect(Set(relations.map { "\(SalesforceID.canonical($0["RelationId"]?.string ?? "")) \($0["RelationType"]?.string ?? "")" })
                == ["0035e00000Bob01 FromAddress", "0035e00000Car01 CcAddress"])
        #expect(try server.records("Task").count == tasks)
        // The composite body named the recipients by role.
        let body = try #require(try server.log().last?["body"])
        #expect("\(body)".contains("CcIds"))
    }

    @Test func aCreatedLeadIsReferencedInTheSameCall() throws {
        let server = try seeded()
        let backend = try server.backend()
        let message = try parse("From: \"Lee, Sam\" <sam@unknown.example>\r\nTo: ann@contoso.com\r\nSubject: Hi\r\nMessage-ID: <forced-1@unknown.example>\r\n\r\nHello\r\n\r\nBest regards,\r\nSam Lee\r\nBuyer\r\nAcme Widgets Ltd\r\n")
        let decision = try decide(backend, message, settings: ["auto_save_mode": "forced"])
        #expect(decision.createFor == ["sam@unknown.example"])
        let saved = try #require(try backend.write(decision, message: message, mailbox: "ann@contoso.com"))
        let lead = try #require(try server.records("Lead").first { $0["Email"]?.string == "sam@unknown.example" })
        #expect(lead["FirstName"]?.string == "Sam" && lead["LastName"]?.string == "Lee")
        #expect(lead["Company"]?.string == "Acme Widgets Ltd")
        #expect(saved.createdRecords.map(\.placeholder) == ["new:Lead:sam@unknown.example"])
        #expect(saved.createdRecords.map(\.id) == [lead["Id"]?.string ?? ""])
        #expect(try server.records("Task").first { $0["Id"]?.string == saved.id }?["WhoId"]?.string == lead["Id"]?.string)
    }

    /// Two processes decide messages of one new person at once (one `process` a message):
    /// both decisions create her Lead. The later save finds the Lead the first made and links
    /// it instead of making a second; a converted Lead is no one to link.
    @Test func aPersonMadeSinceTheDecisionIsLinkedNotMadeAgain() throws {
        let server = try seeded()
        let first = try server.backend()
        let second = try server.backend()
        let third = try server.backend()
        func message(_ number: Int, from address: String = "sam@unknown.example") throws -> Message {
            try parse("From: Sam Lee <\(address)>\r\nTo: ann@contoso.com\r\nSubject: Hi \(number)\r\nMessage-ID: <race-\(number)@unknown.example>\r\n\r\nHello\r\n")
        }
        let messages = [try message(1), try message(2)]
        let decisions = try [decide(first, messages[0], settings: ["auto_save_mode": "forced"]),
                             decide(second, messages[1], settings: ["auto_save_mode": "forced"])]
        #expect(decisions.map(\.createFor) == [["sam@unknown.example"], ["sam@unknown.example"]])
        let saved = try [#require(try first.write(decisions[0], message: messages[0], mailbox: "ann@contoso.com")),
                         #require(try second.write(decisions[1], message: messages[1], mailbox: "ann@contoso.com"))]
        let leads = try server.records("Lead").filter { $0["Email"]?.string == "sam@unknown.example" }
        #expect(leads.count == 1)
        let lead = try #require(leads.first?["Id"]?.string)
        #expect(saved[0].createdRecords.map(\.id) == [lead])
        #expect(saved[1].createdRecords.isEmpty)
        #expect(saved[1].linkedRecords.map(\.placeholder) == ["new:Lead:sam@unknown.example"])
        #expect(saved[1].linkedRecords.map { SalesforceID.canonical($0.id) } == [SalesforceID.canonical(lead)])
        #expect(try server.records("Task").filter { [saved[0].id, saved[1].id].contains($0["Id"]?.string ?? "") }.map { $0["WhoId"]?.string } == [lead, lead])

        // A converted Lead of the address, made after the decision: a new Lead is made.
        let other = try message(3, from: "kim@unknown.example")
        let decision = try decide(third, other, settings: ["auto_save_mode": "forced"])
        try server.seed([CRMRecord(object: "Lead", id: "00Q5e00000Kim01", fields: ["Email": "kim@unknown.example", "LastName": "Kim",
                                                                                   "Company": "Unknown", "IsConverted": "true"])])
        let kept = try #require(try third.write(decision, message: other, mailbox: "ann@contoso.com"))
        #expect(kept.createdRecords.count == 1)
        #expect(try server.records("Lead").filter { $0["Email"]?.string == "kim@unknown.example" }.count == 2)

        // A Contact of the address made meanwhile is linked, as the decision's own look-up
        // would have linked it, though the decision meant to create a Lead.
        let fourth = try message(4, from: "LOU@Unknown.example")
        let leadDecision = try decide(third, fourth, settings: ["auto_save_mode": "forced"])
        #expect(leadDecision.toCreate.map(\.object) == ["Lead"])
        try server.seed([CRMRecord(object: "Contact", id: "0035e00000Lou01", fields: ["Email": "lou@unknown.example", "LastName": "Lou"])])
        let linked = try #require(try third.write(leadDecision, message: fourth, mailbox: "ann@contoso.com"))
        #expect(linked.createdRecords.isEmpty)
        #expect(linked.linkedRecords.map { SalesforceID.canonical($0.id) } == [SalesforceID.canonical("0035e00000Lou01")])
        #expect(try server.records("Lead").filter { ($0["Email"]?.string ?? "").lowercased() == "lou@unknown.example" }.isEmpty)
        #expect(try server.records("Task").first { $0["Id"]?.string == linked.id }?["WhoId"]?.string.map(SalesforceID.canonical)
                == SalesforceID.canonical("0035e00000Lou01"))
    }

    /// A Contact planned under the Account its domain matches (flexible mode: the Account is
    /// the WhatId) is made as planned when only a Lead of the address appeared meanwhile: a
    /// Task on a Lead relates to nothing else, so linking the Lead had the org refuse the save.
    @Test func aLeadMadeMeanwhileIsNotLinkedInPlaceOfAPlannedContact() throws {
        let server = try seeded()
        let backend = try server.backend()
        let message = try parse("From: Nina Park <nina@northwind.example>\r\nTo: ann@contoso.com\r\nSubject: Hello\r\nMessage-ID: <nina-1@northwind.example>\r\n\r\nHi\r\n")
        let decision = try decide(backend, message, settings: ["auto_save_mode": "flexible"])
        #expect(decision.toCreate.map(\.object) == ["Contact"])
        #expect(decision.what.map(SalesforceID.canonical) == SalesforceID.canonical("0015e00000Nor01"))
        try server.seed([CRMRecord(object: "Lead", id: "00Q5e00000Nin01", fields: ["Email": "nina@northwind.example", "LastName": "Park", "Company": "Northwind"])])
        let saved = try #require(try backend.write(decision, message: message, mailbox: "ann@contoso.com"))
        #expect(saved.linkedRecords.isEmpty)
        let contact = try #require(saved.createdRecords.first?.id)
        let task = try #require(try server.records("Task").first { $0["Id"]?.string == saved.id })
        #expect(task["WhoId"]?.string.map(SalesforceID.canonical) == SalesforceID.canonical(contact))
        #expect(task["WhatId"]?.string.map(SalesforceID.canonical) == SalesforceID.canonical("0015e00000Nor01"))
    }

    @Test func aRefusedFieldIsNamedAndNothingIsSaved() throws {
        let server = try seeded()
        let backend = try server.backend()
        let message = try parse("From: Sam <sam@unknown.example>\r\nTo: ann@contoso.com\r\nSubject: Hi\r\nMessage-ID: <long-1@unknown.example>\r\n\r\nHello\r\n")
        var decision = try decide(backend, message, settings: ["auto_save_mode": "forced"])
        let subject = try #require(decision.record?.fields.firstIndex { $0.name == "Subject" })
        decision.record?.fields[subject].value = .string(String(repeating: "x", count: 300))
        let leads = try server.records("Lead").count
        let error = try #require(failure { _ = try backend.write(decision, message: message, mailbox: "ann@contoso.com") })
        #expect(error.kind == .permanent)
        #expect(error.message.contains("Task") && error.message.contains("STRING_TOO_LONG") && error.message.contains("Subject"))
        #expect(!error.message.contains("PROCESSING_HALTED"))
        #expect(try server.records("Lead").count == leads)
        #expect(try server.records("Task").count == 1)
        expectNoSecret(error.message, server)
    }

    // MARK: Faults

    @Test func unavailableTwiceThenAnswered() throws {
        let server = try seeded()
        let backend = try server.backend()
        _ = try backend.resolve(LookupPlan()) // logs in
        try server.fault(["kind": .string("status"), "status": .number(503), "times": .number(2), "match": .string("/services/data")])
        let answers = try backend.resolve(try plan("01-customer-question.eml"))
        #expect(!answers.contacts(email: "bob@fabrikam.com").isEmpty)
        #expect(backend.statistics.retries == 2)
    }

    /// 429 (Too Many Requests) was a refusal for good (exit 3): it is waited for like a 503.
    @Test func tooManyRequestsIsWaitedForLikeUnavailable() throws {
        let server = try seeded()
        let backend = try server.backend()
        _ = try backend.resolve(LookupPlan())
        try server.fault(["kind": .string("status"), "status": .number(429), "code": .string("TOO_MANY_REQUESTS"), "times": .number(2),
                          "match": .string("/services/data")])
        let answers = try backend.resolve(try plan("01-customer-question.eml"))
        #expect(!answers.contacts(email: "bob@fabrikam.com").isEmpty)
        #expect(backend.statistics.retries == 2)
    }

    @Test func aLockedRowIsRetriedAndSavedOnce() throws {
        let server = try seeded()
        let backend = try server.backend()
        let message = try sampleMessage("01-customer-question.eml")
        let decision = try decide(backend, message)
        try server.fault(["kind": .string("error_code"), "code": .string("UNABLE_TO_LOCK_ROW"), "match": .string("composite"), "times": .number(1)])
        let saved = try #require(try backend.write(decision, message: message, mailbox: "ann@contoso.com"))
        #expect(saved.created)
        #expect(backend.statistics.retries == 1)
        #expect(try server.records("Task").count == 2)
    }

    @Test func theDailyLimitStopsAtOnceAndParks() throws {
        let server = try seeded()
        let backend = try server.backend()
        let message = try sampleMessage("01-customer-question.eml")
        let decision = try decide(backend, message)
        try server.fault(["kind": .string("request_limit"), "times": .number(0)])
        let error = try #require(failure { _ = try backend.write(decision, message: message, mailbox: "ann@contoso.com") })
        #expect(error.kind == .retryable)
        #expect(error.message.contains("REQUEST_LIMIT_EXCEEDED") && error.message.contains("parked"))
        #expect(backend.statistics.retries == 0)
        #expect(try server.records("Task").count == 1)
        expectNoSecret(error.message, server)
    }

    @Test func theConfiguredShareOfTheAllowanceIsNeverPassed() throws {
        let server = try seeded()
        let backend = try server.backend()
        let message = try sampleMessage("01-customer-question.eml")
        try server.call("POST", "/__control/limits", .object(["used": .number(7_600), "max": .number(15_000)]))
        let decision = try decide(backend, message)
        let error = try #require(failure { _ = try backend.write(decision, message: message, mailbox: "ann@contoso.com") })
        #expect(error.kind == .retryable)
        #expect(error.message.contains("of the org's 15000 daily API calls") && error.message.contains("50%"))
        #expect(try server.records("Task").count == 1)
    }

    @Test func aSlowAnswerTimesOutAsRetryable() throws {
        let server = try seeded()
        let backend = try server.backend(settings: ["MAILSAVE_SF_TIMEOUT": "0.5", "MAILSAVE_SF_RETRIES": "1"])
        _ = try backend.resolve(LookupPlan())
        try server.fault(["kind": .string("slow"), "seconds": .number(2), "times": .number(0), "match": .string("/services/data")])
        let error = try #require(failure { _ = try backend.resolve(try plan("01-customer-question.eml")) })
        #expect(error.kind == .retryable)
        #expect(error.message.contains("2 attempts"))
        expectNoSecret(error.message, server)
    }

    @Test func aMalformedBodyIsAClearError() throws {
        let server = try seeded()
        let backend = try server.backend(settings: ["MAILSAVE_SF_RETRIES": "1"])
        _ = try backend.resolve(LookupPlan())
        try server.fault(["kind": .string("malformed"), "times": .number(0), "match": .string("/services/data")])
        let error = try #require(failure { _ = try backend.resolve(try plan("01-customer-question.eml")) })
        #expect(error.message.contains("not JSON"))
        expectNoSecret(error.message, server)
    }

    @Test func aLostAnswerAfterTheCommitIsFoundNotSavedTwice() throws {
        let server = try seeded()
        let backend = try server.backend()
        let message = try sampleMessage("01-customer-question.eml")
        let decision = try decide(backend, message, settings: ["save_as": "EmailMessage"])
        try server.fault(["kind": .string("drop_after_commit"), "match": .string("composite"), "times": .number(1)])
        let saved = try #require(try backend.write(decision, message: message, mailbox: "ann@contoso.com"))
        #expect(!saved.created)
        let emails = try server.records("EmailMessage").filter { $0["MessageIdentifier"]?.string == "<CAB1234567@mail.fabrikam.com>" }
        #expect(emails.count == 1)
        #expect(emails.first?["Id"]?.string == saved.id)
        #expect(backend.statistics.byKind["save-check"] == 1)
    }

    @Test func aMessageWithoutMessageIDIsFoundByItsLedgerKey() throws {
        let server = try seeded()
        let message = try parse("From: Bob Buyer <bob@fabrikam.com>\r\nTo: ann@contoso.com\r\nSubject: No id\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\nHello\r\n")
        let backend = try server.backend()
        let decision = try decide(backend, message, settings: ["save_as": "EmailMessage"])
        let saved = try #require(try backend.write(decision, message: message, mailbox: "ann@contoso.com"))
        #expect(saved.created)
        // Another process finds it by the ledger key: the look-up says so, and a retried save reports it.
        let other = try server.backend()
        #expect(try other.resolve(FactsBuilder(pack: try shippedPack()).plan(message, context: ProcessContext(mailbox: "ann@contoso.com"))).savedRecord == saved.id)
        let retry = try server.backend()
        #expect(try retry.write(decision, message: message, mailbox: "ann@contoso.com") == SaveResult(id: saved.id, created: false))
        #expect(try server.records("EmailMessage").filter { ($0["MessageIdentifier"]?.string ?? "").hasPrefix("no-message-id:") }.count == 1)
    }
}

@Suite struct SalesforceEditAndTransportTests {
    @Test func anEditDeletesAndRecreatesInOneCall() throws {
        let server = try FakeServer()
        try server.seed(try sampleRecords())
        let backend = try server.backend()
        let message = try sampleMessage("01-customer-question.eml")
        let decision = try Engine(pack: try packWith(["save_as": "EmailMessage"]), directory: backend)
            .decide(message, context: ProcessContext(mailbox: "ann@contoso.com")).0
        let saved = try #require(try backend.write(decision, message: message, mailbox: "ann@contoso.com"))
        let before = backend.statistics.calls
        let newID = try backend.editEmailMessage(messageID: "<CAB1234567@mail.fabrikam.com>", set: ["Subject": "Edited"], who: nil, what: nil)
        #expect(newID != saved.id)
        #expect(backend.statistics.byKind["edit"] == 1)
        #expect(backend.statistics.calls - before == 2) // the look-up of the saved record, the edit
        let emails = try server.records("EmailMessage").filter { $0["MessageIdentifier"]?.string == "<CAB1234567@mail.fabrikam.com>" }
        #expect(emails.map { $0["Id"]?.string } == [newID])
        #expect(emails.first?["Subject"]?.string == "Edited")
        let relations = try server.records("EmailMessageRelation").filter { $0["EmailMessageId"]?.string == newID }
        #expect(Set(relations.map { "\(SalesforceID.canonical($0["RelationId"]?.string ?? "")) \($0["RelationType"]?.string ?? "")" })
                == ["0035e00000Bob01 FromAddress", "0035e00000Car01 CcAddress"])
        #expect(throws: SalesforceEditRefusal.self) { _ = try backend.editEmailMessage(messageID: "<CAB1234567@mail.fabrikam.com>", set: ["FromAddress": "x@y.z"], who: nil, what: nil) }
        #expect(throws: SalesforceEditRefusal.self) { _ = try backend.editEmailMessage(messageID: "<nothing@x.example>", set: ["Subject": "x"], who: nil, what: nil) }
        #expect(throws: SalesforceEditRefusal.self) {
            _ = try backend.editEmailMessage(messageID: "<CAB1234567@mail.fabrikam.com>", set: [:], who: ["00Q5e00000Kim01"], what: nil)
        }
        try backend.delete(id: newID)
        try backend.delete(id: newID) // already gone: nothing to do
        #expect(try server.records("EmailMessage").filter { $0["Id"]?.string == newID }.isEmpty)
    }

    @Test func theProxyVariablesAreReadAndNoProxyKeepsLoopbackDirect() throws {
        _ = proxyEnvironment
        // Every other test reaches 127.0.0.1 directly (NO_PROXY); a name outside NO_PROXY goes
        // to the proxy the environment names, which refuses: "not sent", not a DNS failure.
        let transport = CurlTransport()
        #expect {
            _ = try transport.send(HTTPRequest(method: "GET", url: "http://salesforce.invalid/services/data"))
        } throws: { error in
            (error as? HTTPFailure)?.kind == .notSent
        }
    }

    @Test func aResponseOverTheCapIsAborted() throws {
        let server = try FakeServer()
        try server.seed(try sampleRecords())
        var options = CurlTransport.Options()
        options.maxResponseBytes = 512
        let transport = CurlTransport(options: options)
        #expect {
            _ = try transport.send(HTTPRequest(method: "GET", url: server.baseURL + "/__control/records"))
        } throws: { error in
            (error as? HTTPFailure)?.kind == .permanent && "\(error)".contains("larger than 512 bytes")
        }
        // Gzip is asked for and decoded.
        let response = try CurlTransport().send(HTTPRequest(method: "GET", url: server.baseURL + "/__control/records"))
        #expect(JSON.parse(response.body)?["records"]?.array?.isEmpty == false)
        #expect(response.header("Content-Encoding") == "gzip")
    }
}

@Suite struct SalesforceCostTests {
    /// API calls per decision and per save over the sample messages (the README's figures).
    @Test func callsPerDecisionAndPerSave() throws {
        let server = try FakeServer()
        try server.declareTaskMessageIDField()
        let files = try FileManager.default.contentsOfDirectory(atPath: packageRoot.appendingPathComponent("examples/messages").path).filter { $0.hasSuffix(".eml") }.sorted()
        for taskField in [false, true] {
            for saveAs in ["Task", "EmailMessage"] {
                try server.call("POST", "/__control/reset")
                try server.seed(try sampleRecords())
                var lines: [String] = []
                for file in files {
                    let backend = try server.backend(settings: taskField ? ["MAILSAVE_SF_TASK_MESSAGE_ID_FIELD": SalesforceSchema.taskMessageIdentifierField] : [:])
                    let message = try sampleMessage(file)
                    let (decision, _, _) = try Engine(pack: try packWith(["save_as": saveAs]), directory: backend)
                        .decide(message, context: ProcessContext(mailbox: "ann@contoso.com"))
                    let lookups = backend.statistics.calls
                    #expect(lookups <= 2, "\(file): \(lookups) look-up calls")
                    _ = try backend.write(decision, message: message, mailbox: "ann@contoso.com")
                    lines.append("\(file): \(decision.verdict) look-ups \(lookups), save \(backend.statistics.calls - lookups)")
                }
                print("calls (save as \(saveAs), Task field \(taskField ? "named" : "not named")):\n  " + lines.joined(separator: "\n  "))
            }
        }
    }
}
