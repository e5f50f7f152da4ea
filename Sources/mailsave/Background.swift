#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A value made on a thread of its own while the caller goes on with other work: `process`
/// opens the store while the pack loads (each is about a third of a run's own work, and
/// neither needs the other). A plain POSIX thread, joined by `value()`: the join is what
/// makes the result visible to the caller, and a process never exits with the work still
/// running (the caller joins on every path, errors included).
final class Background<Value>: BackgroundWork, @unchecked Sendable {
    private let work: () throws -> Value
    private var result: Result<Value, Error>?

    private init(_ work: @escaping () throws -> Value) {
        self.work = work
    }

    /// Starts `work`; nil when no thread could be started (the caller does the work itself).
    static func start(_ work: @escaping () throws -> Value) -> Background? {
        let task = Background(work)
        return task.launch() ? task : nil
    }

    override func run() {
        result = Result { try work() }
    }

    /// Waits for the work to finish and gives its value, or throws its error.
    func value() throws -> Value {
        join()
        guard let result else { throw BackgroundError.noResult }
        return try result.get()
    }
}

/// The thread's side of `Background`, not generic (a C thread entry cannot name a generic
/// type).
class BackgroundWork: @unchecked Sendable {
    private var thread = pthread_t()
    private var running = false

    func run() {}

    /// Starts `run` on a new thread, which holds a reference until it has run.
    func launch() -> Bool {
        let context = Unmanaged.passRetained(self).toOpaque()
        guard pthread_create(&thread, nil, { context in
            guard let context else { return nil }
            Unmanaged<BackgroundWork>.fromOpaque(context).takeRetainedValue().run()
            return nil
        }, context) == 0 else {
            Unmanaged<BackgroundWork>.fromOpaque(context).release()
            return false
        }
        running = true
        return true
    }

    func join() {
        guard running else { return }
        pthread_join(thread, nil)
        running = false
    }

    deinit {
        // Never left running: work nobody asked for is still waited for, unless this is the
        // thread itself dropping the last reference (it has finished: let it go).
        if running && pthread_equal(thread, pthread_self()) != 0 {
            pthread_detach(thread)
        } else {
            join()
        }
    }
}

enum BackgroundError: Error, CustomStringConvertible {
    case noResult
    var description: String { "a background task ended without a result" }
}
