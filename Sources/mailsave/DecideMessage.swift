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
    /// Where a save the writer cannot do now (a retryable `CRMError`) is parked for `mailsave
    /// retry`, with the message's bytes and context; nil: the error is the command's (exit 75).
    let outbox: SaveOutbox?
    /// The writer's backend, as the outbox names it: `retry` saves the entry there.
    let backend: SaveBackend

    init(pack: RulePack, directory: CRMDirectory, context: ProcessContext, writer: ActivityWriter?,
         outbox: SaveOutbox? = nil, backend: SaveBackend = .store) {
        self.pack = pack
        self.directory = directory
        self.context = context
        self.writer = writer
        self.outbox = outbox
        self.backend = backend
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

    /// The same decider answering and saving through a `SaveSession` (group commit): each
    /// decision reads inside the session's open group, so it sees the saves before it.
    func savingThrough(_ session: SaveSession) -> MessageDecider {
        MessageDecider(pack: pack, directory: session, context: context, writer: session, outbox: outbox, backend: backend)
    }

    /// What became of one message.
    struct Outcome: Sendable {
        var message: Message
        var decision: Decision
        var facts: EngineFacts
        /// With `--apply`: the record (created now, or found in the ledger); nil when nothing was saved.
        var saved: SaveResult?
        /// With `--apply`: why the save was parked in the outbox instead (`mailsave retry` does it).
        var parked: String?

        /// The decision JSON (`schemas/decision.schema.json`), with `saved` when applying.
        func json(applying: Bool) -> JSON {
            var json = DecisionJSON.encode(decision)
            if applying, case .object(let members) = json {
                json = .object(members + [("saved", savedJSON)])
            }
            return json
        }

        var savedJSON: JSON {
            if let parked { return .object([("id", .null), ("created", .bool(false)), ("parked", .string(parked))]) }
            return saved.map { saved in
                var fields: [(String, JSON)] = [("id", .string(saved.id)), ("created", .bool(saved.created))]
                // The placeholders of links.who and the record's WhoId, and the records they became.
                if !saved.createdRecords.isEmpty { fields.append(("created_records", .object(saved.createdRecords.map { ($0.placeholder, .string($0.id)) }))) }
                if !saved.linkedRecords.isEmpty { fields.append(("linked_records", .object(saved.linkedRecords.map { ($0.placeholder, .string($0.id)) }))) }
                return .object(fields)
            } ?? .null
        }

        /// The text and table views of `saved`.
        var savedText: String {
            if let parked { return "parked: \(parked); `mailsave retry` saves it later" }
            return saved.map { "\($0.id) (\($0.created ? "created" : "already saved"))" } ?? "(nothing)"
        }

        var savedCell: String {
            if parked != nil { return "parked" }
            return saved.map { $0.created ? $0.id : $0.id + " (had)" } ?? ""
        }
    }

    /// A message file (or `-`): read, parsed, decided, saved.
    func run(file: String) throws -> Outcome {
        let bytes = try readInput(file, limit: ParseLimits().maxMessageBytes)
        try Self.refuseMbox(bytes, name: file)
        return try run(bytes: bytes, name: file)
    }

    /// An mbox of several messages given where one message is expected is refused (exit 4):
    /// read as one, its other messages became the first one's body, and with --apply that
    /// was one activity holding them all. One message with its `From ` line is fine.
    static func refuseMbox(_ bytes: [UInt8], name: String) throws(CommandFailure) {
        let count = Mbox.messageCount(ofDelivery: bytes)
        guard count > 1 else { return }
        throw CommandFailure(status: .badMessage, message: "\(name): an mbox of \(count) messages, not one message: "
                             + "process decides one message; decide a mailbox with mailsave batch --mbox \(name)")
    }

    /// Bytes read elsewhere (an mbox entry, a Maildir file): `name` is the place errors name,
    /// and `firstLine` the line of the source the message's first line is on.
    func run(bytes: [UInt8], name: String, firstLine: Int = 1) throws -> Outcome {
        try run(Self.parse(bytes, name: name, firstLine: firstLine), bytes: bytes, name: name)
    }

    /// A message parsed elsewhere, with the bytes it was parsed from: they are what a parked
    /// save keeps (a message written out again from its parsed form would not be the same).
    func run(_ message: Message, bytes: [UInt8], name: String) throws -> Outcome {
        let (decision, facts) = try decide(message, name: name)
        var outcome = Outcome(message: message, decision: decision, facts: facts)
        do {
            outcome.saved = try save(decision, message: message, facts: facts)
        } catch {
            guard error.isRetryable, let outbox else { throw error }
            outcome.parked = try park(message, bytes: bytes, outbox: outbox, because: error)
        }
        return outcome
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
    func save(_ decision: Decision, message: Message, facts: EngineFacts) throws(CRMError) -> SaveResult? {
        guard let writer else { return nil }
        // Only a save reaches the writer: nothing else can fail there, or be parked.
        guard decision.verdict == .save, decision.record != nil else { return facts.savedRecord.map { SaveResult(id: $0, created: false) } }
        return try writer.write(decision, message: message, mailbox: context.mailbox)
            ?? facts.savedRecord.map { SaveResult(id: $0, created: false) }
    }

    /// Keeps a save that cannot be done now in the outbox, and returns the reason it says.
    /// When the outbox cannot take it either, the CRM's error stands (exit 75: the caller
    /// delivers the message again), so the save is never lost silently.
    func park(_ message: Message, bytes: [UInt8], outbox: SaveOutbox, because failure: CRMError) throws(CRMError) -> String {
        do {
            try outbox.park(ParkedSave(messageKey: MessageIDKey.ledgerKey(message), message: bytes, context: context,
                                       backend: backend.rawValue, reason: failure.message))
            return failure.message
        } catch {
            throw CRMError(.retryable, "\(failure.message); nor could the save be parked: \(error.message)", stopsBatch: failure.stopsBatch)
        }
    }
}
