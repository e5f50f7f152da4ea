import Foundation
import GRDB

/// One read-only connection per thread, for decisions made on several threads at once
/// (`batch --jobs N` without `--apply`): each thread reads through a connection no other
/// thread uses. GRDB's pool of readers hands a connection out and takes it back around every
/// read, under locks both threads wait on: two jobs spent a third more CPU than one, and
/// switched threads 2,400 times a run of 8,676 messages.
final class ThreadReaders: @unchecked Sendable {
    private let open: () throws -> DatabaseQueue
    private var key = pthread_key_t()
    private let lock = NSLock()
    /// Every connection opened, kept (and closed) with this object; threads find theirs
    /// through their own slot without a lock.
    private var connections: [DatabaseQueue] = []

    /// nil when the system has no thread-local key left: the caller reads through its one
    /// connection then.
    init?(open: @escaping () throws -> DatabaseQueue) {
        self.open = open
        guard pthread_key_create(&key, nil) == 0 else { return nil }
    }

    deinit {
        pthread_key_delete(key)
    }

    /// This thread's connection, opened by its first read.
    func current() throws -> DatabaseQueue {
        if let slot = pthread_getspecific(key) {
            return Unmanaged<DatabaseQueue>.fromOpaque(slot).takeUnretainedValue()
        }
        let connection = try open()
        lock.withLock { connections.append(connection) }
        pthread_setspecific(key, Unmanaged.passUnretained(connection).toOpaque())
        return connection
    }

    var count: Int { lock.withLock { connections.count } }
}
