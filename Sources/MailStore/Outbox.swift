import Foundation
import GRDB
import MailEngine
import MailMessage

/// The saves that could not be done when they were asked for (a CRM that is down, an org's
/// daily API allowance used up), kept with what is needed to decide them again, until
/// `mailsave retry` does them. A protocol, and a narrow one: the outbox is meant to move to
/// PostgreSQL beside the ledger (`FOR UPDATE SKIP LOCKED`) without its callers changing.
public protocol SaveOutbox: Sendable {
    /// Keeps the message (its bytes as read) to be saved later, in one transaction. Parking a
    /// message already parked replaces its bytes, context, backend and reason and counts one
    /// more attempt: one row per message (its ledger key).
    func park(_ save: ParkedSave) throws(StoreError)
    /// Entries oldest first (the order they were first parked): only those still to be
    /// retried, or with `includingFailed` those that failed for good too. Without
    /// `withMessages` their bytes are left in the store (`message` is empty, `size` says how
    /// large it is): a backlog of large messages is listed, or retried one at a time, in the
    /// memory of one message.
    func outboxEntries(limit: Int?, includingFailed: Bool, withMessages: Bool) throws(StoreError) -> [OutboxEntry]
    /// One entry with its message, read together (a message parked again meanwhile comes
    /// with its own context), or nil when the entry is gone.
    func outboxEntry(messageKey: String) throws(StoreError) -> OutboxEntry?
    /// Forgets an entry (saved, or no longer to be saved). Nothing happens when there is none.
    func removeFromOutbox(messageKey: String) throws(StoreError)
    /// One more attempt that did not save: its reason, and the entry's state from now on:
    /// with `failed` it is not retried again (it stays listed), otherwise it is parked (a
    /// failed entry retried on purpose that now fails only for the moment is back in line).
    /// Nothing happens when the entry is gone (another `retry` saved it meanwhile).
    func recordOutboxAttempt(messageKey: String, reason: String, failed: Bool) throws(StoreError)
    /// How many entries wait to be retried, and how many failed for good.
    func outboxCounts() throws(StoreError) -> (parked: Int, failed: Int)
}

/// What `park` keeps of a message whose save has to wait.
public struct ParkedSave: Sendable {
    /// `MessageIDKey.ledgerKey` of the message: the save-once key, so the outbox and the
    /// ledger always speak of the same message.
    public var messageKey: String
    /// The message as it was read (already within the message size limit). Kept byte for byte:
    /// a message written out again from its parsed form would not be the same message.
    public var message: [UInt8]
    /// The mailbox, folder, categories, trigger and selection it was decided with.
    public var context: ProcessContext
    /// The backend the save was meant for (`store`, `salesforce`): `retry` saves it there.
    public var backend: String
    /// Why it could not be saved: the CRM error's message (never a secret).
    public var reason: String

    public init(messageKey: String, message: [UInt8], context: ProcessContext, backend: String, reason: String) {
        self.messageKey = messageKey
        self.message = message
        self.context = context
        self.backend = backend
        self.reason = reason
    }
}

/// One row of the outbox.
public struct OutboxEntry: Sendable, Equatable {
    public enum State: String, Sendable, Equatable {
        /// Waiting for `mailsave retry`.
        case parked
        /// A retry failed for a reason that trying again will not fix: listed, not retried.
        case failed
    }

    public var messageKey: String
    /// The message's bytes; empty when the entry was read without them.
    public var message: [UInt8]
    /// The message's size in bytes, with or without its bytes read.
    public var size: Int
    /// The context as stored (versioned JSON); `context()` reads it.
    public var contextJSON: String
    public var backend: String
    public var reason: String
    public var state: State
    /// Failed attempts to save it, the one that parked it included.
    public var attempts: Int
    /// ISO 8601, UTC: when it was first parked, and when the last attempt failed.
    public var parkedAt: String
    public var lastAttemptAt: String

    /// The context the message is to be decided again with. A context that cannot be read is
    /// a damaged store, named by the entry, never a guess.
    public func context() throws(StoreError) -> ProcessContext {
        try OutboxContext.decode(contextJSON, messageKey: messageKey)
    }
}

/// The context's JSON: versioned, so a later mailsave can read what an earlier one parked.
enum OutboxContext {
    /// The version written; a higher one was written by a newer mailsave.
    static let version = 1

    struct Selection: Codable {
        var kind: String
        var id: String
    }

    struct Stored: Codable {
        var version: Int
        var mailbox: String
        var folder: String
        var folderRole: String?
        var categories: [String]
        var trigger: String
        var selection: [Selection]
        var wholeThread: Bool

        enum CodingKeys: String, CodingKey {
            case version, mailbox, folder, categories, trigger, selection
            case folderRole = "folder_role"
            case wholeThread = "whole_thread"
        }
    }

    static func encode(_ context: ProcessContext) throws -> String {
        let stored = Stored(version: version, mailbox: context.mailbox, folder: context.folder, folderRole: context.folderRole,
                            categories: context.categories, trigger: context.trigger,
                            selection: context.selection.map { Selection(kind: $0.kind, id: $0.id) }, wholeThread: context.wholeThread)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(stored), as: UTF8.self)
    }

    static func decode(_ json: String, messageKey: String) throws(StoreError) -> ProcessContext {
        func damaged(_ why: String) -> StoreError {
            StoreError(.damaged, message: "outbox entry \(messageKey): its context \(why); the store is damaged (`mailsave retry --drop \(messageKey)` removes the entry)")
        }
        // The version first: a newer mailsave's context may not have this one's fields.
        guard let object = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any] else {
            throw damaged("is not a JSON object")
        }
        guard let found = object["version"] as? Int else { throw damaged("has no version") }
        guard found <= version else {
            throw StoreError(.newer, message: "outbox entry \(messageKey): parked by a newer mailsave (context version \(found); this mailsave reads \(version)); upgrade mailsave")
        }
        let stored: Stored
        do {
            stored = try JSONDecoder().decode(Stored.self, from: Data(json.utf8))
        } catch {
            throw damaged("is not a version \(found) context (\(Self.describe(error)))")
        }
        guard ProcessContext.triggers.contains(stored.trigger) else { throw damaged("names an unknown trigger '\(stored.trigger)'") }
        if let role = stored.folderRole, !ProcessContext.folderRoles.contains(role) { throw damaged("names an unknown folder role '\(role)'") }
        var context = ProcessContext(mailbox: stored.mailbox, folder: stored.folder, categories: stored.categories, trigger: stored.trigger,
                                     selection: stored.selection.map { ($0.kind, $0.id) }, folderRole: stored.folderRole)
        context.wholeThread = stored.wholeThread
        return context
    }

    /// The field a decoding error is about, in a few words.
    static func describe(_ error: Error) -> String {
        switch error as? DecodingError {
        case .keyNotFound(let key, _)?: return "no \(key.stringValue)"
        case .typeMismatch(_, let context)?, .valueNotFound(_, let context)?, .dataCorrupted(let context)?:
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? "unreadable" : "\(path) is not what it should be"
        default: return "unreadable"
        }
    }
}

extension CRMStore: SaveOutbox {
    static let outboxSchema = """
        CREATE TABLE outbox (
            message_key TEXT PRIMARY KEY NOT NULL,
            message BLOB NOT NULL,
            context TEXT NOT NULL,
            backend TEXT NOT NULL,
            reason TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('parked', 'failed')),
            attempts INTEGER NOT NULL,
            parked_at TEXT NOT NULL,
            last_attempt_at TEXT NOT NULL
        ) STRICT;
        CREATE TABLE remote_ledger (
            backend TEXT NOT NULL,
            message_key TEXT NOT NULL,
            record_id TEXT NOT NULL,
            object TEXT NOT NULL,
            mailbox TEXT NOT NULL,
            saved_at TEXT NOT NULL,
            PRIMARY KEY (backend, message_key)
        ) STRICT, WITHOUT ROWID;
        """

    static func now() -> String { MailDate(secondsSinceEpoch: Int64(Date().timeIntervalSince1970), offsetMinutes: 0).iso8601 }

    public func park(_ save: ParkedSave) throws(StoreError) {
        try outboxGuarded("cannot park the save of \(save.messageKey)") {
            let context = try OutboxContext.encode(save.context)
            let now = Self.now()
            try database.writeWithoutTransaction { db in
                try db.inTransaction(.immediate) {
                    // The row keeps its place in line (rowid) and when it was first parked.
                    try db.execute(sql: """
                        INSERT INTO outbox (message_key, message, context, backend, reason, state, attempts, parked_at, last_attempt_at)
                        VALUES (?, ?, ?, ?, ?, 'parked', 1, ?, ?)
                        ON CONFLICT (message_key) DO UPDATE SET message = excluded.message, context = excluded.context,
                            backend = excluded.backend, reason = excluded.reason, state = 'parked', attempts = attempts + 1,
                            last_attempt_at = excluded.last_attempt_at
                        """, arguments: [save.messageKey, Data(save.message), context, save.backend, save.reason, now, now])
                    return .commit
                }
            }
        }
    }

    public func outboxEntries(limit: Int? = nil, includingFailed: Bool = false, withMessages: Bool = true) throws(StoreError) -> [OutboxEntry] {
        try outboxGuarded("cannot read the outbox") {
            try database.read { db in
                // A format 2 store opened read-only is read as it is: it has no outbox yet.
                guard try hasOutbox(db) else { return [] }
                let sql = Self.outboxColumns(withMessages: withMessages) + (includingFailed ? "" : " WHERE state = 'parked'") + " ORDER BY rowid LIMIT ?"
                return try Row.fetchAll(db, sql: sql, arguments: [limit ?? -1]).map { try Self.outboxEntry($0) }
            }
        }
    }

    public func outboxEntry(messageKey: String) throws(StoreError) -> OutboxEntry? {
        try outboxGuarded("cannot read \(messageKey) from the outbox") {
            try database.read { db in
                guard try hasOutbox(db) else { return nil }
                return try Row.fetchOne(db, sql: Self.outboxColumns(withMessages: true) + " WHERE message_key = ?", arguments: [messageKey])
                    .map { try Self.outboxEntry($0) }
            }
        }
    }

    /// The SELECT of `outboxEntry(_:)`'s columns, the message's bytes or none, and its size.
    static func outboxColumns(withMessages: Bool) -> String {
        "SELECT message_key, " + (withMessages ? "message" : "x''") + ", context, backend, reason, state, attempts, parked_at, last_attempt_at, "
            + "length(CAST(message AS BLOB)) FROM outbox"
    }

    public func removeFromOutbox(messageKey: String) throws(StoreError) {
        try outboxGuarded("cannot remove \(messageKey) from the outbox") {
            try database.writeWithoutTransaction { db in
                try db.execute(sql: "DELETE FROM outbox WHERE message_key = ?", arguments: [messageKey])
            }
        }
    }

    public func recordOutboxAttempt(messageKey: String, reason: String, failed: Bool) throws(StoreError) {
        try outboxGuarded("cannot record the attempt to save \(messageKey)") {
            try database.writeWithoutTransaction { db in
                try db.execute(sql: """
                    UPDATE outbox SET reason = ?, attempts = attempts + 1, last_attempt_at = ?,
                        state = CASE WHEN ? THEN 'failed' ELSE 'parked' END
                    WHERE message_key = ?
                    """, arguments: [reason, Self.now(), failed, messageKey])
            }
        }
    }

    public func outboxCounts() throws(StoreError) -> (parked: Int, failed: Int) {
        try outboxGuarded("cannot read the outbox") {
            try database.read { db in
                guard try hasOutbox(db) else { return (0, 0) }
                let parked = try Int.fetchOne(db, sql: "SELECT count(*) FROM outbox WHERE state = 'parked'") ?? 0
                let failed = try Int.fetchOne(db, sql: "SELECT count(*) FROM outbox WHERE state = 'failed'") ?? 0
                return (parked, failed)
            }
        }
    }

    private func hasOutbox(_ db: Database) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'outbox'") == true
    }

    /// An entry from its row; a value of the wrong type is a damaged store, named by the row.
    static func outboxEntry(_ row: Row) throws -> OutboxEntry {
        let key = String.fromDatabaseValue(row[0] as DatabaseValue) ?? "?"
        guard let message = Data.fromDatabaseValue(row[1] as DatabaseValue),
              let context = String.fromDatabaseValue(row[2] as DatabaseValue),
              let backend = String.fromDatabaseValue(row[3] as DatabaseValue),
              let reason = String.fromDatabaseValue(row[4] as DatabaseValue),
              let state = String.fromDatabaseValue(row[5] as DatabaseValue).flatMap(OutboxEntry.State.init(rawValue:)),
              let attempts = Int.fromDatabaseValue(row[6] as DatabaseValue),
              let parkedAt = String.fromDatabaseValue(row[7] as DatabaseValue),
              let lastAttemptAt = String.fromDatabaseValue(row[8] as DatabaseValue),
              let size = Int.fromDatabaseValue(row[9] as DatabaseValue) else {
            throw StoreError(.damaged, message: "outbox entry \(key): a column is not of its type; the store is damaged")
        }
        return OutboxEntry(messageKey: key, message: [UInt8](message), size: size, contextJSON: context, backend: backend, reason: reason,
                           state: state, attempts: attempts, parkedAt: parkedAt, lastAttemptAt: lastAttemptAt)
    }

    /// `guarded`, with its errors typed: everything the outbox does fails as a `StoreError`.
    func outboxGuarded<T>(_ doing: String, _ body: () throws -> T) throws(StoreError) -> T {
        do {
            return try guarded(doing, body)
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(.failed, message: "\(path): \(doing): \(error)")
        }
    }
}
