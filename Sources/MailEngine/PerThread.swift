import Foundation

/// A value each thread sets around a piece of its own work, while other threads do the same
/// (a decision's read snapshot in the store, a batch's call hook in the Salesforce
/// connection): `with` gives this thread the value for the body, `current` reads it back.
/// Nested `with` calls restore the outer value on exit.
public final class PerThread<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [(thread: pthread_t, value: Value)] = []

    public init() {}

    /// This thread's innermost value, if it set one.
    public var current: Value? {
        let thread = pthread_self()
        return lock.withLock { values.last { pthread_equal($0.thread, thread) != 0 }?.value }
    }

    public func with<T>(_ value: Value, _ body: () throws -> T) rethrows -> T {
        let thread = pthread_self()
        lock.withLock { values.append((thread, value)) }
        defer {
            lock.withLock {
                if let index = values.lastIndex(where: { pthread_equal($0.thread, thread) != 0 }) { values.remove(at: index) }
            }
        }
        return try body()
    }
}
