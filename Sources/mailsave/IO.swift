import MailMessage
import MailRules
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Exit codes shared by every command (documented in the README).
enum ExitStatus: Int32 {
    case ok = 0
    /// Lint problems, failed rule tests, or the changes `diff --fail-on` fails on.
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
    /// `edit`: no saved EmailMessage has the Message-ID (or no User the `--as` id); nothing changed.
    case notFound = 8
    /// `edit`: a field that cannot be edited (only Subject, TextBody, HtmlBody and the links); nothing changed.
    case notEditable = 9
    /// `edit`: a link the save rules forbid (no such record, wrong kind, internal or
    /// blocklisted, a Lead with RelatedToId); nothing changed.
    case linkRefused = 10
    /// The decision was made, but its save could not be done now (a CRM down, an org's API
    /// allowance used up): it is parked in the store's outbox; `mailsave retry` saves it.
    case parked = 11
    /// The Salesforce configuration is missing, incomplete or unsafe (a file others may read).
    case badConfiguration = 12
    /// Nothing is wrong with the input, but it cannot be done now (disk full, store locked
    /// past its busy timeout): retry later. 75 is sysexits' EX_TEMPFAIL, which MTAs and
    /// procmail read as "defer and deliver again".
    case temporary = 75
}

/// An error the user sees as one line: `mailsave: <place>: <reason>`.
struct CommandFailure: Error {
    var status: ExitStatus
    var message: String

    /// `place` could not be written (errno `code`, or `what` said instead): a full disk or
    /// quota is temporary (75), anything else could not run (3).
    static func writing(_ place: String, code: Int32, what: String? = nil) -> CommandFailure {
        CommandFailure(status: ExitStatus.ofWriting(code), message: "\(place): cannot write: \(what ?? String(cString: strerror(code)))")
    }
}

extension ExitStatus {
    /// The status of a write that failed with errno `code`.
    static func ofWriting(_ code: Int32) -> ExitStatus { code == ENOSPC || code == EDQUOT ? .temporary : .couldNotRun }
}

enum Terminal {
    static func out(_ text: String) {
        writeAll(1, text)
        writeAll(1, "\n")
    }

    /// A message on standard error, its control characters escaped (`visible`, lines kept):
    /// a file name or a Message-ID quoted in an error cannot drive the terminal.
    /// A line of mailsave's own (`mailsave: …`) is one line whatever it quotes: a line feed
    /// in a file name or a Message-ID is escaped, so it cannot fake a line of its own. Other
    /// text (a lint report, usage) keeps its lines.
    static func err(_ text: String) {
        writeAll(2, (text.hasPrefix("mailsave: ") ? visible(text) : visibleLines(text)) + "\n")
    }

    /// Writes the string's own UTF-8 storage: a large output is never copied to be written.
    static func writeAll(_ descriptor: Int32, _ text: String) {
        var text = text
        text.withUTF8 { writeAll(descriptor, UnsafeRawBufferPointer($0)) }
    }

    static func writeAll(_ descriptor: Int32, _ bytes: [UInt8]) {
        bytes.withUnsafeBytes { writeAll(descriptor, $0) }
    }

    private static func writeAll(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer) {
        if let code = writeFully(descriptor, bytes), descriptor != 2 { outputFailed(code) }
    }

    /// The output could not be written (a full disk, a closed or broken standard output): the
    /// run stops at once, saying so, with a status that is not success; a caller reading a
    /// truncated answer with exit 0 would take it as whole. A full disk is temporary.
    private static func outputFailed(_ code: Int32) -> Never {
        if code != EPIPE { err("mailsave: cannot write the output: \(String(cString: strerror(code)))") }
        TemporaryPaths.removeAll()
        exit(ExitStatus.ofWriting(code).rawValue)
    }
}

/// Reads a whole file, or standard input for "-", with an error that names the file.
/// With `limit`, stops reading one byte past it and fails with `overLimit`'s status: an
/// endless input (`/dev/zero`, a runaway pipe) costs the limit, never more memory.
/// With `followLinks` false, a file that is a link is refused, in the open itself (no race).
func readInput(_ path: String, limit: Int? = nil, overLimit: ExitStatus = .badMessage, followLinks: Bool = true,
               regularOnly: Bool = false) throws(CommandFailure) -> [UInt8] {
    let descriptor: Int32 = path == "-" ? 0 : open(path, O_RDONLY | O_NONBLOCK | (followLinks ? 0 : O_NOFOLLOW))
    if descriptor < 0 && errno == ELOOP && !followLinks {
        throw CommandFailure(status: .couldNotRun, message: "\(path): a link, not followed (a mailbox's messages are files in it; "
                             + "a link could bring in any file the run may read; --follow-links reads it)")
    }
    if descriptor < 0 {
        throw CommandFailure(status: .couldNotRun, message: "\(path): cannot open: \(String(cString: strerror(errno)))")
    }
    defer { if descriptor != 0 { close(descriptor) } }
    var info = stat()
    guard fstat(descriptor, &info) == 0 else {
        throw CommandFailure(status: .couldNotRun, message: "\(path): cannot read: \(String(cString: strerror(errno)))")
    }
    let type = info.st_mode & S_IFMT
    if type == S_IFDIR {
        throw CommandFailure(status: .couldNotRun, message: "\(path): is a directory, not a file")
    }
    if regularOnly && type != S_IFREG {
        throw CommandFailure(status: .couldNotRun, message: "\(path): not a regular file (a FIFO, socket or device); not read")
    }
    if path != "-" && type != S_IFREG {
        // Opened non-blocking so a FIFO cannot hang the open; reads block as usual. (A
        // regular file's reads ignore the flag: no two calls for each of a batch's files.)
        // A FIFO no writer has opened yet reads as empty: wait for its writer's first bytes
        // (or its closing), as a blocking open would have, instead of taking it for nothing.
        if type == S_IFIFO {
            var waiting = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            while poll(&waiting, 1, -1) < 0 && errno == EINTR {}
        }
        let flags = fcntl(descriptor, F_GETFL)
        if flags >= 0 { _ = fcntl(descriptor, F_SETFL, flags & ~O_NONBLOCK) }
    }
    do {
        return try PackLoader.readAll(descriptor, path: path, limit: limit ?? Int.max, sizeHint: type == S_IFREG ? Int(info.st_size) : 0)
    } catch where error.overLimit {
        throw CommandFailure(status: overLimit, message: "\(path): larger than the limit of \(limit ?? Int.max) bytes; not read further")
    } catch {
        throw CommandFailure(status: .couldNotRun, message: "\(path): \(error.reason)")
    }
}

/// `MAILSAVE_NO_CACHE=1` turns the compiled-pack cache off.
enum ProcessInfoCache {
    static var enabled: Bool { getenv("MAILSAVE_NO_CACHE").map { String(cString: $0) } != "1" }
}

/// Text from a message (a decoded Subject, a display name, a filename) made safe to print
/// on a terminal: control characters (C0, DEL, C1; a line feed too, so a value cannot fake
/// a line of output), the bidirectional overrides and marks of "Trojan Source", and the
/// invisible zero-width space, word joiner and BOM are shown as `\u{1B}` escapes instead of
/// being sent to the terminal.
func visible(_ text: String) -> String { escapingControls(text, keepingLines: false) }

/// `visible`, but line feeds and tabs kept: for messages of several lines (standard error).
func visibleLines(_ text: String) -> String { escapingControls(text, keepingLines: true) }

private func escapingControls(_ text: String, keepingLines: Bool) -> String {
    func isControl(_ value: UInt32) -> Bool {
        if keepingLines && (value == 0x0A || value == 0x09) { return false }
        // Invisible characters too: direction marks and overrides, and the zero-width space,
        // word joiner and BOM, which make two different addresses or ids look the same. Not
        // the zero-width (non-)joiner, which Persian, Indic scripts and emoji sequences need.
        return value < 0x20 || (0x7F...0x9F).contains(value) || (0x202A...0x202E).contains(value) || (0x2066...0x2069).contains(value)
            || value == 0x2028 || value == 0x2029 || value == 0x200B || value == 0x200E || value == 0x200F || value == 0x061C
            || (0x2060...0x2064).contains(value) || value == 0xFEFF
    }
    guard text.unicodeScalars.contains(where: { isControl($0.value) }) else { return text }
    var output = ""
    for scalar in text.unicodeScalars {
        if isControl(scalar.value) {
            output += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
        } else {
            output.unicodeScalars.append(scalar)
        }
    }
    return output
}
