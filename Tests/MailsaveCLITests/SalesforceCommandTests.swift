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

    /// Starts one run of the binary per argument list, all at once (the JWT flow), and gives
    /// their exit statuses in order.
    static func runAtOnce(_ server: FakeServer, _ runs: [[String]]) throws -> [Int32] {
        let environment = try server.environment("jwt")
        return try runs.map { arguments in
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
    }

    /// A copy of the shipped pack in forced mode (a record made for each unknown sender).
    static func forcedPack(in folder: String) throws -> String {
        let pack = folder + "/rules"
        try FileManager.default.copyItem(atPath: Binary.packageRoot.appendingPathComponent("rules").path, toPath: pack)
        let org = pack + "/org.yaml"
        try (try String(contentsOfFile: org, encoding: .utf8)).replacingOccurrences(of: "auto_save_mode: general", with: "auto_save_mode: forced")
            .write(toFile: org, atomically: true, encoding: .utf8)
        return pack
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
        // `--as` someone who is no User of the org: no blocklist to apply, so no edit (exit 8).
        let stranger = try Self.run(server, ["edit", "--salesforce", "--rules", "rules", "--as", "0055e00000Zzz01", "<sf-outbound-1@contoso.com>",
                                             "--set", "Subject=x"])
        #expect(stranger.status == 8, "\(stranger.stderr)")
        #expect(stranger.stderr.contains("no User 0055e00000Zzz01 in the CRM (--as); nothing changed"), "\(stranger.stderr)")
        #expect(try server.records("EmailMessage").first?["Subject"]?.string == "Your trial licence (extended)")
    }

    /// Messages of one new sender delivered at once, one `process --apply` each (forced mode):
    /// the org cannot tell a run that another is making her, so each run made her Lead (four
    /// runs, four Leads). The runs share the store: its lock on making people makes the
    /// look-up and the save one step, and the later runs link the Lead the first made.
    @Test func messagesOfOneNewSenderDeliveredAtOnceMakeOneLead() throws {
        let (server, folder) = try Self.serverWithSampleOrg()
        let store = folder + "/ledger.sqlite"
        let pack = try Self.forcedPack(in: folder)
        let files = try (0..<4).map { number -> String in
            let file = folder + "/new-sender-\(number).eml"
            try "From: Sam Lee <sam@unknown.example>\r\nTo: ann@contoso.com\r\nSubject: Order \(number)\r\nMessage-ID: <burst-\(number)@unknown.example>\r\n\r\nHello\r\n"
                .write(toFile: file, atomically: true, encoding: .utf8)
            return file
        }
        // The org's answer to the people check is slow: every run has decided before any saves.
        try server.fault(["kind": .string("slow"), "seconds": .number(0.4), "times": .number(0), "match": .string("SELECT Id, Email")])
        let results = try Self.runAtOnce(server, files.map { ["process", "--rules", pack, "--mailbox", "ann@contoso.com", "--salesforce", "--store", store, "--apply", $0] })
        #expect(results == [0, 0, 0, 0], "\(results)")
        let leads = try server.records("Lead").filter { $0["Email"]?.string == "sam@unknown.example" }
        #expect(leads.count == 1)
        let tasks = try server.records("Task").filter { ($0["Subject"]?.string ?? "").hasPrefix("Order ") }
        #expect(tasks.count == 4)
        #expect(Set(tasks.compactMap { $0["WhoId"]?.string }) == Set(leads.compactMap { $0["Id"]?.string }))
    }

    /// A lock on making people that cannot be opened (another user's, a folder in its place)
    /// does not stop the save: it is made without the lock, as before there was one, and the
    /// run says so (it failed for good, neither saved nor parked).
    @Test func aLockThatCannotBeTakenStopsNoSave() throws {
        let (server, folder) = try Self.serverWithSampleOrg()
        let store = folder + "/ledger.sqlite"
        let pack = try Self.forcedPack(in: folder)
        let file = folder + "/lockless.eml"
        try "From: Lou Lock <lou@unknown.example>\r\nTo: ann@contoso.com\r\nSubject: Hi\r\nMessage-ID: <lockless@unknown.example>\r\n\r\nHello\r\n"
            .write(toFile: file, atomically: true, encoding: .utf8)
        // The store first (the lock sits beside it), then a folder where the lock file goes.
        let first = try Self.run(server, ["process", "--rules", pack, "--mailbox", "ann@contoso.com", "--salesforce", "--store", store, "--apply",
                                          "examples/messages/01-customer-question.eml"])
        #expect(first.status == 0, "\(first.stderr)")
        try FileManager.default.createDirectory(atPath: store + ".people-lock", withIntermediateDirectories: false)
        let result = try Self.run(server, ["process", "--rules", pack, "--mailbox", "ann@contoso.com", "--salesforce", "--store", store, "--apply", file])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("the lock on making people could not be taken"), "\(result.stderr)")
        #expect(try server.records("Lead").filter { $0["Email"]?.string == "lou@unknown.example" }.count == 1)

        // A FIFO in its place: opening it waited for a writer for ever (bounded here by timeout).
        try FileManager.default.removeItem(atPath: store + ".people-lock")
        #expect(mkfifo(store + ".people-lock", 0o600) == 0)
        let fifoFile = folder + "/fifo.eml"
        try "From: Fay Fifo <fay@unknown.example>\r\nTo: ann@contoso.com\r\nSubject: Hi\r\nMessage-ID: <fifo@unknown.example>\r\n\r\nHello\r\n"
            .write(toFile: fifoFile, atomically: true, encoding: .utf8)
        let fifo = try Binary.launch("/usr/bin/timeout", ["-s", "KILL", "30", Binary.path, "process", "--rules", pack, "--mailbox", "ann@contoso.com", "--salesforce",
                                                           "--store", store, "--apply", fifoFile], environment: try server.environment("jwt"))
        #expect(fifo.status == 0, "\(fifo.status) \(fifo.stderr)")
        #expect(fifo.stderr.contains("not a regular file"), "\(fifo.stderr)")
    }

    /// Users who share a store share its lock: the lock file gets the store's read and write
    /// bits whatever the creating run's umask (procmail's is 077; the file was 0600 and every
    /// other user's saves went without the lock).
    @Test func theLockFileHasTheStoresModeWhateverTheUmask() throws {
        let (server, folder) = try Self.serverWithSampleOrg()
        let store = folder + "/ledger.sqlite"
        let pack = try Self.forcedPack(in: folder)
        let first = try Self.run(server, ["process", "--rules", pack, "--mailbox", "ann@contoso.com", "--salesforce", "--store", store, "--apply",
                                          "examples/messages/01-customer-question.eml"])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(chmod(store, 0o660) == 0)
        let file = folder + "/umask.eml"
        try "From: Uma Mask <uma@unknown.example>\r\nTo: ann@contoso.com\r\nSubject: Hi\r\nMessage-ID: <umask@unknown.example>\r\n\r\nHello\r\n"
            .write(toFile: file, atomically: true, encoding: .utf8)
        let command = ([Binary.path, "process", "--rules", pack, "--mailbox", "ann@contoso.com", "--salesforce", "--store", store, "--apply", file])
            .map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        let result = try Binary.launch("/bin/sh", ["-c", "umask 077; exec " + command], environment: try server.environment("jwt"))
        #expect(result.status == 0, "\(result.stderr)")
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: store + ".people-lock")[.posixPermissions] as? Int)
        #expect(mode == 0o660, "\(String(mode, radix: 8))")
    }

    @Test func concurrentSavesOfOneMessageMakeOneRecord() throws {
        let (server, folder) = try Self.serverWithSampleOrg()
        let store = folder + "/ledger.sqlite"
        // The org's check cannot see a save in flight: a slow Task check widens the window.
        try server.fault(["kind": .string("slow"), "seconds": .number(1), "times": .number(0), "match": .string("FROM Task")])
        let arguments = ["process", "--rules", "rules", "--mailbox", "ann@contoso.com", "--salesforce", "--store", store, "--apply",
                         "examples/messages/01-customer-question.eml"]
        let results = try Self.runAtOnce(server, Array(repeating: arguments, count: 3))
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

    // MARK: batch --apply --salesforce: saves in composite calls

    /// API calls since the server started: look-ups (the decisions' `/composite` SOQL), save
    /// checks (a `/composite` that only looks for Message-IDs before or after a save) and saves
    /// (`/composite/sobjects`, `/composite/graph`, a single save's `/composite`).
    static func callCounts(_ server: FakeServer) throws -> (lookups: Int, checks: Int, saves: Int, total: Int) {
        var lookups = 0, checks = 0, saves = 0
        for entry in try server.log() {
            let path = entry["path"]?.string ?? ""
            let soql = (entry["soql"]?.array ?? []).compactMap(\.string)
            if path.hasSuffix("/composite/sobjects") || path.hasSuffix("/composite/graph") || (path.hasSuffix("/composite") && soql.isEmpty) {
                saves += 1
            } else if soql.contains(where: { $0.hasPrefix("SELECT Id, MessageIdentifier FROM EmailMessage") })
                        && soql.allSatisfy({ $0.hasPrefix("SELECT Id, MessageIdentifier FROM EmailMessage") || $0.hasPrefix("SELECT Id, Email_Message_ID__c FROM Task") }) {
                // (A look-up's sixth query, the Task check alone, is a look-up.)
                checks += 1
            } else {
                lookups += 1
            }
        }
        return (lookups, checks, saves, lookups + checks + saves)
    }

    static func batchApply(_ server: FakeServer, store: String, mbox: String = "examples/mailbox.mbox", rules: String = "rules",
                           extra: [String] = [], settings: [String: String] = [:]) throws -> Binary.Result {
        try run(server, ["batch", "--rules", rules, "--mailbox", "ann@contoso.com", "--salesforce", "--store", store, "--mbox", mbox,
                         "--apply", "--quiet", "--jobs", "1"] + extra, extra: settings)
    }

    static func lines(_ output: String) throws -> [[String: Any]] {
        try decisions(output).map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
    }

    @Test func batchApplySavesTheMailboxInOneSaveCall() throws {
        var figures: [String] = []
        var outputs: [[String]] = []
        // (batch size, the Task field Unique in the org, the Task field named in the configuration)
        let runs: [(String, Bool, Bool)] = [("1", false, false), ("1", true, false), ("200", false, false), ("200", true, false), ("200", true, true)]
        for (size, unique, named) in runs {
            let (server, folder) = try Self.serverWithSampleOrg()
            if !unique {
                try server.declareTaskMessageIDField(unique: false)
            }
            let result = try Self.batchApply(server, store: folder + "/ledger.sqlite", extra: ["--save-batch-size", size],
                                             settings: named ? ["MAILSAVE_SF_TASK_MESSAGE_ID_FIELD": "Email_Message_ID__c"] : [:])
            #expect(result.status == 0, "\(result.stderr)")
            let counts = try Self.callCounts(server)
            figures.append("batch size \(size), field \(unique ? "Unique" : "not Unique")\(named ? ", named" : ""): "
                           + "look-ups \(counts.lookups), save checks \(counts.checks), saves \(counts.saves), total \(counts.total)")
            let saved = try Self.lines(result.stdout).compactMap { $0["saved"] as? [String: Any] }
            #expect(saved.filter { $0["created"] as? Bool == true }.count == 6, "\(result.stdout)")
            if !named {
                outputs.append(Self.decisions(result.stdout).map { $0.replacingOccurrences(of: #""id":"[0-9A-Za-z]{18}""#, with: "ID", options: .regularExpression) })
            }
            if size == "200" && unique && !named {
                // Seven Tasks in two sObject Collections calls: the outbound reply (03) names the
                // first message in References, so the batch is sent before it is decided. Every
                // message's look-ups are one call (two for the one naming a Case number).
                #expect(counts.saves == 2, "\(figures)")
                #expect(try server.stats()["by_kind"]?["composite_sobjects"]?.number == 2)
                // Again: the ledger answers, nothing is sent.
                let again = try Self.batchApply(server, store: folder + "/ledger.sqlite")
                #expect(again.status == 0, "\(again.stderr)")
                #expect(try Self.callCounts(server).saves == 2)
                #expect(try Self.lines(again.stdout).compactMap { $0["saved"] as? [String: Any] }.allSatisfy { $0["created"] as? Bool != true })
                let tasks = try server.records("Task").compactMap { $0["Email_Message_ID__c"]?.string }
                #expect(tasks.count == Set(tasks).count, "no message saved twice")
            }
        }
        // The same lines (ids aside) whichever the batch size and the field.
        #expect(Set(outputs).count == 1)
        print("batch --apply --salesforce over examples/mailbox.mbox:\n  " + figures.joined(separator: "\n  "))
    }

    @Test func twoMessagesFromOneUnknownSenderInOneBatchCreateOneLead() throws {
        let (server, folder) = try Self.serverWithSampleOrg()
        let rules = folder + "/rules"
        try FileManager.default.copyItem(atPath: Binary.packageRoot.appendingPathComponent("rules").path, toPath: rules)
        let org = try String(contentsOfFile: rules + "/org.yaml", encoding: .utf8)
        try org.replacingOccurrences(of: "auto_save_mode: general", with: "auto_save_mode: forced").write(toFile: rules + "/org.yaml", atomically: true, encoding: .utf8)
        var mbox = ""
        for number in 1...2 {
            mbox += "From x@y Thu Jan  1 00:00:00 2026\nFrom: Sam Lee <sam@unknown.example>\nTo: Ann Seller <ann@contoso.com>\nSubject: Question \(number)\n"
                + "Date: Mon, 2 Mar 2026 1\(number):00:00 +0000\nMessage-ID: <sam-\(number)@unknown.example>\n\nHello \(number)\n\n"
        }
        try mbox.write(toFile: folder + "/sam.mbox", atomically: true, encoding: .utf8)
        let result = try Self.batchApply(server, store: folder + "/ledger.sqlite", mbox: folder + "/sam.mbox", rules: rules)
        #expect(result.status == 0, "\(result.stderr)")
        let leads = try server.records("Lead").filter { $0["Email"]?.string == "sam@unknown.example" }
        #expect(leads.count == 1, "\(result.stdout)")
        let tasks = try server.records("Task").filter { ($0["Email_Message_ID__c"]?.string ?? "").hasPrefix("<sam-") }
        #expect(tasks.count == 2)
        #expect(Set(tasks.compactMap { $0["WhoId"]?.string }) == Set(leads.compactMap { $0["Id"]?.string }))
        // The first message's graph was sent before the second was decided (it asks about the new Lead).
        #expect(try server.stats()["by_kind"]?["composite_graph"]?.number == 1)
        let lines = try Self.lines(result.stdout)
        #expect(lines.count == 2)
        #expect(((lines[0]["saved"] as? [String: Any])?["created_records"] as? [String: Any])?.isEmpty == false)
        #expect((lines[1]["links"] as? [String: Any])?["who"] as? [String] == [leads.first?["Id"]?.string ?? "?"])
    }

    @Test func aRefusedMessageFailsAloneAndALostBatchAnswerIsLookedUpOnce() throws {
        let (server, folder) = try Self.serverWithSampleOrg()
        // The first record of the call is refused: that message fails, the others are saved.
        try server.fault(["kind": .string("error_code"), "code": .string("STRING_TOO_LONG"), "message": .string("Subject: data value too large"),
                          "match": .string("composite/sobjects Task"), "times": .number(1)])
        let refused = try Self.batchApply(server, store: folder + "/ledger.sqlite")
        #expect(refused.status == 3, "\(refused.stdout)\(refused.stderr)")
        let lines = try Self.lines(refused.stdout)
        let errors = lines.compactMap { $0["error"] as? [String: Any] }
        #expect(errors.count == 1 && (errors.first?["message"] as? String ?? "").contains("STRING_TOO_LONG"), "\(refused.stdout)")
        // A save's error line names its message (it was parsed and decided).
        #expect((lines.first { $0["error"] != nil }?["message_id"] as? String)?.hasPrefix("<") == true, "\(refused.stdout)")
        #expect(lines.compactMap { $0["saved"] as? [String: Any] }.filter { $0["created"] as? Bool == true }.count == 5)
        #expect(lines.count == 12, "every message has its line, in input order")
        // The rest again, the answer lost after the org committed: one look-up of its keys, nothing resent.
        try server.call("POST", "/__control/log/clear")
        try server.fault(["kind": .string("drop_after_commit"), "match": .string("composite/sobjects"), "times": .number(1)])
        let lost = try Self.batchApply(server, store: folder + "/ledger.sqlite")
        #expect(lost.status == 0, "\(lost.stdout)\(lost.stderr)")
        let log = try server.log().map { ($0["path"]?.string ?? "") + " " + (($0["soql"]?.array ?? []).compactMap(\.string).joined(separator: " ")) }
        let saveCalls = log.filter { $0.contains("/composite/sobjects") }
        #expect(saveCalls.count == 1, "\(log)")
        // Right after the lost call: one look-up of its keys (EmailMessages and Tasks at once), then no resend.
        let afterSave = log.drop { !$0.contains("/composite/sobjects") }.dropFirst().first ?? ""
        #expect(afterSave.contains("FROM EmailMessage WHERE MessageIdentifier IN") && afterSave.contains("FROM Task WHERE"), "\(log)")
        #expect(try Self.lines(lost.stdout).compactMap { $0["saved"] as? [String: Any] }.filter { $0["created"] as? Bool == true }.isEmpty,
                "the lost save is reported as found, not created")
        let tasks = try server.records("Task").compactMap { $0["Email_Message_ID__c"]?.string }
        #expect(tasks.count == Set(tasks).count, "no message saved twice")
        #expect(tasks.count == 7, "the sample org's Task and the six saved")
    }

    @Test func aBatchCallTheOrgCannotTakeNowParksItsMessages() throws {
        let (server, folder) = try Self.serverWithSampleOrg()
        let store = folder + "/ledger.sqlite"
        try server.fault(["kind": .string("status"), "status": .number(503), "times": .number(0), "match": .string("composite/sobjects")])
        let parked = try Self.batchApply(server, store: store, settings: ["MAILSAVE_SF_RETRIES": "2"])
        #expect(parked.status == 11, "\(parked.stdout)\(parked.stderr)")
        let saved = try Self.lines(parked.stdout).compactMap { $0["saved"] as? [String: Any] }
        // The sample org already holds one of the seven Tasks: the batch's check finds it.
        #expect(saved.filter { $0["parked"] is String }.count == 6, "\(parked.stdout)")
        #expect(saved.filter { $0["created"] as? Bool == false && !($0["parked"] is String) }.count == 1, "\(parked.stdout)")
        #expect(saved.allSatisfy { $0["created"] as? Bool != true }, "no line claims a save that did not happen")
        try server.call("POST", "/__control/fault/clear")
        let retried = try Self.run(server, ["retry", "--rules", "rules", "--store", store])
        #expect(retried.status == 0, "\(retried.stdout)\(retried.stderr)")
        let tasks = try server.records("Task").compactMap { $0["Email_Message_ID__c"]?.string }
        #expect(tasks.count == 7 && Set(tasks).count == 7)
    }

    /// The README's figures for a larger mailbox: 500 messages from the sample org's two
    /// Contacts, each saved as a Task, message by message and in batches.
    @Test func fiveHundredMessagesCostTheirLookUpsAndThreeSaveCalls() throws {
        var mbox = ""
        for number in 0..<500 {
            let from = number % 2 == 0 ? "Bob Buyer <bob@fabrikam.com>" : "Carla Gomez <carla@northwind.example>"
            mbox += "From x@y Thu Jan  1 00:00:00 2026\nFrom: \(from)\nTo: Ann Seller <ann@contoso.com>\nSubject: Order \(number)\n"
                + "Date: Mon, 2 Mar 2026 10:00:00 +0000\nMessage-ID: <order-\(number)@generated.example>\n\nPlease confirm order \(number).\n\n"
        }
        var figures: [String] = []
        // Message by message ("1") costs 500 look-ups and 500 saves: measured once, and left out
        // here to keep the suite short (a minute on two cores).
        for size in ["200"] {
            let (server, folder) = try Self.serverWithSampleOrg()
            try mbox.write(toFile: folder + "/orders.mbox", atomically: true, encoding: .utf8)
            let result = try Self.batchApply(server, store: folder + "/ledger.sqlite", mbox: folder + "/orders.mbox", extra: ["--save-batch-size", size])
            #expect(result.status == 0, "\(result.stderr)")
            let created = try Self.lines(result.stdout).compactMap { $0["saved"] as? [String: Any] }.filter { $0["created"] as? Bool == true }.count
            #expect(created == 500)
            let counts = try Self.callCounts(server)
            figures.append("batch size \(size): look-ups \(counts.lookups), save checks \(counts.checks), saves \(counts.saves), total \(counts.total)")
            #expect(counts.lookups == 500)
            #expect(counts.saves == (size == "1" ? 500 : 3), "\(figures)")
        }
        print("batch --apply --salesforce over 500 generated messages: " + figures.joined(separator: "; "))
    }

    @Test func aRunKilledDuringABatchCallSavesNothingTwiceWhenRunAgain() throws {
        let (server, folder) = try Self.serverWithSampleOrg()
        let store = folder + "/ledger.sqlite"
        // The batch call is held 3 s by the server, which commits it after the client is gone.
        try server.fault(["kind": .string("slow"), "seconds": .number(3), "match": .string("composite/sobjects"), "times": .number(1)])
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Binary.path)
        process.arguments = ["batch", "--rules", "rules", "--mailbox", "ann@contoso.com", "--salesforce", "--store", store, "--mbox",
                             "examples/mailbox.mbox", "--apply", "--quiet", "--jobs", "1"]
        process.currentDirectoryURL = Binary.packageRoot
        process.environment = Binary.environment.merging(try server.environment("jwt")) { $1 }
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, try !server.log().contains(where: { ($0["path"]?.string ?? "").hasSuffix("/composite/sobjects") }) { usleep(20_000) }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        // The org commits what the killed run sent (its claims in the ledger were never noted).
        while Date() < deadline, try server.records("Task").count < 2 { usleep(50_000) }
        // Run again at once: the killed run's claim is still fresh, so the org is asked, finds
        // the Task, and the line says so (already saved); the rest is saved now.
        let again = try Self.batchApply(server, store: store)
        #expect(again.status == 0, "\(again.stdout)\(again.stderr)")
        let tasks = try server.records("Task").compactMap { $0["Email_Message_ID__c"]?.string }
        #expect(tasks.count == Set(tasks).count, "no message saved twice: \(tasks)")
        #expect(tasks.count == 7)
        let first = try #require(try Self.lines(again.stdout).first { $0["message_id"] as? String == "<CAB1234567@mail.fabrikam.com>" })
        #expect((first["saved"] as? [String: Any])?["created"] as? Bool == false, "\(first)")
        #expect((first["saved"] as? [String: Any])?["id"] is String)
    }
}
