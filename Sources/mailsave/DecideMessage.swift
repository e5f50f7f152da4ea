import MailEngine
import MailMessage
import MailRules
import MailStore

/// The per-message path that `process`, `batch` and `diff` share, so a message is decided
/// the same way whichever command reads it: bytes → message → decision → (with `--apply`)
/// the save → the decision JSON.
struct MessageDecider: Sendable {
    let pack: RulePack
    let directory: CRMDirectory
    var context: ProcessContext
    /// Where `--apply` saves (the store, or Salesforce); nil decides only.
    let writer: ActivityWriter?

    init(pack: RulePack, directory: CRMDirectory, context: ProcessContext, writer: ActivityWriter?) {
        self.pack = pack
        self.directory = directory
        self.context = context
        self.writer = writer
    }

    var applying: Bool { writer != nil }

    /// The same decider for a message in another folder (`--folder-from-maildir`).
    func inFolder(_ folder: String) -> MessageDecider {
        guard folder != context.folder else { return self }
        var copy = self
        copy.context.folder = folder
        // --folder-role names the role of --folder; another folder's role comes from its name.
        copy.context.folderRole = nil
        return copy
    }

    /// What became of one message.
    struct Outcome: Sendable {
        var message: Message
        var decision: Decision
        var facts: EngineFacts
        /// With `--apply`: the record (created now, or found in the ledger); nil when nothing was saved.
        var saved: SaveResult?

        /// The decision JSON (`schemas/decision.schema.json`), with `saved` when applying.
        func json(applying: Bool) -> JSON {
            var json = DecisionJSON.encode(decision)
            if applying, case .object(let members) = json {
                json = .object(members + [("saved", saved.map { saved in
                    var fields: [(String, JSON)] = [("id", .string(saved.id)), ("created", .bool(saved.created))]
                    // The placeholders of links.who and the record's WhoId, and the records they became.
                    if !saved.createdRecords.isEmpty { fields.append(("created_records", .object(saved.createdRecords.map { ($0.placeholder, .string($0.id)) }))) }
                    return .object(fields)
                } ?? .null)])
            }
            return json
        }
    }

    /// A message file (or `-`): read, parsed, decided, saved.
    func run(file: String) throws -> Outcome {
        try run(readMessage(file), name: file)
    }

    /// Bytes read elsewhere (an mbox entry, a Maildir file): `name` is the place errors name,
    /// and `firstLine` the line of the source the message's first line is on.
    func run(bytes: [UInt8], name: String, firstLine: Int = 1) throws -> Outcome {
        try run(Self.parse(bytes, name: name, firstLine: firstLine), name: name)
    }

    func run(_ message: Message, name: String) throws -> Outcome {
        let (decision, facts) = try decide(message, name: name)
        return Outcome(message: message, decision: decision, facts: facts, saved: try save(decision, message: message, facts: facts))
    }

    /// Exit 4 for bytes that are not a message, naming the place.
    static func parse(_ bytes: [UInt8], name: String, firstLine: Int = 1) throws(CommandFailure) -> Message {
        do {
            return try MessageParser.parse(bytes)
        } catch {
            // In an mbox a message without a line of its own is named by its `From ` line.
            let line = error.line.map { $0 + firstLine - 1 } ?? (firstLine > 1 ? firstLine - 1 : nil)
            throw CommandFailure(status: .badMessage, message: "\(name):\(line.map { "\($0):" } ?? "") \(error.reason)")
        }
    }

    /// The decision. A rule over an evaluation budget exits 5 naming the rule; a CRM that
    /// cannot be read is thrown as it is.
    func decide(_ message: Message, name: String) throws -> (Decision, EngineFacts) {
        do {
            let (decision, facts, _) = try Engine(pack: pack, directory: directory).decide(message, context: context)
            return (decision, facts)
        } catch let error as EvaluationError {
            throw DecisionOptions.evaluationFailure(error, file: name)
        }
    }

    /// With `--apply`: saves at most once org-wide. A message the ledger already holds
    /// reports its record, created false.
    /// A `CRMError` is thrown as it is: 75 (retry later) or 3, mapped by the command.
    func save(_ decision: Decision, message: Message, facts: EngineFacts) throws -> SaveResult? {
        guard let writer else { return nil }
        return try writer.write(decision, message: message, mailbox: context.mailbox)
            ?? facts.savedRecord.map { SaveResult(id: $0, created: false) }
    }
}
