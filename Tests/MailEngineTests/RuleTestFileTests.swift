import Foundation
@testable import MailEngine
import MailRules
import Testing
import ShippedFixtures

/// Rule test files: `schemas/rule-test.schema.json` and the loader accept the same files.
@Suite struct RuleTestFileTests {
    static let fixtures = packageRoot.appendingPathComponent("Tests/MailEngineTests/Fixtures/rule-tests")

    static func files() throws -> [String] {
        let shipped = try FileManager.default.contentsOfDirectory(atPath: packageRoot.appendingPathComponent("rules/tests").path)
            .filter { $0.hasSuffix(".yaml") }.map { packageRoot.appendingPathComponent("rules/tests/" + $0).path }
        let examples = try FileManager.default.contentsOfDirectory(atPath: fixtures.path)
            .filter { $0.hasSuffix(".yaml") }.map { fixtures.appendingPathComponent($0).path }
        return (shipped + examples).sorted()
    }

    @Test func schemaAndLoaderAcceptTheSameTestFiles() throws {
        let files = try Self.files()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", packageRoot.appendingPathComponent("Tests/MailRulesTests/Reference/validate_schema.py").path] + files
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0)
        let verdicts = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let pack = try shippedPack()
        var accepted = 0
        for path in files {
            var runner = RuleTestRunner(pack: pack)
            _ = runner.load(try PackLoader.read(path))
            let loaderAccepts = runner.diagnostics.isEmpty
            #expect(loaderAccepts == (verdicts[path] as? String == nil),
                    "\(path): loader \(runner.diagnostics.map(\.message)), schema \(verdicts[path] as? String ?? "accepts")")
            if loaderAccepts { accepted += 1 }
        }
        #expect(accepted == 3) // the two shipped files and good-inline.yaml
    }

    @Test func theLoaderSaysWhatIsWrong() throws {
        var runner = RuleTestRunner(pack: try shippedPack())
        _ = runner.load(try PackLoader.read(Self.fixtures.appendingPathComponent("bad-expectation.yaml").path))
        #expect(runner.diagnostics.map(\.message) == ["unknown expectation 'verdcit' (did you mean 'verdict'?)",
                                                       "test 'misspelt expectation' expects nothing; give 'expect'"])
        // Not run (it would pass, expecting nothing): one broken test, for its two problems.
        #expect(runner.brokenTests.map(\.name) == ["misspelt expectation"])
        #expect(runner.fileProblemCount == 0)
    }
}
