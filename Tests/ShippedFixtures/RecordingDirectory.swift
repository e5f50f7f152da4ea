import Foundation
import MailEngine

/// Answers through another directory, keeping every plan it was asked (in order, from any
/// thread), and says whether a decision may search it in steps.
public final class RecordingDirectory: CRMDirectory, @unchecked Sendable {
    public let inner: CRMDirectory
    public let searchesInSteps: Bool
    private let lock = NSLock()
    private var asked: [LookupPlan] = []

    public init(_ inner: CRMDirectory, steps: Bool = true) {
        self.inner = inner
        self.searchesInSteps = steps
    }

    public var plans: [LookupPlan] { lock.withLock { asked } }

    public func resolve(_ plan: LookupPlan) throws(CRMError) -> CRMAnswers {
        lock.withLock { asked.append(plan) }
        return try inner.resolve(plan)
    }
}
