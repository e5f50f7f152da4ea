import Foundation
import MailRules
import Testing

/// The README's reference tables are generated; they must say what the code says.
@Suite struct ReadmeTests {
    func section(_ name: String) throws -> String {
        let readme = try String(contentsOf: Binary.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let begin = try #require(readme.firstRange(of: "<!-- \(name):begin -->\n"))
        let end = try #require(readme.firstRange(of: "\n<!-- \(name):end -->"))
        return String(readme[begin.upperBound..<end.lowerBound])
    }

    @Test func factsSettingsAndChecksTablesAreCurrent() throws {
        #expect(try section("facts") == Documentation.factsTable(), "run: mailsave reference facts")
        #expect(try section("settings") == Documentation.settingsTable(), "run: mailsave reference settings")
        #expect(try section("checks") == Documentation.checksTable(), "run: mailsave reference checks")
    }

    @Test func theReadmeLintExampleIsTheRealOutput() throws {
        let readme = try String(contentsOf: Binary.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let result = try Binary.run(["lint", "Tests/LintExamples/bad/expr-unknown-name"])
        let firstThree = result.stdout.split(separator: "\n").prefix(3).joined(separator: "\n")
        #expect(readme.contains(firstThree))
    }
}

@Suite struct ReadmeQuickStartTests {
    @Test func theQuickStartTableIsWhatTheCommandPrints() throws {
        let readme = try String(contentsOf: Binary.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let folder = Binary.packageRoot.appendingPathComponent("examples/messages").path
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".eml") }.sorted()
        let result = try Binary.run(["process", "--mailbox", "ann@contoso.com", "--crm", "examples/crm", "--format", "table"]
                                    + files.map { "examples/messages/" + $0 })
        #expect(result.status == 0)
        #expect(readme.contains(result.stdout), "README's quick-start table is stale")
    }
}

@Suite struct ReadmeExplainTests {
    @Test func theExplainExcerptIsWhatTheCommandPrints() throws {
        let readme = try String(contentsOf: Binary.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let result = try Binary.run(["explain", "--mailbox", "ann@contoso.com", "--crm", "examples/crm", "examples/messages/02-internal-only.eml"])
        let excerpt = result.stdout.split(separator: "\n", omittingEmptySubsequences: false).prefix(17).joined(separator: "\n")
        #expect(readme.contains(excerpt), "README's explain excerpt is stale")
    }
}
