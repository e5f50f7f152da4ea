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

    public init(id: String, created: Bool, createdRecords: [(placeholder: String, id: String)] = []) {
        self.id = id
        self.created = created
        self.createdRecords = createdRecords
    }

    public static func == (a: SaveResult, b: SaveResult) -> Bool {
        a.id == b.id && a.created == b.created && a.createdRecords.elementsEqual(b.createdRecords) { $0 == $1 }
    }
}
