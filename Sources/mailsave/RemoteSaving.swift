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
        var results = [Result<SaveResult?, CRMError>](repeating: .success(nil), count: sent.count)
        // The saves that make people go together holding the store's lock on making people
        // (and are parked alone if another process holds it too long); the others never wait.
        let making = sent.indices.filter { !sent[$0].decision.toCreate.isEmpty }
        let plain = sent.indices.filter { sent[$0].decision.toCreate.isEmpty }
        for (group, locked) in [(plain, false), (making, true)] where !group.isEmpty {
            let part = group.map { sent[$0] }
            let answers: [Result<SaveResult?, CRMError>]
            do {
                answers = try writeMakingPeopleOnce(creating: locked) { () throws(CRMError) in send(part) }
            } catch {
                answers = part.map { _ in .failure(error) }
            }
            for (index, answer) in zip(group, answers) { results[index] = answer }
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

    /// Sends claimed saves to the remote writer: a batch writer's calls, the claims renewed
    /// before each (claims older than 15 minutes are taken over as a dead process's, so a
    /// slow batch never loses them while in flight), else one save at a time.
    private func send(_ part: [PendingSave]) -> [Result<SaveResult?, CRMError>] {
        guard let batched = remote as? BatchActivityWriter else {
            return part.map { save in Result { () throws(CRMError) -> SaveResult? in try remote.write(save.decision, message: save.message, mailbox: save.mailbox) } }
        }
        let keys = part.map(\.key)
        let store = store, backend = backend
        return batched.write(batch: part, beforeEachCall: {
            do {
                try store.refreshRemoteClaims(backend: backend, messageKeys: keys)
            } catch {
                Terminal.err("mailsave: \(store.path): the claims of a batch could not be renewed: \(error)")
            }
        })
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
        let outcome = store.holdingPersonLock { () -> Result<T, CRMError> in
            do throws(CRMError) { return .success(try body()) } catch { return .failure(error) }
        }
        switch outcome {
        case .ran(let result):
            return try result.get()
        case .ranUnlocked(let result, let reason):
            // Saved as before the lock existed: the org's look-up right before the save stands.
            Terminal.err("mailsave: the lock on making people could not be taken (\(reason)); saved without it")
            return try result.get()
        case .busy:
            throw CRMError(.retryable, "another mailsave process is creating people in Salesforce right now (the lock on making people was held past the wait)")
        }
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
