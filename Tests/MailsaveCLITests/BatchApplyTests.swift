import Foundation
import GRDB
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `batch --apply`: exactly once across kills and reruns, and parents saved before their replies.
@Suite(.serialized) struct BatchApplyTests {
    /// `count` copies of the customer question, each with a Message-ID of its own.
    func mailbox(_ folder: URL, count: Int, label: String) throws -> (path: String, ids: [String]) {
        let original = String(decoding: try Mailboxes.files(["examples/messages/01-customer-question.eml"])[0], as: UTF8.self)
        let ids = (0..<count).map { "<\(label)-\($0)-\(UUID().uuidString.prefix(8))@mail.fabrikam.com>" }
        let path = folder.appendingPathComponent("\(label).mbox").path
        try Mailboxes.mbox(ids.map { Data(original.replacing("<CAB1234567@mail.fabrikam.com>", with: $0).utf8) }).write(to: URL(fileURLWithPath: path))
        return (path, ids)
    }

    /// How many Tasks carry each Message-ID.
    func taskCounts(_ ids: [String], store: String) throws -> [Int] {
        let export = try Binary.run(["crm", "export", "--store", store, "--object", "Task"])
        #expect(export.status == 0)
        // One pass over the export (searching it once per id was quadratic in the mailbox's size).
        var counts: [String: Int] = [:]
        for piece in export.stdout.split(separator: "<", omittingEmptySubsequences: false).dropFirst() {
            if let end = piece.firstIndex(of: ">") { counts["<" + piece[..<end] + ">", default: 0] += 1 }
        }
        return ids.map { counts[$0] ?? 0 }
    }

    /// The Tasks in the store, read beside a running batch (SQLite's WAL lets a reader in).
    func taskTotal(_ store: String) -> Int? {
        var configuration = Configuration()
        configuration.readonly = true
        guard let database = try? DatabaseQueue(path: store, configuration: configuration) else { return nil }
        return try? database.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM record WHERE object = 'Task'") }
    }

    /// Waits until the running `process` has saved at least `saved` Tasks beyond the store's
    /// first `before`, so that a signal lands while the run is saving whatever the binary's
    /// speed (a fixed sleep let a fast build finish first); false when it ended or 60 s passed.
    func waitForSaves(_ saved: Int, after before: Int, store: String, process: Foundation.Process) -> Bool {
        let deadline = Date().addingTimeInterval(60)
        while process.isRunning && Date() < deadline {
            if let total = taskTotal(store), total - before >= saved { return true }
            usleep(1_000)
        }
        return false
    }

    @Test func killedRunsAndARerunSaveEveryMessageExactlyOnce() throws {
        let folder = try Mailboxes.temporaryFolder("apply-kill")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try Mailboxes.store(in: folder)
        var generator = SystemRandomNumberGenerator()
        var cutShort = 0
        for round in 0..<3 {
            // Killed once it has saved 1 to 300 of the 600 (groups of up to 256 commit at once),
            // wherever in a group's work that finds it.
            let (mbox, ids) = try mailbox(folder, count: 600, label: "kill\(round)")
            let arguments = ["batch", "--mailbox", "ann@contoso.com", "--store", store, "--mbox", mbox, "--apply", "--jobs", "2"]
            let before = try #require(taskTotal(store))
            let process = Mailboxes.process(arguments)
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            // A process that already ended is not signalled (its number may be another's now).
            if waitForSaves(Int.random(in: 1...300, using: &generator), after: before, store: store, process: process) {
                kill(process.processIdentifier, SIGKILL)
            }
            process.waitUntilExit()
            let afterKill = try taskCounts(ids, store: store)
            #expect(afterKill.allSatisfy { $0 <= 1 }, "round \(round)")
            if process.terminationReason == .uncaughtSignal && afterKill.contains(0) { cutShort += 1 }
            let rerun = try Binary.run(arguments)
            #expect(rerun.status == 0, "\(rerun.stderr)")
            let summary = try #require(try Mailboxes.objects(rerun.stdout).last?["summary"] as? [String: Any])
            let saved = try #require(summary["saved"] as? [String: Int])
            #expect(saved["created"] == afterKill.filter { $0 == 0 }.count)
            #expect(saved["already_saved"] == afterKill.filter { $0 == 1 }.count)
            #expect(try taskCounts(ids, store: store) == Array(repeating: 1, count: ids.count), "round \(round)")
        }
        // At least one run must really have been killed half-way, or nothing was tested.
        #expect(cutShort > 0)
        let reconcile = try Binary.run(["ledger", "reconcile", "--store", store])
        #expect(reconcile.stdout.hasPrefix("0 ledger rows without a record"))
    }

    @Test func ctrlCStopsBetweenMessagesAndTheRerunContinues() throws {
        let folder = try Mailboxes.temporaryFolder("apply-int")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try Mailboxes.store(in: folder)
        let (mbox, ids) = try mailbox(folder, count: 600, label: "int")
        let out = folder.appendingPathComponent("decisions.jsonl").path
        let arguments = ["batch", "--mailbox", "ann@contoso.com", "--store", store, "--mbox", mbox, "--apply", "--out", out]
        let before = try #require(taskTotal(store))
        let process = Mailboxes.process(arguments)
        let errors = Pipe()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        try process.run()
        // Interrupted once the first group is saved, so the run is under way and not over.
        try #require(waitForSaves(1, after: before, store: store, process: process))
        kill(process.processIdentifier, SIGINT)
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal)
        #expect(process.terminationStatus == SIGINT)
        #expect(stderr.contains("interrupted after"), "\(stderr)")
        #expect(stderr.contains("run the same command again to continue"))
        // --out is written whole or not at all.
        #expect(!FileManager.default.fileExists(atPath: out))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".tmp") }.isEmpty)
        let partial = try taskCounts(ids, store: store)
        #expect(partial.allSatisfy { $0 <= 1 })
        #expect(partial.contains(0), "the run was not interrupted before the end")
        let rerun = try Binary.run(arguments)
        #expect(rerun.status == 0, "\(rerun.stderr)")
        #expect(try taskCounts(ids, store: store) == Array(repeating: 1, count: ids.count))
        #expect(try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").count == ids.count)
    }

    /// A mailbox newest first (each reply before its parent): parents are decided first, so
    /// every line waits for the oldest message. Interrupted, the run wrote no line and said
    /// "interrupted after 0 messages" while thousands were saved; now every save made has its
    /// line (in input order, with gaps) and the count says so.
    @Test func anInterruptedRunReportsEverySaveItMade() throws {
        let folder = try Mailboxes.temporaryFolder("apply-int-newest")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try Mailboxes.store(in: folder)
        let original = String(decoding: try Mailboxes.files(["examples/messages/01-customer-question.eml"])[0], as: UTF8.self)
        let count = 4000
        let messages = (0..<count).map { index in
            let reply = index + 1 < count ? "In-Reply-To: <chain-\(index + 1)@mail.fabrikam.com>\n" : ""
            return Data(original.replacing("Message-ID: <CAB1234567@mail.fabrikam.com>\n", with: "Message-ID: <chain-\(index)@mail.fabrikam.com>\n" + reply).utf8)
        }
        let mbox = folder.appendingPathComponent("newest-first.mbox").path
        try Mailboxes.mbox(messages).write(to: URL(fileURLWithPath: mbox))
        let before = try taskCounts((0..<count).map { "<chain-\($0)@mail.fabrikam.com>" }, store: store).reduce(0, +)
        #expect(before == 0)
        let process = Mailboxes.process(["batch", "--mailbox", "ann@contoso.com", "--store", store, "--mbox", mbox, "--apply", "--quiet"])
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        usleep(2_500_000)
        kill(process.processIdentifier, SIGINT)
        let stdout = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let saved = try taskCounts((0..<count).map { "<chain-\($0)@mail.fabrikam.com>" }, store: store)
        #expect(saved.allSatisfy { $0 <= 1 })
        let created = stdout.split(separator: "\n").filter { $0.contains("\"created\":true") }.count
        #expect(created == saved.reduce(0, +), "\(stderr)")
        #expect(created > 0, "nothing was saved in 2.5 s")
        if process.terminationReason == .uncaughtSignal {
            #expect(stderr.contains("interrupted after \(stdout.split(separator: "\n").count) message"), "\(stderr)")
            // Lines in input order, though not every message has one.
            let positions = try Mailboxes.objects(stdout).compactMap { $0["position"] as? Int }
            #expect(positions == positions.sorted())
        }
    }

    /// A reply that comes before its parent in the mailbox: with --apply the parent is saved
    /// first (as an EmailMessage), so the reply is linked by Magic Anchor; the lines stay in
    /// input order.
    @Test func parentsAreSavedBeforeTheirReplies() throws {
        let folder = try Mailboxes.temporaryFolder("apply-thread")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try Mailboxes.store(in: folder)
        let pack = folder.appendingPathComponent("rules")
        try FileManager.default.copyItem(at: Binary.packageRoot.appendingPathComponent("rules"), to: pack)
        let org = pack.appendingPathComponent("org.yaml")
        try String(contentsOf: org, encoding: .utf8).replacing("  save_as: Task\n", with: "  save_as: EmailMessage\n")
            .write(to: org, atomically: true, encoding: .utf8)
        let parent = String(decoding: try Mailboxes.files(["examples/messages/03-outbound-reply.eml"])[0], as: UTF8.self)
        let parentID = try #require(parent.firstMatch(of: /Message-ID:\s*(<[^>]+>)/.ignoresCase())?.1).description
        let reply = """
            From: Bob Buyer <bob@fabrikam.com>
            To: Ann Seller <ann@contoso.com>
            Subject: Re: your answer
            Message-ID: <reply-to-parent-\(UUID().uuidString.prefix(8))@mail.fabrikam.com>
            In-Reply-To: \(parentID)
            References: \(parentID)
            Date: Fri, 2 Jan 2026 10:00:00 +0000

            Thanks, that works for us.
            """
        let mbox = folder.appendingPathComponent("thread.mbox")
        try Mailboxes.mbox([Data(reply.utf8), Data(parent.utf8)]).write(to: mbox)
        // Without --apply nothing is saved, so the reply cannot see its parent.
        let preview = try Mailboxes.objects(try Binary.run(["batch", "--rules", pack.path, "--mailbox", "ann@contoso.com", "--store", store,
                                                            "--mbox", mbox.path]).stdout)
        #expect((preview[0]["reasons"] as? [[String: Any]])?.first?["rule"] as? String != "magic-anchor")
        let result = try Binary.run(["batch", "--rules", pack.path, "--mailbox", "ann@contoso.com", "--store", store, "--mbox", mbox.path, "--apply"])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = try Mailboxes.objects(result.stdout)
        #expect(lines.count == 3)
        #expect(lines[0]["position"] as? Int == 1)
        #expect((lines[1]["position"] as? Int ?? 0) > 1)
        #expect((lines[1]["saved"] as? [String: Any])?["created"] as? Bool == true)
        #expect(lines[1]["save_as"] as? String == "EmailMessage")
        #expect((lines[0]["reasons"] as? [[String: Any]])?.first?["rule"] as? String == "magic-anchor")
        #expect((lines[0]["links"] as? [String: Any])?["who"] as? [String] == ["0035e00000Bob01"])
        #expect((lines[0]["saved"] as? [String: Any])?["created"] as? Bool == true)
    }
}
