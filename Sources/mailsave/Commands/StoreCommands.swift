import ArgumentParser
import Foundation
import MailEngine
import MailRules
import MailSalesforce
import MailStore

/// `--store PATH`, defaulting to the user's data folder.
struct StoreOption: ParsableArguments {
    @Option(help: "The embedded CRM store (SQLite). Default: $XDG_DATA_HOME/mailsave/crm.sqlite or ~/.local/share/mailsave/crm.sqlite. Its folder must exist (only the default store's folder is created).")
    var store: String?

    /// How long a write waits for another process's before exit 75: `MAILSAVE_BUSY_TIMEOUT`
    /// seconds (decimal, 0 to 86,400), else 30. Any other value stops the command (exit 2):
    /// `abc` used to mean 30 in silence, and 3,000,000 trapped in SQLite's milliseconds.
    static var busyTimeout: Double {
        get throws(CommandFailure) {
            guard let raw = getenv("MAILSAVE_BUSY_TIMEOUT") else { return 30 }
            let text = String(cString: raw)
            let digits = text.utf8.filter { $0 != UInt8(ascii: ".") }
            guard !digits.isEmpty, digits.allSatisfy({ (0x30...0x39).contains($0) }), text.utf8.count(where: { $0 == UInt8(ascii: ".") }) <= 1,
                  text.utf8.count <= 12, let seconds = Double(text), seconds <= 86_400 else {
                throw CommandFailure(status: .usage, message: "MAILSAVE_BUSY_TIMEOUT: \(text.debugDescription) is not a number of seconds from 0 to 86400 "
                                     + "(how long a write waits for another process's; default 30)")
            }
            return seconds
        }
    }

    /// The store. Only `crm import` creates one (`creating`): a command that edits, reconciles
    /// or retries a store that is not there says so, where it left an empty default store
    /// behind that later decisions read as an empty CRM.
    func open(_ access: CRMStore.Access = .readWrite, check: CRMStore.IntegrityCheck = .always, creating: Bool = false) throws -> CRMStore {
        let busyTimeout = try Self.busyTimeout
        let path = store ?? CRMStore.defaultPath()
        if access == .readWrite && !creating && !FileManager.default.fileExists(atPath: path) {
            throw CommandFailure(status: .couldNotRun, message: "\(path): no store there (`mailsave crm import --store \(path) ...` creates one)")
        }
        do {
            return try CRMStore(path: path, access: access, createFolder: store == nil, check: check,
                                busyTimeout: busyTimeout)
        } catch {
            throw CommandFailure(error)
        }
    }
}

extension CommandFailure {
    /// A store error's exit status: 75 when retrying later may work (disk full, locked),
    /// else 3 (missing folder, foreign, newer or damaged store, I/O).
    init(_ error: StoreError) {
        self.init(status: error.kind == .temporary ? .temporary : .couldNotRun, message: error.message)
    }

    /// A CRM backend's error: 75 when retrying later may work, else 3.
    init(_ error: CRMError) {
        self.init(status: error.isRetryable ? .temporary : .couldNotRun, message: error.message)
    }
}

/// Runs a store command's body with store errors mapped to their exit status.
func storeCommand(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as StoreError {
        throw CommandFailure(error)
    } catch let error as CRMError {
        throw CommandFailure(error)
    }
}

struct CRM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crm",
        abstract: "Load a Salesforce data export into the embedded CRM, or export the activities saved there.",
        subcommands: [CRMImport.self, CRMExport.self]
    )
}

struct CRMImport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import a Data Loader / Data Export CSV of one object into the store.",
        discussion: """
        The CSV has a header row of API field names (Id, Email, AccountId...), RFC 4180 \
        quoting, UTF-8 with or without BOM. Unknown columns are kept and ignored. A bad row \
        is reported with its line number and nothing of the file is imported (exit 6): \
        bytes that are not UTF-8, a NUL byte, a quote never closed (named at the line it \
        opens), a column named twice, an Id given twice, an Id (or AccountId, ContactId, \
        WhoId, WhatId, OwnerId, EmailMessageId, RelationId, RelatedToId) that is not 15 or 18 letters and \
        digits, a cell over 131,072 characters; a file over 1 GiB is refused unread past \
        that (split it). A FIFO is read once its writer writes. A record whose Id is already in \
        the store is replaced, and the count of replaced records is printed.

        Exit codes: 0 imported, 3 store unusable (missing folder, foreign, newer or damaged), \
        6 bad CSV, 75 disk full or store locked (nothing imported; retry later).

        Examples:
          mailsave crm import --store crm.sqlite --object Contact examples/crm/Contact.csv
          for o in Account Contact Lead Opportunity Case User EmailMessage EmailMessageRelation Task; do
            mailsave crm import --store crm.sqlite --object $o examples/crm/$o.csv; done
        """
    )

    @OptionGroup var storeOption: StoreOption

    @Option(help: "Contact, Lead, Account, Case, Opportunity, User, EmailMessage, EmailMessageRelation or Task.")
    var object: String

    @Argument(help: "The CSV file.")
    var file: String

    func validate() throws {
        guard DecisionOptions.crmObjects.contains(object) else {
            throw ValidationError("--object must be one of \(DecisionOptions.crmObjects.joined(separator: ", ")), not '\(object)'")
        }
    }

    func run() throws {
        let bytes = try readInput(file, limit: maxCSVBytes, overLimit: .badCRMData)
        try storeCommand {
            let store = try storeOption.open(creating: true)
            do {
                let summary = try store.importCSV(bytes: bytes, object: object)
                let count = summary.count
                var line = "imported \(count) \(object) record\(count == 1 ? "" : "s") into \(store.path)"
                if summary.replaced > 0 {
                    line += " (\(summary.replaced) of them replaced the store's record with the same Id)"
                }
                if summary.deleted > 0 {
                    line += "; \(summary.deleted) row\(summary.deleted == 1 ? "" : "s") marked IsDeleted not imported (removed from the store where it had them)"
                }
                Terminal.out(line)
            } catch let problem as CRMStore.ImportProblem {
                throw CommandFailure(status: .badCRMData, message: "\(file):\(problem.line): \(problem.reason); nothing was imported")
            }
        }
    }
}

struct CRMExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write the records of one object (the saved Tasks, EmailMessages...) as a Data Loader CSV.",
        discussion: """
        Cells that a spreadsheet would run as a formula (starting with =, +, -, @, a tab or \
        a carriage return) are written with a single quote in front ('=1+2), as OWASP \
        advises against CSV injection; --raw writes every cell as stored, for programs. \
        The store is only read (it may be read-only) and checked first (PRAGMA quick_check).

        Examples:
          mailsave crm export --store crm.sqlite --object Task > Task.csv
          mailsave crm export --store crm.sqlite --object EmailMessageRelation
          mailsave crm export --store crm.sqlite --object Contact --raw > Contact.csv
        """
    )

    @OptionGroup var storeOption: StoreOption

    @Option(help: "The object to export.")
    var object: String = "Task"

    @Flag(help: "Write cells as stored, without neutralising formula-like cells.")
    var raw = false

    func validate() throws {
        guard DecisionOptions.crmObjects.contains(object) else {
            throw ValidationError("--object must be one of \(DecisionOptions.crmObjects.joined(separator: ", ")), not '\(object)'")
        }
    }

    func run() throws {
        try storeCommand {
            let store = try storeOption.open(.readOnly, check: .always)
            let records = try store.records(object: object)
            var columns = ["Id"]
            var known: Set<String> = ["Id"]
            for record in records {
                for name in record.fields.keys.sorted() where !known.contains(name) {
                    columns.append(name)
                    known.insert(name)
                }
            }
            var text = CSVOutput.row(columns, raw: raw)
            for record in records {
                text += CSVOutput.row(columns.map { $0 == "Id" ? record.id : record.fields[$0] ?? "" }, raw: raw)
            }
            Terminal.writeAll(1, text)
        }
    }
}

/// RFC 4180 rows (LF ends, as before; quoted when needed) for `crm export`.
enum CSVOutput {
    /// A cell a spreadsheet would evaluate gets a leading single quote (OWASP CSV injection).
    static func neutralised(_ cell: String) -> String {
        guard let first = cell.unicodeScalars.first, "=+-@\t\r".unicodeScalars.contains(first) else { return cell }
        return "'" + cell
    }

    static func cell(_ value: String, raw: Bool) -> String {
        let text = raw ? value : neutralised(value)
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    static func row(_ cells: [String], raw: Bool) -> String {
        cells.map { cell($0, raw: raw) }.joined(separator: ",") + "\n"
    }
}

struct Ledger: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ledger",
        abstract: "The save-once ledger.",
        subcommands: [LedgerReconcile.self]
    )
}

struct LedgerReconcile: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconcile",
        abstract: "List ledger rows whose record was deleted in the CRM (those messages may be saved again); --remove deletes the rows.",
        discussion: """
        Examples:
          mailsave ledger reconcile --store crm.sqlite
          mailsave ledger reconcile --store crm.sqlite --remove
        """
    )

    @OptionGroup var storeOption: StoreOption

    @Flag(help: "Delete the rows found.")
    var remove = false

    func run() throws {
        try storeCommand {
            let store = try storeOption.open(remove ? .readWrite : .readOnly, check: .always)
            let gone = try store.reconcile(remove: remove)
            for row in gone { Terminal.out("\(visible(row.messageKey))\t\(row.recordID.isEmpty ? "(never completed)" : visible(row.recordID))") }
            Terminal.out("\(gone.count) ledger row\(gone.count == 1 ? "" : "s") without a record\(remove ? " removed" : "") of \(try store.ledgerCount() + (remove ? gone.count : 0))")
        }
    }
}

struct Edit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edit",
        abstract: "Edit a saved EmailMessage: delete it and create it again with the changes, as Salesforce requires.",
        discussion: """
        Salesforce only updates Draft EmailMessages, so changing the links, Subject or body \
        deletes the record and re-creates it, in one transaction. Only the record's owner, \
        with permission to delete EmailMessages (PermissionsDeleteEmailMessage on the User), \
        may do it. The save rules hold: linked ids must exist, be of a kind that links there \
        (who: Contact, Lead, User; what: Account, Opportunity, Case) and not be internal or \
        on the org or the user's blocklist (read from --rules), and a Lead excludes \
        RelatedToId. A refusal changes nothing.

        Exit codes: 0 edited, 2 usage, 3 store unreadable, 5 rule pack errors, 7 refused: not \
        the owner or no permission to delete EmailMessages, 8 not found: no saved EmailMessage \
        with the Message-ID or no such User, 9 a field that cannot be edited, 10 a link the \
        save rules refuse, 75 store locked or disk full: retry later.

        Examples:
          mailsave edit --store crm.sqlite --as 0055e00000Ann01 '<CAB1234567@mail.fabrikam.com>' --set Subject='Quote (revised)'
          mailsave edit --store crm.sqlite --as 0055e00000Ann01 '<CAB1234567@mail.fabrikam.com>' --link who=0035e00000Car01
        """
    )

    @OptionGroup var storeOption: StoreOption

    /// `--salesforce`: edit in the org (delete and re-create in one all-or-none call);
    /// Salesforce itself enforces ownership and the delete permission of the integration user.
    @OptionGroup var salesforceOption: SalesforceOption

    @Option(name: .customLong("as"), help: "The User id doing the edit (with --salesforce: whose blocklist applies to the links).")
    var user: String

    @Option(name: .customLong("set"), help: "FIELD=VALUE for Subject, TextBody or HtmlBody; repeatable. A value longer than the field or holding a control character is refused (exit 2).")
    var sets: [String] = []

    @Option(name: .customLong("link"), help: "who=ID (repeatable: the new Who list) or what=ID.")
    var links: [String] = []

    @Option(help: "The rule pack folder: its blocklists and corporate domains decide which records may be linked.")
    var rules: String = "rules"

    @Argument(help: "The Message-ID of the saved email.")
    var messageID: String

    func validate() throws {
        // An edit of nothing deleted and re-created the record under a new id all the same.
        if sets.isEmpty && links.isEmpty { throw ValidationError("nothing to edit: give --set FIELD=VALUE or --link who=ID|what=ID") }
        for item in sets + links where !item.contains("=") { throw ValidationError("'\(item)' is not NAME=VALUE") }
        // A value the org cannot hold is refused here, whole, not cut or cleaned: an edit is
        // what the user typed (the org refused it after the record was deleted for the edit).
        for item in sets {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0]), value = String(parts[1])
            guard let field = SalesforceField.fields(for: "EmailMessage")?.first(where: { $0.name == name }) else { continue }
            if let limit = field.maxLength, value.utf16.count > limit {
                throw ValidationError("--set \(name): \(value.utf16.count) characters; EmailMessage.\(name) holds \(limit) (UTF-16 units, as Salesforce counts)")
            }
            if SalesforceField.storable(value).removed > 0 {
                throw ValidationError("--set \(name): the value holds a control character, which Salesforce's text fields cannot hold (tab, line feed and carriage return can be)")
            }
        }
        for link in links where !(link.hasPrefix("who=") || link.hasPrefix("what=")) {
            throw ValidationError("--link takes who=ID or what=ID, not '\(link)'")
        }
    }

    func run() throws {
        try storeCommand { try edit() }
    }

    func edit() throws {
        var changes: [String: String] = [:]
        for item in sets {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            changes[String(parts[0])] = String(parts[1])
        }
        // One relation a person: an id given twice (or in its 15- and 18-character forms) once.
        var named = Set<String>()
        let who = links.filter { $0.hasPrefix("who=") }.map { String($0.dropFirst(4)) }.filter { named.insert(SalesforceID.canonical($0)).inserted }
        let what = links.last { $0.hasPrefix("what=") }.map { String($0.dropFirst(5)) }
        if salesforceOption.enabled { return try editInSalesforce(changes: changes, who: who, what: what) }
        let store = try storeOption.open()
        try checkLinks(directory: store, who: who, what: what)
        do {
            let id = try store.editEmailMessage(messageID: messageID, as: user, set: changes, who: who.isEmpty ? nil : who, what: what)
            Terminal.out(JSON.object([("id", .string(id)), ("message_id", .string(messageID))]).serialized(pretty: false))
        } catch let refusal as CRMStore.EditRefusal {
            let status: ExitStatus = switch refusal.kind {
            case .notFound: .notFound
            case .permission: .refused
            case .notEditable: .notEditable
            case .link: .linkRefused
            }
            throw CommandFailure(status: status, message: refusal.message)
        }
    }

    /// The same edit in a Salesforce org: the links checked against the org and the pack, then
    /// one all-or-none call deletes the EmailMessage and creates it again.
    func editInSalesforce(changes: [String: String], who: [String], what: String?) throws {
        let org = try salesforceOption.backend()
        try checkLinks(directory: org, who: who, what: what)
        do {
            let id = try org.editEmailMessage(messageID: messageID, set: changes, who: who.isEmpty ? nil : who, what: what)
            Terminal.out(JSON.object([("id", .string(id)), ("message_id", .string(messageID))]).serialized(pretty: false))
        } catch let refusal as SalesforceEditRefusal {
            let status: ExitStatus = switch refusal.kind {
            case .notFound: .notFound
            case .notEditable: .notEditable
            case .link: .linkRefused
            }
            throw CommandFailure(status: status, message: refusal.message)
        }
    }

    /// The links as the Save dialog's selection is checked (DESIGN.md point 8: never a
    /// blocklisted record): each id must exist, be of a kind that links there, and not be
    /// internal or on the org or the editing user's blocklist. Exit 10 naming the id.
    /// `--as` must be a User of the CRM (exit 8): an unknown id had no blocklist, so a link
    /// that user's blocklist refuses went through.
    func checkLinks(directory: CRMDirectory, who: [String], what: String?) throws {
        let ids = who.map { ($0, ["Contact", "Lead", "User"]) } + [what].compactMap { $0 }.filter { !$0.isEmpty }.map { ($0, ["Account", "Opportunity", "Case"]) }
        var plan = LookupPlan()
        plan.recordIDs = [user] + ids.map(\.0)
        let answers = try directory.resolve(plan)
        guard answers.record(id: user)?.object == "User" else {
            throw CommandFailure(status: .notFound, message: "no User \(user) in the CRM (--as); nothing changed")
        }
        guard !ids.isEmpty else { return }
        let pack: RulePack
        do {
            switch try Linter.load(rules, cache: nil) {
            case .success(let loaded): pack = loaded
            case .failure(let result):
                Terminal.err(LintReport.text(result))
                throw CommandFailure(status: .badRules, message: "\(rules): the rule pack has \(result.errorCount) error\(result.errorCount == 1 ? "" : "s"); run mailsave lint \(rules)")
            }
        } catch let error as PackReadError {
            throw CommandFailure(status: .couldNotRun, message: error.description)
        }
        // The editing user's own blocklist applies: the mailbox is the User's address.
        let mailbox = answers.record(id: user)?["Email"] ?? ""
        for (id, kinds) in ids {
            let object = answers.record(id: id)?.object
            guard let object else { throw CommandFailure(status: .linkRefused, message: "cannot link \(id): no such record in the CRM; nothing changed") }
            guard kinds.contains(object) else {
                throw CommandFailure(status: .linkRefused, message: "cannot link \(id): it is a \(object), not a \(kinds.joined(separator: ", ")); nothing changed")
            }
            let context = ProcessContext(mailbox: mailbox.isEmpty ? "nobody@invalid" : mailbox, trigger: "button", selection: [(object.lowercased(), id)])
            do {
                try Engine(pack: pack, directory: directory).validateSelection(context)
            } catch let error as SelectionError {
                throw CommandFailure(status: .linkRefused, message: "cannot link \(id): \(error.reason); nothing changed")
            }
        }
    }
}
