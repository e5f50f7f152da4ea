import Foundation
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

    @Test func aCachedPackIsTheCompiledPack() throws {
        let cache = temporaryCache()
        let first = try Linter.load(Paths.rules, cache: cache).get()
        let files = try sources(Paths.rules)
        let cached = try #require(cache.load(files))
        #expect(describe(cached) == describe(first))
        // It evaluates the same: every rule's condition on default facts and on the every-feature pack.
        let facts = FactObject(defaultsOf: FactsSchema.root)
        #expect(try cached.evaluate(facts).0.deciding?.id == first.evaluate(facts).0.deciding?.id)
        let everyFeature = Paths.examples.appendingPathComponent("good/every-feature").path
        let fresh = try Linter.load(everyFeature, cache: cache).get()
        let reloaded = try #require(cache.load(try sources(everyFeature)))
        #expect(describe(reloaded) == describe(fresh))
    }

    @Test func aChangedFileOrACorruptEntryIsCompiledAgain() throws {
        let cache = temporaryCache()
        let files = try sources(Paths.rules)
        _ = try Linter.load(Paths.rules, cache: cache)
        #expect(cache.load(files) != nil)
        var changed = files
        changed[0] = SourceFile(path: files[0].path, text: files[0].text + "\n# a comment\n")
        #expect(cache.load(changed) == nil)
        let entry = cache.directory + "/" + PackCache.key(files) + ".pack"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: entry))
        bytes[bytes.count / 2] ^= 0xFF
        bytes.removeLast(7)
        try bytes.write(to: URL(fileURLWithPath: entry))
        #expect(cache.load(files) == nil)
        #expect(throws: Never.self) { try Linter.load(Paths.rules, cache: cache).get() }
        #expect(cache.load(files) != nil) // stored again
    }

    @Test func aPackWithErrorsIsNeverCached() throws {
        let cache = temporaryCache()
        let bad = Paths.examples.appendingPathComponent("bad/expr-syntax").path
        if case .success = try Linter.load(bad, cache: cache) { Issue.record("a bad pack loaded") }
        #expect(cache.load(try sources(bad)) == nil)
    }
}
