import MailEngine
import MailMessage
import MailStore

/// A remote CRM's writer (Salesforce) behind the local store's ledger: a message this machine
/// already saved there is answered from the store without an API call; a new save is claimed
/// in the store first (so two processes never create it both: the second parks it) and
/// noted there once the CRM has it. The remote writer keeps its own check (the org's
/// `MessageIdentifier`), so a save noted nowhere (a run killed between the two) is still
/// found there and never made twice.
struct LedgeredWriter: BatchActivityWriter {
    let store: CRMStore
    let remote: ActivityWriter
    /// Which CRM the ledger rows are for (`RemoteLedger`).
    let backend: String

    func write(_ decision: Decision, message: Message, mailbox: String) throws(CRMError) -> SaveResult? {
        guard decision.verdict == .save, let record = decision.record else { return nil }
        let key = MessageIDKey.ledgerKey(message)
        let claim: CRMStore.RemoteClaim
        do {
            claim = try store.claimRemoteSave(backend: backend, messageKey: key, object: record.object, mailbox: mailbox)
        } catch let error as StoreError {
            throw error.crmError
        } catch {
            throw CRMError(.permanent, "\(store.path): cannot write the ledger: \(error)")
        }
        switch claim {
        case .saved(let id):
            return SaveResult(id: id, created: false)
        case .busy:
            // Parked: `mailsave retry` finds it saved once the other process is done.
            throw CRMError(.retryable, "another mailsave process is saving \(key) in Salesforce right now")
        case .claimed:
            break
        }
        let result: SaveResult?
        do {
            result = try writeMakingPeopleOnce(creating: !decision.toCreate.isEmpty) {
                () throws(CRMError) -> SaveResult? in try remote.write(decision, message: message, mailbox: mailbox)
            }
        } catch {
            release(key)
            throw error
        }
        guard let result else {
            release(key)
            return nil
        }
        do {
            try store.noteRemoteSave(backend: backend, messageKey: key, recordID: result.id, object: record.object, mailbox: mailbox)
        } catch {
            // The record exists in the CRM: the save stands. The CRM's own check finds it next
            // time (the claim goes stale); the ledger only saves that call.
            Terminal.err("mailsave: \(store.path): the save of \(key) as \(result.id) is not in the local ledger: \(error)")
        }
        return result
    }

    /// A batch: each message claimed in the ledger before the batch is sent (one the ledger
    /// holds is answered from it, one another process holds is parked), the claimed ones saved
    /// together by the remote writer, and each noted (or its claim released) after. A run
    /// killed in between leaves claims that go stale, and the org's own check finds what was
    /// saved: nothing is saved twice.
    func write(batch saves: [PendingSave]) -> [Result<SaveResult?, CRMError>] {
        var outcomes = [Result<SaveResult?, CRMError>](repeating: .success(nil), count: saves.count)
        var claimed: [Int] = []
        var busy: [Int] = []
        for (index, save) in saves.enumerated() {
            guard save.decision.verdict == .save, let record = save.decision.record else { continue }
            do {
                switch try store.claimRemoteSave(backend: backend, messageKey: save.key, object: record.object, mailbox: save.mailbox) {
                case .saved(let id): outcomes[index] = .success(SaveResult(id: id, created: false))
                case .busy:
                    busy.append(index)
                    outcomes[index] = .failure(CRMError(.retryable, "another mailsave process is saving \(save.key) in Salesforce right now"))
                case .claimed: claimed.append(index)
                }
            } catch let error as StoreError {
                outcomes[index] = .failure(error.crmError)
            } catch {
                outcomes[index] = .failure(CRMError(.permanent, "\(store.path): cannot write the ledger: \(error)"))
            }
        }
        // Claimed by another process, maybe one that was killed after sending: what the CRM
        // already holds is saved (noted here too); the rest waits in the outbox.
        if !busy.isEmpty, let batched = remote as? BatchActivityWriter, let found = try? batched.saved(busy.map { saves[$0] }) {
            for (index, id) in zip(busy, found) {
                guard let id, let object = saves[index].decision.record?.object else { continue }
                outcomes[index] = .success(SaveResult(id: id, created: false))
                try? store.noteRemoteSave(backend: backend, messageKey: saves[index].key, recordID: id, object: object, mailbox: saves[index].mailbox)
            }
        }
        guard !claimed.isEmpty else { return outcomes }
        let sent = claimed.map { saves[$0] }
        let results: [Result<SaveResult?, CRMError>]
        if let batched = remote as? BatchActivityWriter {
            // Claims older than 15 minutes are taken over as a dead process's: refreshed before
            // each call, a slow batch (timeouts, retries) never loses them while in flight.
            let keys = sent.map(\.key)
            let store = store, backend = backend
            let send = {
                batched.write(batch: sent, beforeEachCall: {
                    do {
                        try store.refreshRemoteClaims(backend: backend, messageKeys: keys)
                    } catch {
                        Terminal.err("mailsave: \(store.path): the claims of a batch could not be renewed: \(error)")
                    }
                })
            }
            do {
                results = try writeMakingPeopleOnce(creating: sent.contains { !$0.decision.toCreate.isEmpty }) { () throws(CRMError) in send() }
            } catch {
                results = sent.map { _ in .failure(error) }
            }
        } else {
            results = sent.map { save in Result { () throws(CRMError) -> SaveResult? in try remote.write(save.decision, message: save.message, mailbox: save.mailbox) } }
        }
        for (index, result) in zip(claimed, results) {
            let save = saves[index]
            outcomes[index] = result
            guard case .success(let saved?) = result, let object = save.decision.record?.object else {
                release(save.key)
                continue
            }
            do {
                try store.noteRemoteSave(backend: backend, messageKey: save.key, recordID: saved.id, object: object, mailbox: save.mailbox)
            } catch {
                Terminal.err("mailsave: \(store.path): the save of \(save.key) as \(saved.id) is not in the local ledger: \(error)")
            }
        }
        return outcomes
    }

    /// What the remote CRM holds for these messages (the ledger is asked by `write` itself).
    func saved(_ saves: [PendingSave]) throws(CRMError) -> [String?] {
        guard let batched = remote as? BatchActivityWriter else { return saves.map { _ in nil } }
        return try batched.saved(saves)
    }

    /// Runs a remote save that makes people (`creating`) holding the store's lock on making
    /// people (`CRMStore.holdingPersonLock`), so that the remote writer's look-up of those
    /// people and its save are one step among this machine's processes; a save that makes no
    /// one runs at once. The lock held past the store's busy timeout by another process: the
    /// save is parked (retryable), as a message another process is saving is.
    private func writeMakingPeopleOnce<T>(creating: Bool, _ body: () throws(CRMError) -> T) throws(CRMError) -> T {
        guard creating else { return try body() }
        let outcome: Result<T, CRMError>?
        do {
            outcome = try store.holdingPersonLock { () -> Result<T, CRMError> in
                do throws(CRMError) { return .success(try body()) } catch { return .failure(error) }
            }
        } catch let error as StoreError {
            throw error.crmError
        } catch {
            throw CRMError(.permanent, "\(store.path): \(error)")
        }
        guard let outcome else {
            throw CRMError(.retryable, "another mailsave process is creating people in Salesforce right now (the lock on making people was held past the busy timeout)")
        }
        return try outcome.get()
    }

    /// Gives the claim back after a save that was not made; if even that fails, the claim
    /// goes stale and is taken over later.
    private func release(_ key: String) {
        do {
            try store.releaseRemoteClaim(backend: backend, messageKey: key)
        } catch {
            Terminal.err("mailsave: \(store.path): the claim on \(key) stays until it is stale: \(error)")
        }
    }
}
