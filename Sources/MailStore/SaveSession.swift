import Foundation
import GRDB
import MailEngine
import MailMessage

/// Group commit for `batch --apply`: many messages decided and saved in ONE write transaction
/// instead of one each. Measured on a 100,000-Contact store, a save's own BEGIN IMMEDIATE and
/// COMMIT (the WAL append) and the decision's read transaction cost about 170 µs of the
/// 840 µs a message took; a group of 256 pays them once.
///
/// Why it keeps the save-once guarantee:
/// - A decision's look-ups read through the session's write connection, inside the open
///   group, so each decision sees every save before it (a reply finds its parent saved a
///   moment ago; a second copy of a message finds the first in the ledger).
/// - A group commits whole or not at all: killed mid-group (SIGKILL, a power cut), SQLite
///   rolls it back and a rerun decides those messages again and finds nothing of them.
/// - The caller reports a group's saves only after `commit()` returns, so no output claims a
///   save that was rolled back.
/// - A save that fails poisons the group: nothing more is done in it, `commit()` refuses and
///   rolls it back, and the error stands (none of the group's saves is reported).
///
/// A session holds the store's write connection for its whole life (other processes still
/// write between groups: the SQLite write lock is held only while a group is open). Use it on
/// the thread that opened it, as the directory and the writer of the decisions it groups
/// (`CRMStore.withSaveSession`); a writer other than this store (Salesforce, the outbox) does
/// not go through it. `process --apply` keeps `CRMStore.save`, one transaction a message.
public final class SaveSession: RecordLookups, ActivityWriter, @unchecked Sendable {
    let store: CRMStore
    let db: Database
    /// A group ends after this many messages, or after `maxGroupSeconds`, whichever comes first.
    public let maxGroupMessages: Int
    /// Bounds how long other writers wait for the SQLite write lock (and how much a kill undoes).
    public let maxGroupSeconds: Double
    /// Messages decided in the open group: each decision asks the save-once ledger once,
    /// whether it searches in one step or two (`Engine.run`), so each ledger question counts one.
    public private(set) var groupMessages = 0
    /// Saves written in the open group (found in the ledger or created).
    public private(set) var groupSaves = 0
    private var groupStart: UInt64 = 0
    /// The error that ended the open group: it can only be rolled back.
    private var failure: StoreError?

    init(store: CRMStore, db: Database, maxGroupMessages: Int, maxGroupSeconds: Double) {
        self.store = store
        self.db = db
        self.maxGroupMessages = max(1, maxGroupMessages)
        self.maxGroupSeconds = maxGroupSeconds
    }

    /// Whether a group is open (begun and neither committed nor rolled back).
    public var isGroupOpen: Bool { db.isInsideTransaction }

    /// Whether the open group has reached its size or its age: time to `commit()`.
    public var isGroupDue: Bool {
        guard isGroupOpen else { return false }
        if groupMessages >= maxGroupMessages { return true }
        return Double(DispatchTime.now().uptimeNanoseconds - groupStart) / 1e9 >= maxGroupSeconds
    }

    /// Commits the open group (nothing when none is open). Throws, after rolling the group
    /// back, when a save of the group failed or the commit itself fails.
    public func commit() throws(StoreError) {
        guard isGroupOpen else {
            if let failure { throw failure }
            return
        }
        if let failure {
            rollback()
            throw failure
        }
        do {
            try db.commit()
        } catch {
            rollback()
            throw CRMStore.classify(error, path: store.path, doing: "cannot save")
        }
        groupMessages = 0
        groupSaves = 0
    }

    /// Abandons the open group: none of its saves happened.
    public func rollback() {
        // SQLite may have rolled back already (a full disk): GRDB's rollback checks.
        try? db.rollback()
        groupMessages = 0
        groupSaves = 0
    }

    /// Opens a group when none is open (BEGIN IMMEDIATE: waits up to the busy timeout for
    /// another process's write).
    private func openGroup() throws(StoreError) {
        if let failure { throw failure }
        guard !isGroupOpen else { return }
        do {
            try db.beginTransaction(.immediate)
        } catch {
            throw poison(error)
        }
        groupStart = DispatchTime.now().uptimeNanoseconds
    }

    /// Records the error that ends the group, as the store names it.
    private func poison(_ error: any Error) -> StoreError {
        let classified = CRMStore.classify(error, path: store.path, doing: "cannot save")
        failure = classified
        return classified
    }

    // MARK: ActivityWriter

    public func write(_ decision: Decision, message: Message, mailbox: String) throws(CRMError) -> SaveResult? {
        guard decision.verdict == .save, decision.record != nil else { return nil }
        do {
            try openGroup()
            let result = try CRMStore.saveRows(decision, message: message, mailbox: mailbox, db)
            groupSaves += 1
            return result
        } catch let error as StoreError {
            failure = failure ?? error
            throw error.crmError
        } catch {
            throw poison(error).crmError
        }
    }

    // MARK: RecordLookups (answered inside the open group)

    public func snapshot<T>(_ body: () throws -> T) throws -> T {
        try openGroup()
        do {
            return try store.reading(through: db, body)
        } catch let error as StoreError {
            // SQLite may have rolled the group back on its own: nothing more is written in it.
            failure = failure ?? error
            throw error
        }
    }

    public func contacts(email address: String) throws -> [CRMRecord] { try store.contacts(email: address) }
    public func leads(email address: String) throws -> [CRMRecord] { try store.leads(email: address) }
    public func users(email address: String) throws -> [CRMRecord] { try store.users(email: address) }
    public func people(email address: String) throws -> (contacts: [CRMRecord], leads: [CRMRecord], users: [CRMRecord]) {
        try store.people(email: address)
    }
    public func accounts(websiteDomain domain: String) throws -> [CRMRecord] { try store.accounts(websiteDomain: domain) }
    public func account(contactDomain domain: String) throws -> DomainAccount? { try store.account(contactDomain: domain) }
    public func accounts(name: String) throws -> [CRMRecord] { try store.accounts(name: name) }
    public func people(phone: String) throws -> [CRMRecord] { try store.people(phone: phone) }
    public func opportunities(accountID: String) throws -> [CRMRecord] { try store.opportunities(accountID: accountID) }
    public func cases(contactID: String) throws -> [CRMRecord] { try store.cases(contactID: contactID) }
    public func caseRecord(number: String) throws -> CRMRecord? { try store.caseRecord(number: number) }
    public func record(id: String) throws -> CRMRecord? { try store.record(id: id) }
    public func emailMessage(messageIdentifier: String) throws -> (record: CRMRecord, relations: [String])? {
        try store.emailMessage(messageIdentifier: messageIdentifier)
    }
    public func savedRecord(messageID: String) throws -> String? {
        groupMessages += 1
        return try store.savedRecord(messageID: messageID)
    }
}

extension CRMStore {
    /// Runs `body` with a `SaveSession` on this store's write connection (see `SaveSession`
    /// for why and what it guarantees). A group still open when `body` returns is committed;
    /// when `body` throws, it is rolled back. `body`'s own errors pass through as they are.
    public func withSaveSession<T>(maxGroupMessages: Int = 256, maxGroupSeconds: Double = 0.05,
                                   _ body: (SaveSession) throws -> T) throws -> T {
        // The session classifies the store's errors itself; `body`'s pass through as they are.
        let outcome: Result<T, any Error> = database.writeWithoutTransaction { db in
            let session = SaveSession(store: self, db: db, maxGroupMessages: maxGroupMessages, maxGroupSeconds: maxGroupSeconds)
            // Never leave the connection inside a transaction (GRDB would stop the process).
            defer { if session.isGroupOpen { session.rollback() } }
            do {
                let value = try body(session)
                try session.commit()
                return .success(value)
            } catch {
                return .failure(error)
            }
        }
        return try outcome.get()
    }
}
