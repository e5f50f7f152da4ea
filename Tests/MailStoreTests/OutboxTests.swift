import Foundation
import GRDB
import MailEngine
import MailMessage
@testable import MailStore
import Testing

/// The retry outbox: one row per parked message, oldest first, atomic, and readable again
/// exactly as it was parked.
@Suite struct OutboxTests {
    func parked(_ key: String, reason: String = "salesforce: 503 Service Unavailable", bytes: [UInt8]? = nil,
                context: ProcessContext = ProcessContext(mailbox: "ann@contoso.com")) -> ParkedSave {
        ParkedSave(messageKey: key, message: bytes ?? Array("Message-ID: \(key)\r\nFrom: bob@fabrikam.com\r\n\r\nbody\r\n".utf8),
                   context: context, backend: "salesforce", reason: reason)
    }

    @Test func entriesAreListedOldestFirstAndRemoved() throws {
        let store = try temporaryStore()
        for key in ["<c@x>", "<a@x>", "<b@x>"] { try store.park(parked(key)) }
        #expect(try store.outboxEntries().map(\.messageKey) == ["<c@x>", "<a@x>", "<b@x>"])
        #expect(try store.outboxEntries(limit: 2).map(\.messageKey) == ["<c@x>", "<a@x>"])
        try store.removeFromOutbox(messageKey: "<a@x>")
        try store.removeFromOutbox(messageKey: "<not-there@x>")
        #expect(try store.outboxEntries().map(\.messageKey) == ["<c@x>", "<b@x>"])
        #expect(try store.outboxCounts() == (2, 0))
        let first = try #require(try store.outboxEntries().first)
        #expect(first.backend == "salesforce")
        #expect(first.reason == "salesforce: 503 Service Unavailable")
        #expect(first.state == .parked)
        #expect(first.attempts == 1)
        #expect(first.parkedAt == first.lastAttemptAt)
        #expect(first.parkedAt.hasSuffix("Z") || first.parkedAt.hasSuffix("+00:00"))
    }

    /// `retry --list` and `retry` read the entries without their bytes (a backlog of 20 MB
    /// messages took twice the outbox's size in memory); each message is read on its own.
    @Test func entriesAreListedWithoutTheirBytesAndEachMessageReadAlone() throws {
        let store = try temporaryStore()
        let big = [UInt8](repeating: 0x61, count: 300_000)
        try store.park(parked("<a@x>", bytes: big))
        try store.park(parked("<b@x>"))
        let listed = try store.outboxEntries(withMessages: false)
        #expect(listed.map(\.messageKey) == ["<a@x>", "<b@x>"])
        #expect(listed.allSatisfy { $0.message.isEmpty })
        #expect(listed.map(\.size) == [300_000, parked("<b@x>").message.count])
        #expect(try store.outboxEntries().map(\.size) == listed.map(\.size))
        #expect(try store.outboxEntry(messageKey: "<a@x>")?.message == big)
        #expect(try store.outboxEntry(messageKey: "<a@x>")?.size == 300_000)
        #expect(try store.outboxEntry(messageKey: "<gone@x>") == nil)
    }

    @Test func parkingAMessageAgainUpdatesItsOneRowInPlace() throws {
        let store = try temporaryStore()
        try store.park(parked("<a@x>"))
        try store.park(parked("<b@x>"))
        let before = try #require(try store.outboxEntries().first)
        try store.park(parked("<a@x>", reason: "salesforce: REQUEST_LIMIT_EXCEEDED", bytes: Array("new bytes".utf8)))
        let entries = try store.outboxEntries()
        #expect(entries.map(\.messageKey) == ["<a@x>", "<b@x>"]) // its place in line is kept
        #expect(entries[0].reason == "salesforce: REQUEST_LIMIT_EXCEEDED")
        #expect(entries[0].message == Array("new bytes".utf8))
        #expect(entries[0].attempts == 2)
        #expect(entries[0].parkedAt == before.parkedAt)
        #expect(try Int(text(store, "SELECT count(*) FROM outbox") ?? "") == 2)
    }

    @Test func theBytesAndTheContextComeBackAsTheyWereParked() throws {
        let store = try temporaryStore()
        // Not UTF-8, NUL, bare CR: the bytes are a BLOB, never text.
        let bytes: [UInt8] = Array("Subject: caf".utf8) + [0xE9, 0x00, 0x0D] + Array("\r\n\r\n\u{1E}body".utf8) + [0xFF, 0xFE]
        var context = ProcessContext(mailbox: "ann@contoso.com", folder: "Inbox/Deals \"2026\"", categories: ["Salesforce", "VIP"],
                                     trigger: "button", selection: [("contact", "0035e00000Bob01"), ("case", "5005e00000Cas01")],
                                     folderRole: "inbox")
        context.wholeThread = true
        try store.park(parked("<ctx@x>", bytes: bytes, context: context))
        let entry = try #require(try store.outboxEntries().first)
        #expect(entry.message == bytes)
        let back = try entry.context()
        #expect(back.mailbox == context.mailbox)
        #expect(back.folder == context.folder)
        #expect(back.categories == context.categories)
        #expect(back.trigger == "button")
        #expect(back.selection.map { "\($0.kind)=\($0.id)" } == ["contact=0035e00000Bob01", "case=5005e00000Cas01"])
        #expect(back.folderRole == "inbox")
        #expect(back.wholeThread)
        #expect(entry.contextJSON.contains("\"version\":1"))
    }

    @Test func anAttemptIsCountedAndAPermanentFailureIsKeptButNotRetried() throws {
        let store = try temporaryStore()
        try store.park(parked("<a@x>"))
        try store.park(parked("<b@x>"))
        try store.recordOutboxAttempt(messageKey: "<a@x>", reason: "salesforce: connection reset", failed: false)
        try store.recordOutboxAttempt(messageKey: "<b@x>", reason: "salesforce: FIELD_CUSTOM_VALIDATION_EXCEPTION on Task.Subject", failed: true)
        try store.recordOutboxAttempt(messageKey: "<gone@x>", reason: "x", failed: true) // saved by another retry: nothing to do
        #expect(try store.outboxEntries().map(\.messageKey) == ["<a@x>"])
        let all = try store.outboxEntries(includingFailed: true)
        #expect(all.map(\.messageKey) == ["<a@x>", "<b@x>"])
        #expect(all.map(\.attempts) == [2, 2])
        #expect(all.map(\.state) == [.parked, .failed])
        #expect(all[0].reason == "salesforce: connection reset")
        #expect(try store.outboxCounts() == (1, 1))
        // Retried on purpose and failing only for the moment now: back in line.
        try store.recordOutboxAttempt(messageKey: "<b@x>", reason: "salesforce: 503", failed: false)
        #expect(try store.outboxCounts() == (2, 0))
        try store.recordOutboxAttempt(messageKey: "<b@x>", reason: "refused", failed: true)
        // Parked again (a new `process --apply` of the same message): back in line too.
        try store.park(parked("<b@x>"))
        #expect(try store.outboxCounts() == (2, 0))
    }

    @Test func aDamagedContextIsAnErrorNamingTheEntry() throws {
        let store = try temporaryStore()
        try store.park(parked("<bad@x>"))
        for (json, words) in [("{not json", "is not a JSON object"), (#"{"version":1,"mailbox":3}"#, "is not a version 1 context"),
                              (#"{"mailbox":"a@x"}"#, "has no version"),
                              (#"{"version":1,"mailbox":"a@x","folder":"Inbox","categories":[],"trigger":"sometimes","selection":[],"whole_thread":false}"#,
                               "unknown trigger")] {
            try store.database.write { try $0.execute(sql: "UPDATE outbox SET context = ?", arguments: [json]) }
            let entry = try #require(try store.outboxEntries().first)
            let error = storeError { _ = try entry.context() }
            #expect(error?.kind == .damaged)
            #expect(error?.message.hasPrefix("outbox entry <bad@x>: its context ") == true, "\(error?.message ?? "")")
            #expect(error?.message.contains(words) == true, "\(error?.message ?? "")")
        }
        try store.database.write { try $0.execute(sql: #"UPDATE outbox SET context = '{"version":7}'"#) }
        let newer = storeError { _ = try store.outboxEntries().first?.context() }
        #expect(newer?.kind == .newer)
        #expect(newer?.message.contains("<bad@x>") == true)
    }

    @Test func parkingIsAtomic() throws {
        let store = try temporaryStore()
        try store.park(parked("<a@x>", reason: "first"))
        // No room for a 1 MiB message: the disk is full, and the row is as it was.
        try store.database.writeWithoutTransaction { db in
            let count = try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0
            _ = try Int.fetchOne(db, sql: "PRAGMA max_page_count = \(count + 2)")
        }
        let big = [UInt8](repeating: 0x61, count: 1 << 20)
        let error = storeError { try store.park(parked("<a@x>", reason: "second", bytes: big)) }
        #expect(error?.kind == .temporary)
        #expect(error?.message.contains("<a@x>") == true)
        let other = storeError { try store.park(parked("<b@x>", bytes: big)) }
        #expect(other?.kind == .temporary)
        let entries = try store.outboxEntries()
        #expect(entries.map(\.messageKey) == ["<a@x>"])
        #expect(entries.first?.reason == "first")
        #expect(entries.first?.attempts == 1)
    }

    /// A store of format 2 (before the outbox) keeps every record and ledger row and gains the
    /// table (and format 4's index of Contacts by domain) when opened, also by a command that
    /// only reads: read as it is, it would find no Account by its Contacts' domain.
    @Test func aFormat2StoreGainsTheOutbox() throws {
        let path = try temporaryFolder().appendingPathComponent("v2.sqlite").path
        do {
            let queue = try DatabaseQueue(path: path)
            try queue.write { db in
                try db.execute(sql: """
                    CREATE TABLE record (id TEXT PRIMARY KEY NOT NULL, object TEXT NOT NULL, fields TEXT NOT NULL) STRICT, WITHOUT ROWID;
                    CREATE INDEX record_object ON record(object);
                    CREATE TABLE lookup (kind TEXT NOT NULL, key TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (kind, key, id)) STRICT, WITHOUT ROWID;
                    CREATE INDEX lookup_id ON lookup(id);
                    CREATE TABLE ledger (message_key TEXT PRIMARY KEY NOT NULL, record_id TEXT NOT NULL, object TEXT NOT NULL,
                        mailbox TEXT NOT NULL, saved_at TEXT NOT NULL) STRICT, WITHOUT ROWID;
                    CREATE TABLE sequence (prefix TEXT PRIMARY KEY NOT NULL, next INTEGER NOT NULL) STRICT, WITHOUT ROWID;
                    INSERT INTO record VALUES ('0035e00000Old01', 'Contact', '{"Email":"old@x.example","LastName":"Old"}');
                    INSERT INTO lookup VALUES ('email', 'old@x.example', '0035e00000Old01');
                    INSERT INTO ledger VALUES ('m@x', '0035e00000Old01', 'Task', 'ann@contoso.com', '2026-01-01');
                    INSERT INTO sequence VALUES ('00T', 2);
                    PRAGMA application_id = 1297310070;
                    PRAGMA user_version = 2;
                    """)
            }
        }
        let reader = try CRMStore(path: path, access: .readOnly)
        #expect(try reader.contacts(email: "old@x.example").map(\.id) == ["0035e00000Old01"])
        #expect(try reader.outboxEntries().isEmpty)
        #expect(try reader.outboxCounts() == (0, 0))
        #expect(try text(reader, "PRAGMA user_version") == String(CRMStore.formatVersion))

        let store = try CRMStore(path: path)
        #expect(try text(store, "PRAGMA user_version") == String(CRMStore.formatVersion))
        #expect(try store.contacts(email: "old@x.example").first?.fields == ["Email": "old@x.example", "LastName": "Old"])
        #expect(try store.ledgerCount() == 1)
        #expect(try store.savedRecord(messageID: "<m@x>") == "0035e00000Old01")
        #expect(try text(store, "SELECT next FROM sequence WHERE prefix = '00T'") == "2")
        try store.park(parked("<new@x>"))
        #expect(try store.outboxEntries().map(\.messageKey) == ["<new@x>"])
        // And the upgraded store opens as a current one.
        #expect(try CRMStore(path: path, check: .always).outboxCounts() == (1, 0))
    }
}

/// The ledger of saves made in another CRM (Salesforce), kept per backend.
@Suite struct RemoteLedgerTests {
    @Test func aRemoteSaveIsNotedOncePerBackendAndIsNoLocalRecord() throws {
        let store = try temporaryStore()
        let production = "salesforce https://login.salesforce.com sync@contoso.com"
        let sandbox = "salesforce https://test.salesforce.com sync@contoso.com"
        #expect(try store.remoteSave(backend: production, messageKey: "a@x") == nil)
        try store.noteRemoteSave(backend: production, messageKey: "a@x", recordID: "02s5e0000000001AAA", object: "EmailMessage", mailbox: "Ann@Contoso.com")
        // The first save wins; a sandbox never answers for production.
        try store.noteRemoteSave(backend: production, messageKey: "a@x", recordID: "02s5e0000000002AAA", object: "EmailMessage", mailbox: "ann@contoso.com")
        #expect(try store.remoteSave(backend: production, messageKey: "a@x") == "02s5e0000000001AAA")
        #expect(try store.remoteSave(backend: sandbox, messageKey: "a@x") == nil)
        // Not a record of this store: reconcile does not list it as deleted.
        #expect(try store.reconcile(remove: false).isEmpty)
        #expect(try store.savedRecord(messageID: "a@x") == nil)
    }
}
