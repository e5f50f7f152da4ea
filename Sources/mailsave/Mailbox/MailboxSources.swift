import ArgumentParser
import Foundation
import MailMessage
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a message of a mailbox is: the mbox line its `From ` separator is on, or its file.
enum MailboxPosition: Sendable, Equatable {
    case line(Int)
    /// The file's path, and that path under the folder given (`cur/1700000000.host:2,S`,
    /// `.Sent/cur/…`, `2024/q1/deal.eml`): what a table shows.
    case file(String, underSource: String)

    var json: JSON {
        switch self {
        case .line(let line): return .int(line)
        case .file(let path, _): return .string(path)
        }
    }

    /// `archive.mbox:120` or the file's path, as error lines name places.
    func place(in source: String) -> String {
        switch self {
        case .line(let line): return "\(source):\(line)"
        case .file(let path, _): return path
        }
    }

    /// The name shown in a table: the mbox line, or the file's path under the folder given
    /// (its file name alone would not tell `cur/` from `new/`, or one Maildir++ folder from another).
    var short: String {
        switch self {
        case .line(let line): return "line \(line)"
        case .file(_, let shown): return shown
        }
    }
}

/// How to read one message again (`batch --apply` decides parents before their replies).
enum MailboxLocator: Sendable {
    case mbox(offset: Int, length: Int)
    case file(String)
}

/// One message of a mailbox, in input order.
struct MailboxItem: Sendable {
    /// 0-based, in input order.
    var index: Int
    var position: MailboxPosition
    var locator: MailboxLocator
    /// The folder (`--folder`, or the Maildir++ folder with `--folder-from-maildir`).
    var folder: String
    /// The message's bytes, or why it could not be read (too large, unreadable file).
    var content: Result<[UInt8], MailboxItemError>
    /// Bytes of the mailbox read once this item was read (for the progress bar).
    var bytesRead: Int
    /// The line of the source the message's first line is on (mbox: the line after `From `).
    var firstLine: Int {
        if case .line(let line) = position { return line + 1 }
        return 1
    }
}

/// A message of a mailbox that is skipped, and why.
struct MailboxItemError: Error, Sendable {
    /// `too_large`, `unreadable`, `not_a_message`, `rule_budget`.
    var kind: String
    var failure: CommandFailure
}

/// The messages of a mailbox in input order, read one at a time.
protocol MailboxSource: AnyObject {
    /// The mailbox as errors name it (`archive.mbox`, `-`, the folder).
    var name: String { get }
    /// Total bytes to read, when known (the ETA of the progress bar).
    var totalBytes: Int? { get }
    /// The next message, nil at the end.
    func next() throws(CommandFailure) -> MailboxItem?
    /// A message's bytes again, from its locator.
    func reread(_ item: MailboxItem) -> Result<[UInt8], MailboxItemError>
    /// True when `reread` works (not a pipe).
    var canReread: Bool { get }
}

/// The `--mbox FILE | --maildir DIR | --eml DIR | -` choice, shared by `batch` and `diff`.
struct MailboxOptions: ParsableArguments {
    @Option(help: "An mbox file (mboxo/mboxrd: Thunderbird, mutt, Google Takeout), read as a stream; - for standard input.")
    var mbox: String?

    @Option(help: "A Maildir: the files of cur/ and new/, sorted by name.")
    var maildir: String?

    @Option(help: "A folder of .eml files (searched recursively), sorted by path.")
    var eml: String?

    @Flag(help: "With --maildir: also read the Maildir++ subfolders (.Sent, .INBOX.Deals), each message in its folder (Sent, Inbox/Deals); the top folder is --folder.")
    var folderFromMaildir = false

    @Flag(help: "With --maildir or --eml: read message files that are symbolic links (a mu or notmuch search folder), each followed to a regular file. Without it a link is reported and not read: it could bring any file the run may read into the CRM.")
    var followLinks = false

    func validate(stdin: Bool) throws {
        let given = [mbox, maildir, eml].compactMap { $0 }.count + (stdin ? 1 : 0)
        if given == 0 { throw ValidationError("give the mailbox: --mbox FILE, --maildir DIR or --eml DIR") }
        if given > 1 { throw ValidationError("give one mailbox: --mbox, --maildir, --eml or -, not several") }
        if folderFromMaildir && maildir == nil { throw ValidationError("--folder-from-maildir goes with --maildir") }
        if followLinks && maildir == nil && eml == nil { throw ValidationError("--follow-links goes with --maildir or --eml") }
    }

    /// What to say when the mailbox gave no message: where, and the likely mix-up (a Maildir
    /// given as --eml, whose files have no .eml name; a Maildir's messages are in cur/ and new/).
    func nothingFound(_ name: String) -> String {
        var hint = ""
        if let eml {
            var isFolder: ObjCBool = false
            if ["cur", "new"].contains(where: { FileManager.default.fileExists(atPath: eml + "/" + $0, isDirectory: &isFolder) && isFolder.boolValue }) {
                hint = " (it looks like a Maildir: give --maildir \(eml))"
            } else {
                hint = " (--eml reads files named *.eml)"
            }
        } else if maildir != nil {
            hint = " (a Maildir's messages are the files of its cur/ and new/)"
        }
        return "\(name): no message found\(hint)"
    }

    /// The source; `stdin` is the `-` argument (an mbox on standard input).
    func open(folder: String, stdin: Bool) throws(CommandFailure) -> MailboxSource {
        if stdin { return try MboxSource(path: "-", folder: folder) }
        if let mbox { return try MboxSource(path: mbox, folder: folder) }
        if let maildir { return try FileListSource.maildir(maildir, folder: folder, subfolders: folderFromMaildir).following(links: followLinks) }
        if let eml { return try FileListSource.eml(eml, folder: folder).following(links: followLinks) }
        throw CommandFailure(status: .usage, message: "no mailbox given")
    }
}

/// An mbox read in chunks of 1 MiB through `MboxSplitter`: one message in memory at a time
/// (plus the chunk), a message over the message limit reported and skipped unread.
final class MboxSource: MailboxSource {
    let name: String
    let totalBytes: Int?
    let canReread: Bool
    private let descriptor: Int32
    private var splitter: MboxSplitter
    private var events: [MboxSplitter.Event] = []
    private var eventIndex = 0
    private var finished = false
    private var chunk = [UInt8](repeating: 0, count: 1 << 20)
    private(set) var count = 0
    private var sawAnything = false
    let folder: String

    init(path: String, folder: String, displayName: String? = nil) throws(CommandFailure) {
        name = displayName ?? path
        self.folder = folder
        descriptor = path == "-" ? 0 : open(path, O_RDONLY | O_NONBLOCK)
        if descriptor < 0 {
            throw CommandFailure(status: .couldNotRun, message: "\(path): cannot open: \(String(cString: strerror(errno)))")
        }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            throw CommandFailure(status: .couldNotRun, message: "\(path): cannot read: \(String(cString: strerror(errno)))")
        }
        let type = info.st_mode & S_IFMT
        if type == S_IFDIR { throw CommandFailure(status: .couldNotRun, message: "\(path): is a directory, not an mbox file") }
        if path != "-" {
            // Opened non-blocking so a FIFO cannot hang the open; reads block as usual.
            let flags = fcntl(descriptor, F_GETFL)
            if flags >= 0 { _ = fcntl(descriptor, F_SETFL, flags & ~O_NONBLOCK) }
        }
        totalBytes = type == S_IFREG ? Int(info.st_size) : nil
        canReread = type == S_IFREG
        // A file is split without keeping anything, and each message read from its place
        // once its size is known: a message over the limit is never read at all. A pipe
        // keeps the message as it goes (up to the limit).
        splitter = MboxSplitter(maxMessageBytes: ParseLimits().maxMessageBytes, keepBytes: !canReread)
    }

    deinit { if descriptor > 0 { close(descriptor) } }

    /// How much may come before an mbox's first `From ` line before the input is refused.
    static let preambleLimit = 1 << 20

    /// Feeds an mbox's first bytes (`count` of `chunk`) up to the preamble's last byte at
    /// most, and refuses the input there when no From line has begun: input that is not an
    /// mbox is said so after its first MiB, not after all of it (which may never end), and at
    /// exactly that byte whatever the reads' sizes (a From line across it was accepted from
    /// a pipe and refused from a file). How many bytes were fed: 0 once a message has begun.
    static func feedPreamble(_ splitter: inout MboxSplitter, _ chunk: [UInt8], count: Int, name: String,
                             into events: inout [MboxSplitter.Event]) throws(CommandFailure) -> Int {
        guard !splitter.hasStartedMessage, splitter.offset < preambleLimit else { return 0 }
        let fed = min(count, preambleLimit - splitter.offset)
        chunk.withUnsafeBufferPointer { splitter.feed(UnsafeBufferPointer(rebasing: $0[0..<fed]), into: &events) }
        if !splitter.hasStartedMessage && splitter.offset >= preambleLimit {
            throw CommandFailure(status: .badMessage, message: "\(name):1: not an mbox: no 'From ' separator line in its first \(preambleLimit) bytes")
        }
        return fed
    }

    func next() throws(CommandFailure) -> MailboxItem? {
        while eventIndex >= events.count {
            // Ctrl-C stops the reading too: one message may be endless input (a pipe).
            if Interruption.requested { return nil }
            if finished {
                if !sawAnything && splitter.offset > 0 {
                    sawAnything = true
                    throw CommandFailure(status: .badMessage, message: "\(name):1: not an mbox: no 'From ' separator line")
                }
                return nil
            }
            events.removeAll(keepingCapacity: true)
            eventIndex = 0
            var got = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            // A byte order mark may come over several reads of a pipe: its first bytes wait for
            // the rest (the splitter skips it only whole; in part, the first message was lost).
            let mark: [UInt8] = [0xEF, 0xBB, 0xBF]
            while got > 0 && got < 3 && splitter.offset == 0 && chunk[0..<got].elementsEqual(mark[0..<got]) {
                let more = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress! + got, $0.count - got) }
                if more < 0 && errno == EINTR { continue }
                if more <= 0 { break }
                got += more
            }
            if got < 0 {
                if errno == EINTR { continue }
                throw CommandFailure(status: .couldNotRun, message: "\(name): cannot read: \(String(cString: strerror(errno)))")
            }
            if got == 0 {
                splitter.finish(into: &events)
                finished = true
            } else {
                var fed = 0
                if !sawAnything {
                    do throws(CommandFailure) {
                        fed = try Self.feedPreamble(&splitter, chunk, count: got, name: name, into: &events)
                    } catch {
                        sawAnything = true
                        finished = true
                        throw error
                    }
                }
                if fed < got { chunk.withUnsafeBufferPointer { splitter.feed(UnsafeBufferPointer(rebasing: $0[fed..<got]), into: &events) } }
            }
        }
        let event = events[eventIndex]
        // The entry's bytes leave with the item: the queue does not keep a second reference.
        events[eventIndex] = .oversize(line: 0, offset: 0, size: 0)
        eventIndex += 1
        sawAnything = true
        defer { count += 1 }
        switch event {
        case .message(let entry) where entry.carriageReturnLineEnds:
            let failure = CommandFailure(status: .badMessage, message: "\(name):\(entry.line): " + Mbox.carriageReturnLineEndsProblem)
            return MailboxItem(index: count, position: .line(entry.line), locator: .mbox(offset: entry.offset, length: entry.length),
                               folder: folder, content: .failure(MailboxItemError(kind: "not_a_message", failure: failure)),
                               bytesRead: entry.offset + entry.length)
        case .message(let entry):
            var item = MailboxItem(index: count, position: .line(entry.line), locator: .mbox(offset: entry.offset, length: entry.length),
                                   folder: folder, content: .success(entry.bytes), bytesRead: entry.offset + entry.length)
            if canReread { item.content = reread(item) }
            return item
        case .oversize(let line, let offset, let size):
            let limit = ParseLimits().maxMessageBytes
            let failure = CommandFailure(status: .badMessage,
                                         message: "\(name):\(line): message of \(size) bytes, over the limit of \(limit); skipped")
            return MailboxItem(index: count, position: .line(line), locator: .mbox(offset: offset, length: size), folder: folder,
                               content: .failure(MailboxItemError(kind: "too_large", failure: failure)), bytesRead: offset + size)
        }
    }

    func reread(_ item: MailboxItem) -> Result<[UInt8], MailboxItemError> {
        guard case .mbox(let offset, let length) = item.locator, canReread else { return item.content }
        if case .failure = item.content { return item.content }
        var bytes = [UInt8](repeating: 0, count: length)
        var done = 0
        while done < length {
            let read = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress! + done, length - done, off_t(offset + done)) }
            if read < 0 && errno == EINTR { continue }
            if read <= 0 {
                let failure = CommandFailure(status: .couldNotRun, message: "\(item.position.place(in: name)): cannot read again: the mbox changed")
                return .failure(MailboxItemError(kind: "unreadable", failure: failure))
            }
            done += read
        }
        // The same split over the entry alone: one message, `>From ` unquoted the same way.
        var splitter = MboxSplitter()
        var events: [MboxSplitter.Event] = []
        bytes.withUnsafeBufferPointer { splitter.feed($0, into: &events) }
        splitter.finish(into: &events)
        // The entry ends before the next separator: the blank line before it goes as in the stream.
        guard events.count == 1, case .message(var entry) = events[0] else {
            let failure = CommandFailure(status: .couldNotRun, message: "\(item.position.place(in: name)): cannot read again: the mbox changed")
            return .failure(MailboxItemError(kind: "unreadable", failure: failure))
        }
        if offset + length < (totalBytes ?? 0) {
            if entry.bytes.last == 0x0A { entry.bytes.removeLast() }
            if entry.bytes.last == 0x0D { entry.bytes.removeLast() }
        }
        let limit = ParseLimits().maxMessageBytes
        if entry.bytes.count > limit {
            let failure = CommandFailure(status: .badMessage, message: "\(item.position.place(in: name)): message of \(entry.bytes.count) bytes, over the limit of \(limit); skipped")
            return .failure(MailboxItemError(kind: "too_large", failure: failure))
        }
        return .success(entry.bytes)
    }
}

/// Message files: a Maildir's `cur/` and `new/` (with `--folder-from-maildir`, its Maildir++
/// subfolders too), or a folder of `.eml` files. The list of names is read first (sorted),
/// the files one at a time.
final class FileListSource: MailboxSource {
    let name: String
    let canReread = true
    private let paths: PathList
    private var position = 0
    private var bytesRead = 0
    /// Every file's size, asked only by a progress bar (its ETA): a `stat` of each file
    /// before the first was read delayed every run, by seconds a million files.
    lazy var totalBytes: Int? = paths.entries.indices.reduce(0) { total, index in
        var info = stat()
        return total + (stat(paths.path(at: index), &info) == 0 ? Int(info.st_size) : 0)
    }

    /// Message files that are links are read, followed to a regular file (`--follow-links`).
    private(set) var followsLinks = false

    private init(name: String, paths: PathList) {
        self.name = name
        self.paths = paths
    }

    /// This source, reading message files that are links when `links` (a search folder of mu
    /// or notmuch is links into the real Maildir).
    func following(links: Bool) -> FileListSource {
        followsLinks = links
        return self
    }

    var count: Int { paths.entries.count }

    /// A folder's entry: its name (bytes that are not UTF-8 shown as U+FFFD), whether readdir
    /// says it is a folder, and whether the name was not UTF-8 (then the name held is not the
    /// file's: it cannot be opened by it, and may name another file).
    struct DirectoryEntry {
        var name: String
        var isFolder: Bool
        var undecodable: Bool
        /// The file system said the entry's type (ext4, XFS, Btrfs, tmpfs do; some network
        /// file systems say DT_UNKNOWN): no lstat is needed to tell a folder from a file.
        var typeKnown: Bool
    }

    static func directoryEntries(_ path: String) throws(CommandFailure) -> [DirectoryEntry] {
        var entries: [DirectoryEntry] = []
        try forEachEntry(of: path) { bytes, type in
            // The name's bytes checked as UTF-8 in one pass (a generic comparison of the decoded
            // name with them was a ninth of listing 35,000 files).
            let undecodable = !UTF8Text.isValid(bytes)
            entries.append(DirectoryEntry(name: String(decoding: bytes, as: UTF8.self), isFolder: type == UInt8(DT_DIR), undecodable: undecodable,
                                          typeKnown: type != UInt8(DT_UNKNOWN)))
        }
        return entries
    }

    /// Each entry of a folder but "." and "..": its name's bytes (valid until `body` returns)
    /// and the type the file system gives (`d_type`).
    static func forEachEntry(of path: String, _ body: (UnsafeRawBufferPointer, UInt8) -> Void) throws(CommandFailure) {
        guard let directory = opendir(path) else {
            throw CommandFailure(status: .couldNotRun, message: "\(path): cannot read the folder: \(String(cString: strerror(errno)))")
        }
        defer { closedir(directory) }
        while let entry = readdir(directory) {
            let type = entry.pointee.d_type
            withUnsafeBytes(of: entry.pointee.d_name) { raw in
                let name = UnsafeRawBufferPointer(rebasing: raw[0..<(raw.firstIndex(of: 0) ?? raw.count)])
                if name.elementsEqual(".".utf8) || name.elementsEqual("..".utf8) { return }
                body(name, type)
            }
        }
    }

    /// `.eml` in any case, compared as bytes (no lowercased copy of each of 35,000 names).
    static func hasEmlSuffix<Bytes: Collection>(_ bytes: Bytes) -> Bool where Bytes.Element == UInt8 {
        guard bytes.count >= 4 else { return false }
        // Letters match either case (byte | 0x20); the dot only itself.
        return zip(bytes.suffix(4), ".eml".utf8).allSatisfy { $0 == $1 || ($1 != UInt8(ascii: ".") && $0 | 0x20 == $1) }
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
    }

    /// A Maildir's messages: `cur/` and `new/` together sorted by file name (Maildir names
    /// begin with the delivery time), dot files skipped; then, with `subfolders`, each
    /// Maildir++ folder (`.Sent`, `.INBOX.Deals`) in name order.
    static func maildir(_ root: String, folder: String, subfolders: Bool) throws(CommandFailure) -> FileListSource {
        guard isDirectory(root + "/cur") || isDirectory(root + "/new") else {
            throw CommandFailure(status: .couldNotRun, message: "\(root): not a Maildir (no cur/ or new/ folder)")
        }
        for sub in ["cur", "new"] {
            var info = stat()
            guard lstat(root + "/" + sub, &info) == 0 else { continue }
            if info.st_mode & S_IFMT == S_IFLNK {
                throw CommandFailure(status: .couldNotRun, message: "\(root)/\(sub): a link; not followed (it could bring in another mailbox)")
            }
            // A file where a Maildir has a folder: not a Maildir (its messages were read as none).
            if info.st_mode & S_IFMT != S_IFDIR {
                throw CommandFailure(status: .couldNotRun, message: "\(root)/\(sub): not a folder; a Maildir's cur and new are folders")
            }
        }
        var folders: [(path: String, name: String)] = [(root, folder)]
        // Maildir++ folders named in bytes that are not UTF-8 (a Latin-1 `.Kunden ä`): they
        // cannot be opened by the name held, and are reported, one error each, never skipped
        // in silence.
        var undecodableFolders: [String] = []
        if subfolders {
            let dotted = try directoryEntries(root).filter { $0.name.hasPrefix(".") && $0.name != ".." && $0.name.count > 1 }
            undecodableFolders = dotted.filter { $0.undecodable && ($0.isFolder || !$0.typeKnown) }.map(\.name).sorted()
            let names = dotted.filter { !$0.undecodable }.map(\.name).sorted()
            for name in names where isDirectory(root + "/" + name + "/cur") || isDirectory(root + "/" + name + "/new") {
                var info = stat()
                if lstat(root + "/" + name, &info) == 0 && info.st_mode & S_IFMT == S_IFLNK {
                    throw CommandFailure(status: .couldNotRun, message: "\(root)/\(name): the Maildir++ folder is a link; not followed "
                                         + "(it could bring in another mailbox); give its real path with --maildir to read it")
                }
                folders.append((root + "/" + name, maildirFolderName(name)))
            }
        }
        var list = PathList()
        for (path, name) in folders {
            let folder = list.addFolder(name)
            var entries: [(file: String, path: String, undecodable: Bool)] = []
            for sub in ["cur", "new"] where isDirectory(path + "/" + sub) {
                for file in try directoryEntries(path + "/" + sub) where file.name.utf8.first != UInt8(ascii: ".") {
                    entries.append((file.name, path + "/" + sub + "/" + file.name, file.undecodable))
                }
            }
            entries.sort { ($0.file.utf8.lexicographicallyPrecedes($1.file.utf8)) || ($0.file == $1.file && ($0.path < $1.path || ($0.path == $1.path && $1.undecodable))) }
            for entry in entries { list.append(path: entry.path, folder: folder, undecodable: entry.undecodable) }
        }
        for name in undecodableFolders {
            list.append(path: root + "/" + name, folder: list.addFolder(maildirFolderName(name)), undecodable: true)
        }
        return FileListSource(name: root, paths: list)
    }

    /// The folder a Maildir++ subfolder stands for: `.Sent` → `Sent`, `.INBOX.Deals` →
    /// `Inbox/Deals`, `.Archive.2024` → `Archive/2024`; IMAP's modified UTF-7 (`&AOQ-`) decoded.
    static func maildirFolderName(_ directory: String) -> String {
        var parts = directory.dropFirst().split(separator: ".", omittingEmptySubsequences: true).map { decodeModifiedUTF7(String($0)) }
        if parts.first?.uppercased() == "INBOX" { parts[0] = "Inbox" }
        return parts.joined(separator: "/")
    }

    /// RFC 3501's modified UTF-7 (`&` base64 of UTF-16 `-`), as Dovecot and Courier name folders.
    static func decodeModifiedUTF7(_ text: String) -> String {
        guard text.contains("&") else { return text }
        var output = ""
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            guard character == "&", let end = text[index...].firstIndex(of: "-") else {
                output.append(character)
                index = text.index(after: index)
                continue
            }
            let encoded = text[text.index(after: index)..<end]
            if encoded.isEmpty {
                output += "&"
            } else {
                var base64 = encoded.replacingOccurrences(of: ",", with: "/")
                while base64.count % 4 != 0 { base64 += "=" }
                // What decodes to a control character or a "/" (which would make one folder
                // look like two, or put a line break in a folder's name) stays as written.
                if let data = Data(base64Encoded: base64), data.count % 2 == 0,
                   case let units = stride(from: 0, to: data.count, by: 2).map({ UInt16(data[data.startIndex + $0]) << 8 | UInt16(data[data.startIndex + $0 + 1]) }),
                   case let decoded = String(decoding: units, as: UTF16.self),
                   !decoded.unicodeScalars.contains(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) || $0 == "/" }) {
                    output += decoded
                } else {
                    output += "&" + encoded + "-"
                }
            }
            index = text.index(after: end)
        }
        return output
    }

    /// `*.eml` under `root`, recursively, sorted by path; hidden files and folders (a name whose
    /// first byte is a dot, as for `--maildir`) skipped. Names are read as bytes from the
    /// listing into one buffer (`PathList`): where the file system gives each entry's type, no
    /// string, path or array is made per file, and the sort compares bytes with memcmp. (A list
    /// of strings sorted by their bytes was most of the 40 ms a batch over 35,000 files spent
    /// on one core before its jobs began.)
    static func eml(_ root: String, folder: String) throws(CommandFailure) -> FileListSource {
        guard isDirectory(root) else { throw CommandFailure(status: .couldNotRun, message: "\(root): not a folder") }
        var list = PathList()
        let folderIndex = list.addFolder(folder)
        var pending = [root]
        while let directory = pending.popLast() {
            let prefix = Array((directory + "/").utf8)
            try forEachEntry(of: directory) { name, type in
                // Hidden files and folders (a name whose first byte is a dot) are skipped.
                guard name.first != UInt8(ascii: ".") else { return }
                let isEml = hasEmlSuffix(name)
                // The entry's path as a string, made once and only for a folder, a name that is
                // not UTF-8 or a type the listing does not give, never for a plain message file.
                var made: String?
                func path() -> String {
                    if let made { return made }
                    let path = directory + "/" + String(decoding: name, as: UTF8.self)
                    made = path
                    return path
                }
                if !UTF8Text.isValid(name) {
                    // A .eml file or a folder (whose messages cannot be listed) named in bytes
                    // that are not UTF-8: listed, so that reading it reports it (messages
                    // skipped in silence would look processed), never opened by the name held.
                    if isEml || type == UInt8(DT_DIR) { list.append(path: path(), folder: folderIndex, undecodable: true) }
                    return
                }
                // The entry's type from the listing where the file system gives it: an lstat of
                // each of 35,000 files was nine tenths of a batch's start, before any job began.
                var isFolder = type == UInt8(DT_DIR)
                if type == UInt8(DT_UNKNOWN) {
                    var info = stat()
                    guard lstat(path(), &info) == 0 else {
                        // Gone since listed: listed, so that reading it reports it.
                        if isEml { list.append(path: path(), folder: folderIndex, undecodable: false) }
                        return
                    }
                    isFolder = info.st_mode & S_IFMT == S_IFDIR
                }
                if isFolder {
                    pending.append(path())
                } else if isEml {
                    list.append(prefix: prefix, name: name, folder: folderIndex)
                }
            }
        }
        list.sortByPath()
        return FileListSource(name: root, paths: list)
    }

    func next() throws(CommandFailure) -> MailboxItem? {
        guard position < paths.entries.count else { return nil }
        var item = item(at: position)
        position += 1
        bytesRead += (try? item.content.get().count) ?? 0
        item.bytesRead = bytesRead
        return item
    }

    /// The file at `index` of the list, read (a forked job takes runs of files by index);
    /// its `bytesRead` is its own size.
    func item(at index: Int) -> MailboxItem {
        let path = paths.path(at: index), folder = paths.folders[paths.entries[index].folder]
        let shown = path.hasPrefix(name + "/") ? String(path.dropFirst(name.count + 1)) : path
        var item = MailboxItem(index: index, position: .file(path, underSource: shown), locator: .file(path), folder: folder,
                               content: .success([]), bytesRead: 0)
        item.content = reread(item)
        item.bytesRead = (try? item.content.get().count) ?? 0
        return item
    }

    /// The message file's bytes. A mailbox's messages are regular files in it: a link (which
    /// could bring in any file the run may read; followed to a regular file with
    /// `--follow-links`), a FIFO (which would block the run for ever) or a device is reported
    /// and skipped, as is a name that is not UTF-8. Each is one message that could not be
    /// read: exit 4, the batch goes on.
    func reread(_ item: MailboxItem) -> Result<[UInt8], MailboxItemError> {
        guard case .file(let path) = item.locator else { return item.content }
        if paths.entries.indices.contains(item.index) && paths.entries[item.index].undecodable {
            return .failure(MailboxItemError(kind: "unreadable", failure: CommandFailure(status: .badMessage, message:
                "\(path): the file name is not UTF-8 (shown with \u{FFFD}); mailsave cannot open it by that name: rename it")))
        }
        do throws(CommandFailure) {
            return .success(try readInput(path, limit: ParseLimits().maxMessageBytes, followLinks: followsLinks, regularOnly: true))
        } catch {
            let tooLarge = error.status == .badMessage
            var failure = error
            failure.status = .badMessage
            return .failure(MailboxItemError(kind: tooLarge ? "too_large" : "unreadable", failure: failure))
        }
    }
}
