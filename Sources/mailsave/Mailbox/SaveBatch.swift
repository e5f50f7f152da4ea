import MailEngine
import MailMessage

/// `batch --apply`'s saves into a CRM that takes many at once (Salesforce): decided saves wait
/// here, in decision order, and are written together when the batch is full, when a decision
/// could read one of them (`affects`), and at the end. The writer keeps each message's
/// guarantee (claimed in the ledger, saved at most once, noted); this only orchestrates and
/// turns each outcome into what `process --apply` would have printed: saved, parked in the
/// outbox (retryable), or failed (refused: that message only).
final class SaveBatch {
    struct Entry {
        var item: MailboxItem
        var message: Message
        var bytes: [UInt8]
        var decision: Decision
        var facts: EngineFacts
        /// The decider of the message's folder: its context is what a parked save keeps.
        var decider: MessageDecider

        var pending: PendingSave { PendingSave(decision: decision, message: message, mailbox: decider.context.mailbox) }
    }

    enum Outcome {
        case saved(MessageDecider.Outcome)
        case failed(MailboxItemError)
    }

    let writer: BatchActivityWriter
    let limit: Int
    private var entries: [Entry] = []
    private var waiting: [PendingSave] = []

    init(writer: BatchActivityWriter, limit: Int) {
        self.writer = writer
        self.limit = limit
    }

    var isFull: Bool { entries.count >= limit }

    func add(_ entry: Entry) {
        entries.append(entry)
        waiting.append(entry.pending)
    }

    /// Whether a decision asking `plan` must see a waiting save first.
    func affects(_ plan: LookupPlan) -> Bool { waiting.contains { $0.affects(plan) } }

    /// Writes the waiting saves and gives each entry's outcome, in the order they were added,
    /// and `stop`: set when a save that could not be made cannot be parked either (the
    /// outbox's error: the run stops after these lines, exit 75, as `process --apply` would).
    /// Every entry gets its outcome, so no line of a save that was made is lost.
    func flush() -> (outcomes: [(Entry, Outcome)], stop: CRMError?) {
        guard !entries.isEmpty else { return ([], nil) }
        var stop: CRMError?
        let batch = entries
        entries.removeAll(keepingCapacity: true)
        let results = writer.write(batch: waiting)
        waiting.removeAll(keepingCapacity: true)
        var outcomes: [(Entry, Outcome)] = []
        for (entry, result) in zip(batch, results) {
            var outcome = MessageDecider.Outcome(message: entry.message, decision: entry.decision, facts: entry.facts)
            switch result {
            case .success(let saved):
                outcome.saved = saved ?? entry.facts.savedRecord.map { SaveResult(id: $0, created: false) }
            case .failure(let error):
                guard error.isRetryable, let outbox = entry.decider.outbox else {
                    // Refused (or nowhere to park it): this message's error line, the others go on.
                    outcomes.append((entry, .failed(MailboxItemError(kind: "save", failure: CommandFailure(error)))))
                    continue
                }
                do {
                    outcome.parked = try entry.decider.park(entry.message, bytes: entry.bytes, outbox: outbox, because: error)
                } catch {
                    stop = stop ?? error
                    outcomes.append((entry, .failed(MailboxItemError(kind: "save", failure: CommandFailure(error)))))
                    continue
                }
            }
            outcomes.append((entry, .saved(outcome)))
        }
        return (outcomes, stop)
    }
}
