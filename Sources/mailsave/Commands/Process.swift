import Foundation
import ArgumentParser
import MailEngine
import MailMessage
import MailRules
import MailSalesforce
import MailStore

/// The options `process`, `explain` share: the pack, the mailbox context, the CRM.
struct DecisionOptions: ParsableArguments {
    @Option(help: "The rule pack folder.")
    var rules: String = "rules"

    // Spaces around it trimmed, as --mailbox is checked (a leading space kept made another
    // mailbox, whose user file it then was not).
    @Option(help: "The mailbox owner's address.", transform: { $0.trimmingSpaces() })
    var mailbox: String

    @Option(help: "The folder the message is in, '/'-separated (Inbox/Deals).")
    var folder: String = "Inbox"

    @Option(help: "The folder's role when the caller knows it: inbox, sent, salesforce or other (also Graph's wellKnownName, Gmail's system labels, IMAP SPECIAL-USE: sentitems, SENT, \\Sent, archive...). Without it the role comes from the folder's name and the pack's inbox_folders, sent_folders, salesforce_folders lists.")
    var folderRole: String?

    @Option(name: .customLong("category"), help: "A category or label on the message; repeat for several.")
    var categories: [String] = []

    @Option(help: "What asked for the decision: auto (sync), or ForceSync by category, folder or button.")
    var trigger: String = "auto"

    @Option(name: .customLong("select"), help: "The user's choice in the Save dialog, KIND=ID (contact, lead, user, account, opportunity, case); repeatable. It goes with --trigger button (the Save button): automatic sync ignores it, as the policy says.")
    var selections: [String] = []

    @Option(help: "A folder of Salesforce data export CSVs (Contact.csv, Lead.csv, Account.csv, ...): the CRM to search.")
    var crm: String?

    @Option(help: "The embedded CRM store (SQLite) to search and, for a command that saves (process or batch with --apply), to save into. Default: the user's store ($XDG_DATA_HOME/mailsave/crm.sqlite or ~/.local/share/mailsave/crm.sqlite) when it exists (mailsave crm import creates it); with no store, --crm or --salesforce, nothing is decided (exit 3). With --salesforce: where the save-once ledger and the outbox are kept.")
    var store: String?

    @OptionGroup var salesforceOption: SalesforceOption

    /// The options as plain values, which the decision is made of (`ProcessFastPath` builds
    /// them directly: a struct of property wrappers costs their set-up on every `process`).
    var settings: DecisionSettings {
        DecisionSettings(rules: rules, mailbox: mailbox, folder: folder, folderRole: folderRole, categories: categories, trigger: trigger,
                         selections: selections, crm: crm, store: store, salesforceOption: salesforceOption.settings)
    }

    func validate() throws { try settings.validate() }
    var context: ProcessContext { settings.context }
    func loadPack(checkingMailbox: Bool = true, caching: Bool = true) throws -> RulePack {
        try settings.loadPack(checkingMailbox: checkingMailbox, caching: caching)
    }
    func checkMailbox(pack: RulePack, directory: CRMDirectory) throws { try settings.checkMailbox(pack: pack, directory: directory) }
    func storePath(applying: Bool) -> String? { settings.storePath(applying: applying) }
    func loadDirectory(applying: Bool = false, concurrentReads: Bool = false) throws -> CRMDirectory {
        try settings.loadDirectory(applying: applying, concurrentReads: concurrentReads)
    }
    func checkSelection(_ engine: Engine) throws { try settings.checkSelection(engine) }
    func validateSources() throws { try settings.validateSources() }
    func decider(pack: RulePack, directory: CRMDirectory, applying: Bool) throws -> MessageDecider {
        try settings.decider(pack: pack, directory: directory, applying: applying)
    }

    /// `--mailbox` is one bare address: `Ann <ann@contoso.com>` or `<ann@contoso.com>` passed
    /// the old check, and then matched neither the user's file nor the owner's address (the
    /// personal blocklist and outbound-only were lost without a word).
    static func validateMailbox(_ mailbox: String) throws {
        let parsed = AddressParser.parse(Array(mailbox.utf8))
        guard parsed.addresses.count == 1, let address = parsed.addresses.first, !address.local.isEmpty, !address.domain.isEmpty,
              address.address == mailbox.trimmingSpaces() else {
            let alone = parsed.addresses.count == 1 && !(parsed.addresses.first?.domain.isEmpty ?? true)
                ? "; give the address alone: --mailbox \(parsed.addresses[0].address)" : ""
            throw ValidationError("--mailbox must be one email address, not '\(visible(mailbox))'\(alone)")
        }
    }

    /// The compiled pack of `rules`, or exit 5 with its diagnostics (3 when it cannot be read).
    /// With `mailbox`, of its user files only that mailbox's are read.
    static func loadPack(rules: String, mailbox: String? = nil, caching: Bool = true) throws -> RulePack {
        do {
            // Compiled packs are cached by the content of the rule files: process runs once per message.
            switch try Linter.load(rules, cache: caching && ProcessInfoCache.enabled ? PackCache.standard() : nil, mailbox: mailbox) {
            case .success(let pack):
                return pack
            case .failure(let result):
                Terminal.err(LintReport.text(result))
                throw CommandFailure(status: .badRules, message: "\(rules): the rule pack has \(result.errorCount) error\(result.errorCount == 1 ? "" : "s"); run mailsave lint \(rules)")
            }
        } catch let error as PackReadError {
            // The pack folder itself missing: most often --rules was left to its default.
            let hint = error.path == rules && !FileManager.default.fileExists(atPath: rules) ? " (--rules names the rule pack's folder; ./rules when not given)" : ""
            throw CommandFailure(status: .couldNotRun, message: error.description + hint)
        }
    }

    /// Exit 5 for a mailbox whose user file has errors: every problem on standard error, and
    /// one line naming the file.
    static func userFileFailure(mailbox: String, rules: String, problems: [String]) -> CommandFailure {
        // One line each: a line feed quoted from the user file cannot fake a line of its own.
        for problem in problems { Terminal.err(visible(problem)) }
        let file = problems.first.flatMap { $0.split(separator: ":").first.map(String.init) } ?? "the user file"
        return CommandFailure(status: .badRules,
                              message: "\(file): the user file of \(mailbox) has \(problems.count) error\(problems.count == 1 ? "" : "s"), so no decision is made for this mailbox (other mailboxes are not affected); run mailsave lint \(rules)")
    }

    /// A rule that went over an evaluation budget on this message: exit 5, naming the rule and
    /// its file:line (the pack must bound what it builds; retrying the message will not help).
    static func evaluationFailure(_ error: EvaluationError, file: String) -> CommandFailure {
        CommandFailure(status: .badRules, message: "\(error.description) (message \(file)); the rule pack must be changed to decide it")
    }

    static let crmObjects = ["Contact", "Lead", "Account", "Case", "Opportunity", "User", "EmailMessage", "EmailMessageRelation", "Task"]
}

/// The largest Data Export CSV read (`--crm`, `crm import`): reading stops there, so a link
/// to an endless file (/dev/zero) costs 1 GiB, not the machine. An export of a million
/// Contacts is a few hundred megabytes; a larger one is split as Data Loader writes it.
let maxCSVBytes = 1 << 30

/// Every record of the Data Export CSVs (`Contact.csv`, ...) in a folder.
func loadCRMRecords(_ folder: String) throws -> [CRMRecord] {
    let names: [String]
    do {
        names = try PackLoader.entries(of: folder)
    } catch {
        throw CommandFailure(status: .couldNotRun, message: "\(folder): cannot read the CRM folder (\(error.reason))")
    }
    let exported = DecisionOptions.crmObjects.filter { names.contains($0 + ".csv") }
    // A folder without one export is a wrong path far more often than an empty CRM: every
    // message would be decided against nothing, in silence.
    guard !exported.isEmpty else {
        throw CommandFailure(status: .badCRMData, message: "\(folder): no Salesforce data export in the folder (expected "
                             + DecisionOptions.crmObjects.map { $0 + ".csv" }.joined(separator: ", ") + "; an empty CRM is a Contact.csv with its header only)")
    }
    var records: [CRMRecord] = []
    for object in exported {
        let path = folder + "/" + object + ".csv"
        // Regular files only: a FIFO in the folder would hang every decision (a file named
        // on the command line, `crm import FILE`, may be one).
        let bytes = try readInput(path, limit: maxCSVBytes, overLimit: .badCRMData, regularOnly: true)
        do {
            records += try InMemoryDirectory.parseCSV(bytes: bytes, object: object)
        } catch {
            throw CommandFailure(status: .badCRMData, message: "\(path):\(error.line): \(error.reason)")
        }
    }
    return records
}

/// Reads a message file, or exits 3 (unreadable) or 4 (not a message).
func readMessage(_ file: String) throws -> Message {
    let bytes = try readInput(file, limit: ParseLimits().maxMessageBytes)
    try MessageDecider.refuseMbox(bytes, name: file)
    do {
        return try MessageParser.parse(bytes)
    } catch {
        throw CommandFailure(status: .badMessage, message: "\(file):\(error.line.map { "\($0):" } ?? "") \(error.reason)")
    }
}

enum ProcessFormat: String, ExpressibleByArgument, CaseIterable { case json, text, table }

struct Process: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "process", // named, not derived from the type's name at every start
        abstract: "Decide whether and how a message is saved into Salesforce, and print the decision.",
        discussion: """
        Builds the facts (participants with blocklists and CRM matches, direction, folder, \
        trigger, related records, thread, ledger), runs the rule pack, and prints the decision: \
        verdict (save, skip, blocked, unsupported), save_as, links, reasons, observations, \
        category and the Salesforce record. Exit 0 whenever a decision was made.

        Examples:
          mailsave process --mailbox ann@contoso.com --crm examples/crm examples/messages/01-customer-question.eml
          mailsave process --mailbox ann@contoso.com --crm examples/crm --format table examples/messages/*.eml
          mailsave process --mailbox ann@contoso.com --trigger button --select contact=0035e00000AbCdEAAX msg.eml
          mailsave process --store crm.sqlite --mailbox ann@contoso.com --apply msg.eml
          mailsave process --salesforce --mailbox ann@contoso.com --apply msg.eml

        With --apply the decision is carried out in the embedded CRM (--store): saved at \
        most once per message org-wide, and the decision gains saved {id, created}. With \
        --salesforce the CRM is a Salesforce org (MAILSAVE_SF_* variables or \
        --salesforce-config; see the README, "Connect to Salesforce"): one API call answers \
        the message's look-ups, one all-or-none call saves it, and the store keeps the \
        ledger and the outbox.

        With --thread the files (or --mbox FILE) are one thread, decided together in thread \
        order (parents first by In-Reply-To/References, then by Date), each message once; \
        every message is in --folder unless --message-folder gives the Nth message's folder \
        (repeat it, in input order). The pack sees thread.whole: the shipped pack saves only \
        the thread's Inbox and Sent items. One decision a line, as with several files:
          mailsave process --thread --mailbox ann@contoso.com --message-folder Inbox --message-folder Sent a.eml b.eml

        Exit codes: 0 decided, 2 usage (an invalid --select too), 3 unreadable file, missing \
        store folder, foreign, newer or damaged store, 4 not a message (or over 64 MiB), \
        5 rule pack errors (the mailbox's own user file, a rule over an evaluation budget), \
        6 unreadable CRM export, 11 decided, but a save could not be done now and is parked in \
        the store's outbox (the decision's saved is {"id": null, "created": false, "parked": REASON}; \
        mailsave retry saves it later), 12 the Salesforce configuration is missing, incomplete or \
        unsafe, 75 temporary: disk full or store locked, or the org could not answer the \
        look-ups now, retry later. With several files, the others are decided and the first \
        failure's code is returned.
        """
    )

    @OptionGroup var options: DecisionOptions

    @Option(help: "json (one object; one a line for several files), text, or table (one line a message).")
    var format: ProcessFormat = .json

    @Flag(help: "Save: write the record into --store (at most once per message, org-wide) and add saved {id, created} to the decision.")
    var apply = false

    @Flag(help: "Save a whole thread: decide the files (or --mbox) together as one thread, in thread order (parents first by In-Reply-To/References, then by Date), each message once; the pack sees thread.whole (the shipped pack saves only the Inbox and Sent items).")
    var thread = false

    @Option(help: "With --thread: an mbox holding the thread's messages, instead of files.")
    var mbox: String?

    @Option(name: .customLong("message-folder"), help: "With --thread: the folder of the Nth message (file or mbox entry, in input order), repeatable; messages without one are in --folder.")
    var messageFolders: [String] = []

    @Argument(help: "Message files, or - for standard input.")
    var files: [String] = []

    /// The command as plain values (`ProcessFastPath` builds them directly).
    var job: ProcessJob {
        ProcessJob(options: options.settings, format: format, apply: apply, thread: thread, mbox: mbox, messageFolders: messageFolders, files: files)
    }

    func validate() throws { try job.validate() }

    func run() throws { try job.run(exitingWhenDone: false) }
}

/// One `process` run: what the command line asked for, as plain values.
struct ProcessJob {
    var options = DecisionSettings()
    var format = ProcessFormat.json
    var apply = false
    var thread = false
    var mbox: String?
    var messageFolders: [String] = []
    var files: [String] = []

    func validate() throws {
        if mbox != nil || !messageFolders.isEmpty, !thread { throw ValidationError("--mbox and --message-folder go with --thread") }
        if mbox != nil && !files.isEmpty { throw ValidationError("give the thread as files or as --mbox, not both") }
        if files.isEmpty && mbox == nil { throw ValidationError("give a message file, or - for standard input") }
        try options.validateSources()
        if apply && options.crm != nil { throw ValidationError("--apply saves into a store, not into --crm's CSV folder: give --store PATH or neither") }
    }

    /// `exitingWhenDone`: a run that saves nothing ends (status 0) as soon as its decisions
    /// are written, with the pack, the store and the decider still held: releasing them object
    /// by object took 0.45 ms of a 5 ms `process`, and the kernel frees it all at once. A run
    /// with `--apply` closes the store: closing checkpoints the WAL into the store and syncs it
    /// to disk (a save reported before that could be lost to a power cut, and the store's file
    /// alone, copied or shared read-only, would not hold it).
    func run(exitingWhenDone: Bool) throws {
        let pack = try options.loadPack()
        let directory = try options.loadDirectory(applying: apply)
        try options.checkMailbox(pack: pack, directory: directory)
        // Several messages: the selection is refused before any is decided. One message: its
        // decision checks the selection in the same look-up (for Salesforce, one call, not two).
        if thread || files.count != 1 { try options.checkSelection(Engine(pack: pack, directory: directory)) }
        let decider = try options.decider(pack: pack, directory: directory, applying: apply)
        try withExtendedLifetime((pack, directory, decider)) {
            if thread { try runThread(decider: decider) } else { try runFiles(decider: decider) }
            if exitingWhenDone && !apply { endProcess(.ok) }
        }
    }

    /// Decides (and with `--apply` saves) each file, one decision a line; exits with the first
    /// failure's status, else 11 when a save was parked.
    func runFiles(decider: MessageDecider) throws {
        var rows: [[String]] = []
        var firstFailure: ExitStatus?
        var parked = false
        for file in files {
            let outcome: MessageDecider.Outcome
            do {
                outcome = try decider.run(file: file)
            } catch let error as StoreError {
                // The store, not this message: no other message can be decided either.
                throw CommandFailure(error)
            } catch let error as CRMError {
                throw CommandFailure(error)
            } catch let error as SelectionError {
                throw CommandFailure(status: .usage, message: error.description)
            } catch let failure as CommandFailure {
                if files.count == 1 { throw failure }
                Terminal.err("mailsave: " + failure.message)
                firstFailure = firstFailure ?? failure.status
                // The table keeps a row for it (the reason is on standard error), as batch does.
                if format == .table {
                    var row = [file.split(separator: "/").last.map(String.init) ?? file, "error", "", "", "exit \(failure.status.rawValue)"]
                    if apply { row.insert("", at: row.count - 1) }
                    rows.append(row)
                }
                continue
            }
            parked = parked || outcome.parked != nil
            output(outcome, file: file, several: files.count > 1, rows: &rows)
        }
        if format == .table { Terminal.out(DecisionText.table(rows, saved: apply)) }
        if let firstFailure { throw ExitCode(firstFailure.rawValue) }
        if parked { throw ExitCode(ExitStatus.parked.rawValue) }
    }

    /// One decision: a JSON line (pretty for a single file), a text block, or a table row.
    func output(_ outcome: MessageDecider.Outcome, file: String, several: Bool, rows: inout [[String]]) {
        let decision = outcome.decision
        switch format {
        case .json:
            var json = outcome.json(applying: apply)
            if several, case .object(let members) = json { json = .object([("file", .string(file))] + members) }
            Terminal.out(json.serialized(pretty: !several))
        case .text:
            if several { Terminal.out("== \(file)") }
            var text = DecisionText.render(decision)
            if apply { text += "\n" + "Saved".padding(13) + visible(outcome.savedText) }
            Terminal.out(text + (several ? "\n" : ""))
        case .table:
            var row = DecisionText.row(name: file.split(separator: "/").last.map(String.init) ?? file, decision)
            if apply { row.insert(outcome.savedCell, at: row.count - 1) }
            rows.append(row)
        }
    }
}

/// The decision JSON (schemas/decision.schema.json).
enum DecisionJSON {
    static func value(_ value: Value) -> JSON {
        switch value {
        case .absent: return .null
        case .bool(let flag): return .bool(flag)
        case .int(let number): return .int(number)
        case .string(let text): return .string(text)
        case .list(let values): return .array(values.map(Self.value))
        case .object, .namedList: return .string(value.description)
        }
    }

    static func encode(_ decision: Decision) -> JSON {
        var record = JSON.null
        if let saved = decision.record {
            record = .object([("object", .string(saved.object)), ("fields", .object(saved.fields.map { ($0.name, value($0.value)) }))])
        }
        return .object([
            ("message_id", .optional(decision.messageID)),
            ("verdict", .string(decision.verdict.rawValue)),
            ("save_as", .optional(decision.saveAs)),
            ("links", .object([("who", .strings(decision.who)), ("what", .optional(decision.what))])),
            ("reasons", .array(decision.reasons.map { .object([("rule", .string($0.rule)), ("message", .string($0.message))]) })),
            ("observations", .strings(decision.observations)),
            ("category", .optional(decision.category)),
            ("record", record),
            ("create_records_for", .strings(decision.createFor)),
            ("create_records", .array(decision.toCreate.map { record in
                .object([("address", .string(record.address)), ("object", .string(record.object)), ("account_id", .optional(record.accountID)),
                         ("placeholder", .string(record.placeholder))])
            })),
            ("candidates", .array(decision.candidates.map { candidate in
                .object([("id", .string(candidate.id)), ("object", .string(candidate.object)), ("via", .string(candidate.via))])
            })),
        ])
    }
}

enum DecisionText {
    static func render(_ decision: Decision) -> String {
        var lines: [String] = []
        func row(_ label: String, _ value: String) { lines.append(label.padding(13) + value) }
        row("Message-ID", decision.messageID ?? "(none)")
        row("Verdict", decision.verdict.rawValue + (decision.saveAs.map { " as \($0)" } ?? ""))
        for reason in decision.reasons { row("Because", "\(reason.message) [\(reason.rule)]") }
        if decision.verdict == .save {
            row("Who", decision.who.isEmpty ? "(none)" : decision.who.joined(separator: ", "))
            row("What", decision.what ?? "(none)")
            row("Category", decision.category ?? "(none)")
        }
        for observation in decision.observations { row("Observation", observation) }
        if let record = decision.record {
            for field in record.fields {
                var shown = field.value == .absent ? "(blank)" : field.value.description
                if shown.count > 70 { shown = String(shown.prefix(67)) + "...\"" }
                row(record.object + "." + field.name, shown.replacing("\\n", with: "⏎"))
            }
        }
        return lines.map(visible).joined(separator: "\n")
    }

    /// `name`: what the MESSAGE column shows (process: the file's name; batch: its place in the mailbox).
    static func row(name: String, _ decision: Decision) -> [String] {
        let links = decision.verdict == .save ? (decision.who + [decision.what].compactMap { $0 }).joined(separator: " ") : ""
        return [name, decision.verdict.rawValue, decision.saveAs ?? "", links.isEmpty ? "" : links,
                decision.reasons.first?.rule ?? ""]
    }

    static func table(_ rows: [[String]], saved: Bool = false) -> String {
        let header = saved ? ["MESSAGE", "VERDICT", "SAVE AS", "LINKS", "SAVED", "RULE"] : ["MESSAGE", "VERDICT", "SAVE AS", "LINKS", "RULE"]
        let all = [header] + rows.map { $0.map(visible) }
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { index, cell in index == row.count - 1 ? cell : cell.padding(widths[index] + 1) }.joined()
        }.joined(separator: "\n")
    }
}

/// Ends the process now (`exit` inside a command is swift-argument-parser's `exit(withError:)`).
private func endProcess(_ status: ExitStatus) -> Never {
    exit(status.rawValue)
}
