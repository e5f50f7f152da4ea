import MailEngine
import MailMessage
import MailStore

/// A remote CRM's writer (Salesforce) behind the local store's ledger: a message this machine
/// already saved there is answered from the store without an API call; a new save is claimed
/// in the store first (so two processes never create it both: the second parks it) and
/// noted there once the CRM has it. The remote writer keeps its own check (the org's
/// `MessageIdentifier`), so a save noted nowhere (a run killed between the two) is still
/// found there and never made twice.
struct LedgeredWriter: ActivityWriter {
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
            result = try remote.write(decision, message: message, mailbox: mailbox)
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
