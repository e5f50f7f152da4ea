import MailMessage
import MailRules
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The compiled-pack cache, so `process`, invoked once per message, neither parses nor
/// checks the same YAML again. Only an org layer whose files have no errors is stored, and
/// only user layers whose files have none.
///
/// An entry is `MSPK`, the format version, the length (8 bytes, little-endian) and the bytes
/// of the key, the encoded pack (`CompiledPackFormat`), and a checksum over everything
/// before it. The key is every byte the pack depends on: the format version, the mailsave
/// version, the compiler's identity and the path and exact text of every rule file, each
/// length-prefixed, so an upgraded binary or a changed file never reads an entry made for
/// something else. The entry is named by a 128-bit hash of the key, and used only when the
/// key inside it equals the current one byte for byte: a name two keys share (by chance or
/// made on purpose) only makes one entry replace the other, it never makes a pack serve
/// other files. So no cryptographic hash runs per message (SHA-256 and its library's set-up,
/// whose CPUID calls trap to the hypervisor in a VM, were 1.4% of a per-message `process`).
///
/// On load the entry must be a regular file owned by this user and not writable by others,
/// its key and checksum must match, and the decoder checks every index; anything else is
/// compiled again, never trusted, and never traps. Entries are written 0600 through an
/// exclusively created temporary file and a rename; a cache that cannot be written is not an
/// error.
///
/// The checksum guards against corruption (the folder is the user's own: whoever can write
/// there can already run code as the user), not against forgery.
///
/// User files are cached apart (`<name>.user`, magic `MSPU`), so that `process` reads only
/// its mailbox's file: their layers are compiled against one org entry, and that entry holds
/// 16 random bytes drawn when it was written (its nonce), which begin the key of every user
/// entry made against it. A user entry is thus used only with the very org entry it was
/// compiled against (its key compared byte for byte like any other), without the org files'
/// text in each user entry: a changed org file makes a new org entry, a new nonce, and every
/// user layer is compiled again.
struct PackCache: CompiledPackCache {
    let directory: String
    /// The mailsave version, part of every key.
    let toolVersion: String
    /// The org entry this cache last read or wrote: its pack and nonce.
    let lastOrg = OrgEntryMemory()
    static let magic: [UInt8] = Array("MSPK".utf8)
    static let userMagic: [UInt8] = Array("MSPU".utf8)
    static let nonceSize = 16
    static let checksumSize = 8
    /// The largest entry read back.
    static let maxEntryBytes = 256 << 20

    init(directory: String, toolVersion: String = Mailsave.version) {
        self.directory = directory
        self.toolVersion = toolVersion
    }

    /// `$MAILSAVE_CACHE_DIR`, else `$XDG_CACHE_HOME/mailsave`, else `~/.cache/mailsave`.
    static func standard() -> PackCache? {
        func env(_ name: String) -> String? { getenv(name).map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } }
        if let explicit = env("MAILSAVE_CACHE_DIR") { return PackCache(directory: explicit) }
        if let xdg = env("XDG_CACHE_HOME") { return PackCache(directory: xdg + "/mailsave") }
        if let home = env("HOME") { return PackCache(directory: home + "/.cache/mailsave") }
        return nil
    }

    /// The key of the pack made of `files` (their paths and exact texts) by this version:
    /// every piece length-prefixed, so no two different inputs give the same bytes. `first`:
    /// a piece before the files (a user entry's org nonce).
    func keyBytes(_ files: [SourceFile], first: [UInt8]? = nil) -> [UInt8] {
        var key: [UInt8] = []
        key.reserveCapacity(files.reduce(256) { $0 + 16 + $1.path.utf8.count + $1.text.utf8.count })
        func part<Bytes: Collection>(_ bytes: Bytes) where Bytes.Element == UInt8 {
            withUnsafeBytes(of: UInt64(bytes.count).littleEndian) { key.append(contentsOf: $0) }
            // Copied from where the bytes are (a rule file's text is contiguous UTF-8).
            if bytes.withContiguousStorageIfAvailable({ key.append(contentsOf: $0) }) == nil { key.append(contentsOf: bytes) }
        }
        part((first == nil ? Self.magic : Self.userMagic) + [CompiledPackFormat.version])
        if let first { part(first) }
        part(Array(toolVersion.utf8))
        part(Self.compilerIdentity)
        part(Array(String(files.count).utf8))
        for file in files {
            part(Array(file.path.utf8))
            part(file.text.utf8)
        }
        return key
    }

    /// The entry name of a key: 32 hexadecimal digits of two 64-bit hashes of it.
    static func name(ofKey key: [UInt8]) -> String {
        key.withUnsafeBytes { bytes in
            Hexadecimal.lowercase(withUnsafeBytes(of: (hash(bytes, seed: 0x243F_6A88_85A3_08D3).bigEndian,
                                                       hash(bytes, seed: 0x1319_8A2E_0370_7344).bigEndian)) { Array($0) })
        }
    }

    func key(_ files: [SourceFile]) -> String { Self.name(ofKey: keyBytes(files)) }

    /// A 64-bit hash of `bytes`, 32 at a time in four independent lanes (a single chain of
    /// multiplies waited on each one: with a 100,000-entry blocklist, hashing the key twice and
    /// the entry once was a ninth of a per-message `process`). Each step is a bijection of its
    /// lane's state for a given word, and the lanes are combined by XOR after a bijective
    /// finaliser, so a change confined to one word (any flipped byte) always changes the
    /// result; the length is mixed in first, so a truncated entry does not match either.
    /// Not a cryptographic hash: it names entries and checks them for corruption only.
    static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
        let start = seed ^ (UInt64(bytes.count) &* 0x9E37_79B9_7F4A_7C15)
        var lanes = (start, start ^ 0x2545_F491_4F6C_DD1D, start ^ 0x6A09_E667_F3BC_C908, start ^ 0xBB67_AE85_84CA_A73B)
        func mix(_ state: inout UInt64, _ word: UInt64) {
            state = (state ^ word) &* 0xFF51_AFD7_ED55_8CCD
            state ^= state >> 32
        }
        func word(_ offset: Int) -> UInt64 { UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) }
        var offset = 0
        while offset + 32 <= bytes.count {
            mix(&lanes.0, word(offset))
            mix(&lanes.1, word(offset + 8))
            mix(&lanes.2, word(offset + 16))
            mix(&lanes.3, word(offset + 24))
            offset += 32
        }
        while offset + 8 <= bytes.count {
            mix(&lanes.0, word(offset))
            offset += 8
        }
        if offset < bytes.count {
            var tail: UInt64 = 0
            for index in offset..<bytes.count { tail |= UInt64(bytes[index]) << (8 * UInt64(index - offset)) }
            mix(&lanes.1, tail)
        }
        // MurmurHash3's finaliser (a bijection: every bit of a lane reaches every bit of its result).
        func finish(_ state: UInt64) -> UInt64 {
            var state = state
            state ^= state >> 33
            state &*= 0xFF51_AFD7_ED55_8CCD
            state ^= state >> 33
            state &*= 0xC4CE_B9FE_1A85_EC53
            return state ^ (state >> 33)
        }
        // Rotated apart, so that two lanes' equal changes do not cancel in the XOR.
        let (a, b, c, d) = (finish(lanes.0), finish(lanes.1), finish(lanes.2), finish(lanes.3))
        return a ^ (b << 17 | b >> 47) ^ (c << 31 | c >> 33) ^ (d << 47 | d >> 17)
    }

    static func checksum(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        let value = bytes.withUnsafeBytes { hash($0, seed: 0x4528_21E6_38D0_1377) }
        return withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }

    /// Which compiler made an entry: the running executable's identity (device, inode, size,
    /// change and modification times of `/proc/self/exe`), which every rebuild or upgrade
    /// changes, for one `stat`; where that cannot be read, the compiler's own fingerprint
    /// (`CompiledPackFormat.compilerFingerprint`, whose building is about a tenth of a
    /// per-message `process`).
    static let compilerIdentity: [UInt8] = {
        var info = stat()
        // Started through the dynamic loader (`ld-linux-x86-64.so.2 ./mailsave`), the process's
        // executable is the loader, the same for every build: the fingerprint then.
        var target = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &target, target.count - 1)
        let name = length > 0 ? String(decoding: target[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self).split(separator: "/").last ?? "" : ""
        guard length > 0, !name.hasPrefix("ld-"), !name.hasPrefix("ld.so"), stat("/proc/self/exe", &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            return CompiledPackFormat.compilerFingerprint
        }
        let fields: [UInt64] = [UInt64(truncatingIfNeeded: info.st_dev), UInt64(truncatingIfNeeded: info.st_ino), UInt64(truncatingIfNeeded: info.st_size),
                                UInt64(truncatingIfNeeded: info.modified.tv_sec), UInt64(truncatingIfNeeded: info.modified.tv_nsec),
                                UInt64(truncatingIfNeeded: info.statusChanged.tv_sec), UInt64(truncatingIfNeeded: info.statusChanged.tv_nsec)]
        return Array("executable".utf8) + fields.flatMap { field in withUnsafeBytes(of: field.littleEndian) { Array($0) } }
    }()

    /// An entry's file name: its key's name and `.pack` (the org layer) or `.user`.
    static func fileName(ofKey key: String, user: Bool = false) -> String { key + (user ? ".user" : ".pack") }
    func path(forKey key: String) -> String { directory + "/" + Self.fileName(ofKey: key) }
    func path(forUserKey key: String) -> String { directory + "/" + Self.fileName(ofKey: key, user: true) }

    /// The key of user layers compiled from `files` against the org entry of `nonce`.
    func userKeyBytes(_ files: [SourceFile], nonce: [UInt8]) -> [UInt8] { keyBytes(files, first: nonce) }

    /// The cached pack of `files`, or nil when there is none or the entry is not exactly one
    /// this version wrote for these files.
    func load(_ files: [SourceFile]) -> RulePack? {
        let key = keyBytes(files)
        guard let bytes = readEntry(path(forKey: Self.name(ofKey: key))), let (pack, nonce) = Self.decode(bytes, key: key, files: files) else {
            return nil
        }
        lastOrg.remember(pack, nonce: nonce)
        return pack
    }

    /// The user layers of `files` compiled against `pack`, when `pack` is the org entry this
    /// cache last read or wrote and an entry made against it for exactly these files exists.
    func loadUsers(_ files: [SourceFile], org: [SourceFile], pack: RulePack) -> [String: UserLayer]? {
        guard let nonce = lastOrg.nonce(of: pack) else { return nil }
        let key = userKeyBytes(files, nonce: nonce)
        guard let bytes = readEntry(path(forUserKey: Self.name(ofKey: key))),
              let range = Self.payload(of: bytes, magic: Self.userMagic, key: key) else { return nil }
        return CompiledPackFormat.decodeUsers(bytes, range: range, for: pack)
    }

    func storeUsers(_ users: [String: UserLayer], for files: [SourceFile], org: [SourceFile], pack: RulePack) {
        guard let nonce = lastOrg.nonce(of: pack) else { return }
        let key = userKeyBytes(files, nonce: nonce)
        write(Self.entry(magic: Self.userMagic, key: key, payload: CompiledPackFormat.encodeUsers(users, of: pack)),
              name: Self.fileName(ofKey: Self.name(ofKey: key), user: true))
    }

    /// An entry's bytes: a regular file (never a link, FIFO or device), owned by this user,
    /// not writable by group or others, at most `maxEntryBytes`.
    func readEntry(_ path: String) -> [UInt8]? {
        let descriptor = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_uid == geteuid(),
              (info.st_mode & 0o022) == 0 else { return nil }
        // In use: kept by `prune` before entries written more recently but not read since.
        if Int(time(nil)) - Int(info.modified.tv_sec) > Self.usedRefresh { futimens(descriptor, nil) }
        return try? PackLoader.readAll(descriptor, path: path, limit: Self.maxEntryBytes, sizeHint: Int(info.st_size))
    }

    /// The pack in an entry and the entry's nonce, or nil unless magic, format, key and
    /// checksum all match and the payload decodes to a valid pack using every byte.
    static func decode(_ bytes: [UInt8], key: [UInt8], files: [SourceFile] = []) -> (RulePack, nonce: [UInt8])? {
        guard let range = payload(of: bytes, magic: magic, key: key), range.count >= nonceSize,
              let pack = CompiledPackFormat.decode(bytes, range: (range.lowerBound + nonceSize)..<range.upperBound, files: files) else {
            return nil
        }
        return (pack, Array(bytes[range.prefix(nonceSize)]))
    }

    /// Where an entry's payload is, or nil unless its magic, format, key and checksum all match.
    static func payload(of bytes: [UInt8], magic: [UInt8], key: [UInt8]) -> Range<Int>? {
        let keyStart = magic.count + 1 + 8
        guard bytes.count >= keyStart + checksumSize, bytes.starts(with: magic), bytes[magic.count] == CompiledPackFormat.version else { return nil }
        let keyLength = bytes[(magic.count + 1)..<keyStart].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let body = bytes.count - checksumSize
        // The key (every byte of every rule file) compared with memcmp: the generic
        // `elementsEqual` over an array slice took a byte at a time, 4% of a per-message `process`.
        guard keyLength == UInt64(key.count), key.count <= body - keyStart,
              Self.bytes(bytes, at: keyStart, equal: key),
              checksum(bytes[0..<body]).elementsEqual(bytes[body...]) else { return nil }
        return (keyStart + key.count)..<body
    }

    /// Whether `bytes` holds `expected` from `offset` on (compared by memcmp).
    static func bytes(_ bytes: [UInt8], at offset: Int, equal expected: [UInt8]) -> Bool {
        guard offset >= 0, expected.count <= bytes.count - offset else { return false }
        return bytes.withUnsafeBytes { entry in
            expected.withUnsafeBytes { wanted in
                guard let start = entry.baseAddress, let other = wanted.baseAddress else { return expected.isEmpty }
                return memcmp(start + offset, other, expected.count) == 0
            }
        }
    }

    /// The bytes of an entry for `pack` under `key`, with `nonce` (random when not given).
    static func encode(_ pack: RulePack, key: [UInt8], nonce: [UInt8]? = nil) -> [UInt8] {
        let nonce = nonce ?? newNonce()
        return entry(magic: magic, key: key, payload: nonce + CompiledPackFormat.encode(pack))
    }

    /// 16 bytes from the system's random source.
    static func newNonce() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return [generator.next() as UInt64, generator.next() as UInt64].flatMap { word in withUnsafeBytes(of: word) { Array($0) } }
    }

    /// Magic, format, the key's length and bytes, the payload, and a checksum of them all.
    static func entry(magic: [UInt8], key: [UInt8], payload: [UInt8]) -> [UInt8] {
        var bytes = magic + [CompiledPackFormat.version]
        withUnsafeBytes(of: UInt64(key.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes += key
        bytes += payload
        bytes += checksum(bytes[...])
        return bytes
    }

    func store(_ pack: RulePack, for files: [SourceFile]) {
        let key = keyBytes(files)
        let nonce = Self.newNonce()
        // Remembered even when the entry cannot be written: user entries made against a
        // nonce no org entry holds are never read back, and age out.
        lastOrg.remember(pack, nonce: nonce)
        write(Self.encode(pack, key: key, nonce: nonce), name: Self.fileName(ofKey: Self.name(ofKey: key)))
    }

    /// Writes an entry through an exclusively created temporary file and a rename, then prunes.
    func write(_ bytes: [UInt8], name: String) {
        mkdirs(directory)
        let final = directory + "/" + name
        let temporary = final + ".\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { return }
        var failed = bytes.withUnsafeBytes { writeFully(descriptor, $0) } != nil
        if close(descriptor) != 0 { failed = true }
        if failed || rename(temporary, final) != 0 {
            unlink(temporary)
            return
        }
        prune(keep: name)
    }

    /// The entries kept in the folder, the one just written among them. Every change of a
    /// rule file and every new build of mailsave makes a new entry, and an entry is never read
    /// again once its files changed: without a bound the folder would grow by a pack a change.
    static let entriesKept = 16
    /// A temporary file older than this is one a writer left when it was killed.
    static let temporaryLifetime = 3600
    /// An entry read is marked used (its modification time set to now) when it is older than
    /// this: entries in use are the newest, and at most one `futimens` a day each.
    static let usedRefresh = 86_400

    /// The user entries kept: one per mailbox with a user file (`Linter.load` caches the user
    /// layers of one mailbox's files only), for as many mailboxes as a large org has; each is
    /// as small as its user file.
    static let userEntriesKept = 4_096

    /// After an entry is written (a cache miss, never on the per-message path of a hit):
    /// keeps `keep` and the `entriesKept - 1` other pack entries (`userEntriesKept - 1` other
    /// user entries, when `keep` is one) most recently written or used, removes the rest of
    /// that kind, and temporary files older than `temporaryLifetime` seconds. Only names this
    /// cache writes (32 or 64 hexadecimal digits and `.pack`, 32 and `.user`, or either
    /// followed by `.PID.N.tmp`) and only regular files owned by this user are removed, each
    /// checked and removed through one descriptor of the folder; a link is never followed,
    /// nor removed.
    func prune(keep: String, now: Int = Int(time(nil))) {
        let folder = open(directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard folder >= 0 else { return }
        defer { close(folder) }
        guard let names = try? PackLoader.entries(of: directory) else { return }
        var packs: [(name: String, seconds: Int, nanoseconds: Int)] = []
        var users: [(name: String, seconds: Int, nanoseconds: Int)] = []
        for name in names where name != keep {
            let isPack = Self.isEntryName(name), isUser = Self.isUserEntryName(name)
            guard isPack || isUser || Self.isTemporaryName(name) else { continue }
            var info = stat()
            guard fstatat(folder, name, &info, AT_SYMLINK_NOFOLLOW) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_uid == geteuid() else { continue }
            let seconds = Int(info.modified.tv_sec)
            if isPack {
                packs.append((name, seconds, Int(info.modified.tv_nsec)))
            } else if isUser {
                users.append((name, seconds, Int(info.modified.tv_nsec)))
            } else if now - seconds > Self.temporaryLifetime {
                unlinkat(folder, name, 0)
            }
        }
        // Only entries of the kind just written: the other kind's newest could otherwise be
        // pushed out by entries dated in the future (a clock set back).
        let (entries, kept) = Self.isUserEntryName(keep) ? (users, Self.userEntriesKept) : (packs, Self.entriesKept)
        guard entries.count > kept - 1 else { return }
        let newestFirst = entries.sorted { ($0.seconds, $0.nanoseconds, $0.name) > ($1.seconds, $1.nanoseconds, $1.name) }
        for entry in newestFirst.dropFirst(kept - 1) { unlinkat(folder, entry.name, 0) }
    }

    /// `<32 hexadecimal digits>.pack`: the name of an entry (64 digits: an entry of earlier
    /// versions, named by SHA-256, which is never read again, so it ages out like any entry
    /// not used).
    static func isEntryName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        return (bytes.count == 37 || bytes.count == 69) && name.hasSuffix(".pack") && bytes.dropLast(5).allSatisfy(isLowerHexadecimal)
    }

    /// `<32 hexadecimal digits>.user`: the name of a user entry.
    static func isUserEntryName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        return bytes.count == 37 && name.hasSuffix(".user") && bytes.dropLast(5).allSatisfy(isLowerHexadecimal)
    }

    /// `<entry name>.<digits>.<digits>.tmp`: a temporary file of `write`.
    static func isTemporaryName(_ name: String) -> Bool {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 5 && (isEntryName(parts[0] + ".pack") && parts[1] == "pack" || isUserEntryName(parts[0] + ".user") && parts[1] == "user")
            && [parts[2], parts[3]].allSatisfy { !$0.isEmpty && $0.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } } && parts[4] == "tmp"
    }

    private static func isLowerHexadecimal(_ byte: UInt8) -> Bool { (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x66) }

    /// Creates the cache folder and its parents (0700: compiled packs are the user's).
    private func mkdirs(_ path: String) {
        var current = path.hasPrefix("/") ? "/" : ""
        for part in path.split(separator: "/") {
            current += (current.isEmpty || current.hasSuffix("/") ? "" : "/") + part
            mkdir(current, 0o700)
        }
    }
}

/// The org entry a `PackCache` last read or wrote, and its nonce: user entries are looked up
/// only for that very pack (a process loads one pack; `batch` and `diff` load theirs once).
final class OrgEntryMemory: Sendable {
    private let entry = Locked<(pack: RulePack?, nonce: [UInt8])>((nil, []))

    func remember(_ pack: RulePack, nonce: [UInt8]) { entry.withLock { $0 = (pack, nonce) } }

    /// The nonce of `pack`'s entry, when `pack` is the one remembered.
    func nonce(of pack: RulePack) -> [UInt8]? { entry.withLock { $0.pack === pack ? $0.nonce : nil } }
}
