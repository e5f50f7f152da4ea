#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Exit codes shared by every command (documented in the README).
enum ExitStatus: Int32 {
    case ok = 0
    /// Lint problems or failed rule tests.
    case problems = 1
    case usage = 2
    /// A file could not be read or written.
    case couldNotRun = 3
    /// The input is not a readable message.
    case badMessage = 4
    /// The rule pack has errors.
    case badRules = 5
    /// The CRM data (a CSV export) is not readable.
    case badCRMData = 6
    /// The store refused an edit (ownership or permission); nothing changed.
    case refused = 7
    /// Nothing is wrong with the input, but it cannot be done now (disk full, store locked
    /// past its busy timeout): retry later. 75 is sysexits' EX_TEMPFAIL, which MTAs and
    /// procmail read as "defer and deliver again".
    case temporary = 75
}

/// An error the user sees as one line: `mailsave: <place>: <reason>`.
struct CommandFailure: Error {
    var status: ExitStatus
    var message: String
}

enum Terminal {
    static func out(_ text: String) {
        var line = text
        line += "\n"
        writeAll(1, line)
    }

    static func err(_ text: String) { writeAll(2, text + "\n") }

    static func writeAll(_ descriptor: Int32, _ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return 0 }
                return write(descriptor, base + offset, buffer.count - offset)
            }
            if written < 0 && errno == EINTR { continue }
            if written <= 0 { return }
            offset += written
        }
    }
}

/// Reads a whole file, or standard input for "-", with an error that names the file.
func readInput(_ path: String) throws(CommandFailure) -> [UInt8] {
    let descriptor: Int32 = path == "-" ? 0 : open(path, O_RDONLY)
    if descriptor < 0 {
        throw CommandFailure(status: .couldNotRun, message: "\(path): cannot open: \(String(cString: strerror(errno)))")
    }
    defer { if descriptor != 0 { close(descriptor) } }
    var info = stat()
    if fstat(descriptor, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR {
        throw CommandFailure(status: .couldNotRun, message: "\(path): is a directory, not a message file")
    }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        if count < 0 {
            if errno == EINTR { continue }
            throw CommandFailure(status: .couldNotRun, message: "\(path): cannot read: \(String(cString: strerror(errno)))")
        }
        if count == 0 { break }
        bytes.append(contentsOf: chunk[0..<count])
    }
    return bytes
}

/// `MAILSAVE_NO_CACHE=1` turns the compiled-pack cache off.
enum ProcessInfoCache {
    static var enabled: Bool { getenv("MAILSAVE_NO_CACHE").map { String(cString: $0) } != "1" }
}
