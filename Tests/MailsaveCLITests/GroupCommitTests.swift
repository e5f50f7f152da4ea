import Foundation
import GRDB
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `batch --apply` saves in groups (one transaction per group, `SaveSession`): the same saves
/// as one transaction a message, nothing of a group that failed, no line before its commit.
@Suite(.serialized) struct GroupCommitTests {
    /// Every row a save writes (the ledger without its time stamp), in key order.
    func rows(_ store: String) throws -> [String] {
        var configuration = Configuration()
        configuration.readonly = true
        let database = try DatabaseQueue(path: store, configuration: configuration)
        defer { try? database.close() }
        return try database.read { db in
            try String.fetchAll(db, sql: "SELECT id || ' ' || object || ' ' || fields FROM record ORDER BY id")
                + String.fetchAll(db, sql: "SELECT kind || ' ' || key || ' ' || id FROM lookup ORDER BY kind, key, id")
                + String.fetchAll(db, sql: "SELECT message_key || ' ' || record_id || ' ' || object || ' ' || mailbox FROM ledger ORDER BY message_key")
                + String.fetchAll(db, sql: "SELECT prefix || ' ' || next FROM sequence ORDER BY prefix")
        }
    }

    /// Copies of Ann's answer to Bob with Message-IDs of their own, copies of earlier copies
    /// (found in the ledger), and Bob's replies (Magic Anchor), some before the message they answer.
    func generatedMailbox(_ folder: URL) throws -> String {
        let answer = String(decoding: try Mailboxes.files(["examples/messages/03-outbound-reply.eml"])[0], as: UTF8.self)
        func copy(_ number: Int) -> Data { Data(answer.replacing("<AM0PR01-reply-1@contoso.com>", with: "<gc-\(number)@mail.fabrikam.com>").utf8) }
        func reply(_ number: Int) -> Data {
            Data("""
                From: Bob Buyer <bob@fabrikam.com>
                To: Ann Seller <ann@contoso.com>
                Subject: Re: order \(number)
                Message-ID: <gc-reply-\(number)@mail.fabrikam.com>
                In-Reply-To: <gc-\(number)@mail.fabrikam.com>
                References: <gc-\(number)@mail.fabrikam.com>
                Date: Fri, 2 Jan 2026 10:00:00 +0000

                Thanks, that works for us.
                """.utf8)
        }
        var messages: [Data] = []
        for number in 0..<30 {
            if number % 7 == 6 { messages.append(reply(number)) } // before its parent
            messages.append(copy(number))
            if number % 5 == 4 { messages.append(copy(number - 2)) }
            if number % 4 == 1 { messages.append(reply(number)) }
        }
        let path = folder.appendingPathComponent("generated.mbox").path
        try Mailboxes.mbox(messages).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// The shipped pack saving EmailMessages (with relations, and Magic Anchor for replies).
    func emailMessagePack(_ folder: URL) throws -> String {
        let pack = folder.appendingPathComponent("rules")
        try FileManager.default.copyItem(at: Binary.packageRoot.appendingPathComponent("rules"), to: pack)
        let org = pack.appendingPathComponent("org.yaml")
        try String(contentsOf: org, encoding: .utf8).replacing("  save_as: Task\n", with: "  save_as: EmailMessage\n")
            .write(to: org, atomically: true, encoding: .utf8)
        return pack.path
    }

    @Test func groupsSaveExactlyWhatOneTransactionAMessageSaves() throws {
        let folder = try Mailboxes.temporaryFolder("group-same")
        defer { try? FileManager.default.removeItem(at: folder) }
        let cases = [("sample", "rules", Binary.packageRoot.appendingPathComponent("examples/mailbox.mbox").path),
                     ("generated", try emailMessagePack(folder), try generatedMailbox(folder))]
        for (label, pack, mbox) in cases {
            var outputs: [(size: Int, stdout: String, rows: [String])] = []
            // 0: one transaction a message (as before group commit); 3: many groups; 256: one.
            for size in [0, 3, 256] {
                let storeFolder = folder.appendingPathComponent("\(label)-\(size)")
                try FileManager.default.createDirectory(at: storeFolder, withIntermediateDirectories: true)
                let store = try Mailboxes.store(in: storeFolder)
                let result = try Binary.run(["batch", "--rules", pack, "--mailbox", "ann@contoso.com", "--store", store, "--mbox", mbox,
                                             "--apply", "--jobs", "2", "--save-group-size", "\(size)", "--save-group-seconds", "60"])
                #expect(result.status == 0, "\(label) \(size): \(result.stderr)")
                outputs.append((size, result.stdout, try rows(store)))
            }
            let lines = try Mailboxes.objects(outputs[0].stdout)
            #expect(lines.contains { ($0["saved"] as? [String: Any])?["created"] as? Bool == true }, "\(label): nothing was saved")
            if label == "generated" {
                #expect(lines.contains { ($0["saved"] as? [String: Any])?["created"] as? Bool == false }, "no copy was found in the ledger")
                #expect(lines.contains { ($0["reasons"] as? [[String: Any]])?.first?["rule"] as? String == "magic-anchor" })
            }
            for other in outputs.dropFirst() {
                #expect(other.stdout == outputs[0].stdout, "\(label): the decisions of groups of \(other.size)")
                #expect(other.rows == outputs[0].rows, "\(label): the records of groups of \(other.size)")
            }
        }
    }

    @Test func aStoreErrorMidGroupSavesNothingOfThatGroupAndARerunFinishes() throws {
        let folder = try Mailboxes.temporaryFolder("group-fail")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try Mailboxes.store(in: folder)
        let question = String(decoding: try Mailboxes.files(["examples/messages/01-customer-question.eml"])[0], as: UTF8.self)
        // Message 24 cannot be saved while the trigger is there: the third group of ten fails.
        let ids = (0..<40).map { "<gf-\($0 == 24 ? "poison" : "ok")-\($0)@mail.fabrikam.com>" }
        let mbox = folder.appendingPathComponent("fail.mbox").path
        try Mailboxes.mbox(ids.map { Data(question.replacing("<CAB1234567@mail.fabrikam.com>", with: $0).utf8) }).write(to: URL(fileURLWithPath: mbox))
        let database = try DatabaseQueue(path: store)
        try database.write { db in
            try db.execute(sql: "CREATE TRIGGER refuse_poison BEFORE INSERT ON record WHEN NEW.fields LIKE '%gf-poison%' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")
        }
        try database.close()
        let arguments = ["batch", "--mailbox", "ann@contoso.com", "--store", store, "--mbox", mbox, "--apply", "--jobs", "2",
                         "--save-group-size", "10", "--save-group-seconds", "60"]
        let failed = try Binary.run(arguments)
        #expect(failed.status == 3, "\(failed.stderr)")
        #expect(failed.stderr.contains("refused by the test"), "\(failed.stderr)")
        let export = try Binary.run(["crm", "export", "--store", store, "--object", "Task"])
        let saved = ids.map { export.stdout.contains($0) }
        // The first two groups stand; nothing of the third (messages 20 to 29) nor after.
        #expect(saved == (0..<40).map { $0 < 20 })
        // Standard output shows the committed groups' lines, and no other save.
        let printed = try Mailboxes.objects(failed.stdout).filter { $0["saved"] != nil }
        #expect(printed.count == 20)
        #expect(printed.allSatisfy { ($0["saved"] as? [String: Any])?["created"] as? Bool == true })
        let reopened = try DatabaseQueue(path: store)
        try reopened.write { db in try db.execute(sql: "DROP TRIGGER refuse_poison") }
        try reopened.close()
        let rerun = try Binary.run(arguments)
        #expect(rerun.status == 0, "\(rerun.stderr)")
        let summary = try #require(try Mailboxes.objects(rerun.stdout).last?["summary"] as? [String: Any])
        let counts = try #require(summary["saved"] as? [String: Int])
        #expect(counts["created"] == 20)
        #expect(counts["already_saved"] == 20)
        let after = try Binary.run(["crm", "export", "--store", store, "--object", "Task"]).stdout
        #expect(ids.map { after.components(separatedBy: $0).count - 1 } == Array(repeating: 1, count: ids.count))
    }

    /// Killed anywhere, a run's standard output never names a save the store does not hold.
    @Test func linesLeaveOnlyAfterTheirGroupCommits() throws {
        let folder = try Mailboxes.temporaryFolder("group-kill")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try Mailboxes.store(in: folder)
        let question = String(decoding: try Mailboxes.files(["examples/messages/01-customer-question.eml"])[0], as: UTF8.self)
        let ids = (0..<400).map { "<gk-\($0)-\(UUID().uuidString.prefix(8))@mail.fabrikam.com>" }
        let mbox = folder.appendingPathComponent("kill.mbox").path
        try Mailboxes.mbox(ids.map { Data(question.replacing("<CAB1234567@mail.fabrikam.com>", with: $0).utf8) }).write(to: URL(fileURLWithPath: mbox))
        let stdoutPath = folder.appendingPathComponent("stdout.jsonl")
        FileManager.default.createFile(atPath: stdoutPath.path, contents: nil)
        let process = Mailboxes.process(["batch", "--mailbox", "ann@contoso.com", "--store", store, "--mbox", mbox, "--apply",
                                         "--save-group-size", "25", "--save-group-seconds", "60"])
        process.standardOutput = try FileHandle(forWritingTo: stdoutPath)
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Until some groups are out, then killed mid-run.
        let deadline = Date().addingTimeInterval(30)
        while process.isRunning && Date() < deadline && ((try? Data(contentsOf: stdoutPath).count) ?? 0) == 0 { usleep(20_000) }
        usleep(UInt32.random(in: 0...150_000))
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        // (A line the kill cut short is left out.)
        let printed = String(decoding: try Data(contentsOf: stdoutPath), as: UTF8.self).split(separator: "\n")
            .compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .compactMap { ($0["saved"] as? [String: Any])?["id"] as? String }
        #expect(!printed.isEmpty)
        let export = try Binary.run(["crm", "export", "--store", store, "--object", "Task"]).stdout
        #expect(printed.allSatisfy { export.contains($0) })
    }
}
