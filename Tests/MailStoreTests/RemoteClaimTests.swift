import Foundation
import GRDB
import MailEngine
import MailMessage
@testable import MailStore
import Testing

/// Claims on remote saves: a claim older than the stale limit is a dead process's and is taken
/// over; a renewed one (a batch still sending) is not.
@Suite struct RemoteClaimTests {
    static let backend = "salesforce https://login.example sync@contoso.com"

    func age(_ store: CRMStore, _ key: String, seconds: Int64) throws {
        let old = MailDate(secondsSinceEpoch: Int64(Date().timeIntervalSince1970) - seconds, offsetMinutes: 0).iso8601
        try store.database.write { db in
            try db.execute(sql: "UPDATE remote_ledger SET saved_at = ? WHERE message_key = ?", arguments: [old, key])
        }
    }

    @Test func aRenewedClaimIsNotTakenOverAStaleOneIs() throws {
        let store = try temporaryStore()
        for key in ["a@x", "b@x"] {
            #expect(try store.claimRemoteSave(backend: Self.backend, messageKey: key, object: "Task", mailbox: "ann@contoso.com") == .claimed)
            try age(store, key, seconds: 1000)
        }
        try store.refreshRemoteClaims(backend: Self.backend, messageKeys: ["a@x"])
        // Renewed: still this process's. Not renewed: stale, taken over by the next claimant.
        #expect(try store.claimRemoteSave(backend: Self.backend, messageKey: "a@x", object: "Task", mailbox: "ann@contoso.com") == .busy)
        #expect(try store.claimRemoteSave(backend: Self.backend, messageKey: "b@x", object: "Task", mailbox: "ann@contoso.com") == .claimed)
        // A save already noted is never turned back into a claim by a renewal.
        try store.noteRemoteSave(backend: Self.backend, messageKey: "b@x", recordID: "00T5e00000Tas99", object: "Task", mailbox: "ann@contoso.com")
        try store.refreshRemoteClaims(backend: Self.backend, messageKeys: ["b@x"])
        #expect(try store.remoteSave(backend: Self.backend, messageKey: "b@x") == "00T5e00000Tas99")
    }
}
