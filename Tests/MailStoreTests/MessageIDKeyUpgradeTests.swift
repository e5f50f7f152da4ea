import Foundation
import GRDB
import MailEngine
@testable import MailStore
import Testing

/// Format 4 to 5: keys made from over-long Message-IDs, or from ids with control characters,
/// become the keys `MessageIDKey` makes now, so a message saved before the upgrade is still
/// found saved after it.
@Suite struct MessageIDKeyUpgradeTests {
    static let longID = "<" + String(repeating: "Old-long-id.", count: 25) + "@Mail.Example.COM>"

    /// The key format 4 made: brackets off, domain lower-cased, nothing shortened.
    static let oldLongKey = String(repeating: "Old-long-id.", count: 25) + "@mail.example.com"

    @Test func aFormat4StoresKeysAreFinishedWhenOpened() throws {
        #expect(Self.oldLongKey.utf16.count > MessageIDKey.longestKept)
        let store = try temporaryStore()
        try store.add([CRMRecord(object: "Task", id: "00T000000000001", fields: ["Subject": "long"]),
                       CRMRecord(object: "Task", id: "00T000000000002", fields: ["Subject": "clean"]),
                       CRMRecord(object: "Task", id: "00T000000000003", fields: ["Subject": "control"])])
        let path = store.path
        try store.database.write { db in
            let ledger = "INSERT INTO ledger (message_key, record_id, object, mailbox, saved_at) VALUES (?, ?, 'Task', 'ann@contoso.com', '2026-11-01T00:00:00Z')"
            try db.execute(sql: ledger, arguments: [Self.oldLongKey, "00T000000000001"])
            // Two ids that differ by a control character only: one key now, the row there first stays.
            try db.execute(sql: ledger, arguments: ["ab@example.com", "00T000000000002"])
            try db.execute(sql: ledger, arguments: ["a\u{1}b@example.com", "00T000000000003"])
            try db.execute(sql: "INSERT INTO lookup (kind, key, id) VALUES ('message_identifier', ?, '00T000000000001')", arguments: [Self.oldLongKey])
            try db.execute(sql: "INSERT INTO remote_ledger (backend, message_key, record_id, object, mailbox, saved_at) VALUES ('salesforce', ?, '00T5e000001', 'Task', 'ann@contoso.com', 'x')",
                           arguments: ["x\u{7F}y@example.com"])
            try db.execute(sql: "PRAGMA user_version = 4")
        }
        try store.database.close()

        // A command that only reads upgrades it (it may write the file), then reads it.
        let reader = try CRMStore(path: path, access: .readOnly)
        #expect(try reader.database.read { try Int.fetchOne($0, sql: "PRAGMA user_version") } == CRMStore.formatVersion)
        #expect(try reader.savedRecord(messageID: Self.longID) == "00T000000000001")
        #expect(try reader.savedRecord(messageID: "<ab@example.com>") == "00T000000000002")
        let keys = try reader.database.read { try String.fetchAll($0, sql: "SELECT message_key FROM ledger ORDER BY message_key") }
        #expect(keys == ["ab@example.com", MessageIDKey.normalize(Self.longID)].sorted())
        let lookup = try reader.database.read { try String.fetchAll($0, sql: "SELECT key FROM lookup WHERE kind = 'message_identifier'") }
        #expect(lookup == [MessageIDKey.normalize(Self.longID)])
        let remote = try reader.database.read { try String.fetchAll($0, sql: "SELECT message_key FROM remote_ledger") }
        #expect(remote == ["xy@example.com"])
    }
}
