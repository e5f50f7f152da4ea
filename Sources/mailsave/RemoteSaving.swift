import MailEngine
import MailMessage
import MailStore

/// A remote CRM's writer (Salesforce) behind the local store's ledger: a message this machine
/// already saved there is answered from the store without an API call; a new save is noted
/// in the store once the CRM has it. The remote writer keeps its own check (the org's
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
        do {
            if let id = try store.remoteSave(backend: backend, messageKey: key) { return SaveResult(id: id, created: false) }
        } catch let error as StoreError {
            throw error.crmError
        } catch {
            throw CRMError(.permanent, "\(store.path): cannot read the ledger: \(error)")
        }
        guard let result = try remote.write(decision, message: message, mailbox: mailbox) else { return nil }
        do {
            try store.noteRemoteSave(backend: backend, messageKey: key, recordID: result.id, object: record.object, mailbox: mailbox)
        } catch {
            // The record exists in the CRM: the save stands. The CRM's own check finds it next
            // time; the ledger only saves that call.
            Terminal.err("mailsave: \(store.path): the save of \(key) as \(result.id) is not in the local ledger: \(error)")
        }
        return result
    }
}
