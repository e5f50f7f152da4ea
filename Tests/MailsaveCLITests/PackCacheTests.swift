import Foundation
#if canImport(Glibc)
import Glibc
#endif
@testable import mailsave
import MailMessage
import MailRules
import Testing

/// The command line's compiled-pack cache: keys, checksums, files. (The encoding itself:
/// `MailRulesTests/PackFormatTests`.)
@Suite struct PackCacheTests {
    static let rules = Binary.packageRoot.appendingPathComponent("rules").path

    func temporaryCache() -> PackCache {
        PackCache(directory: FileManager.default.temporaryDirectory.appendingPathComponent("mailsave-pack-cache-\(UUID().uuidString)/nested").path)
    }

    /// The org files of a pack: the key of its org entry (user files have entries of their own).
    func sources(_ path: String) throws -> [SourceFile] {
        try PackLoader.files(at: path).org.map { try PackLoader.read($0) }
    }

    /// The org entry of the shipped pack, its key, and the org layer it was made from.
    func entry() throws -> (cache: PackCache, files: [SourceFile], path: String, bytes: [UInt8], key: [UInt8], pack: RulePack) {
        let cache = temporaryCache()
        let pack = try Linter.load(Self.rules, cache: cache).get().orgLayer
        let files = try sources(Self.rules)
        let key = cache.keyBytes(files)
        let path = cache.path(forKey: cache.key(files))
        let bytes = try PackLoader.bytes(of: path)
        let nonceStart = PackCache.magic.count + 1 + 8 + key.count
        #expect(bytes == PackCache.encode(pack, key: key, nonce: Array(bytes[nonceStart..<(nonceStart + PackCache.nonceSize)])))
        return (cache, files, path, bytes, key, pack)
    }

    @Test func aStoredPackLoadsBackAsTheSamePack() throws {
        let (cache, files, _, _, _, pack) = try entry()
        let loaded = try #require(cache.load(files))
        #expect(CompiledPackFormat.encode(loaded) == CompiledPackFormat.encode(pack))
        #expect(loaded.rules.map(\.id) == pack.rules.map(\.id))
    }

    /// The key is every byte the pack depends on, each part length-prefixed; the entry is
    /// named by 32 hexadecimal digits of its hashes, and holds the key itself.
    @Test func theKeyIsEveryByteOfItsPartsAndTheEntryHoldsIt() throws {
        let cache = temporaryCache()
        let files = [SourceFile(path: "a.yaml", text: "rules: []\n")]
        let key = cache.keyBytes(files)
        #expect(cache.key(files).count == 32 && cache.key(files).utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) })
        #expect(PackCache.isEntryName(cache.key(files) + ".pack"))
        // The text itself is in the key, after its length.
        let text = Array("rules: []\n".utf8)
        let framed = withUnsafeBytes(of: UInt64(text.count).littleEndian) { Array($0) } + text
        #expect(key.count >= framed.count && Array(key.suffix(framed.count)) == framed)
        // Moving a byte from a path to a text changes the key (no ambiguous concatenation).
        let moved = [SourceFile(path: "a.yam", text: "lrules: []\n")]
        #expect(cache.keyBytes(moved) != key)
        #expect(cache.key(moved) != cache.key(files))
        // The hash sees every byte, the length and the seed.
        let bytes: [UInt8] = Array(0..<200).map { UInt8($0) }
        let base = bytes.withUnsafeBytes { PackCache.hash($0, seed: 1) }
        for index in bytes.indices {
            var changed = bytes
            changed[index] ^= 0x01
            #expect(changed.withUnsafeBytes { PackCache.hash($0, seed: 1) } != base, "byte \(index)")
        }
        #expect((bytes + [0]).withUnsafeBytes { PackCache.hash($0, seed: 1) } != base)
        #expect(bytes.withUnsafeBytes { PackCache.hash($0, seed: 2) } != base)
        // Every lane, the 8-byte steps after them and a tail: a byte changed anywhere in 203
        // bytes, or a whole 8-byte word changed, changes the hash.
        let odd: [UInt8] = (0..<203).map { UInt8(truncatingIfNeeded: $0 &* 37) }
        let oddBase = odd.withUnsafeBytes { PackCache.hash($0, seed: 1) }
        for index in odd.indices {
            var changed = odd
            changed[index] &+= 1
            #expect(changed.withUnsafeBytes { PackCache.hash($0, seed: 1) } != oddBase, "byte \(index) of 203")
        }
        for word in stride(from: 0, to: 200, by: 8) {
            var changed = odd
            for index in word..<(word + 8) { changed[index] ^= 0xA5 }
            #expect(changed.withUnsafeBytes { PackCache.hash($0, seed: 1) } != oddBase, "word at \(word)")
        }
    }

    /// Two keys that share an entry name (a hash collision, by chance or made): the entry of
    /// one is never used for the other, whose pack is compiled and replaces it.
    @Test func anEntryUnderTheSameNameForOtherFilesIsNeverUsed() throws {
        let (cache, files, _, bytes, _, _) = try entry()
        var other = files
        other[0] = SourceFile(path: files[0].path, text: files[0].text.replacingOccurrences(of: "#", with: "##"))
        let otherPath = cache.path(forKey: cache.key(other))
        try Data(bytes).write(to: URL(fileURLWithPath: otherPath))
        #expect(cache.load(other) == nil)
        #expect(PackCache.decode(bytes, key: cache.keyBytes(other)) == nil)
    }

    /// A user file's layer is kept apart under the org entry's nonce: read back with that org
    /// entry only, for exactly that file, and refused when damaged.
    @Test func aUserLayerIsReadBackOnlyWithTheOrgEntryItWasCompiledAgainst() throws {
        let cache = temporaryCache()
        let first = try Linter.load(Self.rules, cache: cache, mailbox: "ann@contoso.com").get()
        let org = try sources(Self.rules)
        let users = try PackLoader.files(at: Self.rules).users.map { try PackLoader.read($0) }
        let names = try FileManager.default.contentsOfDirectory(atPath: cache.directory)
        #expect(names.filter(PackCache.isEntryName).count == 1)
        let userEntry = try #require(names.first(where: PackCache.isUserEntryName))
        // Read back: the org entry, then Ann's layer made against it.
        let orgPack = try #require(cache.load(org))
        let layers = try #require(cache.loadUsers(users, org: org, pack: orgPack))
        #expect(!layers.isEmpty && CompiledPackFormat.encodeUsers(layers, of: orgPack) == CompiledPackFormat.encodeUsers(first.users, of: first))
        // Not for a pack this cache did not give (the same files, compiled apart)...
        #expect(cache.loadUsers(users, org: org, pack: try Linter.load(Self.rules).get().orgLayer) == nil)
        // ...nor for another text of the user file.
        #expect(cache.loadUsers([SourceFile(path: users[0].path, text: users[0].text + "\n")], org: org, pack: orgPack) == nil)
        // Every flipped byte (the key holds the nonce and the file; the checksum the rest) is refused.
        let path = cache.directory + "/" + userEntry
        let bytes = try PackLoader.bytes(of: path)
        for position in bytes.indices {
            var damaged = bytes
            damaged[position] ^= 0x20
            try Data(damaged).write(to: URL(fileURLWithPath: path))
            #expect(cache.loadUsers(users, org: org, pack: orgPack) == nil, "byte \(position)")
        }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(cache.loadUsers(users, org: org, pack: orgPack) != nil)
        // The org entry written again has a new nonce: the old user entry is never used with it.
        cache.store(orgPack, for: org)
        let rewritten = try #require(cache.load(org))
        #expect(cache.loadUsers(users, org: org, pack: rewritten) == nil)
        // Loaded again, Ann's layer is compiled against the new org entry and kept.
        let again = try Linter.load(Self.rules, cache: cache, mailbox: "ann@contoso.com").get()
        #expect(CompiledPackFormat.encodeUsers(again.users, of: again) == CompiledPackFormat.encodeUsers(first.users, of: first))
        #expect(try FileManager.default.contentsOfDirectory(atPath: cache.directory).filter(PackCache.isUserEntryName).count == 2)
    }

    @Test func everyFlippedByteIsRefused() throws {
        let (_, _, _, bytes, key, _) = try entry()
        #expect(bytes.count > 4_000)
        #expect(PackCache.decode(bytes, key: key) != nil)
        var accepted = 0
        let masks: [UInt8] = [0x01, 0x80, 0xFF, 0x5A, 0x02, 0x40]
        // Every byte of the header and of the checksum, every 97th of the key (which is compared
        // byte for byte) and every 7th of the pack (a flipped byte changes one word of the
        // checksum's input, which always changes its result), each flipped with one of several
        // masks in turn (the debug build's checksum is slow: every position would take minutes).
        let keyStart = PackCache.magic.count + 1 + 8, packStart = keyStart + key.count, checksumStart = bytes.count - PackCache.checksumSize
        let positions = bytes.indices.filter {
            $0 < keyStart || $0 >= checksumStart || ($0 < packStart && ($0 - keyStart) % 97 == 0) || ($0 >= packStart && ($0 - packStart) % 7 == 0)
        } + [packStart - 1, checksumStart - 1]
        for position in positions {
            var damaged = bytes
            damaged[position] ^= masks[position % masks.count]
            if PackCache.decode(damaged, key: key) != nil { accepted += 1 }
        }
        #expect(accepted == 0) // the key comparison and the checksum catch every one
    }

    @Test func aTruncatedOrExtendedEntryIsRefusedAndCompiledAgain() throws {
        let (cache, files, path, bytes, key, _) = try entry()
        let header = PackCache.magic.count + 1 + 8 + key.count
        let lengths = Array(0...header) + Array(stride(from: header, to: bytes.count, by: 5)) + Array((bytes.count - 64)..<bytes.count)
        for length in lengths {
            #expect(PackCache.decode(Array(bytes[0..<length]), key: key) == nil, "truncated to \(length)")
        }
        #expect(PackCache.decode(bytes + [0], key: key) == nil)
        // Through the file: a truncated entry is compiled again and stored whole (with a new nonce).
        try Data(bytes.dropLast(7)).write(to: URL(fileURLWithPath: path))
        #expect(cache.load(files) == nil)
        #expect(throws: Never.self) { try Linter.load(Self.rules, cache: cache).get() }
        let rewritten = try PackLoader.bytes(of: path)
        let nonce = header..<(header + PackCache.nonceSize)
        #expect(rewritten.count == bytes.count && rewritten[..<header] == bytes[..<header]
                && rewritten[nonce] != bytes[nonce] && rewritten[nonce.upperBound..<(bytes.count - PackCache.checksumSize)] == bytes[nonce.upperBound..<(bytes.count - PackCache.checksumSize)])
        #expect(cache.load(files) != nil)
    }

    @Test func anEntryOfAnotherVersionOrOtherFilesIsNeverUsed() throws {
        let (cache, files, _, bytes, _, _) = try entry()
        // Another mailsave version has another key...
        let older = PackCache(directory: cache.directory, toolVersion: "0.0.1-old")
        #expect(older.key(files) != cache.key(files))
        #expect(older.load(files) == nil)
        // ...and an entry renamed to it is refused: the key inside must match.
        try Data(bytes).write(to: URL(fileURLWithPath: older.path(forKey: older.key(files))))
        #expect(older.load(files) == nil)
        // Files with another text have another key.
        var changed = files
        changed[0] = SourceFile(path: files[0].path, text: files[0].text + "\n# a comment\n")
        #expect(cache.load(changed) == nil)
        try Data(bytes).write(to: URL(fileURLWithPath: cache.path(forKey: cache.key(changed))))
        #expect(cache.load(changed) == nil)
        #expect(cache.load(files) != nil)
    }

    @Test func entriesAreWrittenPrivatelyAndReadOnlyWhenOwnAndRegular() throws {
        let (cache, files, path, bytes, _, _) = try entry()
        var info = stat()
        #expect(stat(path, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
        #expect(stat(cache.directory, &info) == 0)
        #expect(info.st_mode & 0o077 == 0)
        // No temporary file is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: cache.directory).allSatisfy { $0.hasSuffix(".pack") || $0.hasSuffix(".user") })
        // Writable by others: refused.
        chmod(path, 0o666)
        #expect(cache.load(files) == nil)
        chmod(path, 0o600)
        #expect(cache.load(files) != nil)
        // A symbolic link in place of the entry: refused, even to a valid entry.
        let elsewhere = cache.directory + "/elsewhere"
        try Data(bytes).write(to: URL(fileURLWithPath: elsewhere))
        unlink(path)
        symlink(elsewhere, path)
        #expect(cache.load(files) == nil)
        // A FIFO in place of the entry: refused without blocking.
        unlink(path)
        mkfifo(path, 0o600)
        #expect(cache.load(files) == nil)
    }

    /// The folder stays bounded: writing an entry keeps the `entriesKept` most recently
    /// written ones (the new one among them) and removes temporary files a killed writer left
    /// an hour ago; names it does not write, links and fresh temporary files are left alone.
    @Test func writingAnEntryKeepsTheNewestAndRemovesLeftovers() throws {
        let cache = temporaryCache()
        try FileManager.default.createDirectory(atPath: cache.directory, withIntermediateDirectories: true)
        let now = Int(time(nil))
        func name(_ n: Int) -> String { String(repeating: "0", count: 60) + String(format: "%04x", n) + ".pack" }
        func write(_ file: String, age: Int) throws {
            let path = cache.directory + "/" + file
            try Data("old".utf8).write(to: URL(fileURLWithPath: path))
            var times = [timespec(tv_sec: now - age, tv_nsec: 0), timespec(tv_sec: now - age, tv_nsec: 0)]
            #expect(utimensat(AT_FDCWD, path, &times, 0) == 0)
        }
        // 20 old entries, a day to 20 days old: entry n is n days old.
        for n in 1...20 { try write(name(n), age: n * 86_400) }
        try write(name(99) + ".123.456.tmp", age: 7_200)
        try write(name(98) + ".123.457.tmp", age: 60)
        try write("notes.txt", age: 30 * 86_400)
        try write("ABCDEF" + String(repeating: "0", count: 58) + ".pack", age: 30 * 86_400)
        symlink(cache.directory + "/notes.txt", cache.directory + "/" + name(500))
        // Entry 20 is read (a hit would read it): it counts as used now.
        #expect(cache.readEntry(cache.directory + "/" + name(20)) != nil)
        let pack = try Linter.load(Self.rules, cache: cache, mailbox: "ann@contoso.com").get()
        let files = try sources(Self.rules)
        let left = Set(try FileManager.default.contentsOfDirectory(atPath: cache.directory))
        // The new entry, the one just used, and the 14 youngest others.
        let kept = Set([cache.key(files) + ".pack", name(20)] + (1...14).map(name))
        #expect(left.filter(PackCache.isEntryName) == kept.union([name(500)]))
        #expect(left.filter(PackCache.isUserEntryName).count == 1, "Ann's layer is not counted among the packs")
        #expect(!left.contains(name(15)) && !left.contains(name(19)))
        #expect(!left.contains(name(99) + ".123.456.tmp"), "a temporary file of two hours ago is a leftover")
        #expect(left.contains(name(98) + ".123.457.tmp"), "a writer may still be writing this one")
        #expect(left.contains("notes.txt") && left.contains("ABCDEF" + String(repeating: "0", count: 58) + ".pack"))
        #expect(cache.load(files).map { CompiledPackFormat.encode($0) } == CompiledPackFormat.encode(pack.orgLayer))
        // Entries dated in the future (a clock set back) never push out the one just written.
        let later = temporaryCache()
        try FileManager.default.createDirectory(atPath: later.directory, withIntermediateDirectories: true)
        for n in 1...20 {
            let path = later.directory + "/" + name(n)
            try Data("old".utf8).write(to: URL(fileURLWithPath: path))
            var times = [timespec(tv_sec: now + 86_400 * n, tv_nsec: 0), timespec(tv_sec: now + 86_400 * n, tv_nsec: 0)]
            #expect(utimensat(AT_FDCWD, path, &times, 0) == 0)
        }
        _ = try Linter.load(Self.rules, cache: later).get()
        #expect(later.load(files) != nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: later.directory).filter(PackCache.isEntryName).count == PackCache.entriesKept)
        #expect(PackCache.isTemporaryName(name(1) + ".1.2.tmp") && !PackCache.isTemporaryName(name(1) + "..2.tmp")
                && !PackCache.isTemporaryName(name(1) + ".1.x.tmp") && !PackCache.isEntryName(name(1) + "x"))
        let user = String(repeating: "a", count: 32) + ".user"
        #expect(PackCache.isUserEntryName(user) && PackCache.isTemporaryName(user + ".1.2.tmp") && !PackCache.isEntryName(user)
                && !PackCache.isUserEntryName("A" + user.dropFirst()) && !PackCache.isTemporaryName(user + ".1.2.tmp.x"))
    }

    @Test func aPackWithErrorsIsNeverCached() throws {
        let cache = temporaryCache()
        let bad = Binary.packageRoot.appendingPathComponent("Tests/LintExamples/bad/expr-syntax").path
        if case .success = try Linter.load(bad, cache: cache) { Issue.record("a bad pack loaded") }
        #expect(cache.load(try sources(bad)) == nil)
    }

    /// A rule over its evaluation budget is named at the same place from a cached pack as
    /// from YAML: a plain scalar over two lines, the costly part on the second (the cached
    /// pack's expressions had files without text and named line 7, column 1176, for line 8).
    @Test func anErrorFromACachedPackIsNamedWhereTheYAMLIs() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mailsave-budget-\(UUID().uuidString)")
        try FileManager.default.copyItem(atPath: Self.rules, toPath: folder.path)
        defer { try? FileManager.default.removeItem(at: folder) }
        let list = "[" + (1...119).map(String.init).joined(separator: ",") + "]"
        let heavy = """
          - id: heavy-check
            description: heavy
            when: message.subject != "" and
              \(list).all(a, \(list).all(b, \(list).all(c, a + b + c > 0)))
            observe: '"heavy"'

        """
        let policy = folder.appendingPathComponent("policy.yaml")
        let text = try String(contentsOf: policy, encoding: .utf8)
        try text.replacingOccurrences(of: "rules:\n", with: "rules:\n" + heavy).write(to: policy, atomically: true, encoding: .utf8)
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("mailsave-budget-cache-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let arguments = ["process", "--rules", folder.path, "--mailbox", "ann@contoso.com", "--crm", "examples/crm", "examples/messages/01-customer-question.eml"]
        let cold = try Binary.launch(Binary.path, arguments, environment: ["MAILSAVE_CACHE_DIR": cache])
        let warm = try Binary.launch(Binary.path, arguments, environment: ["MAILSAVE_CACHE_DIR": cache])
        #expect(cold.status == 5 && warm.status == 5)
        #expect(cold.stderr.contains("policy.yaml:8:"), "\(cold.stderr)")
        #expect(warm.stderr == cold.stderr)
        #expect(try FileManager.default.contentsOfDirectory(atPath: cache).contains { $0.hasSuffix(".pack") }, "the second run read a cached pack")
    }

}
