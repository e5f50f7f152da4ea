import MailMessage
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `read(2)`, named apart from `PackLoader.read`.
private func systemRead(_ descriptor: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int { read(descriptor, buffer, count) }

/// What a rule decides when its condition holds.
public enum Verdict: String, Sendable, CaseIterable {
    /// Saved now.
    case save
    /// Not saved now; the Save button still works.
    case skip
    /// Internal or blocklisted: not saved, Save disabled.
    case blocked
    /// A service email: not saveable even by hand.
    case unsupported
}

/// How a saved email is linked to CRM records.
public enum LinkMode: String, Sendable, CaseIterable {
    /// The best related records (default); on an EmailMessage a Lead excludes every other link.
    case bestMatch = "best_match"
    /// A Task linked to a Contact (WhoId) and a Case (WhatId) at once.
    case caseAndContact = "case_and_contact"
    /// A reply to an email sent from Salesforce: that email's single Contact or Lead only.
    case magicAnchor = "magic_anchor"
    /// WhoId and WhatId blank (link-free saving).
    case none
    /// People records only (the participants' Leads, else Contacts; Users on an EmailMessage):
    /// no Business record (forced mode).
    case people
}

/// A rule as written, before compilation.
public struct RuleDefinition: Sendable {
    public var id: String
    public var idLocation: SourceLocation
    public var description: String
    public var when: ExprSource?
    public var then: Verdict?
    public var thenLocation: SourceLocation?
    public var message: String?
    public var observe: ExprSource?
    public var link: LinkMode?
    public var linkLocation: SourceLocation?
    public var saveAs: String?
    public var createRecords: Bool?
    public var location: SourceLocation
}

public struct ListDefinition: Sendable {
    public var name: String
    public var nameLocation: SourceLocation
    public var kind: ListKind
    public var description: String?
    public var entries: [YScalar]
}

/// The settings mapping as written, each value with its key's location.
public struct SettingsDefinition: Sendable {
    public var values: [(key: YScalar, value: YNode)]
    public var location: SourceLocation

    public func value(_ name: String) -> (key: YScalar, value: YNode)? { values.first { $0.key.value == name } }
}

/// One per-user file (the individual layer).
public struct UserDefinition: Sendable {
    public var mailbox: YScalar
    public var add: [YScalar]
    public var remove: [YScalar]
    public var settings: [(key: YScalar, value: YNode)]
    public var file: SourceFile
}

/// Everything read from a pack's files, with positions; the input of `PackCompiler`.
public struct PackDefinition: Sendable {
    public var files: [SourceFile] = []
    public var settings: [SettingsDefinition] = []
    public var lists: [ListDefinition] = []
    public var rules: [RuleDefinition] = []
    public var users: [UserDefinition] = []
    /// Field mappings: object -> [(field key, expression)].
    public var mapping: [(object: YScalar, fields: [(key: YScalar, expression: ExprSource)])] = []
}

/// A file or folder that could not be read at all (exit 3, not a lint finding).
public struct PackReadError: Error, Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var reason: String
    /// The input was longer than the limit (`readAll` stopped one byte past it).
    public var overLimit = false
    /// Where a file's bytes stop being UTF-8: it was read, its text is bad (`lint` reports
    /// it among the other problems; a command that runs the pack cannot).
    public var notUTF8At: SourceLocation?
    public init(path: String, reason: String, overLimit: Bool = false, notUTF8At: SourceLocation? = nil) {
        self.path = path
        self.reason = reason
        self.overLimit = overLimit
        self.notUTF8At = notUTF8At
    }
    public var description: String { "\(path): \(reason)" }
}

/// Reads rule files and checks them against the rule file format (the same format
/// `schemas/rule-pack.schema.json` and `schemas/user.schema.json` publish).
public struct PackLoader {
    public private(set) var definition = PackDefinition()
    public private(set) var diagnostics: [Diagnostic] = []

    public init() {}

    public static let orgKeys = ["settings", "lists", "rules"]
    public static let ruleKeys = ["id", "description", "when", "then", "message", "observe", "link", "save_as", "create_records"]
    public static let listKeys = ["kind", "description", "entries"]
    public static let userKeys = ["mailbox", "blocklist", "settings"]
    public static let capabilityKeys = ["email_to_case", "email_drafts_for_cases"]

    // MARK: Files

    /// The rule files of `path`: a pack folder (its YAML files, and `users/*.yaml` as the
    /// individual layer; `tests/` is for rule tests), or a single file.
    /// With `mailbox`, only the user files that speak for it (`userFiles(_:of:)`), chosen by
    /// name as the folder is read: no string is made nor sorted for the others.
    public static func files(at path: String, mailbox: String? = nil) throws(PackReadError) -> (org: [String], users: [String]) {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw PackReadError(path: path, reason: String(cString: strerror(errno)))
        }
        if (info.st_mode & S_IFMT) != S_IFDIR {
            guard path.split(separator: "/").dropLast().last == "users" else { return ([path], []) }
            return ([], mailbox.map { userFiles([path], of: $0) } ?? [path])
        }
        let base = path.hasSuffix("/") ? String(path.dropLast()) : path
        let org = try yamlFiles(in: base)
        var users: [String] = []
        var usersInfo = stat()
        if stat(base + "/users", &usersInfo) == 0 && (usersInfo.st_mode & S_IFMT) == S_IFDIR {
            let matcher = mailbox.map { UserFileMatcher(CompiledList.normalize($0, kind: .addresses)) }
            users = try yamlFiles(in: base + "/users") { name in matcher?.matches(name) ?? true }
        }
        return (org, users)
    }

    /// The folder whose files make up the pack at `path` (every file read must be inside it),
    /// or nil when `path` is a single file named explicitly.
    public static func packRoot(of path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else { return nil }
        return path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
    }

    /// The mailbox a user file speaks for: its name without `.yaml` (`users/ann@contoso.com.yaml`),
    /// normalised; nil when the name is not an email address.
    public static func mailbox(ofUserFile path: String) -> String? {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        let stem = name.hasSuffix(".yaml") ? String(name.dropLast(5)) : name.hasSuffix(".yml") ? String(name.dropLast(4)) : name
        guard PackCompiler.isValidAddress(stem) else { return nil }
        return CompiledList.normalize(stem, kind: .addresses)
    }

    /// The user files of `paths` that speak for `mailbox` (normally one; two when a mailbox
    /// has a `.yaml` and a `.yml`, or names differing in case, which `compileUsers` reports).
    /// A name is normalised only when its ASCII letters, lower-cased, could give the mailbox:
    /// a pack of thousands of user files costs one comparison a file.
    public static func userFiles(_ paths: [String], of mailbox: String) -> [String] {
        let matcher = UserFileMatcher(CompiledList.normalize(mailbox, kind: .addresses))
        return paths.filter { path in
            let bytes = Array(path.utf8)
            let name = bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).last ?? bytes[...]
            return name.withUnsafeBufferPointer { matcher.matches($0) }
        }
    }

    /// Whether a user file's name (its bytes) speaks for the mailbox whose normal form is
    /// `wanted`, as `mailbox(ofUserFile:)` and the full load decide it (strings equal as Swift
    /// compares them: an NFD name is an NFC mailbox's). A name whose whole normalisation is
    /// lower-casing its ASCII (`IDNA.lowersToASCII`) is ruled out at once by a different length
    /// or letter, compared byte by byte (a folder of a thousand user files took 0.9M
    /// instructions through the generic collection operations); any other name is normalised.
    struct UserFileMatcher {
        let wanted: String
        let bytes: [UInt8]
        /// An ASCII name can equal a mailbox with other characters (U+1FEF is "`" in NFC): the
        /// shortcut only for an ASCII mailbox.
        let asciiMailbox: Bool

        init(_ wanted: String) {
            self.wanted = wanted
            bytes = Array(wanted.utf8)
            asciiMailbox = bytes.allSatisfy { $0 < 0x80 }
        }

        func matches(_ name: UnsafeBufferPointer<UInt8>) -> Bool {
            let stem = UnsafeBufferPointer(rebasing: name[..<(PackLoader.yamlStemLength(name) ?? name.count)])
            if asciiMailbox && IDNA.lowersToASCII(stem).ascii {
                guard stem.count == bytes.count else { return false }
                for index in 0..<stem.count where stem[index].asciiLowercased != bytes[index] { return false }
            }
            return mailbox(ofUserFile: String(decoding: name, as: UTF8.self)) == wanted
        }
    }

    /// The length of a name before `.yaml` or `.yml`, or nil when it ends in neither (or is
    /// nothing but the extension).
    static func yamlStemLength(_ name: UnsafeBufferPointer<UInt8>) -> Int? {
        func ends(with suffix: StaticString) -> Bool {
            let length = suffix.utf8CodeUnitCount
            guard name.count > length else { return false }
            let start = suffix.utf8Start
            for index in 0..<length where name[name.count - length + index] != start[index] { return false }
            return true
        }
        if ends(with: ".yaml") { return name.count - 5 }
        if ends(with: ".yml") { return name.count - 4 }
        return nil
    }

    /// The files of a pack folder and of its `users/` that no command reads although their
    /// names say YAML: `.YAML`, `.Yml` and the like (the extension is compared as written,
    /// the same on every file system). `lint` warns of each, since a rule file skipped in
    /// silence is a policy not applied.
    public static func ignoredFiles(at path: String) -> [String] {
        guard let root = packRoot(of: path) else { return [] }
        func misspelt(_ name: UnsafeBufferPointer<UInt8>) -> Bool {
            guard yamlStemLength(name) == nil else { return false }
            let lowered = name.map(\.asciiLowercased)
            return lowered.withUnsafeBufferPointer { yamlStemLength($0) != nil }
        }
        var found: [String] = []
        for folder in [root, root + "/users"] {
            guard let names = try? entries(of: folder, including: misspelt) else { continue }
            found += names.map { folder + "/" + $0 }
        }
        return found
    }

    /// The YAML files of a folder, sorted; with `including`, only the names it accepts. A name
    /// that is not UTF-8 is an error naming it: it could only be opened by its U+FFFD spelling,
    /// another name, and a rule file is never skipped in silence.
    static func yamlFiles(in directory: String, including: ((UnsafeBufferPointer<UInt8>) -> Bool)? = nil) throws(PackReadError) -> [String] {
        var undecodable: String?
        let names = try entries(of: directory) { name in
            guard yamlStemLength(name) != nil && including?(name) ?? true else { return false }
            if undecodable == nil && !UTF8Text.isValid(name) { undecodable = String(decoding: name, as: UTF8.self) }
            return true
        }
        if let undecodable {
            throw PackReadError(path: directory + "/" + undecodable, reason: "the file name is not UTF-8 (shown with U+FFFD); rename it")
        }
        return names.map { directory + "/" + $0 }
    }

    /// The names in a folder, dot-files left out, sorted; with `including`, only the names it
    /// accepts, tested on the entry's bytes before a string is made of them.
    public static func entries(of directory: String, including: ((UnsafeBufferPointer<UInt8>) -> Bool)? = nil) throws(PackReadError) -> [String] {
        guard let handle = opendir(directory) else {
            throw PackReadError(path: directory, reason: String(cString: strerror(errno)))
        }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name: String? = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: UInt8.self, capacity: 256) { start in
                    let bytes = UnsafeBufferPointer(start: start, count: strlen(UnsafeRawPointer(start).assumingMemoryBound(to: CChar.self)))
                    guard bytes.first != UInt8(ascii: "."), including?(bytes) ?? true else { return nil }
                    return String(decoding: bytes, as: UTF8.self)
                }
            }
            if let name { names.append(name) }
        }
        return names.sorted()
    }

    /// The largest rule file read (the YAML loader's limit): reading stops there.
    public static let maxFileBytes = 32 << 20

    /// The canonical absolute path (symbolic links resolved), or nil when it does not exist.
    public static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Whether `path` (canonical) is `root` (canonical) or inside it.
    public static func isInside(_ path: String, root: String) -> Bool {
        if root == "/" { return path.hasPrefix("/") }
        return path == root || path.hasPrefix(root + "/")
    }

    /// The bytes of a regular file, at most `limit` of them. With `root` (a folder), the file's
    /// real path (symbolic links resolved) must be inside it. The file is opened with
    /// O_NOFOLLOW|O_NONBLOCK and checked with fstat on the open descriptor: a FIFO, a device,
    /// a folder or a socket is refused without ever blocking on it, and a file over `limit` is
    /// refused after reading `limit + 1` bytes, never read whole.
    public static func bytes(of path: String, limit: Int = maxFileBytes, inside root: String? = nil) throws(PackReadError) -> [UInt8] {
        var target = path
        if let root {
            guard let realRoot = realPath(root) else {
                throw PackReadError(path: root, reason: String(cString: strerror(errno)))
            }
            guard let real = realPath(path) else {
                throw PackReadError(path: path, reason: String(cString: strerror(errno)))
            }
            guard isInside(real, root: realRoot) else {
                throw PackReadError(path: path, reason: "is a symbolic link to a file outside \(root); only files inside it are read")
            }
            target = real
        } else {
            // Named explicitly: a symbolic link is followed, but it must still lead to a regular file.
            var info = stat()
            if lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK, let real = realPath(path) { target = real }
        }
        let descriptor = open(target, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else {
            if errno == ELOOP { throw PackReadError(path: path, reason: "is a symbolic link; only regular files are read") }
            throw PackReadError(path: path, reason: String(cString: strerror(errno)))
        }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw PackReadError(path: path, reason: String(cString: strerror(errno))) }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw PackReadError(path: path, reason: "is \(fileKind(info.st_mode)), not a regular file; only regular files are read")
        }
        return try readAll(descriptor, path: path, limit: limit, sizeHint: Int(info.st_size))
    }

    /// Reads an open descriptor to its end, refusing (after `limit + 1` bytes) more than
    /// `limit`: the one reader of whole inputs (rule files, cache entries, the command line's
    /// messages), so an endless input (`/dev/zero`, a runaway pipe) costs the limit, never more.
    public static func readAll(_ descriptor: Int32, path: String, limit: Int, sizeHint: Int = 0) throws(PackReadError) -> [UInt8] {
        let limit = min(max(limit, 0), Int.max - 1)
        /// Up to `count` bytes at `into`; 0 at the end of the input.
        func readSome(into pointer: UnsafeMutableRawPointer, _ count: Int) throws(PackReadError) -> Int {
            while true {
                let read = systemRead(descriptor, pointer, count)
                if read >= 0 { return read }
                if errno == EINTR { continue }
                if errno == EAGAIN {
                    // A "regular file" that would block (/proc/kmsg, opened O_NONBLOCK) is a
                    // kernel interface, not a file of data: refused, never waited on.
                    var info = stat()
                    if fstat(descriptor, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG {
                        throw PackReadError(path: path, reason: "the file would block (a special file such as /proc/kmsg, not a file of data); not read")
                    }
                    // A non-blocking input (a pipe its writer set so): wait for it, never spin.
                    var waiting = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
                    _ = poll(&waiting, 1, -1)
                    continue
                }
                throw PackReadError(path: path, reason: "cannot read: \(String(cString: strerror(errno)))")
            }
        }
        var bytes: [UInt8] = []
        if sizeHint > 0 {
            // The size is known: one allocation of the right size, read into directly (no zeroed
            // buffer to copy from: zeroing 64 KiB was a twentieth of a batch's time). One byte
            // more than the hint tells a file that grew since from one that did not.
            let capacity = min(sizeHint, limit) + 1
            var failure: PackReadError?
            bytes = [UInt8](unsafeUninitializedCapacity: capacity) { buffer, initialized in
                guard let base = buffer.baseAddress else { return }
                do throws(PackReadError) {
                    while initialized < capacity {
                        // At most 1 GiB a call: macOS refuses a read of more than INT_MAX bytes.
                        let count = try readSome(into: base + initialized, min(capacity - initialized, 1 << 30))
                        if count == 0 { return }
                        initialized += count
                    }
                } catch {
                    failure = error
                }
            }
            if let failure { throw failure }
            if bytes.count < capacity { return bytes }
        }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while bytes.count <= limit {
            let wanted = min(buffer.count, limit + 1 - bytes.count)
            var failure: PackReadError?
            let count = buffer.withUnsafeMutableBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                do throws(PackReadError) { return try readSome(into: base, wanted) } catch { failure = error; return 0 }
            }
            if let failure { throw failure }
            if count == 0 { return bytes }
            bytes.append(contentsOf: buffer[0..<count])
        }
        throw PackReadError(path: path, reason: "is larger than the limit of \(limit) bytes", overLimit: true)
    }

    /// Refuses `path` unless it is a regular file whose real path is inside `root` (for files
    /// read later by other code, such as a rule test's CRM export).
    public static func checkRegularFile(_ path: String, inside root: String) throws(PackReadError) {
        guard let realRoot = realPath(root) else { throw PackReadError(path: root, reason: String(cString: strerror(errno))) }
        guard let real = realPath(path) else { throw PackReadError(path: path, reason: String(cString: strerror(errno))) }
        guard isInside(real, root: realRoot) else {
            throw PackReadError(path: path, reason: "is a symbolic link to a file outside \(root); only files inside it are read")
        }
        var info = stat()
        guard lstat(real, &info) == 0 else { throw PackReadError(path: path, reason: String(cString: strerror(errno))) }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw PackReadError(path: path, reason: "is \(fileKind(info.st_mode)), not a regular file; only regular files are read")
        }
    }

    static func fileKind(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: return "a folder"
        case S_IFIFO: return "a FIFO"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        case S_IFLNK: return "a symbolic link"
        default: return "an unknown kind of file"
        }
    }

    /// A rule file's text (a UTF-8 byte order mark removed). With `root`, the file must be a
    /// regular file whose real path is inside that folder (the pack).
    public static func read(_ path: String, inside root: String? = nil) throws(PackReadError) -> SourceFile {
        var bytes = try bytes(of: path, inside: root)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        guard let text = UTF8Text.valid(bytes) else {
            let (line, column, byte) = firstInvalidUTF8(bytes)
            throw PackReadError(path: "\(path):\(line):\(column)",
                                reason: "not UTF-8 text (byte 0x\(String(byte, radix: 16, uppercase: true)) here); rule files are UTF-8",
                                notUTF8At: SourceLocation(path: path, line: line, column: column))
        }
        return SourceFile(path: path, text: text)
    }

    /// Where the first byte that is not UTF-8 is: line, column (in characters, from 1), byte.
    static func firstInvalidUTF8(_ bytes: [UInt8]) -> (line: Int, column: Int, byte: UInt8) {
        var decoder = UTF8()
        var iterator = bytes.makeIterator()
        var offset = 0, line = 1, column = 1
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar):
                offset += UTF8.width(scalar)
                if scalar == "\n" { line += 1; column = 1 } else { column += 1 }
            case .emptyInput:
                return (line, column, 0)
            case .error:
                return (line, column, offset < bytes.count ? bytes[offset] : 0)
            }
        }
    }

    // MARK: Org files

    mutating func report(_ check: LintCheck, _ location: SourceLocation, length: Int = 1, _ message: String,
                         related: (location: SourceLocation, message: String)? = nil) {
        diagnostics.append(Diagnostic(check, at: location, length: length, message, related: related))
    }

    /// Reports keys that are not in `allowed`, with a suggestion; returns the known entries.
    mutating func known(_ entries: [(key: YScalar, value: YNode)], _ allowed: [String], in context: String) -> [(key: YScalar, value: YNode)] {
        var kept: [(key: YScalar, value: YNode)] = []
        for entry in entries {
            if allowed.contains(entry.key.value) {
                kept.append(entry)
            } else {
                let hint = Suggestion.hint(for: entry.key.value, in: allowed)
                report(.schemaUnknownKey, entry.key.location, length: entry.key.value.count,
                       "unknown field '\(entry.key.value)' in \(context)\(hint); expected one of \(allowed.joined(separator: ", "))")
            }
        }
        return kept
    }

    mutating func scalar(_ node: YNode, _ what: String) -> YScalar? {
        guard case .scalar(let scalar) = node, !scalar.isNull else {
            report(.schemaType, node.location, "\(what) must be a string, found \(node.kindName)")
            return nil
        }
        if scalar.isPlainNonString {
            report(.schemaType, scalar.location, length: scalar.value.count,
                   "\(what) must be a string, found \(scalar.value); quote it: \"\(scalar.value)\"")
            return nil
        }
        return scalar
    }

    mutating func bool(_ node: YNode, _ what: String) -> Bool? {
        guard case .scalar(let scalar) = node, scalar.style == .plain else {
            report(.schemaType, node.location, "\(what) must be true or false, found \(node.kindName)")
            return nil
        }
        switch scalar.value {
        case "true", "True", "TRUE": return true
        case "false", "False", "FALSE": return false
        default:
            report(.schemaType, scalar.location, length: scalar.value.count, "\(what) must be true or false, found '\(scalar.value)'")
            return nil
        }
    }

    mutating func enumValue(_ node: YNode, _ what: String, _ values: [String]) -> YScalar? {
        guard let scalar = scalar(node, what) else { return nil }
        guard values.contains(scalar.value) else {
            let hint = Suggestion.hint(for: scalar.value, in: values)
            report(.schemaValue, scalar.location, length: scalar.value.count,
                   "'\(scalar.value)' is not a valid \(what)\(hint); expected one of \(values.joined(separator: ", "))")
            return nil
        }
        return scalar
    }

    mutating func scalars(_ node: YNode, _ what: String) -> [YScalar]? {
        guard case .sequence(let items, _) = node else {
            report(.schemaType, node.location, "\(what) must be a list, found \(node.kindName)")
            return nil
        }
        var result: [YScalar] = []
        result.reserveCapacity(items.count)
        for item in items {
            if let value = scalar(item, "an entry of \(what)") { result.append(value) }
        }
        return result
    }

    mutating func mapping(_ node: YNode, _ what: String) -> [(key: YScalar, value: YNode)]? {
        guard case .mapping(let entries, _) = node else {
            report(.schemaType, node.location, "\(what) must be a mapping, found \(node.kindName)")
            return nil
        }
        return entries
    }

    /// The YAML tree of a file, or nil after reporting why there is none.
    mutating func root(of file: SourceFile, whenEmpty: String) -> YNode? {
        definition.files.append(file)
        let (root, yamlDiagnostics) = YAMLLoader.load(file)
        diagnostics.append(contentsOf: yamlDiagnostics)
        guard yamlDiagnostics.isEmpty else { return nil }
        if root == nil { report(.schemaMissingKey, SourceLocation(path: file.path, line: 1, column: 1), "the file is empty; " + whenEmpty) }
        return root
    }

    /// Reads one file of the org layer.
    public mutating func loadOrgFile(_ file: SourceFile) {
        guard let root = root(of: file, whenEmpty: "a rule file has settings, lists or rules") else { return }
        guard let entries = mapping(root, "a rule file") else { return }
        let known = known(entries, Self.orgKeys, in: "a rule file")
        if entries.isEmpty {
            report(.schemaMissingKey, root.location, "a rule file has settings, lists or rules")
        }
        for (key, value) in known {
            switch key.value {
            case "settings": loadSettings(value, key: key, file: file)
            case "lists": loadLists(value)
            default: loadRules(value, file: file)
            }
        }
    }

    mutating func loadSettings(_ node: YNode, key: YScalar, file: SourceFile) {
        guard let entries = mapping(node, "settings") else { return }
        let names = SettingSpec.all.map(\.name)
        let known = known(entries, names, in: "settings")
        for (key, value) in known {
            guard let spec = SettingSpec.named(key.value) else { continue }
            validateSetting(spec, key: key, value: value, file: file, personal: false)
        }
        definition.settings.append(SettingsDefinition(values: known, location: key.location))
    }

    /// Checks a setting's YAML shape; for `mapping`, also records its expressions.
    mutating func validateSetting(_ spec: SettingSpec, key: YScalar, value: YNode, file: SourceFile, personal: Bool) {
        let what = "'\(spec.name)'"
        switch spec.shape {
        case .bool: _ = bool(value, what)
        case .string: _ = scalar(value, what)
        case .choice(let values, _): _ = enumValue(value, what, values)
        case .folders: _ = scalars(value, what)
        case .listName: _ = scalar(value, "\(what) (the name of a list)")
        case .capabilities:
            guard let entries = mapping(value, what) else { return }
            for (capability, flag) in known(entries, Self.capabilityKeys, in: "capabilities") {
                _ = bool(flag, "'\(capability.value)'")
            }
        case .settingNames:
            guard let names = scalars(value, what) else { return }
            let allowed = SettingSpec.all.filter(\.personalAllowed).map(\.name)
            for name in names where !allowed.contains(name.value) {
                let hint = Suggestion.hint(for: name.value, in: allowed)
                report(.schemaValue, name.location, length: name.value.count,
                       "'\(name.value)' cannot be a personal setting\(hint); users may choose \(allowed.joined(separator: ", "))")
            }
        case .mapping:
            guard let objects = mapping(value, what) else { return }
            for (object, fieldsNode) in known(objects, ["Task", "EmailMessage"], in: "mapping") {
                guard let fields = mapping(fieldsNode, "the \(object.value) mapping") else { continue }
                let catalog = SalesforceField.fields(for: object.value) ?? []
                var expressions: [(key: YScalar, expression: ExprSource)] = []
                for (field, expression) in known(fields, catalog.map(\.name), in: "the \(object.value) mapping") {
                    guard let scalar = scalar(expression, "the expression for \(object.value).\(field.value)") else { continue }
                    expressions.append((field, ExprSource(text: scalar.value, scalar: scalar, file: file)))
                }
                definition.mapping.append((object, expressions))
            }
        }
    }

    mutating func loadLists(_ node: YNode) {
        guard let entries = mapping(node, "lists") else { return }
        for (name, body) in entries {
            guard let fields = mapping(body, "list '\(name.value)'") else { continue }
            let known = known(fields, Self.listKeys, in: "list '\(name.value)'")
            var kind: ListKind?
            var description: String?
            var items: [YScalar]?
            for (key, value) in known {
                switch key.value {
                case "kind":
                    if let scalar = enumValue(value, "'kind'", ListKind.allCases.map(\.rawValue)) { kind = ListKind(rawValue: scalar.value) }
                case "description": description = scalar(value, "'description'")?.value
                default: items = scalars(value, "'entries'")
                }
            }
            for required in ["kind", "entries"] where !known.contains(where: { $0.key.value == required }) {
                report(.schemaMissingKey, name.location, length: name.value.count, "list '\(name.value)' has no '\(required)'")
            }
            if let kind, let items {
                definition.lists.append(ListDefinition(name: name.value, nameLocation: name.location, kind: kind,
                                                       description: description, entries: items))
            }
        }
    }

    static func isRuleID(_ id: String) -> Bool {
        guard let first = id.unicodeScalars.first, ("a"..."z").contains(first) || ("0"..."9").contains(first) else { return false }
        return id.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
    }

    mutating func loadRules(_ node: YNode, file: SourceFile) {
        guard case .sequence(let items, _) = node else {
            report(.schemaType, node.location, "'rules' must be a list, found \(node.kindName)")
            return
        }
        for item in items {
            guard let fields = mapping(item, "a rule") else { continue }
            let known = known(fields, Self.ruleKeys, in: "a rule")
            var rule = RuleDefinition(id: "", idLocation: item.location, description: "", location: item.location)
            var valid = true
            for (key, value) in known {
                switch key.value {
                case "id":
                    guard let scalar = scalar(value, "'id'") else { valid = false; continue }
                    if !Self.isRuleID(scalar.value) {
                        report(.schemaValue, scalar.location, length: scalar.value.count,
                               "rule id '\(scalar.value)' must be lower-case letters, digits and '-'")
                    }
                    rule.id = scalar.value
                    rule.idLocation = scalar.location
                case "description":
                    rule.description = scalar(value, "'description'")?.value ?? ""
                case "when":
                    if let scalar = expressionScalar(value, "'when'") { rule.when = ExprSource(text: scalar.value, scalar: scalar, file: file) }
                case "then":
                    if let scalar = enumValue(value, "'then'", Verdict.allCases.map(\.rawValue)) {
                        rule.then = Verdict(rawValue: scalar.value)
                        rule.thenLocation = scalar.location
                    }
                case "message": rule.message = scalar(value, "'message'")?.value
                case "observe":
                    if let scalar = expressionScalar(value, "'observe'") { rule.observe = ExprSource(text: scalar.value, scalar: scalar, file: file) }
                case "link":
                    if let scalar = enumValue(value, "'link'", LinkMode.allCases.map(\.rawValue)) {
                        rule.link = LinkMode(rawValue: scalar.value)
                        rule.linkLocation = scalar.location
                    }
                case "save_as": rule.saveAs = enumValue(value, "'save_as'", ["Task", "EmailMessage"])?.value
                default: rule.createRecords = bool(value, "'create_records'")
                }
            }
            for required in ["id", "description"] where !known.contains(where: { $0.key.value == required }) {
                report(.schemaMissingKey, item.location, "a rule needs '\(required)'")
                valid = false
            }
            let acts = ["then", "observe", "link", "save_as", "create_records"]
            if !known.contains(where: { acts.contains($0.key.value) }) {
                report(.schemaMissingKey, item.location, "rule '\(rule.id)' does nothing: give it 'then' or one of observe, link, save_as, create_records")
            }
            if valid { definition.rules.append(rule) }
        }
    }

    /// Expressions are strings; a bare `true` or `42` is read as its text.
    mutating func expressionScalar(_ node: YNode, _ what: String) -> YScalar? {
        guard case .scalar(let scalar) = node, !scalar.value.isEmpty else {
            report(.schemaType, node.location, "\(what) must be an expression (a string), found \(node.kindName)")
            return nil
        }
        return scalar
    }

    // MARK: User files

    public mutating func loadUserFile(_ file: SourceFile) {
        guard let root = root(of: file, whenEmpty: "a user file needs 'mailbox'"), let entries = mapping(root, "a user file") else { return }
        let known = known(entries, Self.userKeys, in: "a user file")
        var mailbox: YScalar?
        var add: [YScalar] = []
        var remove: [YScalar] = []
        var settings: [(key: YScalar, value: YNode)] = []
        for (key, value) in known {
            switch key.value {
            case "mailbox": mailbox = scalar(value, "'mailbox'")
            case "blocklist":
                guard let fields = mapping(value, "'blocklist'") else { continue }
                for (verb, list) in self.known(fields, ["add", "remove"], in: "blocklist") {
                    let values = scalars(list, "'\(verb.value)'") ?? []
                    if verb.value == "add" { add = values } else { remove = values }
                }
            default:
                guard let fields = mapping(value, "'settings'") else { continue }
                let names = SettingSpec.all.filter(\.personalAllowed).map(\.name)
                for (name, setting) in self.known(fields, names, in: "personal settings") {
                    guard let spec = SettingSpec.named(name.value) else { continue }
                    validateSetting(spec, key: name, value: setting, file: file, personal: true)
                    settings.append((name, setting))
                }
            }
        }
        guard let mailbox else {
            if !known.contains(where: { $0.key.value == "mailbox" }) {
                report(.schemaMissingKey, root.location, "a user file needs 'mailbox', the address it applies to")
            }
            return
        }
        definition.users.append(UserDefinition(mailbox: mailbox, add: add, remove: remove, settings: settings, file: file))
    }
}
