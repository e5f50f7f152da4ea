import Foundation
import ArgumentParser
import MailEngine
import MailMessage
import MailRules
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where `batch` writes its lines: standard output, or `--out FILE` written atomically (a
/// temporary file next to it, renamed over it at the end; removed when the run fails or is
/// interrupted, so a file FILE is never half-written). FILE may be a link the kernel would let
/// us follow (`fs.protected_symlinks`' rule: ours, or not in a shared sticky folder): the file
/// it leads to is written. What is not a file (`/dev/null`, a FIFO, a terminal) is written to
/// directly, never replaced; a folder or a block device is refused.
final class LineOutput {
    private let descriptor: Int32
    private let path: String?
    /// The temporary file, and the file it becomes; nil when writing directly.
    private let temporary: String?
    private let destination: String?
    private var buffer: [UInt8] = []

    /// Refuses `--out` naming one of the run's own files (the store, the mailbox, the CSV
    /// folder's files, the pack's; or a link to one): it replaced the store or the mailbox
    /// with the decisions. Called before the run opens anything.
    static func refuseOwnFile(_ path: String?, protecting: [(path: String, what: String)], folders: [(path: String, what: String)] = []) throws(CommandFailure) {
        guard let path else { return }
        var target = stat()
        let exists = stat(path, &target) == 0
        if exists && target.st_mode & S_IFMT != S_IFREG { return }
        // The same file by inode (a link or a hard link to it), or, for a file not there yet
        // (a store the run is about to create, its WAL), by its folder's device and inode and
        // its name: a path says nothing across bind mounts or a linked store's real name.
        let identity = folderIdentity(path)
        for file in protecting {
            var other = stat()
            let sameFile = exists && stat(file.path, &other) == 0 && other.st_dev == target.st_dev && other.st_ino == target.st_ino
            if sameFile || (identity != nil && folderIdentity(file.path) == identity) {
                throw CommandFailure(status: .usage, message: "--out \(path): it is \(file.what) (\(file.path)); give another file for the decisions")
            }
        }
        for folder in folders {
            var inside = stat()
            guard stat(folder.path, &inside) == 0 else { continue }
            // FILE's folder and each folder above it (its real path, links resolved), compared
            // with the mailbox's folder by device and inode.
            var current = PackLoader.realPath(PathNames.openableFolder(of: path)) ?? ""
            while !current.isEmpty {
                var info = stat()
                if stat(current, &info) == 0 && info.st_dev == inside.st_dev && info.st_ino == inside.st_ino {
                    throw CommandFailure(status: .usage, message: "--out \(path): it is inside \(folder.what) (\(folder.path)); give a file outside it")
                }
                guard current != "/" else { break }
                current = PathNames.folder(of: current)
            }
        }
    }

    /// Where a path points: its folder's device and inode, and its last name. The same for
    /// every path to one place, through links and bind mounts.
    struct FolderIdentity: Equatable {
        var device: UInt64
        var inode: UInt64
        var name: String
    }

    /// Nil when the folder is not there.
    static func folderIdentity(_ path: String) -> FolderIdentity? {
        var folder = stat()
        guard stat(PathNames.openableFolder(of: path), &folder) == 0 else { return nil }
        return FolderIdentity(device: UInt64(folder.st_dev), inode: UInt64(folder.st_ino), name: PathNames.name(of: path))
    }

    init(path: String?) throws(CommandFailure) {
        self.path = path
        guard let path else {
            descriptor = 1
            temporary = nil
            destination = nil
            return
        }
        func failure(_ code: Int32, _ what: String? = nil) -> CommandFailure { .writing(path, code: code, what: what) }
        if path.hasSuffix("/") { throw failure(EISDIR, "a folder; give a file name") }
        var target = path
        var mode: mode_t = 0o600
        var owner: (uid: uid_t, gid: gid_t)?
        var info = stat()
        let isLink = lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFLNK
        if isLink && !Self.mayFollow(link: path, owner: info.st_uid) {
            throw failure(EPERM, "it is a link another user owns in a shared folder; not followed")
        }
        // What is there decides, read from the open descriptor (no check-then-open race):
        // opened for writing without creating or truncating anything.
        let existing = open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC)
        if existing >= 0 {
            var opened = stat()
            let type = fstat(existing, &opened) == 0 ? opened.st_mode & S_IFMT : S_IFREG
            if type != S_IFREG {
                guard type != S_IFBLK else {
                    close(existing)
                    throw failure(EPERM, "it is a block device; refused")
                }
                // A device, FIFO or socket: written as it is (replacing /dev/null with a file
                // would break every other program on the machine).
                descriptor = existing
                temporary = nil
                destination = nil
                return
            }
            close(existing)
            mode = opened.st_mode & 0o777
            owner = (opened.st_uid, opened.st_gid)
            if isLink {
                guard let real = realpath(path, nil) else { throw failure(errno) }
                target = String(cString: real)
                free(real)
            }
        } else if errno == EISDIR {
            throw failure(EISDIR, "it is a folder; give a file name")
        } else if errno != ENOENT || isLink {
            throw failure(errno, isLink && errno == ENOENT ? "it is a link to nothing" : nil)
        }
        let folder = PathNames.folder(of: target)
        Self.removeStaleTemporaries(of: target)
        let temporary = (folder.isEmpty ? "" : folder + "/") + ".\(PathNames.name(of: target)).mailsave-\(getpid()).tmp"
        // The decisions hold senders, subjects and links: a new file is the user's alone
        // (0600, as the store); a file replaced keeps its mode.
        descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw failure(errno) }
        // Held until the process ends: the file is this run's (`removeStaleTemporaries`).
        _ = flock(descriptor, LOCK_EX | LOCK_NB)
        // A file replaced keeps its owner where this user may give it (root replacing
        // another user's file), as `sed -i` does; its mode after, which a chown may clear.
        if let owner, owner.uid != geteuid() || owner.gid != getegid() { _ = fchown(descriptor, owner.uid, owner.gid) }
        if mode != 0o600 || owner != nil { _ = fchmod(descriptor, mode) }
        self.temporary = temporary
        destination = target
        buffer.reserveCapacity(1 << 16)
    }

    var isFile: Bool { path != nil }

    /// The temporary files of earlier runs for the same FILE that no process holds (a run
    /// killed with -9 left its file, and no run removed it): each run holds a lock on its own
    /// (flock, which a process in another PID namespace holds too, where a PID says nothing);
    /// a file whose lock can be taken is removed. This user's regular files only.
    static func removeStaleTemporaries(of target: String) {
        let folder = PathNames.folder(of: target), prefix = ".\(PathNames.name(of: target)).mailsave-"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.isEmpty ? "." : folder) else { return }
        for name in names where name.hasPrefix(prefix) && name.hasSuffix(".tmp") {
            let path = (folder.isEmpty ? "" : folder + "/") + name
            let descriptor = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
            guard descriptor >= 0 else { continue }
            defer { close(descriptor) }
            var info = stat()
            guard fstat(descriptor, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_uid == geteuid() else { continue }
            let modified = Int(info.modified.tv_sec)
            // A minute old at least: a run that has just created its file may not hold its lock yet.
            guard modified < Int(time(nil)) - 60, flock(descriptor, LOCK_EX | LOCK_NB) == 0 else { continue }
            unlink(path)
        }
    }

    /// Whether a link may be followed, by the kernel's `fs.protected_symlinks` rule: it is
    /// ours, or its folder is not sticky (not a shared /tmp), or it belongs to the folder's
    /// owner. realpath() reads links itself, so the kernel's own check never applies to it.
    static func mayFollow(link path: String, owner: uid_t) -> Bool {
        if owner == geteuid() { return true }
        var folder = stat()
        guard stat(PathNames.openableFolder(of: path), &folder) == 0 else { return false }
        return folder.st_mode & S_ISVTX == 0 || folder.st_uid == owner
    }

    func line(_ text: String) throws(CommandFailure) {
        buffer.append(contentsOf: text.utf8)
        buffer.append(0x0A)
        if buffer.count >= 1 << 16 { try flush() }
    }

    func flush() throws(CommandFailure) {
        var offset = 0
        while offset < buffer.count {
            let written = buffer.withUnsafeBytes { write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 && errno == EINTR { continue }
            if written <= 0 {
                let code = errno
                buffer.removeAll(keepingCapacity: true)
                throw .writing(path ?? "standard output", code: code)
            }
            offset += written
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Everything written: the file takes its name (after reaching the disk).
    func commit() throws(CommandFailure) {
        try flush()
        guard let path, let temporary, let destination else { return }
        if fsync(descriptor) != 0 || close(descriptor) != 0 || rename(temporary, destination) != 0 {
            let code = errno
            unlink(temporary)
            throw .writing(path, code: code)
        }
    }

    /// The run failed or was interrupted: the temporary file goes, FILE is as it was.
    func abandon() {
        guard let temporary else { return }
        close(descriptor)
        unlink(temporary)
    }
}

/// One message's line, rendered, and what the summary counts of it.
struct RenderedResult: Sendable {
    var index: Int
    var line: String
    var verdict: String?
    var rule: String?
    var linkKind: String?
    var saved: SaveState?
    var error: MailboxItemError?
    var bytesRead: Int
    /// The row of `--format table`.
    var table: [String]?

    enum SaveState: Sendable { case created, alreadySaved, parked }
}

/// Results arrive in the order they were decided (parents first with `--apply`) and leave
/// in input order. What waits is held in memory up to 32 MiB, then in an unlinked temporary file.
final class ReorderBuffer {
    private var next = 0
    private var waiting: [Int: RenderedResult] = [:]
    private var waitingBytes = 0
    private var spilled: [Int: (offset: Int, length: Int, result: RenderedResult)] = [:]
    private var spillDescriptor: Int32 = -1
    private var spillEnd = 0
    static let memoryLimit = 32 << 20

    deinit { if spillDescriptor >= 0 { close(spillDescriptor) } }

    func add(_ result: RenderedResult, emit: (RenderedResult) throws -> Void) throws {
        if result.index == next {
            try emit(result)
            next += 1
            try drain(emit)
            return
        }
        if waitingBytes + result.line.utf8.count > Self.memoryLimit, spill(result) { return }
        waitingBytes += result.line.utf8.count
        waiting[result.index] = result
    }

    /// The run stops before every message was decided (Ctrl-C, a store error): what waits for
    /// an earlier message that will not come leaves now, still in input order (with gaps), so
    /// no save that was made goes unreported (thousands did when replies came before their
    /// parents in the mailbox).
    func release(_ emit: (RenderedResult) throws -> Void) throws {
        for index in (Array(waiting.keys) + Array(spilled.keys)).sorted() where index >= next {
            guard waiting[index] != nil || spilled[index] != nil else { continue }
            next = index
            try drain(emit)
        }
    }

    private func drain(_ emit: (RenderedResult) throws -> Void) throws {
        while true {
            if let result = waiting.removeValue(forKey: next) {
                waitingBytes -= result.line.utf8.count
                try emit(result)
            } else if let entry = spilled.removeValue(forKey: next) {
                var result = entry.result
                var bytes = [UInt8](repeating: 0, count: entry.length)
                let got = bytes.withUnsafeMutableBytes { pread(spillDescriptor, $0.baseAddress, entry.length, off_t(entry.offset)) }
                guard got == entry.length else { throw CommandFailure(status: .couldNotRun, message: "cannot read back the temporary results") }
                result.line = String(decoding: bytes, as: UTF8.self)
                try emit(result)
            } else {
                return
            }
            next += 1
        }
    }

    /// Writes the line to the spill file; false when there is none to be had (kept in memory then).
    private func spill(_ result: RenderedResult) -> Bool {
        if spillDescriptor < 0 {
            var template = Array((NSTemporaryDirectory() + "/mailsave-batch-XXXXXX").utf8CString)
            spillDescriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            guard spillDescriptor >= 0 else { return false }
            template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        }
        let bytes = Array(result.line.utf8)
        let written = bytes.withUnsafeBytes { pwrite(spillDescriptor, $0.baseAddress, bytes.count, off_t(spillEnd)) }
        guard written == bytes.count else { return false }
        var kept = result
        kept.line = ""
        spilled[result.index] = (spillEnd, bytes.count, kept)
        spillEnd += bytes.count
        return true
    }
}

/// The order `batch --apply` decides in: input order, except that a message whose parent
/// (In-Reply-To, References: a Message-ID of the same batch) comes later in the input is
/// decided after that parent, so Magic Anchor and Case threading see the saved parent.
enum ThreadOrder {
    /// `ids[i]`: message i's normalised Message-ID; `parents[i]`: the ids it replies to.
    static func order(ids: [String?], parents: [[String]]) -> [Int] {
        var first: [String: Int] = [:]
        for (index, id) in ids.enumerated() { if let id, first[id] == nil { first[id] = index } }
        var state = [UInt8](repeating: 0, count: ids.count) // 0 new, 1 on the stack, 2 placed
        var order: [Int] = []
        order.reserveCapacity(ids.count)
        for root in ids.indices where state[root] == 0 {
            // Depth first without recursion (a thread can be thousands long): parents first.
            var stack: [(node: Int, next: Int)] = [(root, 0)]
            state[root] = 1
            while let top = stack.last {
                let links = parents[top.node]
                if top.next < links.count {
                    stack[stack.count - 1].next += 1
                    if let parent = first[links[top.next]], state[parent] == 0 {
                        state[parent] = 1
                        stack.append((parent, 0))
                    }
                    continue
                }
                stack.removeLast()
                state[top.node] = 2
                order.append(top.node)
            }
        }
        return order
    }

    /// The Message-ID and the ids a message replies to, read off its header block only.
    static func threadKeys(_ bytes: [UInt8]) -> (id: String?, parents: [String]) {
        var end = bytes.count
        var index = 0
        while index + 1 < bytes.count {
            if bytes[index] == 0x0A {
                if bytes[index + 1] == 0x0A { end = index + 1; break }
                if bytes[index + 1] == 0x0D && index + 2 < bytes.count && bytes[index + 2] == 0x0A { end = index + 1; break }
            }
            index += 1
        }
        guard let message = try? MessageParser.parse(Array(bytes[0..<end])) else { return (nil, []) }
        return (message.messageID.map(MessageIDKey.normalize),
                (message.inReplyTo + message.references.reversed()).map(MessageIDKey.normalize))
    }
}

/// The counts `batch` ends with.
struct BatchSummary {
    var messages = 0
    var errors = 0
    var byVerdict: [String: Int] = [:]
    var byRule: [String: Int] = [:]
    var byLink: [String: Int] = [:]
    var errorsByKind: [String: Int] = [:]
    var created = 0
    var alreadySaved = 0
    /// Saves kept in the outbox for `mailsave retry` (exit 11 when nothing worse happened).
    var parked = 0
    /// The exit status errors call for: the worst kind seen.
    var worst: ExitStatus?

    mutating func count(_ result: RenderedResult) {
        messages += 1
        if let error = result.error {
            errors += 1
            errorsByKind[error.kind, default: 0] += 1
            let rank: [ExitStatus] = [.couldNotRun, .temporary, .badCRMData, .badRules, .badMessage]
            let status = error.failure.status
            if worst == nil || (rank.firstIndex(of: status) ?? rank.count) < (rank.firstIndex(of: worst!) ?? rank.count) { worst = status }
            return
        }
        if let verdict = result.verdict { byVerdict[verdict, default: 0] += 1 }
        if let rule = result.rule { byRule[rule, default: 0] += 1 }
        if let link = result.linkKind { byLink[link, default: 0] += 1 }
        switch result.saved {
        case .created: created += 1
        case .alreadySaved: alreadySaved += 1
        case .parked: parked += 1
        case nil: break
        }
    }

    static let verdicts = ["save", "skip", "blocked", "unsupported"]

    /// Most first, then by name.
    static func ranked(_ counts: [String: Int]) -> [(String, Int)] {
        counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
    }

    func json(applying: Bool) -> JSON {
        func object(_ pairs: [(String, Int)]) -> JSON { .object(pairs.map { ($0.0, .int($0.1)) }) }
        var members: [(String, JSON)] = [
            ("messages", .int(messages)),
            ("decided", .int(messages - errors)),
            ("errors", .int(errors)),
            ("by_verdict", object(Self.verdicts.map { ($0, byVerdict[$0] ?? 0) })),
            ("by_rule", object(Self.ranked(byRule))),
            ("by_link", object(Self.ranked(byLink))),
            ("errors_by_kind", object(Self.ranked(errorsByKind))),
        ]
        if applying {
            members.append(("saved", .object([("created", .int(created)), ("already_saved", .int(alreadySaved)), ("parked", .int(parked))])))
        }
        return .object([("summary", .object(members))])
    }

    func text(applying: Bool) -> String {
        func list(_ pairs: [(String, Int)]) -> String { pairs.isEmpty ? "-" : pairs.map { "\($0.0) \($0.1)" }.joined(separator: ", ") }
        var lines = ["\(messages) message\(messages == 1 ? "" : "s"), \(messages - errors) decided, \(errors) error\(errors == 1 ? "" : "s")"]
        lines.append("verdicts  " + list(Self.verdicts.map { ($0, byVerdict[$0] ?? 0) }))
        lines.append("rules     " + list(Self.ranked(byRule)))
        lines.append("links     " + list(Self.ranked(byLink)))
        if errors > 0 { lines.append("errors    " + list(Self.ranked(errorsByKind))) }
        if applying {
            lines.append("saved     \(created) created, \(alreadySaved) already saved" + (parked > 0 ? ", \(parked) parked (run mailsave retry)" : ""))
        }
        return lines.joined(separator: "\n")
    }

    /// What a saved decision links to: `Contact+Opportunity`, `Lead`, `new Lead`, `none`.
    static func linkKind(_ decision: Decision) -> String {
        var kinds: [String] = []
        for id in decision.who + [decision.what].compactMap({ $0 }) {
            let kind = objectName(id)
            if !kinds.contains(kind) { kinds.append(kind) }
        }
        for record in decision.toCreate where !kinds.contains("new " + record.object) { kinds.append("new " + record.object) }
        return kinds.isEmpty ? "none" : kinds.joined(separator: "+")
    }

    static func objectName(_ id: String) -> String {
        switch id.prefix(3) {
        case "003": return "Contact"
        case "00Q": return "Lead"
        case "005": return "User"
        case "001": return "Account"
        case "006": return "Opportunity"
        case "500": return "Case"
        default: return "other"
        }
    }
}

/// Peak resident memory of this process in kB (`VmHWM`), for the hidden `--report-peak-memory`.
func peakMemoryKB() -> Int? {
    #if os(Linux)
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }) else { return nil }
    return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
    #else
    var usage = rusage()
    getrusage(RUSAGE_SELF, &usage)
    return Int(usage.ru_maxrss) / 1024
    #endif
}

/// `--jobs` of `batch` and `diff`: threads that parse and decide at once.
enum Jobs {
    /// Beyond the cores, threads only add memory (each holds messages in flight); far beyond
    /// them they exhaust it. 256 leaves room for any machine of today.
    static let maximum = 256

    static func validate(_ jobs: Int) throws(ValidationError) {
        guard (1...maximum).contains(jobs) else {
            throw ValidationError("--jobs must be from 1 to \(maximum) (default: the number of cores), not \(jobs)")
        }
    }
}

/// Files and folders a command made for its run (a git revision's pack, a copy of standard
/// input), removed when the run ends at once, past the commands' own clean-ups: output that
/// fails (`Terminal`), or dying of Ctrl-C (`Interruption.reraise`).
enum TemporaryPaths {
    private static let paths = Locked<Set<String>>([])

    static func remember(_ path: String) { paths.withLock { _ = $0.insert(path) } }
    static func forget(_ path: String) { paths.withLock { _ = $0.remove(path) } }

    static func removeAll() {
        for path in paths.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: path) }
    }
}
