import MailMessage

/// Where a decision to save goes: the embedded store, or a Salesforce org. The writer owns
/// the save-once guarantee for its backend (the store's ledger in one transaction; for
/// Salesforce the ledger plus the org's own `MessageIdentifier` check before any create).
public protocol ActivityWriter: Sendable {
    /// Saves a `save` decision at most once org-wide and returns the activity's id (ids come
    /// from the backend); nil for any other verdict. A message saved before reports its
    /// record with `created` false. Throws `CRMError`: retryable when trying later may work.
    func write(_ decision: Decision, message: Message, mailbox: String) throws(CRMError) -> SaveResult?
}

/// What `--apply` wrote: the activity's id, and whether this run created it (false when the
/// ledger already held the message).
public struct SaveResult: Sendable, Equatable {
    public var id: String
    public var created: Bool
    /// The records created for unknown addresses, placeholder (`new:Lead:address`) → id.
    public var createdRecords: [(placeholder: String, id: String)]
    /// The people the decision would have created that another save had made since it was
    /// decided, linked instead: placeholder → the existing record's id.
    public var linkedRecords: [(placeholder: String, id: String)]

    public init(id: String, created: Bool, createdRecords: [(placeholder: String, id: String)] = [],
                linkedRecords: [(placeholder: String, id: String)] = []) {
        self.id = id
        self.created = created
        self.createdRecords = createdRecords
        self.linkedRecords = linkedRecords
    }

    public static func == (a: SaveResult, b: SaveResult) -> Bool {
        a.id == b.id && a.created == b.created && a.createdRecords.elementsEqual(b.createdRecords) { $0 == $1 }
            && a.linkedRecords.elementsEqual(b.linkedRecords) { $0 == $1 }
    }
}

/// One save waiting in a batch: the decision, and the message it is about.
public struct PendingSave: Sendable {
    public var decision: Decision
    public var message: Message
    public var mailbox: String

    public init(decision: Decision, message: Message, mailbox: String) {
        self.decision = decision
        self.message = message
        self.mailbox = mailbox
    }

    /// The message's save-once key.
    public var key: String { MessageIDKey.ledgerKey(message) }

    /// Whether a decision that asks `plan` could read what this save writes, so the save must
    /// be made before that decision: the records it creates (a Lead or Contact for one of the
    /// plan's addresses, or for any new person when the plan matches people by phone), or the
    /// message itself (the plan's own ledger key, or a Message-ID its In-Reply-To or
    /// References name: the Magic Anchor reads the saved EmailMessage). Pure, from the plan
    /// alone, so a batch is flushed only when it has to be.
    public func affects(_ plan: LookupPlan) -> Bool {
        let key = self.key
        if plan.ledgerKey == key || plan.messageIdentifiers.contains(key) { return true }
        guard !decision.toCreate.isEmpty else { return false }
        if !plan.phones.isEmpty { return true }
        return decision.toCreate.contains { plan.addresses.contains($0.address) }
    }
}

/// A writer that saves many decisions in few calls (Salesforce: one call for up to 200
/// records), with the same guarantee as `write`: each message at most once, a message saved
/// before reports its record with `created` false.
public protocol BatchActivityWriter: ActivityWriter {
    /// Each save's outcome, in the order given: the record (nil for a decision that saves
    /// nothing), or why it was not saved (retryable: try later; permanent: refused). One
    /// message's refusal does not fail the others.
    func write(batch: [PendingSave]) -> [Result<SaveResult?, CRMError>]

    /// The same, calling `beforeEachCall` before each request it sends to the CRM: the caller
    /// keeps its claims on the batch's messages fresh while a slow batch is being sent.
    func write(batch: [PendingSave], beforeEachCall: @escaping () -> Void) -> [Result<SaveResult?, CRMError>]

    /// The record the CRM already holds for each message (nil: none found), in one look-up:
    /// for saves another process claimed and may have made (a run killed after sending).
    func saved(_ saves: [PendingSave]) throws(CRMError) -> [String?]
}

extension BatchActivityWriter {
    /// A writer that sends nothing of its own (one that wraps another) ignores the hook.
    public func write(batch: [PendingSave], beforeEachCall: @escaping () -> Void) -> [Result<SaveResult?, CRMError>] { write(batch: batch) }
}
