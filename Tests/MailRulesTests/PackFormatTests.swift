import Foundation
#if canImport(Glibc)
import Glibc
#endif
@testable import MailRules
import SeededRandom
import Testing

/// A cache in memory, for `Linter.load`'s side of the protocol: what it stores, and what
/// it is asked for.
final class MemoryPackCache: CompiledPackCache, @unchecked Sendable {
    var entries: [[String]: [UInt8]] = [:]
    /// User layers by their org files' key and their own.
    var userEntries: [[[String]]: [UInt8]] = [:]
    /// The org pack last loaded or stored: user layers are only for it.
    var lastPack: RulePack?
    var orgHits = 0, userHits = 0
    func key(_ files: [SourceFile]) -> [String] { files.flatMap { [$0.path, $0.text] } }
    func load(_ files: [SourceFile]) -> RulePack? {
        lastPack = entries[key(files)].flatMap { CompiledPackFormat.decode($0, files: files) }
        if lastPack != nil { orgHits += 1 }
        return lastPack
    }
    func store(_ pack: RulePack, for files: [SourceFile]) {
        entries[key(files)] = CompiledPackFormat.encode(pack)
        lastPack = pack
    }
    func loadUsers(_ files: [SourceFile], org: [SourceFile], pack: RulePack) -> [String: UserLayer]? {
        guard pack === lastPack, let bytes = userEntries[[key(org), key(files)]] else { return nil }
        userHits += 1
        return CompiledPackFormat.decodeUsers(bytes, range: 0..<bytes.count, for: pack)
    }
    func storeUsers(_ users: [String: UserLayer], for files: [SourceFile], org: [SourceFile], pack: RulePack) {
        guard pack === lastPack else { return }
        userEntries[[key(org), key(files)]] = CompiledPackFormat.encodeUsers(users, of: pack)
    }
}

/// The compiled-pack format: a pack survives encoding exactly, and the decoder trusts nothing.
/// (The cache's files, keys and checksums are the command line's: `MailsaveCLITests`.)
@Suite struct PackFormatTests {
    func temporaryCache() -> MemoryPackCache { MemoryPackCache() }

    func sources(_ path: String) throws -> [SourceFile] {
        let (org, users) = try PackLoader.files(at: path)
        return try (org + users).map { try PackLoader.read($0) }
    }

    /// The org files of a pack (the key of its org entry).
    func orgSources(_ path: String) throws -> [SourceFile] {
        try PackLoader.files(at: path).org.map { try PackLoader.read($0) }
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
        // Loaded for every mailbox, the user layers are compiled each time, never kept (a key of
        // every user file would make an entry at each change of any of them).
        #expect(cache.orgHits == 0 && cache.entries.count == 1 && cache.userEntries.isEmpty)
        #expect(describe(try Linter.load(Paths.rules, cache: cache).get()) == describe(first))
        #expect(cache.orgHits == 1 && cache.userEntries.isEmpty)
        // Loaded for Ann: her layer is kept, then read back.
        _ = try Linter.load(Paths.rules, cache: cache, mailbox: "ann@contoso.com").get()
        #expect(cache.orgHits == 2 && cache.userEntries.count == 1 && cache.userHits == 0)
        let cached = try Linter.load(Paths.rules, cache: cache, mailbox: "ann@contoso.com").get()
        #expect(cache.orgHits == 3 && cache.userHits == 1)
        #expect(!first.users.isEmpty && describe(cached) == describe(first))
        #expect(try #require(cache.load(try orgSources(Paths.rules))).users.isEmpty)
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
        let reloaded = try Linter.load(everyFeature, cache: cache).get()
        #expect(cache.orgHits == 5 && describe(reloaded) == describe(fresh))
    }

    /// The encoded shipped pack and the pack it was made from.
    func entry() throws -> (bytes: [UInt8], pack: RulePack) {
        let pack = try Linter.load(Paths.rules).get()
        return (CompiledPackFormat.encode(pack), pack)
    }

    /// Beneath the checksum: the decoder itself never traps on a damaged payload, and whatever
    /// it accepts evaluates (to an outcome or an evaluation error) without trapping.
    @Test func theDecoderValidatesEveryIndex() throws {
        let (payload, pack) = try entry()
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

    /// A string of an entry is its exact UTF-8: ASCII and other text read back as written, and
    /// bytes that are not UTF-8 (a stray byte, a cut sequence, a surrogate) refuse the entry.
    @Test func entryStringsAreExactUTF8() {
        func read(_ bytes: [UInt8]) -> (String?, Int) {
            // The length is a zig-zag varint: n is written as 2n (one byte below 64).
            var reader = BinaryReader(bytes: [UInt8(bytes.count * 2)] + bytes + [0x2A], position: 0)
            return (reader.string(), reader.position)
        }
        #expect(read(Array("inbox".utf8)) == ("inbox", 6))
        #expect(read(Array("Boîte/Privé €".utf8)).0 == "Boîte/Privé €")
        #expect(read([]) == ("", 1))
        for bad: [UInt8] in [[0xFF], [0x62, 0xC3], [0xED, 0xA0, 0x80], [0xF0, 0x90, 0x80], [0x41, 0x80, 0x41], [0xC0, 0xAF]] {
            #expect(read(bad).0 == nil, "\(bad)")
        }
    }

    /// A list is read back as bytes into sorted buffers: each entry must be UTF-8 and in the
    /// order the encoder writes (by bytes, each part of the list on its own), else the entry
    /// is refused; what is read matches as the list compiled from the same entries does.
    @Test func listEntriesAreReadInOrderOrRefused() {
        func list(_ entries: [String], kind: ListKind = .addressesAndDomains) -> CompiledList? {
            var writer = BinaryWriter()
            writer.string("block")
            writer.string(kind.rawValue)
            writer.strings(entries)
            var decoder = PackDecoder(reader: BinaryReader(bytes: writer.bytes, position: 0))
            let list = decoder.list()
            return decoder.reader.position == writer.bytes.count ? list : nil
        }
        let entries = ["*.partner.example", "ceo@fabrikam.com", "spam.example", "zz.example"]
        let compiled = CompiledList(name: "block", kind: .addressesAndDomains, entries: entries)
        #expect(compiled.allEntries() == entries)
        guard let read = list(compiled.allEntries()) else {
            Issue.record("a list in the encoder's order was refused")
            return
        }
        #expect(read.allEntries() == entries)
        for value in ["ceo@fabrikam.com", "x@spam.example", "a.partner.example", "partner.example", "other.example", "Spam.Example"] {
            #expect(read.match(value) == compiled.match(value), "\(value)")
        }
        #expect(read.match("x@mail.spam.example") == "spam.example")
        #expect(read.match("partner.example") == nil)
        // Out of order, repeated, or not UTF-8: refused.
        #expect(list(["spam.example", "ceo@fabrikam.com", "a.example"]) == nil)
        #expect(list(["a.example", "a.example"]) == nil)
        var bad = BinaryWriter()
        bad.string("block")
        bad.string(ListKind.domains.rawValue)
        bad.int(1)
        bad.int(2)
        bad.bytes += [0xC3, 0x28]
        var decoder = PackDecoder(reader: BinaryReader(bytes: bad.bytes, position: 0))
        #expect(decoder.list() == nil)
        // Each part on its own: an address after a domain that sorts after it is in order.
        #expect(list(["c.example", "b@a.example"]) != nil)
    }

    /// The sorted buffer finds what a set of the same strings finds.
    @Test func sortedEntriesFindWhatASetFinds() {
        var random = SplitMix(state: 11)
        let pieces = ["a", "b", "é", "z", ".", "@", "-", "日", "0"]
        func word() -> String { (0..<(1 + random.below(5))).map { _ in pieces[random.below(pieces.count)] }.joined() }
        let words = (0..<2_000).map { _ in word() }
        let entries = SortedEntries(words)
        let set = Set(words)
        #expect(entries.count == set.count)
        #expect(entries.entries == set.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
        for probe in words + (0..<2_000).map({ _ in word() }) + [""] {
            #expect(entries.contains(probe) == set.contains(probe), "\(probe)")
        }
    }

    @Test func aTruncatedOrExtendedPayloadIsRefused() throws {
        let (bytes, _) = try entry()
        #expect(CompiledPackFormat.decode(bytes) != nil)
        let lengths = Array(0..<64) + Array(stride(from: 64, to: bytes.count, by: 5)) + Array((bytes.count - 64)..<bytes.count)
        for length in lengths {
            #expect(CompiledPackFormat.decode(Array(bytes[0..<length])) == nil, "truncated to \(length)")
        }
        #expect(CompiledPackFormat.decode(bytes + [0]) == nil)
        // Read in place from a larger buffer (a cache entry): the range is the whole pack; one
        // that ends a byte short, or one that takes a byte more, is refused as above.
        let framed = [0x4D, 0x53] + bytes + [0x00, 0x2A]
        #expect(CompiledPackFormat.decode(framed, range: 2..<(2 + bytes.count)) != nil)
        #expect(CompiledPackFormat.decode(framed, range: 2..<(1 + bytes.count)) == nil)
        #expect(CompiledPackFormat.decode(framed, range: 2..<(3 + bytes.count)) == nil)
        for length in stride(from: 0, to: bytes.count, by: 7) {
            #expect(CompiledPackFormat.decode(framed, range: 2..<(2 + length)) == nil, "cut to \(length)")
        }
        #expect(CompiledPackFormat.decode(framed, range: 2..<(framed.count + 1)) == nil)
    }

    /// User layers encoded on their own (a cache's user entry) read back exactly against their
    /// org layer; beneath the checksum, no flipped byte or cut makes the decoder trap, and what
    /// it accepts still answers for its mailbox.
    @Test func userLayersDecodeAloneAndNeverTrap() throws {
        let everyFeature = Paths.examples.appendingPathComponent("good/every-feature").path
        let pack = try Linter.load(everyFeature).get()
        let org = pack.orgLayer
        #expect(!pack.users.isEmpty && org.users.isEmpty)
        let bytes = CompiledPackFormat.encodeUsers(pack.users, of: org)
        let layers = try #require(CompiledPackFormat.decodeUsers(bytes, range: 0..<bytes.count, for: org))
        #expect(describe(org.withUsers(layers)) == describe(pack))
        #expect(CompiledPackFormat.encodeUsers(layers, of: org) == bytes)
        let masks: [UInt8] = [0x01, 0x80, 0xFF, 0x5A, 0x02, 0x40]
        for position in bytes.indices {
            var damaged = bytes
            damaged[position] ^= masks[position % masks.count]
            if let read = CompiledPackFormat.decodeUsers(damaged, range: 0..<damaged.count, for: org) {
                for mailbox in read.keys { _ = org.withUsers(read).settings(for: mailbox) }
            }
        }
        for length in 0..<bytes.count {
            #expect(CompiledPackFormat.decodeUsers(bytes, range: 0..<length, for: org) == nil, "cut to \(length)")
        }
        #expect(CompiledPackFormat.decodeUsers(bytes, range: 0..<(bytes.count + 1), for: org) == nil)
    }

    @Test func theFingerprintNamesTheCompiler() {
        let text = String(decoding: CompiledPackFormat.compilerFingerprint, as: UTF8.self)
        #expect(text.contains("message.subject") && text.contains("auto_save_mode") && text.contains("expr-unknown-name"))
    }

    @Test func aPackWithErrorsIsNeverCached() throws {
        let cache = temporaryCache()
        let bad = Paths.examples.appendingPathComponent("bad/expr-syntax").path
        if case .success = try Linter.load(bad, cache: cache) { Issue.record("a bad pack loaded") }
        #expect(cache.load(try orgSources(bad)) == nil && cache.entries.isEmpty)
    }
}
