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
                try String.fetchOne(db.cachedStatement(sql: "SELECT record_id FROM remote_ledger WHERE backend = ? AND message_key = ?"),
                                    arguments: [backend, messageKey])
            }
        }
    }

    /// Notes that `backend` saved the message as `recordID` (the first save wins: a second
    /// note for the same message keeps the first record).
    public func noteRemoteSave(backend: String, messageKey: String, recordID: String, object: String, mailbox: String) throws {
        let now = MailDate(secondsSinceEpoch: Int64(Date().timeIntervalSince1970), offsetMinutes: 0).iso8601
        try guarded("cannot write the ledger") {
            try database.write { db in
                try db.cachedStatement(sql: """
                    INSERT OR IGNORE INTO remote_ledger (backend, message_key, record_id, object, mailbox, saved_at) VALUES (?, ?, ?, ?, ?, ?)
                    """).execute(arguments: [backend, messageKey, recordID, object, CRMDirectoryKeys.address(mailbox), now])
            }
        }
    }
}
