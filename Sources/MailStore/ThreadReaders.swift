import Foundation
import GRDB
import MailMessage

/// One read-only connection per thread, for decisions made on several threads at once
/// (`batch --jobs N` without `--apply`): each thread reads through a connection no other
/// thread uses. GRDB's pool of readers hands a connection out and takes it back around every
/// read, under locks both threads wait on: two jobs spent a third more CPU than one, and
/// switched threads 2,400 times a run of 8,676 messages.
final class ThreadReaders: @unchecked Sendable {
    /// A thread's connections, one for each `ThreadReaders` it read through, held weakly (the
    /// `ThreadReaders` holds them, and closes them when it goes): a thread that outlives a
    /// store never reaches its closed connection, nor another store's through a reused slot.
    private final class Slots {
        var entries: [(owner: Int, connection: Weak)] = []
    }

    private final class Weak {
        weak var connection: DatabaseQueue?
        init(_ connection: DatabaseQueue) { self.connection = connection }
    }

    /// One thread-local key for the process, never deleted; a thread's slots go with it.
    private static let key: pthread_key_t? = {
        var key = pthread_key_t()
        let made = pthread_key_create(&key) { slots in
            guard let slots else { return }
            Unmanaged<Slots>.fromOpaque(slots).release()
        }
        return made == 0 ? key : nil
    }()

    private static let serials = Locked(0)

    private let open: () throws -> DatabaseQueue
    private let key: pthread_key_t
    /// Which `ThreadReaders` this is, among all the process has made.
    private let serial: Int
    private let lock = NSLock()
    private var connections: [DatabaseQueue] = []

    /// nil when the system has no thread-local key left: the caller reads through its one
    /// connection then.
    init?(open: @escaping () throws -> DatabaseQueue) {
        guard let key = Self.key else { return nil }
        self.open = open
        self.key = key
        serial = Self.serials.withLock { counter in
            counter += 1
            return counter
        }
    }

    /// This thread's connection, opened by its first read.
    func current() throws -> DatabaseQueue {
        let slots: Slots
        if let raw = pthread_getspecific(key) {
            slots = Unmanaged<Slots>.fromOpaque(raw).takeUnretainedValue()
            if let entry = slots.entries.first(where: { $0.owner == serial }), let connection = entry.connection.connection {
                return connection
            }
        } else {
            slots = Slots()
            pthread_setspecific(key, Unmanaged.passRetained(slots).toOpaque())
        }
        let connection = try open()
        lock.withLock { connections.append(connection) }
        slots.entries.removeAll { $0.owner == serial || $0.connection.connection == nil }
        slots.entries.append((serial, Weak(connection)))
        return connection
    }

    var count: Int { lock.withLock { connections.count } }
}
