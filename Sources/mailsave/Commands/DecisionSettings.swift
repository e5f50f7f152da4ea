import ArgumentParser
import Foundation
import MailEngine
import MailRules
import MailSalesforce
import MailStore

/// What a decision is made of, as plain values: the pack, the mailbox context, the CRM
/// (`DecisionOptions` read from a command line, or `ProcessFastPath`'s reading).
struct DecisionSettings {
    var rules = "rules"
    var mailbox = ""
    var folder = "Inbox"
    var folderRole: String?
    var categories: [String] = []
    var trigger = "auto"
    var selections: [String] = []
    var crm: String?
    var store: String?
    var salesforceOption = SalesforceSettings()

    func validate() throws {
        guard ProcessContext.triggers.contains(trigger) else {
            throw ValidationError("--trigger must be one of \(ProcessContext.triggers.joined(separator: ", ")), not '\(trigger)'")
        }
        for selection in selections {
            let parts = selection.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, ProcessContext.selectionKinds.contains(String(parts[0])), !parts[1].isEmpty else {
                throw ValidationError("--select takes KIND=ID with KIND one of \(ProcessContext.selectionKinds.joined(separator: ", ")); got '\(selection)'")
            }
        }
        if let folderRole, ProcessContext.folderRole(named: folderRole) == nil {
            throw ValidationError("--folder-role must be one of \(ProcessContext.folderRoles.joined(separator: ", ")) (or Graph's, Gmail's or IMAP's name for one), not '\(folderRole)'")
        }
        try DecisionOptions.validateMailbox(mailbox)
    }

    var context: ProcessContext {
        ProcessContext(mailbox: mailbox, folder: folder, categories: categories, trigger: trigger,
                       selection: selections.map { selection in
                           let parts = selection.split(separator: "=", maxSplits: 1)
                           return (String(parts[0]), String(parts[1]))
                       },
                       folderRole: folderRole.flatMap(ProcessContext.folderRole(named:)))
    }

    /// The compiled pack, or exit 5 with its diagnostics. Errors in the user file of
    /// `--mailbox` also exit 5, naming the file (no decision without the user's own
    /// exclusions); errors in other users' files do not stop this mailbox.
    /// `caching: false` for a pack read once from a temporary folder (`diff --old-rev`): its
    /// entries, keyed by a path no later run has, would only push useful ones out.
    func loadPack(checkingMailbox: Bool = true, caching: Bool = true) throws -> RulePack {
        // Only this mailbox's user file is read (a user file decides for no other mailbox).
        let pack = try DecisionOptions.loadPack(rules: rules, mailbox: checkingMailbox ? mailbox : nil, caching: caching)
        if checkingMailbox, let problems = pack.userFileProblems(for: mailbox) {
            throw DecisionOptions.userFileFailure(mailbox: mailbox, rules: rules, problems: problems)
        }
        return pack
    }

    /// The mailbox is a user of the org: an address of one of the pack's corporate domains
    /// (when it names any), or else a User of the CRM (one whose own address is elsewhere,
    /// a free-mail one). A mistyped one (ann@contso.com) made every decision a stranger's: its
    /// own mail inbound and saved as a customer's, its saves without an owner, and, once
    /// saved, the message claimed org-wide by the ledger. The CRM is asked only when the
    /// domain is not corporate (a per-message run with a corporate mailbox asks nothing).
    func checkMailbox(pack: RulePack, directory: CRMDirectory) throws {
        guard pack.isCorporate(mailbox) == false, let corporate = pack.list(setting: "corporate_domains") else { return }
        var plan = LookupPlan()
        let address = mailbox.lowercased()
        plan.addresses = [address]
        // A CRM that cannot answer now (Salesforce unreachable) is its own error (75 or 3), not
        // a wrong mailbox.
        let answers: CRMAnswers
        do { answers = try directory.resolve(plan) } catch { throw CommandFailure(error) }
        if !answers.users(email: address).isEmpty { return }
        let some = corporate.allEntries().prefix(3).joined(separator: ", ") + (corporate.count > 3 ? ", …" : "")
        throw CommandFailure(status: .usage, message: "--mailbox \(visible(mailbox)) is not in the corporate domains of \(visible(rules)) (\(some)), nor a User of the CRM: a mailbox is a user of the org; "
                              + "check the address, or add its domain to settings.corporate_domains")
    }

    /// The store to use: `--store`, else the user's default store when it exists (with
    /// `--salesforce --apply`, where its ledger and outbox go, also when it does not yet).
    func storePath(applying: Bool) -> String? {
        if let store { return store }
        if salesforceOption.enabled { return applying ? CRMStore.defaultPath() : nil }
        if crm != nil { return nil }
        let fallback = CRMStore.defaultPath()
        return FileManager.default.fileExists(atPath: fallback) ? fallback : nil
    }

    /// The CRM: the store, the CSV folder with `--crm`, or an empty one.
    /// Without `--apply` the store is opened read-only (a store we may not write still
    /// serves decisions); only the default store's own folder is ever created.
    /// The CRM the decisions read. `concurrentReads`: decisions on several threads (`batch
    /// --jobs N` without `--apply`) read the store at once.
    func loadDirectory(applying: Bool = false, concurrentReads: Bool = false) throws -> CRMDirectory {
        if salesforceOption.enabled { return try salesforceOption.backend() }
        if let path = storePath(applying: applying) {
            let busyTimeout = try StoreOption.busyTimeout
            do {
                return try CRMStore(path: path, access: applying ? .readWrite : .readOnly, createFolder: store == nil,
                                    busyTimeout: busyTimeout, concurrentReads: concurrentReads && !applying)
            } catch {
                throw CommandFailure(error)
            }
        }
        guard let crm else {
            // No CRM at all (a hook whose $HOME has no default store): every decision would be
            // made against nobody, and quietly skip or save without links; with --apply a new
            // empty store was made to save into.
            throw CommandFailure(status: .couldNotRun, message: "no CRM to decide against: the default store \(CRMStore.defaultPath()) does not exist; "
                                 + "give --store PATH, --crm DIR (a Data Export) or --salesforce, or create the default store with mailsave crm import")
        }
        return InMemoryDirectory(records: try loadCRMRecords(crm))
    }

    /// The Save dialog's selection, checked against the CRM and the blocklists before any
    /// message is decided: an id that does not exist, is of another kind, or is internal or
    /// blocklisted is a usage error (exit 2) naming it, and nothing is saved.
    func checkSelection(_ engine: Engine) throws {
        do {
            try engine.validateSelection(context)
        } catch let error as SelectionError {
            throw CommandFailure(status: .usage, message: error.description)
        }
    }

    func validateSources() throws {
        if store != nil && crm != nil { throw ValidationError("give --store or --crm, not both") }
        if salesforceOption.enabled && crm != nil { throw ValidationError("give --salesforce or --crm, not both") }
    }

    /// The per-message path, and with `--apply` where it saves and parks. The store saves into
    /// itself and has no outbox: a save the store cannot take now (disk full, locked), it could
    /// not park either, so that stays exit 75 and the caller delivers the message again. A
    /// backend of its own (Salesforce) saves through its writer and parks into the store:
    /// `MessageDecider(..., writer: salesforce, outbox: store, backend: .salesforce)`.
    /// With `--salesforce --apply` the store (`--store`, else the default) keeps the ledger of
    /// what was saved in the org and the outbox of saves to retry.
    func decider(pack: RulePack, directory: CRMDirectory, applying: Bool) throws -> MessageDecider {
        // The flag first: the cast alone cost a scan of the binary's protocol conformances
        // (0.8M instructions) on every `process` with the store.
        if salesforceOption.enabled, let salesforce = directory as? SalesforceBackend {
            guard applying, let path = storePath(applying: true) else {
                return MessageDecider(pack: pack, directory: directory, context: context, writer: nil, outbox: nil, backend: .salesforce)
            }
            let ledger: CRMStore
            let busyTimeout = try StoreOption.busyTimeout
            do {
                ledger = try CRMStore(path: path, access: .readWrite, createFolder: store == nil, busyTimeout: busyTimeout)
            } catch {
                throw CommandFailure(error)
            }
            return MessageDecider(pack: pack, directory: directory, context: context, writer: SalesforceOption.writer(salesforce, store: ledger),
                                  outbox: ledger, backend: .salesforce)
        }
        return MessageDecider(pack: pack, directory: directory, context: context, writer: applying ? directory as? ActivityWriter : nil,
                              outbox: nil, backend: .store)
    }
}
