import MailMessage
import Foundation

/// A file that holds secrets (the configuration file, the JWT private key): read only when it
/// is this user's and no one else may read or write it (mode 0600 or stricter). The checks are
/// made on the open descriptor, so the file read is the file checked.
enum PrivateFile {
    /// Why a file was not read, said the same way for every secret file; `what` names it.
    struct Refusal: Error {
        let message: String
    }

    /// Secret files are small; anything larger is not one.
    static let maxBytes = 1 << 20

    static func contents(of path: String, what: String) throws(Refusal) -> String {
        // O_NONBLOCK: a FIFO at the path would block the open until a writer came (a run
        // hung for ever); opened at once, it is refused below as no regular file.
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard descriptor >= 0 else {
            throw Refusal(message: "\(path): cannot read \(what): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw Refusal(message: "\(path): \(what) is not a regular file") }
        try check(status, path: path, what: what)
        guard status.st_size <= maxBytes else { throw Refusal(message: "\(path): \(what) is larger than \(maxBytes) bytes") }
        var bytes = [UInt8](repeating: 0, count: Int(status.st_size))
        var filled = 0
        while filled < bytes.count {
            let got = bytes.withUnsafeMutableBytes { read(descriptor, $0.baseAddress! + filled, $0.count - filled) }
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else { break }
            filled += got
        }
        guard filled == bytes.count, let text = UTF8Text.valid(bytes) else {
            throw Refusal(message: "\(path): cannot read \(what) (not UTF-8 text?)")
        }
        return text
    }

    /// The same checks without reading the file: a run that uses a cached token still stops
    /// when the key it would log in with has become readable by others, or is gone.
    static func check(path: String, what: String) throws(Refusal) {
        var status = stat()
        guard stat(path, &status) == 0 else {
            throw Refusal(message: "\(path): cannot read \(what): \(String(cString: strerror(errno)))")
        }
        try check(status, path: path, what: what)
    }

    private static func check(_ status: stat, path: String, what: String) throws(Refusal) {
        guard (status.st_mode & S_IFMT) == S_IFREG else { throw Refusal(message: "\(path): \(what) is not a regular file") }
        let mode = status.st_mode & 0o777
        guard mode & 0o077 == 0 else {
            throw Refusal(message: "\(path): mode \(String(mode, radix: 8).leftPadded(to: 4)) lets others read \(what); it holds secrets: chmod 600 \(path)")
        }
        guard status.st_uid == getuid() else {
            throw Refusal(message: "\(path): \(what) is owned by uid \(status.st_uid), not by this user (uid \(getuid())); refused")
        }
    }
}
