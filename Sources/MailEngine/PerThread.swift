import Foundation

/// A value each thread sets around a piece of its own work, while other threads do the same
/// (a decision's read snapshot in the store, a batch's call hook in the Salesforce
/// connection): `with` gives this thread the value for the body, `current` reads it back.
/// Nested `with` calls restore the outer value on exit.
///
/// Kept in thread-local storage, so a thread reads and sets its own without a lock: a lock
/// shared by `batch --jobs 2`'s threads, taken at every look-up, put them to sleep on each
/// other. Where the system has no key left (a process holds 1,024), a locked list serves.
public final class PerThread<Value>: @unchecked Sendable {
    /// This thread's values, innermost last; held by the thread's slot only while not empty.
    private final class Stack {
        var values: [Value] = []
    }

    private var key = pthread_key_t()
    private let hasKey: Bool
    private let lock = NSLock()
    private var values: [(thread: pthread_t, value: Value)] = []

    public init() {
        hasKey = pthread_key_create(&key, nil) == 0
    }

    deinit {
        // No thread holds a value now: `with` holds this object until it has taken its value off.
        if hasKey { pthread_key_delete(key) }
    }

    /// This thread's innermost value, if it set one.
    public var current: Value? {
        if hasKey {
            guard let slot = pthread_getspecific(key) else { return nil }
            return Unmanaged<Stack>.fromOpaque(slot).takeUnretainedValue().values.last
        }
        let thread = pthread_self()
        return lock.withLock { values.last { pthread_equal($0.thread, thread) != 0 }?.value }
    }

    public func with<T>(_ value: Value, _ body: () throws -> T) rethrows -> T {
        guard hasKey else { return try withLocked(value, body) }
        let stack: Stack
        if let slot = pthread_getspecific(key) {
            stack = Unmanaged<Stack>.fromOpaque(slot).takeUnretainedValue()
        } else {
            stack = Stack()
            pthread_setspecific(key, Unmanaged.passRetained(stack).toOpaque())
        }
        stack.values.append(value)
        defer {
            stack.values.removeLast()
            if stack.values.isEmpty {
                pthread_setspecific(key, nil)
                Unmanaged.passUnretained(stack).release()
            }
        }
        return try body()
    }

    private func withLocked<T>(_ value: Value, _ body: () throws -> T) rethrows -> T {
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
