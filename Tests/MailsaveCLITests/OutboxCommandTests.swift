import ArgumentParser
import Foundation
import MailEngine
import MailMessage
import MailRules
import MailStore
import Testing
@testable import mailsave

/// A fresh store with the sample CRM, in a folder of its own.
func sampleStore() throws -> CRMStore {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mailsave-outbox-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let store = try CRMStore(path: folder.appendingPathComponent("crm.sqlite").path)
    for object in ["Account", "Contact", "Lead", "Opportunity", "Case", "User", "EmailMessage", "EmailMessageRelation", "Task"] {
        let bytes = try [UInt8](Data(contentsOf: Binary.packageRoot.appendingPathComponent("examples/crm/\(object).csv")))
        _ = try store.importCSV(bytes: bytes, object: object)
    }
    return store
}

func removeStore(_ store: CRMStore) {
    try? FileManager.default.removeItem(atPath: (store.path as NSString).deletingLastPathComponent)
}

/// The sample customer question (saved as a Task by the shipped pack) under a Message-ID of its own.
func customerQuestion(_ messageID: String) throws -> [UInt8] {
    let original = try String(contentsOf: Binary.packageRoot.appendingPathComponent("examples/messages/01-customer-question.eml"), encoding: .utf8)
    return Array(original.replacing("<CAB1234567@mail.fabrikam.com>", with: messageID).utf8)
}

func shippedRules() throws -> RulePack {
    // No compiled-pack cache: an in-process test must not write the user's.
    switch try Linter.load(Binary.packageRoot.appendingPathComponent("rules").path) {
    case .success(let pack): return pack
    case .failure(let result): throw CommandFailure(status: .badRules, message: LintReport.text(result))
    }
}

/// Tasks in the store carrying `messageID`.
func tasks(_ store: CRMStore, messageID: String) throws -> Int {
    try store.records(object: "Task").filter { $0.fields.values.contains(messageID) }.count
}

/// A writer that fails with the errors it is given, in order, then saves into the store.
final class FlakyWriter: ActivityWriter, @unchecked Sendable {
    private let lock = NSLock()
    private var failures: [CRMError]
    private(set) var calls = 0
    let store: CRMStore

    init(_ store: CRMStore, failing failures: [CRMError]) {
        self.store = store
        self.failures = failures
    }

    func write(_ decision: Decision, message: Message, mailbox: String) throws(CRMError) -> SaveResult? {
        let failure: CRMError? = lock.withLock {
            calls += 1
            return failures.isEmpty ? nil : failures.removeFirst()
        }
        if let failure { throw failure }
        return try store.write(decision, message: message, mailbox: mailbox)
    }
}

/// An outbox that cannot take anything (its disk is full).
struct FullOutbox: SaveOutbox {
    func park(_ save: ParkedSave) throws(StoreError) { throw StoreError(.temporary, message: "outbox.sqlite: the disk is full") }
    func outboxEntries(limit: Int?, includingFailed: Bool, withMessages: Bool) throws(StoreError) -> [OutboxEntry] { [] }
    func outboxEntry(messageKey: String) throws(StoreError) -> OutboxEntry? { nil }
    func removeFromOutbox(messageKey: String) throws(StoreError) {}
    func recordOutboxAttempt(messageKey: String, reason: String, failed: Bool) throws(StoreError) {}
    func outboxCounts() throws(StoreError) -> (parked: Int, failed: Int) { (0, 0) }
}

/// MessageDecider parks a save its writer cannot do now, and only then.
@Suite struct ParkingTests {
    let unavailable = CRMError(.retryable, "salesforce: 503 Service Unavailable (composite)")

    func decider(_ store: CRMStore, writer: ActivityWriter, outbox: SaveOutbox?, context: ProcessContext = ProcessContext(mailbox: "ann@contoso.com")) throws -> MessageDecider {
        MessageDecider(pack: try shippedRules(), directory: store, context: context, writer: writer, outbox: outbox, backend: .salesforce)
    }

    @Test func aRetryableFailureParksTheMessageBytesAndContext() throws {
        let store = try sampleStore()
        defer { removeStore(store) }
        var context = ProcessContext(mailbox: "ann@contoso.com", folder: "Inbox/Deals", categories: ["CRM"], trigger: "category")
        context.wholeThread = true
        let writer = FlakyWriter(store, failing: [unavailable])
        let bytes = try customerQuestion("<park-1@mail.fabrikam.com>")
        let outcome = try decider(store, writer: writer, outbox: store, context: context).run(bytes: bytes, name: "park-1.eml")
        #expect(outcome.decision.verdict == .save)
        #expect(outcome.saved == nil)
        #expect(outcome.parked == unavailable.message)
        #expect(outcome.json(applying: true).serialized(pretty: false)
            .hasSuffix(#","saved":{"id":null,"created":false,"parked":"salesforce: 503 Service Unavailable (composite)"}}"#))
        #expect(outcome.savedText == "parked: salesforce: 503 Service Unavailable (composite); `mailsave retry` saves it later")
        let entry = try #require(try store.outboxEntries().first)
        #expect(entry.messageKey == "park-1@mail.fabrikam.com")
        #expect(entry.message == bytes)
        #expect(entry.backend == "salesforce")
        #expect(entry.reason == unavailable.message)
        let parkedContext = try entry.context()
        #expect(parkedContext.folder == "Inbox/Deals")
        #expect(parkedContext.categories == ["CRM"])
        #expect(parkedContext.trigger == "category")
        #expect(parkedContext.wholeThread)
        #expect(try tasks(store, messageID: "<park-1@mail.fabrikam.com>") == 0)
    }

    @Test func aPermanentFailureIsNotParked() throws {
        let store = try sampleStore()
        defer { removeStore(store) }
        let refused = CRMError(.permanent, "salesforce: Task.Subject: STRING_TOO_LONG")
        let writer = FlakyWriter(store, failing: [refused])
        #expect(throws: refused) { try decider(store, writer: writer, outbox: store).run(bytes: try customerQuestion("<perm@x.example>"), name: "p.eml") }
        #expect(try store.outboxEntries(includingFailed: true).isEmpty)
        #expect(CommandFailure(refused).status == .couldNotRun)
    }

    @Test func withoutAnOutboxARetryableFailureStaysExit75() throws {
        let store = try sampleStore()
        defer { removeStore(store) }
        let writer = FlakyWriter(store, failing: [unavailable])
        #expect(throws: unavailable) { try decider(store, writer: writer, outbox: nil).run(bytes: try customerQuestion("<no-outbox@x.example>"), name: "n.eml") }
        #expect(CommandFailure(unavailable).status == .temporary)
        #expect(try store.outboxEntries().isEmpty)
    }

    @Test func anOutboxThatCannotTakeTheSaveLeavesTheErrorRetryable() throws {
        let store = try sampleStore()
        defer { removeStore(store) }
        let writer = FlakyWriter(store, failing: [unavailable])
        do {
            _ = try decider(store, writer: writer, outbox: FullOutbox()).run(bytes: try customerQuestion("<full@x.example>"), name: "f.eml")
            Issue.record("no error")
        } catch let error as CRMError {
            #expect(error.isRetryable)
            #expect(error.message == "salesforce: 503 Service Unavailable (composite); nor could the save be parked: outbox.sqlite: the disk is full")
        }
    }

    @Test func aMessageNotToBeSavedNeverReachesTheWriter() throws {
        let store = try sampleStore()
        defer { removeStore(store) }
        let writer = FlakyWriter(store, failing: [unavailable])
        let bytes = try [UInt8](Data(contentsOf: Binary.packageRoot.appendingPathComponent("examples/messages/02-internal-only.eml")))
        let outcome = try decider(store, writer: writer, outbox: store).run(bytes: bytes, name: "02.eml")
        #expect(outcome.decision.verdict != .save)
        #expect(outcome.parked == nil)
        #expect(writer.calls == 0)
        #expect(try store.outboxEntries().isEmpty)
    }

    /// Parked, then retried while the writer still fails (and says every save would), then
    /// retried when it works: saved once, and the outbox is empty.
    @Test func retryDrainsWhatWasParkedAndStopsWhenTheAllowanceIsUsedUp() throws {
        let store = try sampleStore()
        defer { removeStore(store) }
        let ids = (1...3).map { "<drain-\($0)@mail.fabrikam.com>" }
        let parking = FlakyWriter(store, failing: Array(repeating: unavailable, count: 3))
        for id in ids { _ = try decider(store, writer: parking, outbox: store).run(bytes: try customerQuestion(id), name: id) }
        #expect(try store.outboxCounts() == (3, 0))

        let allowance = CRMError(.retryable, "salesforce: REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded", stopsBatch: true)
        let exhausted = FlakyWriter(store, failing: [allowance])
        let retry = try Retry.parse(["--rules", Binary.packageRoot.appendingPathComponent("rules").path, "--store", store.path])
        let pack = try shippedRules()
        // An entry whose save fails again reports the decision it made, and why it is still parked.
        let first = try #require(try store.outboxEntries().first)
        let again = retry.retry(first, pack: pack) { _ throws(CommandFailure) in RetryBackend(directory: store, writer: FlakyWriter(store, failing: [unavailable])) }
        guard case .parked(let outcome?, let reason, false) = again else { Issue.record("\(again)"); return }
        #expect(reason == unavailable.message)
        #expect(outcome.decision.verdict == .save)
        let line = retry.line(for: first, again)
        #expect(line.hasPrefix(#"{"message_key":"drain-1@mail.fabrikam.com","message_id":"<drain-1@mail.fabrikam.com>","verdict":"save""#))
        #expect(line.hasSuffix(#""saved":{"id":null,"created":false,"parked":"salesforce: 503 Service Unavailable (composite)"}}"#))
        do {
            try retry.drain(store, pack: pack) { _, store in RetryBackend(directory: store, writer: exhausted) }
            Issue.record("exit 0 with entries left")
        } catch let code as ExitCode {
            #expect(code.rawValue == ExitStatus.parked.rawValue)
        }
        #expect(exhausted.calls == 1) // stopped at the first: no attempt spent on the others
        let entries = try store.outboxEntries()
        #expect(entries.map(\.attempts) == [2, 1, 1])
        #expect(entries.first?.reason == allowance.message)

        let working = FlakyWriter(store, failing: [])
        try retry.drain(store, pack: pack) { _, store in RetryBackend(directory: store, writer: working) }
        #expect(try store.outboxCounts() == (0, 0))
        for id in ids { #expect(try tasks(store, messageID: id) == 1) }
    }
}

/// `mailsave retry` end to end: the binary draining a store's outbox.
@Suite(.serialized) struct RetryCommandTests {
    func park(_ store: CRMStore, _ id: String, bytes: [UInt8]? = nil, backend: String = "store") throws {
        try store.park(ParkedSave(messageKey: MessageIDKey.normalize(id), message: bytes ?? customerQuestion(id),
                                  context: ProcessContext(mailbox: "ann@contoso.com"), backend: backend, reason: "test: parked by hand"))
    }

    func retry(_ store: CRMStore, _ extra: [String] = []) throws -> Binary.Result {
        try Binary.run(["retry", "--rules", "rules", "--store", store.path] + extra)
    }

    func objects(_ output: String) throws -> [[String: Any]] {
        try output.split(separator: "\n").map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
    }

    @Test func anEmptyOutboxListsNothingAndDrainsToExit0() throws {
        let store = try sampleStore()
        defer { removeStore(store) }
        let list = try retry(store, ["--list"])
        #expect(list.status == 0, "\(list.stderr)")
        #expect(list.stdout == #"{"summary":{"parked":0,"failed":0}}"# + "\n")
        let text = try retry(store, ["--list", "--format", "text"])
        #expect(text.stdout == "0 parked, 0 failed\n")
        let drain = try retry(store)
        #expect(drain.status == 0, "\(drain.stderr)")
        let summary = try #require(try objects(drain.stdout).last?["summary"] as? [String: Any])
        #expect(summary["entries"] as? Int == 0)
        // Without a store there is no outbox, and none is created.
        let missing = store.path + ".missing"
        let none = try Binary.run(["retry", "--rules", "rules", "--store", missing])
        #expect(none.status == 3)
        #expect(none.stderr.contains("no store there"))
        #expect(!FileManager.default.fileExists(atPath: missing))
    }

    @Test func parkedSavesAreSavedOnceAndLeaveTheOutbox() throws {
        let store = try sampleStore()
        defer { removeStore(store) }
        let ids = (1...3).map { "<retry-\($0)@mail.fabrikam.com>" }
        for id in ids { try park(store, id) }
        let list = try retry(store, ["--list"])
        let listed = try objects(list.stdout)
        #expect(listed.dropLast().map { $0["message_key"] as? String } == ids.map(MessageIDKey.normalize))
        #expect(listed.first?["state"] as? String == "parked")
        #expect(listed.first?["reason"] as? String == "test: parked by hand")
        #expect(listed.first?["mailbox"] as? String == "ann@contoso.com")

        let drain = try retry(store)
        #expect(drain.status == 0, "\(drain.stderr)")
        let lines = try objects(drain.stdout)
        #expect(lines.count == 4)
        for (line, id) in zip(lines, ids) {
            #expect(line["message_key"] as? String == MessageIDKey.normalize(id))
            #expect(line["verdict"] as? String == "save")
            #expect((line["saved"] as? [String: Any])?["created"] as? Bool == true)
        }
        let summary = try #require(lines.last?["summary"] as? [String: Any])
        #expect((summary["saved"] as? [String: Any])?["created"] as? Int == 3)
        #expect((summary["outbox"] as? [String: Any])?["parked"] as? Int == 0)
        for id in ids { #expect(try tasks(store, messageID: id) == 1) }
        #expect(try store.outboxCounts() == (0, 0))

        // Parked again after it was saved (a redelivery): found in the ledger, not saved twice.
        try park(store, ids[0])
        let again = try retry(store, ["--format", "text"])
        #expect(again.status == 0)
        #expect(again.stdout.hasPrefix("retry-1@mail.fabrikam.com  00T"))
        #expect(again.stdout.contains("(already saved)"))
        #expect(try tasks(store, messageID: ids[0]) == 1)
    }

    @Test func entriesLeftParkedExit11AndFailedOnesExit3() throws {
        let store = try sampleStore()
        defer { removeStore(store) }
        try park(store, "<first@mail.fabrikam.com>")
        try park(store, "<second@mail.fabrikam.com>")
        let one = try retry(store, ["--limit", "1"])
        #expect(one.status == 11, "\(one.stderr)")
        #expect(try objects(one.stdout).first?["message_key"] as? String == "first@mail.fabrikam.com")
        #expect(try store.outboxEntries().map(\.messageKey) == ["second@mail.fabrikam.com"])

        // Bytes that are not a message fail for good: kept, marked failed, listed, not retried.
        try park(store, "<broken@x.example>", bytes: Array("// Not an RFC-822 Document".utf8))
        let failed = try retry(store)
        #expect(failed.status == 3)
        let lines = try objects(failed.stdout)
        let error = try #require(lines.first { $0["message_key"] as? String == "broken@x.example" }?["error"] as? [String: Any])
        #expect(error["kind"] as? String == "failed")
        #expect((error["message"] as? String)?.contains("not an RFC 5322 message") == true)
        let list = try retry(store, ["--list", "--format", "text"])
        #expect(list.stdout.contains("broken@x.example"))
        #expect(list.stdout.contains("failed"))
        #expect(list.stdout.hasSuffix("0 parked, 1 failed\n"))
        let stillFailed = try retry(store)
        #expect(stillFailed.status == 3)
        #expect(try store.outboxEntries(includingFailed: true).first?.attempts == 2) // not tried again

        #expect(try retry(store, ["--drop", "not-there@x"]).status == 3)
        let dropped = try retry(store, ["--drop", "broken@x.example"])
        #expect(dropped.status == 0)
        #expect(dropped.stdout == "removed broken@x.example\n")
        #expect(try retry(store).status == 0)
    }

    @Test func anEntryForABackendThatCannotBeOpenedIsKeptAndSaysWhy() throws {
        let store = try sampleStore()
        defer { removeStore(store) }
        try park(store, "<sf@mail.fabrikam.com>", backend: "salesforce")
        try park(store, "<local@mail.fabrikam.com>")
        // No MAILSAVE_SF_* variables in the test environment: Salesforce is not configured.
        let result = try retry(store)
        #expect(result.status == 3)
        #expect(result.stderr.contains("the Salesforce connection is not configured"), "\(result.stderr)")
        // The store's own entry is saved all the same; the other waits, untouched.
        #expect(try tasks(store, messageID: "<local@mail.fabrikam.com>") == 1)
        let left = try store.outboxEntries()
        #expect(left.map(\.messageKey) == ["sf@mail.fabrikam.com"])
        #expect(left.first?.attempts == 1)
    }

    @Test func twoRetriesAtOnceSaveEachMessageOnce() throws {
        let store = try sampleStore()
        defer { removeStore(store) }
        let ids = (1...8).map { "<together-\($0)@mail.fabrikam.com>" }
        for id in ids { try park(store, id) }
        let runs = (0..<2).map { _ in
            let process = Foundation.Process()
            process.executableURL = URL(fileURLWithPath: Binary.path)
            process.arguments = ["retry", "--rules", "rules", "--store", store.path]
            process.currentDirectoryURL = Binary.packageRoot
            process.environment = Binary.environment
            process.standardOutput = Pipe()
            process.standardError = Pipe()
            return process
        }
        for run in runs { try run.run() }
        var created = 0
        for run in runs {
            let output = (run.standardOutput as? Pipe)?.fileHandleForReading.readDataToEndOfFile() ?? Data()
            run.waitUntilExit()
            #expect(run.terminationStatus == 0)
            for line in try objects(String(decoding: output, as: UTF8.self)) where (line["saved"] as? [String: Any])?["created"] as? Bool == true {
                created += 1
            }
        }
        #expect(created == ids.count)
        for id in ids { #expect(try tasks(store, messageID: id) == 1, "\(id)") }
        #expect(try store.outboxCounts() == (0, 0))
    }

    @Test func aParkedDecisionMatchesTheDecisionSchema() throws {
        let store = try sampleStore()
        defer { removeStore(store) }
        let writer = FlakyWriter(store, failing: [CRMError(.retryable, "salesforce: 503")])
        let decider = MessageDecider(pack: try shippedRules(), directory: store, context: ProcessContext(mailbox: "ann@contoso.com"),
                                     writer: writer, outbox: store, backend: .salesforce)
        let parked = try decider.run(bytes: try customerQuestion("<schema@mail.fabrikam.com>"), name: "s.eml")
        var keyed = parked.json(applying: true)
        if case .object(let members) = keyed { keyed = .object([("message_key", .string("schema@mail.fabrikam.com"))] + members) }
        let saved = try decider.run(bytes: try customerQuestion("<schema@mail.fabrikam.com>"), name: "s.eml")
        let lines = [keyed, saved.json(applying: true)].map { $0.serialized(pretty: false) }.joined(separator: "\n") + "\n"
        let check = try Binary.launch("/usr/bin/env", ["python3", "Tests/MailsaveCLITests/Reference/validate_decisions.py"], stdin: Data(lines.utf8))
        #expect(check.status == 0, "\(check.stdout)")
        #expect(check.stdout.contains("2 decisions, 0 invalid"))
    }
}

/// `process` and `batch` say "parked" in their exit status and summary.
@Suite struct ParkedExitStatusTests {
    func parkingDecider(_ store: CRMStore, failures: Int) throws -> MessageDecider {
        MessageDecider(pack: try shippedRules(), directory: store, context: ProcessContext(mailbox: "ann@contoso.com"),
                       writer: FlakyWriter(store, failing: Array(repeating: CRMError(.retryable, "salesforce: 503"), count: failures)),
                       outbox: store, backend: .salesforce)
    }

    func exitStatus(_ body: () throws -> Void) -> Int32? {
        do {
            try body()
            return 0
        } catch let code as ExitCode {
            return code.rawValue
        } catch {
            Issue.record("\(error)")
            return nil
        }
    }

    @Test func processExits11WhenASaveWasParked() throws {
        let store = try sampleStore()
        defer { removeStore(store) }
        let folder = (store.path as NSString).deletingLastPathComponent
        let file = folder + "/parked.eml"
        try Data(try customerQuestion("<exit11@mail.fabrikam.com>")).write(to: URL(fileURLWithPath: file))
        let process = try mailsave.Process.parse(["--mailbox", "ann@contoso.com", "--store", store.path, "--apply", "--format", "table", file])
        #expect(exitStatus { try process.job.runFiles(decider: try parkingDecider(store, failures: 1)) } == ExitStatus.parked.rawValue)
        #expect(try store.outboxCounts() == (1, 0))
        // The same message again, now saved: exit 0.
        #expect(exitStatus { try process.job.runFiles(decider: try parkingDecider(store, failures: 0)) } == 0)
        let savedThread = try mailsave.Process.parse(["--mailbox", "ann@contoso.com", "--store", store.path, "--apply", "--thread", "--format", "table", file,
                                                 "examples/messages/02-internal-only.eml"])
        let other = folder + "/other.eml"
        try Data(try customerQuestion("<exit11-thread@mail.fabrikam.com>")).write(to: URL(fileURLWithPath: other))
        let threadOfNew = try mailsave.Process.parse(["--mailbox", "ann@contoso.com", "--store", store.path, "--apply", "--thread", "--format", "table", other])
        #expect(exitStatus { try savedThread.job.runThread(decider: try parkingDecider(store, failures: 0)) } == 0)
        #expect(exitStatus { try threadOfNew.job.runThread(decider: try parkingDecider(store, failures: 1)) } == ExitStatus.parked.rawValue)
        #expect(try store.outboxEntries().last?.messageKey == "exit11-thread@mail.fabrikam.com")
        #expect(try store.outboxEntries().last?.context().wholeThread == true)
    }

    @Test func batchCountsParkedSaves() {
        var summary = BatchSummary()
        summary.count(RenderedResult(index: 0, line: "", verdict: "save", saved: .parked, bytesRead: 0))
        summary.count(RenderedResult(index: 1, line: "", verdict: "save", saved: .created, bytesRead: 0))
        #expect(summary.parked == 1)
        #expect(summary.worst == nil)
        #expect(summary.json(applying: true).serialized(pretty: false).contains(#""saved":{"created":1,"already_saved":0,"parked":1}"#))
        #expect(summary.text(applying: true).hasSuffix("saved     1 created, 0 already saved, 1 parked (run mailsave retry)"))
    }
}
