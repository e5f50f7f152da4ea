import ArgumentParser
import CSV
import Foundation
import MailEngine
import MailRules
import MailStore

/// `--store PATH`, defaulting to the user's data folder.
struct StoreOption: ParsableArguments {
    @Option(help: "The embedded CRM store (SQLite). Default: $XDG_DATA_HOME/mailsave/crm.sqlite or ~/.local/share/mailsave/crm.sqlite.")
    var store: String?

    func open() throws -> CRMStore {
        do {
            return try CRMStore(path: store ?? CRMStore.defaultPath())
        } catch {
            throw CommandFailure(status: .couldNotRun, message: error.description)
        }
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
        is reported with its line number and nothing of the file is imported.

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
        let store = try storeOption.open()
        let text = String(decoding: try readInput(file), as: UTF8.self)
        do {
            let count = try store.importCSV(text, object: object)
            Terminal.out("imported \(count) \(object) record\(count == 1 ? "" : "s") into \(store.path)")
        } catch let problem as CRMStore.ImportProblem {
            throw CommandFailure(status: .badCRMData, message: "\(file):\(problem.line): \(problem.reason); nothing was imported")
        }
    }
}

struct CRMExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write the records of one object (the saved Tasks, EmailMessages...) as a Data Loader CSV.",
        discussion: """
        Examples:
          mailsave crm export --store crm.sqlite --object Task > Task.csv
          mailsave crm export --store crm.sqlite --object EmailMessageRelation
        """
    )

    @OptionGroup var storeOption: StoreOption

    @Option(help: "The object to export.")
    var object: String = "Task"

    func validate() throws {
        guard DecisionOptions.crmObjects.contains(object) else {
            throw ValidationError("--object must be one of \(DecisionOptions.crmObjects.joined(separator: ", ")), not '\(object)'")
        }
    }

    func run() throws {
        let store = try storeOption.open()
        let records = try store.records(object: object)
        var columns = ["Id"]
        for record in records { for name in record.fields.keys.sorted() where !columns.contains(name) { columns.append(name) } }
        let stream = OutputStream(toMemory: ())
        let writer = try CSVWriter(stream: stream)
        try writer.write(row: columns)
        for record in records { try writer.write(row: columns.map { $0 == "Id" ? record.id : record.fields[$0] ?? "" }) }
        writer.stream.close()
        let data = stream.property(forKey: .dataWrittenToMemoryStreamKey) as? Data ?? Data()
        Terminal.writeAll(1, String(decoding: data, as: UTF8.self) + "\n")
    }
}

struct Ledger: ParsableCommand {
    static let configuration = CommandConfiguration(
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
        let store = try storeOption.open()
        let gone = try store.reconcile(remove: remove)
        for row in gone { Terminal.out("\(row.messageKey)\t\(row.recordID.isEmpty ? "(never completed)" : row.recordID)") }
        Terminal.out("\(gone.count) ledger row\(gone.count == 1 ? "" : "s") without a record\(remove ? " removed" : "") of \(try store.ledgerCount() + (remove ? gone.count : 0))")
    }
}

struct Edit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Edit a saved EmailMessage: delete it and create it again with the changes, as Salesforce requires.",
        discussion: """
        Salesforce only updates Draft EmailMessages, so changing the links, Subject or body \
        deletes the record and re-creates it, in one transaction. Only the record's owner, \
        with permission to delete EmailMessages (PermissionsDeleteEmailMessage on the User), \
        may do it; otherwise mailsave refuses and changes nothing (exit 7).

        Examples:
          mailsave edit --store crm.sqlite --as 0055e00000Ann01 '<CAB1234567@mail.fabrikam.com>' --set Subject='Quote (revised)'
          mailsave edit --store crm.sqlite --as 0055e00000Ann01 '<CAB1234567@mail.fabrikam.com>' --link who=0035e00000Car01
        """
    )

    @OptionGroup var storeOption: StoreOption

    @Option(name: .customLong("as"), help: "The User id doing the edit.")
    var user: String

    @Option(name: .customLong("set"), help: "FIELD=VALUE for Subject, TextBody or HtmlBody; repeatable.")
    var sets: [String] = []

    @Option(name: .customLong("link"), help: "who=ID (repeatable: the new Who list) or what=ID.")
    var links: [String] = []

    @Argument(help: "The Message-ID of the saved email.")
    var messageID: String

    func validate() throws {
        for item in sets + links where !item.contains("=") { throw ValidationError("'\(item)' is not NAME=VALUE") }
        for link in links where !(link.hasPrefix("who=") || link.hasPrefix("what=")) {
            throw ValidationError("--link takes who=ID or what=ID, not '\(link)'")
        }
    }

    func run() throws {
        let store = try storeOption.open()
        var changes: [String: String] = [:]
        for item in sets {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            changes[String(parts[0])] = String(parts[1])
        }
        let who = links.filter { $0.hasPrefix("who=") }.map { String($0.dropFirst(4)) }
        let what = links.last { $0.hasPrefix("what=") }.map { String($0.dropFirst(5)) }
        do {
            let id = try store.editEmailMessage(messageID: messageID, as: user, set: changes, who: who.isEmpty ? nil : who, what: what)
            Terminal.out(JSON.object([("id", .string(id)), ("message_id", .string(messageID))]).serialized(pretty: false))
        } catch let refusal as CRMStore.EditRefusal {
            throw CommandFailure(status: .refused, message: refusal.message)
        }
    }
}
