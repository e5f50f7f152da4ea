import Foundation
@testable import MailRules
import Testing

@Suite struct YAMLCacheTests {
    func temporaryCache() throws -> YAMLCache {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mailsave-cache-\(UUID().uuidString)/nested")
        return YAMLCache(directory: directory.path)
    }

    func render(_ node: YNode?) -> String {
        guard let node else { return "nil" }
        switch node {
        case .scalar(let s): return "s(\(s.value)@\(s.location.line):\(s.location.column)/\(s.style))"
        case .mapping(let entries, let l): return "m@\(l.line):\(l.column){" + entries.map { "\($0.key.value)@\($0.key.location.line)=\(render($0.value))" }.joined(separator: ",") + "}"
        case .sequence(let items, let l): return "q@\(l.line):\(l.column)[" + items.map { render($0) }.joined(separator: ",") + "]"
        }
    }

    @Test func aCachedTreeIsTheParsedTree() throws {
        let cache = try temporaryCache()
        defer { try? FileManager.default.removeItem(atPath: (cache.directory as NSString).deletingLastPathComponent) }
        let file = try PackLoader.read(Paths.rules + "/policy.yaml")
        let (parsed, diagnostics) = YAMLLoader.load(file)
        #expect(diagnostics.isEmpty)
        #expect(cache.load(file) == nil)
        let (first, _) = YAMLLoader.load(file, cache: cache)
        let cached = try #require(cache.load(file))
        #expect(render(cached) == render(parsed))
        #expect(render(first) == render(parsed))
        // A different text is a different entry.
        #expect(cache.load(SourceFile(path: file.path, text: file.text + "\n# changed")) == nil)
    }

    @Test func aCorruptEntryIsParsedAgain() throws {
        let cache = try temporaryCache()
        defer { try? FileManager.default.removeItem(atPath: (cache.directory as NSString).deletingLastPathComponent) }
        let file = SourceFile(path: "x.yaml", text: "rules: []\n")
        _ = YAMLLoader.load(file, cache: cache)
        let entry = cache.directory + "/" + YAMLCache.key(file) + ".yc"
        #expect(FileManager.default.fileExists(atPath: entry))
        try Data("MSYC2\u{1}\u{ff}".utf8).write(to: URL(fileURLWithPath: entry))
        #expect(cache.load(file) == nil)
        let (tree, diagnostics) = YAMLLoader.load(file, cache: cache)
        #expect(diagnostics.isEmpty)
        #expect(render(tree).hasPrefix("m@1:1{rules@1"))
    }

    @Test func filesWithProblemsAreNeverCached() throws {
        let cache = try temporaryCache()
        let file = SourceFile(path: "bad.yaml", text: "a: &x 1\nb: *x\n")
        let (_, diagnostics) = YAMLLoader.load(file, cache: cache)
        #expect(diagnostics.map(\.check) == ["yaml-alias"])
        #expect(cache.load(file) == nil)
    }
}
