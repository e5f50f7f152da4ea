import ArgumentParser
import Foundation
import MailEngine
import MailMessage
import MailRules
import MailSalesforce
import MailStore

/// The backends a save can be meant for, as the outbox names them.
enum SaveBackend: String, Sendable, CaseIterable {
    /// The embedded store (`--store`).
    case store
    /// A Salesforce org over REST.
    case salesforce
}

/// Where an entry parked for a backend is decided again and saved.
struct RetryBackend {
    var directory: CRMDirectory
    var writer: ActivityWriter

    /// The one place a backend plugs into `retry`: the CRM to decide against and the writer
    /// to save through, for the entries parked for `backend`.
    /// Salesforce's configuration comes from `salesforce` (the environment, or `--salesforce-config`).
    static func open(_ backend: SaveBackend, store: CRMStore, salesforce: SalesforceOption) throws(CommandFailure) -> RetryBackend {
        switch backend {
        case .store:
            return RetryBackend(directory: store, writer: store)
        case .salesforce:
            let org = try salesforce.backend()
            return RetryBackend(directory: org, writer: SalesforceOption.writer(org, store: store))
        }
    }
}

enum RetryFormat: String, ExpressibleByArgument, CaseIterable { case json, text }

struct Retry: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry",
        abstract: "Save the messages parked in the store's outbox: saves that could not be done when they were asked for.",
        discussion: """
        A save that cannot be done now (the CRM down, the org's daily API allowance used up) is \
        parked in the store's outbox with the message as it was read, its context (mailbox, \
        folder, categories, trigger, selection) and the reason; `process` and `batch` then exit 11. \
        retry drains the outbox oldest first: each message is decided again with its context \
        against the current CRM and rules, and saved at most once (the ledger's check: two retries \
        at once, or a retry after the save went through, never save it twice). A saved message, or \
        one the rules no longer save, leaves the outbox. A save that still cannot be done stays \
        parked, one more attempt counted; when the reason holds for every save (the API allowance) \
        draining stops there. A save refused for good (a record the CRM rejects, a message that \
        cannot be read) stays in the outbox marked failed: listed, not retried, until --include-failed \
        retries it or --drop removes it.

        One JSON line per entry (the decision, with message_key, the message's ledger key, first; \
        or {message_key, error}), then a summary line.

        Examples:
          mailsave retry --rules rules --store crm.sqlite
          mailsave retry --store crm.sqlite --list --format text
          mailsave retry --store crm.sqlite --drop 'CAB1234567@mail.fabrikam.com'

        Exit codes: 0 the outbox is empty, 11 entries remain parked (retry again later), 3 entries \
        failed for good (see --list), or the store cannot be read, 5 rule pack errors (the pack, or \
        the user file of an entry's mailbox), 75 the store is locked or the disk full. Entries parked \
        for Salesforce are saved with the org of MAILSAVE_SF_* or --salesforce-config; when it is not \
        configured they are kept, the reason is printed, and retry exits 3. --list exits \
        0 when it could read the store; --drop exits 3, removing nothing, when a key is not in the outbox.
        """
    )

    @Option(help: "The rule pack folder: each parked message is decided again with it.")
    var rules: String = "rules"

    @OptionGroup var storeOption: StoreOption

    /// For the saves parked for Salesforce: the org's configuration (`--salesforce` itself is
    /// not needed: each entry names its backend).
    @OptionGroup var salesforceOption: SalesforceOption

    @Option(help: "Retry at most N entries, oldest first.")
    var limit: Int?

    @Option(help: "json (one object a line, then a summary object) or text.")
    var format: RetryFormat = .json

    @Flag(help: "Print every entry of the outbox (parked and failed, with reason and attempts) without retrying.")
    var list = false

    @Option(help: "Remove the entry with this ledger key (as --list shows it) without saving it; repeatable.")
    var drop: [String] = []

    @Flag(help: "Retry the entries that failed for good too (once their cause is fixed).")
    var includeFailed = false

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        if list && !drop.isEmpty { throw ValidationError("give --list or --drop, not both") }
        if (list || !drop.isEmpty) && (limit != nil || includeFailed) {
            throw ValidationError("--limit and --include-failed go with retrying, not with --list or --drop")
        }
    }

    func run() throws {
        try storeCommand {
            if list { return try printList(storeOption.open(.readOnly, check: .ifSmall)) }
            let path = storeOption.store ?? CRMStore.defaultPath()
            // Retrying never creates a store: without one there is no outbox to drain.
            guard FileManager.default.fileExists(atPath: path) else {
                throw CommandFailure(status: .couldNotRun, message: "\(path): no store there, so no outbox (`mailsave process --salesforce --apply` parks saves into one)")
            }
            let store = try storeOption.open(.readWrite, check: .ifSmall)
            if !drop.isEmpty { return try dropEntries(store) }
            try drain(store)
        }
    }

    // MARK: Draining

    /// What became of one entry.
    enum EntryResult {
        /// Saved now or found saved (the ledger): removed from the outbox.
        case saved(MessageDecider.Outcome)
        /// Decided again, and the decision is no longer to save: removed from the outbox.
        case notSaved(MessageDecider.Outcome)
        /// Still cannot be saved: one more attempt counted, still parked. The outcome when the
        /// decision was made (the save failed), nil when the CRM could not be read to make it.
        /// `stops` when no other save to the backend can succeed now either.
        case parked(MessageDecider.Outcome?, reason: String, stops: Bool)
        /// Refused for good: kept, marked failed.
        case failed(reason: String)
        /// Not tried by this mailsave (its rules, its backends, a newer mailsave's entry): left as it was.
        case notRetried(CommandFailure)
    }

    /// Retries the entries in order; `open` gives each backend's CRM and writer (opened once,
    /// when an entry first needs it).
    func drain(_ store: CRMStore, pack: RulePack? = nil,
               open: ((SaveBackend, CRMStore) throws(CommandFailure) -> RetryBackend)? = nil) throws {
        let salesforce = salesforceOption
        func openConfigured(_ kind: SaveBackend, _ store: CRMStore) throws(CommandFailure) -> RetryBackend {
            if let open { return try open(kind, store) }
            return try RetryBackend.open(kind, store: store, salesforce: salesforce)
        }
        let pack = try pack ?? DecisionOptions.loadPack(rules: rules)
        var backends: [SaveBackend: Result<RetryBackend, CommandFailure>] = [:]
        var summary = RetrySummary()
        // The entries without their messages, each message read just before its retry: a
        // backlog costs one message's memory, not the outbox's.
        for listed in try store.outboxEntries(limit: limit, includingFailed: includeFailed, withMessages: false) {
            // Gone since listed: another retry saved it meanwhile.
            guard let entry = try store.outboxEntry(messageKey: listed.messageKey) else { continue }
            let result = retry(entry, pack: pack) { (kind: SaveBackend) throws(CommandFailure) -> RetryBackend in
                if let known = backends[kind] { return try known.get() }
                let opened = Result { () throws(CommandFailure) in try openConfigured(kind, store) }
                backends[kind] = opened
                return try opened.get()
            }
            switch result {
            case .saved, .notSaved:
                try store.removeFromOutbox(messageKey: entry.messageKey)
            case .parked(_, let reason, _):
                try store.recordOutboxAttempt(messageKey: entry.messageKey, reason: reason, failed: false)
            case .failed(let reason):
                try store.recordOutboxAttempt(messageKey: entry.messageKey, reason: reason, failed: true)
            case .notRetried(let failure):
                Terminal.err("mailsave: outbox entry \(entry.messageKey): \(failure.message)")
            }
            summary.count(result)
            Terminal.out(line(for: entry, result))
            if case .parked(_, let reason, true) = result {
                summary.stopped = reason
                break
            }
        }
        let remaining = try store.outboxCounts()
        summary.remaining = remaining
        Terminal.out(format == .json ? summary.json.serialized(pretty: false) : summary.text)
        if let status = summary.exitStatus { throw ExitCode(status.rawValue) }
    }

    /// Decides the entry again with its context against its backend's CRM and saves it there.
    func retry(_ entry: OutboxEntry, pack: RulePack, backend: (SaveBackend) throws(CommandFailure) -> RetryBackend) -> EntryResult {
        let context: ProcessContext
        do {
            context = try entry.context()
        } catch let error where error.kind == .newer {
            return .notRetried(CommandFailure(status: .couldNotRun, message: error.message))
        } catch {
            return .failed(reason: error.message)
        }
        guard let kind = SaveBackend(rawValue: entry.backend) else {
            return .notRetried(CommandFailure(status: .couldNotRun,
                                              message: "parked for the backend '\(entry.backend)', which this mailsave does not know; upgrade mailsave"))
        }
        if let problems = pack.userFileProblems(for: context.mailbox) {
            return .notRetried(DecisionOptions.userFileFailure(mailbox: context.mailbox, rules: rules, problems: problems))
        }
        let target: RetryBackend
        do {
            target = try backend(kind)
        } catch {
            return .notRetried(error)
        }
        let decider = MessageDecider(pack: pack, directory: target.directory, context: context, writer: target.writer,
                                     outbox: nil, backend: kind)
        do {
            try Engine(pack: pack, directory: target.directory).validateSelection(context)
            // The steps of `MessageDecider.run`, so that a save that fails again still reports its decision.
            let name = "outbox entry \(entry.messageKey)"
            let message = try MessageDecider.parse(entry.message, name: name)
            let (decision, facts) = try decider.decide(message, name: name)
            var outcome = MessageDecider.Outcome(message: message, decision: decision, facts: facts)
            do {
                outcome.saved = try decider.save(decision, message: message, facts: facts)
            } catch {
                guard error.isRetryable else { throw error }
                outcome.parked = error.message
                return .parked(outcome, reason: error.message, stops: error.stopsBatch)
            }
            return outcome.saved != nil ? .saved(outcome) : .notSaved(outcome)
        } catch let error as SelectionError {
            return .failed(reason: error.description)
        } catch let error as CRMError {
            return error.isRetryable ? .parked(nil, reason: error.message, stops: error.stopsBatch) : .failed(reason: error.message)
        } catch let failure as CommandFailure where failure.status == .badRules {
            // A rule over its evaluation budget: the pack must change, the message need not.
            return .notRetried(failure)
        } catch let failure as CommandFailure {
            return .failed(reason: failure.message)
        } catch {
            return .failed(reason: "outbox entry \(entry.messageKey): \(error)")
        }
    }

    /// The entry's output line: its decision (the JSON of `process --apply`) after its key, or its error.
    func line(for entry: OutboxEntry, _ result: EntryResult) -> String {
        let key = entry.messageKey
        switch format {
        case .json:
            func decision(_ outcome: MessageDecider.Outcome) -> String {
                var json = outcome.json(applying: true)
                if case .object(let members) = json { json = .object([("message_key", .string(key))] + members) }
                return json.serialized(pretty: false)
            }
            func error(_ kind: String, _ message: String) -> String {
                JSON.object([("message_key", .string(key)), ("error", .object([("kind", .string(kind)), ("message", .string(message))]))])
                    .serialized(pretty: false)
            }
            switch result {
            case .saved(let outcome), .notSaved(let outcome): return decision(outcome)
            case .parked(let outcome?, _, _): return decision(outcome)
            case .parked(nil, let reason, _): return error("parked", reason)
            case .failed(let reason): return error("failed", reason)
            case .notRetried(let failure): return error("not_retried", failure.message)
            }
        case .text:
            let text: String
            switch result {
            case .saved(let outcome): text = outcome.savedText
            case .notSaved(let outcome):
                text = "not saved: the decision is now \(outcome.decision.verdict.rawValue)"
                    + (outcome.decision.reasons.first.map { " (\($0.rule))" } ?? "") + "; removed from the outbox"
            case .parked(_, let reason, _): text = "parked: \(reason) (attempt \(entry.attempts + 1))"
            case .failed(let reason): text = "failed: \(reason)"
            case .notRetried(let failure): text = "not retried: \(failure.message)"
            }
            return visible(key + "  " + text)
        }
    }

    // MARK: Listing and dropping

    func printList(_ store: CRMStore) throws {
        let entries = try store.outboxEntries(includingFailed: true, withMessages: false)
        var rows: [[String]] = []
        for entry in entries {
            // A context that cannot be read is shown as such: the list still lists the entry.
            let context = Result { () throws(StoreError) in try entry.context() }
            switch format {
            case .json:
                var members: [(String, JSON)] = [
                    ("message_key", .string(entry.messageKey)), ("state", .string(entry.state.rawValue)), ("backend", .string(entry.backend)),
                    ("reason", .string(entry.reason)), ("attempts", .int(entry.attempts)), ("parked_at", .string(entry.parkedAt)),
                    ("last_attempt_at", .string(entry.lastAttemptAt)), ("size", .int(entry.size)),
                ]
                switch context {
                case .success(let context):
                    members += [("mailbox", .string(context.mailbox)), ("folder", .string(context.folder)), ("trigger", .string(context.trigger))]
                case .failure(let error):
                    members.append(("context_error", .string(error.message)))
                }
                Terminal.out(JSON.object(members).serialized(pretty: false))
            case .text:
                rows.append([entry.messageKey, entry.state.rawValue, String(entry.attempts), entry.parkedAt, entry.backend,
                             (try? context.get().mailbox) ?? "?", entry.reason])
            }
        }
        let counts = try store.outboxCounts()
        switch format {
        case .json:
            Terminal.out(JSON.object([("summary", .object([("parked", .int(counts.parked)), ("failed", .int(counts.failed))]))]).serialized(pretty: false))
        case .text:
            if !rows.isEmpty {
                let header = ["MESSAGE KEY", "STATE", "ATTEMPTS", "PARKED AT", "BACKEND", "MAILBOX", "REASON"]
                let all = [header] + rows.map { $0.map(visible) }
                let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
                for row in all {
                    Terminal.out(row.enumerated().map { index, cell in index == row.count - 1 ? cell : cell.padding(widths[index] + 1) }.joined())
                }
            }
            Terminal.out("\(counts.parked) parked, \(counts.failed) failed")
        }
    }

    func dropEntries(_ store: CRMStore) throws {
        let present = Set(try store.outboxEntries(includingFailed: true, withMessages: false).map(\.messageKey))
        for key in drop {
            guard present.contains(key) else {
                throw CommandFailure(status: .couldNotRun, message: "\(key): not in the outbox (`mailsave retry --list` shows its keys); nothing was removed")
            }
        }
        for key in drop {
            try store.removeFromOutbox(messageKey: key)
            Terminal.out(visible("removed \(key)"))
        }
    }
}

/// The counts `retry` ends with, and its exit status.
struct RetrySummary {
    var entries = 0
    var created = 0
    var alreadySaved = 0
    var notSaved = 0
    var parked = 0
    var failed = 0
    var notRetried = 0
    /// The worst status of the entries not retried (rules: 5; backends, newer entries: 3).
    var notRetriedStatus: ExitStatus?
    /// Why draining stopped before the end (the reason holds for every save).
    var stopped: String?
    /// What is left in the outbox once done.
    var remaining: (parked: Int, failed: Int) = (0, 0)

    mutating func count(_ result: Retry.EntryResult) {
        entries += 1
        switch result {
        case .saved(let outcome): if outcome.saved?.created == true { created += 1 } else { alreadySaved += 1 }
        case .notSaved: notSaved += 1
        case .parked: parked += 1
        case .failed: failed += 1
        case .notRetried(let failure):
            notRetried += 1
            if notRetriedStatus != .couldNotRun { notRetriedStatus = failure.status == .badRules ? .badRules : .couldNotRun }
        }
    }

    /// 3 when entries failed for good (in this run or before) or could not be tried, 5 for rule
    /// errors, 11 while entries remain parked, nil (0) when the outbox is empty.
    var exitStatus: ExitStatus? {
        if remaining.failed > 0 || notRetriedStatus == .couldNotRun { return .couldNotRun }
        if let notRetriedStatus { return notRetriedStatus }
        if remaining.parked > 0 { return .parked }
        return nil
    }

    var json: JSON {
        .object([("summary", .object([
            ("entries", .int(entries)),
            ("saved", .object([("created", .int(created)), ("already_saved", .int(alreadySaved))])),
            ("not_saved", .int(notSaved)),
            ("parked", .int(parked)),
            ("failed", .int(failed)),
            ("not_retried", .int(notRetried)),
            ("stopped", .optional(stopped)),
            ("outbox", .object([("parked", .int(remaining.parked)), ("failed", .int(remaining.failed))])),
        ]))])
    }

    var text: String {
        var line = "\(entries) entr\(entries == 1 ? "y" : "ies"): \(created) saved, \(alreadySaved) already saved, \(notSaved) no longer to be saved, "
            + "\(parked) still parked, \(failed) failed" + (notRetried > 0 ? ", \(notRetried) not retried" : "")
        if let stopped { line += "; stopped: \(stopped)" }
        line += "; the outbox holds \(remaining.parked) parked, \(remaining.failed) failed"
        return visible(line)
    }
}
