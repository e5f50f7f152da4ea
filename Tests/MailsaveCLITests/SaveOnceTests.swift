import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Exactly once, with real processes: concurrent runs and runs killed with SIGKILL.
@Suite(.serialized) struct SaveOnceTests {
    /// A fresh store with the sample CRM imported through the CLI.
    func makeStore() throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mailsave-saveonce-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let store = folder.appendingPathComponent("crm.sqlite").path
        for object in ["Account", "Contact", "Lead", "Opportunity", "Case", "User", "EmailMessage", "EmailMessageRelation", "Task"] {
            let result = try Binary.run(["crm", "import", "--store", store, "--object", object, "examples/crm/\(object).csv"])
            try #require(result.status == 0, "\(result.stderr)")
        }
        return store
    }

    func tasks(for messageID: String, in store: String) throws -> Int {
        let export = try Binary.run(["crm", "export", "--store", store, "--object", "Task"])
        return export.stdout.components(separatedBy: messageID).count - 1
    }

    func applyProcess(_ store: String, message: String = "examples/messages/01-customer-question.eml") throws -> Foundation.Process {
        let process = Foundation.Process()
        process.executableURL = URL(fileURLWithPath: Binary.path)
        process.arguments = ["process", "--store", store, "--mailbox", "ann@contoso.com", "--apply", message]
        process.currentDirectoryURL = Binary.packageRoot
        // Never the user's own cache or store.
        process.environment = Binary.environment
        process.standardOutput = Pipe()
        process.standardError = Pipe()
        return process
    }

    @Test func eightConcurrentRunsLeaveExactlyOneRecord() throws {
        let store = try makeStore()
        defer { try? FileManager.default.removeItem(atPath: (store as NSString).deletingLastPathComponent) }
        let processes = try (0..<8).map { _ in try applyProcess(store) }
        for process in processes { try process.run() }
        var created = 0
        var reported = Set<String>()
        for process in processes {
            let data = (process.standardOutput as? Pipe)?.fileHandleForReading.readDataToEndOfFile() ?? Data()
            process.waitUntilExit()
            #expect(process.terminationStatus == 0)
            let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
            let saved = object?["saved"] as? [String: Any]
            if saved?["created"] as? Bool == true { created += 1 }
            if let id = saved?["id"] as? String { reported.insert(id) }
        }
        #expect(created == 1)
        #expect(reported.count == 1) // every run names the same record
        #expect(try tasks(for: "<CAB1234567@mail.fabrikam.com>", in: store) == 1)
    }

    /// Each round kills a run on a message of its own (a run after a completed save would
    /// find the ledger row and test nothing), then a retry must finish that message's save.
    @Test func runsKilledAtAnyPointLeaveNoneOrOneAndARetryFinishes() throws {
        let store = try makeStore()
        let folder = (store as NSString).deletingLastPathComponent
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let original = try String(contentsOfFile: Binary.packageRoot.appendingPathComponent("examples/messages/01-customer-question.eml").path,
                                  encoding: .utf8)
        var generator = SystemRandomNumberGenerator()
        var killedBeforeTheEnd = 0
        for round in 0..<16 {
            let messageID = "<kill-\(round)-\(UUID().uuidString)@mail.fabrikam.com>"
            let path = folder + "/kill-\(round).eml"
            try original.replacing("<CAB1234567@mail.fabrikam.com>", with: messageID).write(toFile: path, atomically: true, encoding: .utf8)
            let process = try applyProcess(store, message: path)
            try process.run()
            usleep(UInt32.random(in: 0...40_000, using: &generator))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            if process.terminationReason == .uncaughtSignal { killedBeforeTheEnd += 1 }
            #expect(try tasks(for: messageID, in: store) <= 1)
            let retry = try Binary.run(["process", "--store", store, "--mailbox", "ann@contoso.com", "--apply", path])
            #expect(retry.status == 0, "\(retry.stderr)")
            #expect(retry.stdout.contains("\"saved\""))
            #expect(try tasks(for: messageID, in: store) == 1, "round \(round)")
        }
        // Some rounds must really have been cut short, or the test proved nothing.
        #expect(killedBeforeTheEnd > 0)
        let reconcile = try Binary.run(["ledger", "reconcile", "--store", store])
        #expect(reconcile.stdout.hasPrefix("0 ledger rows without a record"))
    }

    @Test func theTableSaysWhatWasSaved() throws {
        let store = try makeStore()
        defer { try? FileManager.default.removeItem(atPath: (store as NSString).deletingLastPathComponent) }
        let arguments = ["process", "--store", store, "--mailbox", "ann@contoso.com", "--apply", "--format", "table",
                         "examples/messages/01-customer-question.eml", "examples/messages/02-internal-only.eml"]
        let first = try Binary.run(arguments)
        let lines = first.stdout.split(separator: "\n").map { $0.split(separator: " ") }
        #expect(lines.first?.contains("SAVED") == true)
        #expect(lines[1].contains { $0.hasPrefix("00T5e") && $0.count == 18 })
        #expect(lines[2].count == 3) // blocked: nothing saved
        let again = try Binary.run(arguments)
        #expect(again.stdout.contains("(had)"))
    }

    @Test func theStoreCommandsSayWhatWentWrong() throws {
        let store = try makeStore()
        defer { try? FileManager.default.removeItem(atPath: (store as NSString).deletingLastPathComponent) }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mailsave-csv-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let bad = folder.appendingPathComponent("Contact.csv")
        try "Id,Email\n0035e00000New01,new@x.example\n0035e00000New02,b@x.example,extra\n".write(to: bad, atomically: true, encoding: .utf8)
        let result = try Binary.run(["crm", "import", "--store", store, "--object", "Contact", bad.path])
        #expect(result.status == 6)
        #expect(result.stderr == "mailsave: \(bad.path):3: 3 fields where the header has 2; nothing was imported\n")
        #expect(try Binary.run(["crm", "import", "--store", store, "--object", "Contact", bad.path]).status == 6)
        #expect(try Binary.run(["crm", "import", "--store", store, "--object", "Widget", bad.path]).status == 2)
        #expect(try Binary.run(["process", "--mailbox", "ann@contoso.com", "--crm", "examples/crm", "--apply",
                                "examples/messages/01-customer-question.eml"]).status == 2)
        // Edit works on saved EmailMessages only (ownership and permission: StoreTests).
        let saved = try Binary.run(["process", "--store", store, "--mailbox", "ann@contoso.com", "--apply", "examples/messages/03-outbound-reply.eml"])
        #expect(saved.status == 0)
        let refused = try Binary.run(["edit", "--store", store, "--as", "0055e00000Dan01", "<AM0PR01-reply-1@contoso.com>", "--set", "Subject=x"])
        #expect(refused.status == 8) // not found (7 is ownership or permission)
        #expect(refused.stderr.hasPrefix("mailsave: no saved EmailMessage has the Message-ID"))
    }
}
