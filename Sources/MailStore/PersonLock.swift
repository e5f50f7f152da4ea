#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MailRules

extension CRMStore {
    /// What became of a run under the lock on making people.
    public enum PersonLockOutcome<T> {
        /// `body` ran holding the lock.
        case ran(T)
        /// `body` ran without it: the lock file could not be opened (another user's, in a
        /// folder or a file this user may not write); the reason, to be said.
        case ranUnlocked(T, reason: String)
        /// Another process held the lock for the whole wait: `body` did not run.
        case busy
    }

    /// The longest wait for the lock: a remote save's ledger claim goes stale after 15
    /// minutes (another process may then take it over), and nothing renews it while waiting.
    static let personLockLongestWait = 600.0

    /// Runs `body` holding this store's lock on making people. Saves to a remote CRM
    /// (Salesforce) look the people they would create up in the org right before saving, but
    /// the org has no transaction: processes deciding messages of one new person at once (one
    /// `process` a message) each found no one and made her, once a process. Holding this lock
    /// from that look-up to the save, the processes of one machine that share a store make
    /// her once. The lock is `flock` on `STORE.people-lock` beside the store's real file
    /// (opened read-only, created with the store's mode, never through a link): the kernel
    /// releases it when its process ends, even killed. `timeout` (default: the store's busy
    /// timeout, at most 10 minutes) bounds the wait.
    public func holdingPersonLock<T>(timeout: Double? = nil, _ body: () throws -> T) rethrows -> PersonLockOutcome<T> {
        let lockPath = (PackLoader.realPath(path) ?? path) + ".people-lock"
        let timeout = timeout ?? busyTimeout
        let wait = min(timeout.isFinite ? max(timeout, 0) : 30, Self.personLockLongestWait)
        var waited = 0.0
        while true {
            let descriptor = openLockFile(lockPath, like: path)
            guard descriptor >= 0 else {
                let reason = String(cString: strerror(errno))
                return .ranUnlocked(try body(), reason: "\(lockPath): \(reason)")
            }
            defer { close(descriptor) }
            var status = stat()
            guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
                return .ranUnlocked(try body(), reason: "\(lockPath): not a regular file")
            }
            while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
                guard errno == EWOULDBLOCK || errno == EINTR else {
                    return .ranUnlocked(try body(), reason: "\(lockPath): \(String(cString: strerror(errno)))")
                }
                if waited >= wait { return .busy }
                usleep(20_000)
                waited += 0.02
            }
            // A lock file removed (or replaced) while this process waited: another process
            // may hold a lock on its successor; take the one the path names now.
            var named = stat()
            guard stat(lockPath, &named) == 0, named.st_dev == status.st_dev, named.st_ino == status.st_ino else {
                flock(descriptor, LOCK_UN)
                continue
            }
            defer { flock(descriptor, LOCK_UN) }
            return .ran(try body())
        }
    }
}

/// At file scope: inside `CRMStore`, `open` is the store's own. The lock file is opened
/// read-only (`flock` needs no more) and without waiting (a FIFO put in its place would block
/// `open` for ever; the caller then finds it is no regular file), and given the store's read
/// and write bits for its owner and group whatever the umask (procmail's is 077), so that
/// users who share a store share its lock. Another user's lock file keeps its mode.
private func openLockFile(_ path: String, like store: String) -> Int32 {
    var status = stat()
    let mode = (stat(store, &status) == 0 ? mode_t(status.st_mode) & 0o660 : 0o600) | 0o400
    let descriptor = open(path, O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, mode)
    if descriptor >= 0, fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG,
       status.st_uid == geteuid(), mode_t(status.st_mode) & 0o7777 != mode {
        _ = fchmod(descriptor, mode)
    }
    return descriptor
}
