import Foundation
#if canImport(Glibc)
import Glibc
#endif
@testable import MailRules
import Testing

@Suite struct PackCacheTests {
    func temporaryCache() -> PackCache {
        PackCache(directory: FileManager.default.temporaryDirectory.appendingPathComponent("mailsave-pack-cache-\(UUID().uuidString)/nested").path)
    }

    func sources(_ path: String) throws -> [SourceFile] {
        let (org, users) = try PackLoader.files(at: path)
        return try (org + users).map { try PackLoader.read($0) }
    }

    /// Everything a decision depends on, printed.
    func describe(_ pack: RulePack) -> String {
        var lines: [String] = []
        for rule in pack.rules {
            let definition = rule.definition
            lines.append("\(rule.id) \(definition.then?.rawValue ?? "-") \(definition.link?.rawValue ?? "-") \(definition.saveAs ?? "-") "
                         + "\(definition.createRecords.map(String.init) ?? "-") \(definition.message ?? "-") \(rule.condition?.source.text ?? "-") "
                         + "\(rule.observe?.source.text ?? "-") \(rule.condition?.source.scalar.location.description ?? "-")")
        }
        for (name, list) in pack.lists.sorted(by: { $0.key < $1.key }) { lines.append("list \(name) \(list.kind) \(list.allEntries())") }
        for (name, value) in pack.orgSettings.sorted(by: { $0.key < $1.key }) {
            if case .namedList(let list) = value { lines.append("setting \(name) \(list.name) \(list.allEntries())") } else {
                lines.append("setting \(name) \(value)")
            }
        }
        for (object, fields) in pack.mapping.sorted(by: { $0.key < $1.key }) {
            lines.append("mapping \(object) " + fields.map { "\($0.field.name)=\($0.expression.source.text)" }.joined(separator: " "))
        }
        for (mailbox, user) in pack.users.sorted(by: { $0.key < $1.key }) {
            lines.append("user \(mailbox) \(user.blocklist.allEntries()) \(user.removed.sorted()) \(user.settings.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" })")
        }
        lines.append("slots \(pack.slots)")
        return lines.joined(separator: "\n")
    }

    /// Facts decided by late rules of the shipped pack (not by its first rules), so a damaged
    /// rule body, setting or list would change the outcome.
    func samples(_ pack: RulePack) throws -> [FactObject] {
        let settings = pack.settings(for: "ann@contoso.com")
        var general = FactsBuilder(settings: settings)
        general.participants = [FactsBuilder.person("lena@fabrikam.com", contact: "0035e00000LenaAAA"),
                                FactsBuilder.person("news@spam.example", blocked: true)]
        general.related = ["people": .int(1), "contacts": .list([.string("0035e00000LenaAAA")])]
        var none = FactsBuilder(settings: settings)
        none.participants = [FactsBuilder.person("who@unknown.example")]
        var outbound = FactsBuilder(settings: settings)
        outbound.participants = [FactsBuilder.person("ann@contoso.com", isInternal: true, owner: true),
                                 FactsBuilder.person("lena@fabrikam.com", contact: "0035e00000LenaAAA")]
        outbound.related = ["people": .int(1)]
        outbound.direction = "outbound"
        outbound.mailbox["folder"] = .string("Sent")
        return try [general.build(), none.build(), outbound.build()]
    }

    /// What a pack decides on the samples: deciding rule, its position, observations, link.
    func outcomes(_ pack: RulePack, _ facts: [FactObject]) throws -> [String] {
        try facts.map { facts in
            let outcome = try pack.evaluate(facts).0
            let position = outcome.deciding.flatMap { rule in pack.rules.firstIndex { $0 === rule } } ?? -1
            return "\(outcome.deciding?.id ?? "-")@\(position) \(outcome.applied.map(\.id)) \(outcome.observations) \(outcome.link)"
        }
    }

    @Test func aCachedPackIsTheCompiledPack() throws {
        let cache = temporaryCache()
        let first = try Linter.load(Paths.rules, cache: cache).get()
        let files = try sources(Paths.rules)
        let cached = try #require(cache.load(files))
        #expect(describe(cached) == describe(first))
        // It evaluates the same, on messages decided late in the pack.
        let facts = try samples(first)
        let expected = try outcomes(first, facts)
        #expect(try outcomes(cached, facts) == expected)
        for outcome in try facts.map({ try first.evaluate($0).0 }) {
            let position = try #require(outcome.deciding.flatMap { rule in first.rules.firstIndex { $0 === rule } })
            #expect(position >= 8, "\(outcome.deciding?.id ?? "-") decides too early to test the rules' bodies")
        }
        #expect(expected[0].contains("general-mode") && expected[0].contains("Some not important emails were filtered: news@spam.example"))
        let everyFeature = Paths.examples.appendingPathComponent("good/every-feature").path
        let fresh = try Linter.load(everyFeature, cache: cache).get()
        let reloaded = try #require(cache.load(try sources(everyFeature)))
        #expect(describe(reloaded) == describe(fresh))
    }

    /// The entry of the shipped pack, its key, and the pack it was made from.
    func entry() throws -> (cache: PackCache, files: [SourceFile], path: String, bytes: [UInt8], key: [UInt8], pack: RulePack) {
        let cache = temporaryCache()
        let pack = try Linter.load(Paths.rules, cache: cache).get()
        let files = try sources(Paths.rules)
        let key = cache.keyDigest(files)
        let path = cache.path(forKey: cache.key(files))
        let bytes = try PackLoader.bytes(of: path)
        #expect(bytes == PackCache.encode(pack, key: key))
        return (cache, files, path, bytes, key, pack)
    }

    @Test func everyFlippedByteIsRefused() throws {
        let (_, _, _, bytes, key, pack) = try entry()
        #expect(bytes.count > 4_000)
        let facts = try samples(pack)
        let expected = describe(pack)
        let expectedOutcomes = try outcomes(pack, facts)
        #expect(PackCache.decode(bytes, key: key) != nil)
        var accepted = 0
        let masks: [UInt8] = [0x01, 0x80, 0xFF, 0x5A, 0x02, 0x40]
        // Every byte position, each flipped with one of several masks in turn (every bit of
        // every byte would take minutes in a debug build).
        for position in bytes.indices {
            do {
                let mask = masks[position % masks.count]
                var damaged = bytes
                damaged[position] ^= mask
                guard let loaded = PackCache.decode(damaged, key: key) else { continue }
                // Only a pack identical to the compiled one may come back.
                accepted += 1
                #expect(describe(loaded) == expected, "byte \(position) ^ \(mask)")
                #expect(try outcomes(loaded, facts) == expectedOutcomes, "byte \(position) ^ \(mask)")
            }
        }
        #expect(accepted == 0) // the checksum catches every one
    }

    /// Beneath the checksum: the decoder itself never traps on a damaged payload, and whatever
    /// it accepts evaluates (to an outcome or an evaluation error) without trapping.
    @Test func theDecoderValidatesEveryIndex() throws {
        let (_, _, _, bytes, _, pack) = try entry()
        let header = PackCache.magic.count + 1 + PackCache.digestSize
        let payload = Array(bytes[header..<(bytes.count - PackCache.digestSize)])
        let facts = try samples(pack)
        var decoded = 0
        let masks: [UInt8] = [0x01, 0x80, 0xFF, 0x5A, 0x02, 0x40]
        for position in payload.indices {
            do {
                let mask = masks[position % masks.count]
                var damaged = payload
                damaged[position] ^= mask
                var decoder = PackDecoder(reader: BinaryReader(bytes: damaged, position: 0))
                guard let loaded = decoder.pack() else { continue }
                decoded += 1
                for sample in facts {
                    do { _ = try loaded.evaluate(sample) } catch {}
                }
            }
        }
        // Many flips land in text (an id, a message) and still decode: they are what the checksum is for.
        #expect(decoded > 0)
        // Out-of-range indexes built by hand are refused.
        let field = ExprNode(.field(99), [ExprNode(.root(0), span: 0..<1, type: FactsSchema.root.fields[0].type)], span: 0..<1, type: .string)
        #expect(!PackDecoder.isValid(field.op, field.children, slots: 1))
        #expect(!PackDecoder.isValid(.root(FactsSchema.root.fields.count), [], slots: 1))
        #expect(!PackDecoder.isValid(.variable(1), [], slots: 1))
        #expect(!PackDecoder.isValid(.and, [field], slots: 1))
        // The evaluator checks again at run time: a bad index reads as absent, never traps.
        var evaluator = Evaluator(facts: FactObject(defaultsOf: FactsSchema.root), slots: 1)
        #expect(try evaluator.evaluate(field) == .absent)
        #expect(try evaluator.evaluate(ExprNode(.variable(7), span: 0..<1, type: .string)) == .absent)
        #expect(try evaluator.evaluate(ExprNode(.and, [], span: 0..<1, type: .bool)) == .bool(false))
    }

    @Test func aTruncatedOrExtendedEntryIsRefused() throws {
        let (cache, files, path, bytes, key, _) = try entry()
        // Every length up to the end of the header, then a dense sample, then the last 64.
        let header = PackCache.magic.count + 1 + PackCache.digestSize
        let lengths = Array(0...header) + Array(stride(from: header, to: bytes.count, by: 5)) + Array((bytes.count - 64)..<bytes.count)
        for length in lengths {
            #expect(PackCache.decode(Array(bytes[0..<length]), key: key) == nil, "truncated to \(length)")
        }
        #expect(PackCache.decode(bytes + [0], key: key) == nil)
        // Through the file: a truncated entry is compiled again and stored whole.
        try Data(bytes.dropLast(7)).write(to: URL(fileURLWithPath: path))
        #expect(cache.load(files) == nil)
        #expect(throws: Never.self) { try Linter.load(Paths.rules, cache: cache).get() }
        #expect(try PackLoader.bytes(of: path) == bytes)
    }

    @Test func anEntryOfAnotherVersionOrOtherFilesIsNeverUsed() throws {
        let (cache, files, path, bytes, _, _) = try entry()
        // Another mailsave version has another key...
        let older = PackCache(directory: cache.directory, toolVersion: "0.0.1-old")
        #expect(older.key(files) != cache.key(files))
        #expect(older.load(files) == nil)
        // ...and an entry renamed to it is refused: the key inside must match.
        let olderPath = older.path(forKey: older.key(files))
        try Data(bytes).write(to: URL(fileURLWithPath: olderPath))
        #expect(older.load(files) == nil)
        // Files with another path or text have another key.
        var changed = files
        changed[0] = SourceFile(path: files[0].path, text: files[0].text + "\n# a comment\n")
        #expect(cache.load(changed) == nil)
        try Data(bytes).write(to: URL(fileURLWithPath: cache.path(forKey: cache.key(changed))))
        #expect(cache.load(changed) == nil)
        #expect(cache.load(files) != nil)
        _ = path
    }

    @Test func entriesAreWrittenPrivatelyAndReadOnlyWhenOwnAndRegular() throws {
        let (cache, files, path, bytes, _, _) = try entry()
        var info = stat()
        #expect(stat(path, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
        #expect(stat(cache.directory, &info) == 0)
        #expect(info.st_mode & 0o077 == 0)
        // No temporary file is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: cache.directory).allSatisfy { $0.hasSuffix(".pack") })
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

    @Test func aPackWithErrorsIsNeverCached() throws {
        let cache = temporaryCache()
        let bad = Paths.examples.appendingPathComponent("bad/expr-syntax").path
        if case .success = try Linter.load(bad, cache: cache) { Issue.record("a bad pack loaded") }
        #expect(cache.load(try sources(bad)) == nil)
    }

    @Test func sha256MatchesTheStandardVectors() {
        #expect(SHA256.hex(SHA256.hash([UInt8]())) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(SHA256.hash(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let long = Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        #expect(SHA256.hex(SHA256.hash(long)) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // Fed in pieces of every size, the same digest.
        let million = [UInt8](repeating: 0x61, count: 1_000_000)
        var pieces = SHA256()
        var offset = 0
        var size = 1
        while offset < million.count {
            let end = min(million.count, offset + size)
            pieces.add(million[offset..<end])
            offset = end
            size = size % 97 + 1
        }
        #expect(SHA256.hex(pieces.finish()) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}
