#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension CRMStore {
    /// Runs `body` holding this store's lock on making people, or returns nil when another
    /// process held it for `timeout` seconds. Saves to a remote CRM (Salesforce) look the
    /// people they would create up in the org right before saving, but the org has no
    /// transaction: processes deciding messages of one new person at once (one `process` a
    /// message) each found no one and made her, once a process. Holding this lock from that
    /// look-up to the save, the processes of one machine that share a store make her once.
    /// The lock is `flock` on `STORE.people-lock` beside the store (created 0600, never
    /// through a link): the kernel releases it when its process ends, even killed.
    public func holdingPersonLock<T>(timeout: Double? = nil, _ body: () throws -> T) throws -> T? {
        let lockPath = path + ".people-lock"
        let descriptor = openLockFile(lockPath)
        guard descriptor >= 0 else {
            throw StoreError(.failed, message: "\(lockPath): cannot open the lock on making people: \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
            throw StoreError(.failed, message: "\(lockPath): not a regular file")
        }
        let timeout = timeout ?? busyTimeout
        let wait = timeout.isFinite ? min(max(timeout, 0), 86_400) : 30
        var waited = 0.0
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                throw StoreError(.failed, message: "\(lockPath): cannot take the lock on making people: \(String(cString: strerror(errno)))")
            }
            if waited >= wait { return nil }
            usleep(20_000)
            waited += 0.02
        }
        defer { flock(descriptor, LOCK_UN) }
        return try body()
    }
}

/// At file scope: inside `CRMStore`, `open` is the store's own.
private func openLockFile(_ path: String) -> Int32 {
    open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
}
