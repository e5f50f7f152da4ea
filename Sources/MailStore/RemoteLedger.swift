import Foundation
import GRDB
import MailEngine
import MailMessage

/// The save-once ledger of a CRM that is not this store (a Salesforce org): which record each
/// message was saved as there. It is the first of two checks before a remote save (the
/// second is the org's own `MessageIdentifier`), and costs no API call. Rows are kept per
/// backend (`salesforce https://login.salesforce.com sync@contoso.com`), so a sandbox and
/// production never answer for each other, and `ledger reconcile` (which looks for records in
/// this store) never sees them.
extension CRMStore {
    /// The record `backend` saved the message with this ledger key as, if this store saw it saved.
    public func remoteSave(backend: String, messageKey: String) throws -> String? {
        try guarded("cannot read the ledger") {
            try database.read { db in
                try String.fetchOne(db.cachedStatement(sql: "SELECT record_id FROM remote_ledger WHERE backend = ? AND message_key = ? AND record_id != ''"),
                                    arguments: [backend, messageKey])
            }
        }
    }

    /// What a claim on a message's remote save found.
    public enum RemoteClaim: Sendable, Equatable {
        /// This process may save the message now (and must `noteRemoteSave` or `releaseRemoteClaim`).
        case claimed
        /// The message was saved as this record.
        case saved(String)
        /// Another process claimed it and may be saving it right now.
        case busy
    }

    /// Claims the save of a message in `backend` before it is made, so two processes of this
    /// machine never both create it (the org's own check cannot see a save still in flight).
    /// A claim older than `staleAfter` seconds belongs to a process that died: it is taken over
    /// (the org's check then finds whatever that process created).
    public func claimRemoteSave(backend: String, messageKey: String, object: String, mailbox: String,
                                staleAfter seconds: Int64 = 900) throws -> RemoteClaim {
        let now = Int64(Date().timeIntervalSince1970)
        let stamp = MailDate(secondsSinceEpoch: now, offsetMinutes: 0).iso8601
        let cutoff = MailDate(secondsSinceEpoch: now - seconds, offsetMinutes: 0).iso8601
        return try guarded("cannot write the ledger") {
            try database.writeWithoutTransaction { db in
                var claim = RemoteClaim.claimed
                try db.inTransaction(.immediate) {
                    let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT record_id, saved_at FROM remote_ledger WHERE backend = ? AND message_key = ?"),
                                               arguments: [backend, messageKey])
                    if let row, let id = row[0] as String?, !id.isEmpty {
                        claim = .saved(id)
                        return .commit
                    }
                    if let row, let since = row[1] as String?, since > cutoff {
                        claim = .busy
                        return .commit
                    }
                    try db.cachedStatement(sql: """
                        INSERT OR REPLACE INTO remote_ledger (backend, message_key, record_id, object, mailbox, saved_at) VALUES (?, ?, '', ?, ?, ?)
                        """).execute(arguments: [backend, messageKey, object, CRMDirectoryKeys.address(mailbox), stamp])
                    return .commit
                }
                return claim
            }
        }
    }

    /// Renews this process's claims on messages it is still saving (a batch whose calls are
    /// slow), so no other process takes them over as stale while the calls are in flight.
    public func refreshRemoteClaims(backend: String, messageKeys: [String]) throws {
        guard !messageKeys.isEmpty else { return }
        let stamp = MailDate(secondsSinceEpoch: Int64(Date().timeIntervalSince1970), offsetMinutes: 0).iso8601
        try guarded("cannot write the ledger") {
            try database.write { db in
                let statement = try db.cachedStatement(sql: "UPDATE remote_ledger SET saved_at = ? WHERE backend = ? AND message_key = ? AND record_id = ''")
                for key in messageKeys { try statement.execute(arguments: [stamp, backend, key]) }
            }
        }
    }

    /// Gives up a claim whose save was not made (it failed), so the next attempt may claim it.
    public func releaseRemoteClaim(backend: String, messageKey: String) throws {
        try guarded("cannot write the ledger") {
            try database.write { db in
                try db.cachedStatement(sql: "DELETE FROM remote_ledger WHERE backend = ? AND message_key = ? AND record_id = ''")
                    .execute(arguments: [backend, messageKey])
            }
        }
    }

    /// Notes that `backend` saved the message as `recordID`, completing this process's claim
    /// (the first save wins: a second note for the same message keeps the first record).
    public func noteRemoteSave(backend: String, messageKey: String, recordID: String, object: String, mailbox: String) throws {
        let now = MailDate(secondsSinceEpoch: Int64(Date().timeIntervalSince1970), offsetMinutes: 0).iso8601
        try guarded("cannot write the ledger") {
            try database.write { db in
                try db.cachedStatement(sql: """
                    INSERT INTO remote_ledger (backend, message_key, record_id, object, mailbox, saved_at) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT (backend, message_key) DO UPDATE SET record_id = excluded.record_id, saved_at = excluded.saved_at
                    WHERE remote_ledger.record_id = ''
                    """).execute(arguments: [backend, messageKey, recordID, object, CRMDirectoryKeys.address(mailbox), now])
            }
        }
    }
}
