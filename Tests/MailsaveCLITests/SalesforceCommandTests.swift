import Foundation
import MailSalesforce
import SalesforceTestServer
import Testing

/// `--salesforce` end to end: the `mailsave` binary against the Salesforce-compatible test
/// server (`Tests/FakeSalesforce`), seeded with the sample org of `examples/crm`.
@Suite(.serialized) struct SalesforceCommandTests {
    /// A server with the sample org, and a folder for the run's store and configuration.
    static func serverWithSampleOrg() throws -> (FakeServer, String) {
        let server = try FakeServer()
        try server.seed(try sampleRecords())
        let folder = server.folder + "/run"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return (server, folder)
    }

    static func run(_ server: FakeServer, _ arguments: [String], flow: String = "jwt", extra: [String: String] = [:]) throws -> Binary.Result {
        try Binary.launch(Binary.path, arguments, environment: try server.environment(flow).merging(extra) { $1 })
    }

    static func exampleFiles() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: Binary.packageRoot.appendingPathComponent("examples/messages").path)
            .filter { $0.hasSuffix(".eml") }.sorted().map { "examples/messages/" + $0 }
    }

    /// The decision lines of `batch`, without the summary.
    static func decisions(_ output: String) -> [String] {
        output.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("{\"summary\"") }
    }

    @Test func theSampleMailboxIsDecidedAsTheStoreDecidesIt() throws {
        let (server, folder) = try Self.serverWithSampleOrg()
        let store = folder + "/crm.sqlite"
        for object in ["Account", "Contact", "Lead", "Opportunity", "Case", "User", "EmailMessage", "EmailMessageRelation", "Task"] {
            let imported = try Binary.run(["crm", "import", "--store", store, "--object", object, "examples/crm/\(object).csv"])
            #expect(imported.status == 0, "\(imported.stderr)")
        }
        let fromStore = try Binary.run(["batch", "--rules", "rules", "--mailbox", "ann@contoso.com", "--store", store, "--eml", "examples/messages", "--quiet"])
        // With the Task's Message-ID field in the look-up, a message another client saved as a
        // Task is "already saved" in the decision itself, as in the store.
        let fromOrg = try Self.run(server, ["batch", "--rules", "rules", "--mailbox", "ann@contoso.com", "--salesforce", "--eml", "examples/messages",
                                            "--quiet", "--jobs", "1"], extra: ["MAILSAVE_SF_TASK_MESSAGE_ID_FIELD": "Email_Message_ID__c"])
        #expect(fromOrg.status == 0, "\(fromOrg.stderr)")
        let storeLines = Self.decisions(fromStore.stdout), orgLines = Self.decisions(fromOrg.stdout)
        #expect(storeLines.count == 12)
        #expect(orgLines.count == storeLines.count)
        // The same verdicts and links (the server gives the sample's ids in 18 characters, the CSVs have 15).
        for (org, local) in zip(orgLines, storeLines) {
            let a = try #require(try JSONSerialization.jsonObject(with: Data(org.utf8)) as? [String: Any])
            let b = try #require(try JSONSerialization.jsonObject(with: Data(local.utf8)) as? [String: Any])
            #expect(a["verdict"] as? String == b["verdict"] as? String, "\(org)")
            let whoA = ((a["links"] as? [String: Any])?["who"] as? [String] ?? []).map { String($0.prefix(15)) }
            let whoB = ((b["links"] as? [String: Any])?["who"] as? [String] ?? []).map { String($0.prefix(15)) }
            #expect(whoA == whoB, "\(org)")
            let whatA = ((a["links"] as? [String: Any])?["what"] as? String).map { String($0.prefix(15)) }
            let whatB = ((b["links"] as? [String: Any])?["what"] as? String).map { String($0.prefix(15)) }
            #expect(whatA == whatB, "\(org)")
        }
        // At most two API calls for all the look-ups of a message (the Task check is the sixth
        // query; a composite holds five), and one login for the run.
        let stats = try server.stats()
        let calls = stats["by_kind"]?["composite"]?.number.map { Int($0) } ?? 0
        #expect(calls >= 12 && calls <= 24, "\(calls) calls")
        #expect(stats["logins"]?.number.map { Int($0) } == 1)
    }

    @Test func applySavesOnceAndCountsItsCalls() throws {
        let (server, folder) = try Self.serverWithSampleOrg()
        let arguments = ["process", "--rules", "rules", "--mailbox", "ann@contoso.com", "--salesforce", "--store", folder + "/ledger.sqlite",
                         "--apply", "examples/messages/01-customer-question.eml"]
        let first = try Self.run(server, arguments)
        #expect(first.status == 0, "\(first.stderr)")
        let saved = try #require((try JSONSerialization.jsonObject(with: Data(first.stdout.utf8)) as? [String: Any])?["saved"] as? [String: Any])
        #expect(saved["created"] as? Bool == true)
        let id = try #require(saved["id"] as? String)
        #expect(id.hasPrefix("00T") && id.count == 18)
        let afterFirst = try server.stats()["api_usage"]?["used"]?.number.map { Int($0) } ?? -1
        // Again: the org's check (in the same look-up call) finds it; nothing is created.
        let second = try Self.run(server, arguments)
        #expect(second.status == 0, "\(second.stderr)")
        let again = try #require((try JSONSerialization.jsonObject(with: Data(second.stdout.utf8)) as? [String: Any])?["saved"] as? [String: Any])
        #expect(again["id"] as? String == id)
        #expect(again["created"] as? Bool == false)
        let tasks = try server.records("Task").filter { $0["Email_Message_ID__c"]?.string == "<CAB1234567@mail.fabrikam.com>" }
        #expect(tasks.count == 1)
        // The figures the README gives: the first run's look-ups and save, the second's look-ups.
        let afterSecond = try server.stats()["api_usage"]?["used"]?.number.map { Int($0) } ?? -1
        #expect(afterFirst == 2, "look-ups 1 (with the describe that says the Task's Message-ID field is Unique) + the save 1")
        #expect(afterSecond - afterFirst == 1, "a message saved before costs its look-up call only")
    }

    @Test func aSaveTheOrgCannotTakeNowIsParkedAndRetried() throws {
        let (server, folder) = try Self.serverWithSampleOrg()
        let store = folder + "/ledger.sqlite"
        try server.fault(["kind": .string("status"), "status": .number(503), "times": .number(0), "match": .string("composite")])
        let parked = try Self.run(server, ["process", "--rules", "rules", "--mailbox", "ann@contoso.com", "--salesforce", "--store", store,
                                           "--apply", "examples/messages/01-customer-question.eml"],
                                  extra: ["MAILSAVE_SF_RETRIES": "2"])
        // The look-ups failed too (the server is down for every composite): nothing decided, retry later.
        #expect(parked.status == 75, "\(parked.stdout)\(parked.stderr)")
        try server.call("POST", "/__control/fault/clear")
        // Down only for the save: decided, parked, exit 11.
        try server.fault(["kind": .string("status"), "status": .number(503), "times": .number(0), "match": .string("POST /services/data/v66.0/sobjects/")])
        let decided = try Self.run(server, ["process", "--rules", "rules", "--mailbox", "ann@contoso.com", "--salesforce", "--store", store,
                                            "--apply", "examples/messages/08-gmail-prospect.eml"], extra: ["MAILSAVE_SF_RETRIES": "2"])
        #expect(decided.status == 11, "\(decided.stdout)\(decided.stderr)")
        let saved = try #require((try JSONSerialization.jsonObject(with: Data(decided.stdout.utf8)) as? [String: Any])?["saved"] as? [String: Any])
        #expect(saved["parked"] as? String != nil)
        let activities = { () throws -> Int in try server.records("Task").count + server.records("EmailMessage").count }
        let before = try activities()
        #expect(before == 2, "the sample org's Task and EmailMessage only: nothing saved while parked")
        let list = try Self.run(server, ["retry", "--store", store, "--list"])
        #expect(list.stdout.contains("salesforce"), "\(list.stdout)")
        try server.call("POST", "/__control/fault/clear")
        let retried = try Self.run(server, ["retry", "--rules", "rules", "--store", store])
        #expect(retried.status == 0, "\(retried.stdout)\(retried.stderr)")
        let again = try Self.run(server, ["retry", "--rules", "rules", "--store", store])
        #expect(again.status == 0)
        #expect(try activities() == before + 1, "saved once")
    }

    @Test func theDailyAllowanceParksAndSaysSo() throws {
        let (server, folder) = try Self.serverWithSampleOrg()
        try server.fault(["kind": .string("request_limit"), "times": .number(0), "match": .string("POST /services/data/v66.0/sobjects/")])
        let result = try Self.run(server, ["process", "--rules", "rules", "--mailbox", "ann@contoso.com", "--salesforce", "--store",
                                           folder + "/ledger.sqlite", "--apply", "examples/messages/01-customer-question.eml"])
        #expect(result.status == 11, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.lowercased().contains("allowance") || result.stdout.contains("REQUEST_LIMIT_EXCEEDED"), "\(result.stdout)")
    }

    @Test func aBadConfigurationExits12AndPrintsNoSecret() throws {
        let (server, folder) = try Self.serverWithSampleOrg()
        let message = "examples/messages/01-customer-question.eml"
        // Nothing configured.
        let bare = try Binary.run(["process", "--rules", "rules", "--mailbox", "ann@contoso.com", "--salesforce", message])
        #expect(bare.status == 12, "\(bare.stderr)")
        #expect(bare.stderr.contains("MAILSAVE_SF_LOGIN_URL"))
        // A configuration file others may read is refused, naming it.
        let file = folder + "/sf.conf"
        let environment = try server.environment("refresh")
        try environment.map { "\($0.key)=\($0.value)" }.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        chmod(file, 0o644)
        let open = try Binary.run(["process", "--rules", "rules", "--mailbox", "ann@contoso.com", "--salesforce-config", file, message])
        #expect(open.status == 12, "\(open.stderr)")
        #expect(open.stderr.contains(file))
        chmod(file, 0o600)
        let good = try Binary.run(["process", "--rules", "rules", "--mailbox", "ann@contoso.com", "--salesforce-config", file, message])
        #expect(good.status == 0, "\(good.stderr)")
        // A wrong secret: refused by the org, exit 3, and no secret in any output.
        let wrong = try Self.run(server, ["process", "--rules", "rules", "--mailbox", "ann@contoso.com", "--salesforce", message], flow: "refresh",
                                 extra: ["MAILSAVE_SF_CLIENT_SECRET": "wrong-secret-1234"])
        #expect(wrong.status == 3, "\(wrong.stderr)")
        for output in [bare, open, good, wrong] {
            for secret in server.secrets + ["wrong-secret-1234"] {
                #expect(!output.stdout.contains(secret) && !output.stderr.contains(secret), "a secret was printed")
            }
        }
    }

    @Test func editDeletesAndRecreatesInTheOrg() throws {
        let (server, _) = try Self.serverWithSampleOrg()
        let edit = ["edit", "--salesforce", "--rules", "rules", "--as", "0055e00000Ann01", "<sf-outbound-1@contoso.com>"]
        let refused = try Self.run(server, edit + ["--set", "FromAddress=x@y.example"])
        #expect(refused.status == 9, "\(refused.stderr)")
        let missing = try Self.run(server, edit + ["--link", "who=0035e00000Zzz99"])
        #expect(missing.status == 10, "\(missing.stderr)")
        #expect(try server.records("EmailMessage").map { $0["Subject"]?.string } == ["Your trial licence"], "a refusal changes nothing")
        let done = try Self.run(server, edit + ["--set", "Subject=Your trial licence (extended)"])
        #expect(done.status == 0, "\(done.stderr)")
        let emails = try server.records("EmailMessage")
        #expect(emails.count == 1)
        #expect(emails.first?["Subject"]?.string == "Your trial licence (extended)")
        #expect(emails.first?["Id"]?.string?.hasPrefix("02s5e00000Ema01") == false, "re-created: a new id")
        let gone = try Self.run(server, ["edit", "--salesforce", "--rules", "rules", "--as", "0055e00000Ann01", "<nothing@contoso.com>", "--set", "Subject=x"])
        #expect(gone.status == 8, "\(gone.stderr)")
    }

    @Test func concurrentSavesOfOneMessageMakeOneRecord() throws {
        let (server, folder) = try Self.serverWithSampleOrg()
        let store = folder + "/ledger.sqlite"
        // The org's check cannot see a save in flight: a slow Task check widens the window.
        try server.fault(["kind": .string("slow"), "seconds": .number(1), "times": .number(0), "match": .string("FROM Task")])
        let arguments = ["process", "--rules", "rules", "--mailbox", "ann@contoso.com", "--salesforce", "--store", store, "--apply",
                         "examples/messages/01-customer-question.eml"]
        let environment = try server.environment("jwt")
        let results = try (0..<3).map { _ in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Binary.path)
            process.arguments = arguments
            process.currentDirectoryURL = Binary.packageRoot
            process.environment = Binary.environment.merging(environment) { $1 }
            process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
            process.standardError = FileHandle(forWritingAtPath: "/dev/null")
            try process.run()
            return process
        }.map { process -> Int32 in
            process.waitUntilExit()
            return process.terminationStatus
        }
        // Each run saved it, found it saved, or (another run was saving it) parked it.
        #expect(results.allSatisfy { $0 == 0 || $0 == 11 }, "\(results)")
        try server.call("POST", "/__control/fault/clear")
        let retried = try Self.run(server, ["retry", "--rules", "rules", "--store", store])
        #expect(retried.status == 0, "\(retried.stdout)\(retried.stderr)")
        let tasks = try server.records("Task").filter { $0["Email_Message_ID__c"]?.string == "<CAB1234567@mail.fabrikam.com>" }
        #expect(tasks.count == 1)
    }

    @Test func aKeyOthersMayReadIsRefused() throws {
        let (server, _) = try Self.serverWithSampleOrg()
        let environment = try server.environment("jwt")
        let key = try #require(environment["MAILSAVE_SF_KEY_FILE"])
        chmod(key, 0o644)
        defer { chmod(key, 0o600) }
        let result = try Binary.launch(Binary.path, ["process", "--rules", "rules", "--mailbox", "ann@contoso.com", "--salesforce",
                                                     "examples/messages/01-customer-question.eml"], environment: environment)
        #expect(result.status == 3, "\(result.stderr)")
        #expect(result.stderr.contains(key) && result.stderr.contains("600"), "\(result.stderr)")
        #expect(try server.stats()["logins"]?.number == 0)
    }
}
