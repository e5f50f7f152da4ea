import ArgumentParser
import MailEngine
import MailRules

struct TestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Run rule tests: fixture message + context + CRM records -> expected decision.",
        discussion: """
        Each PATH is a rule pack folder, whose tests are PATH/tests/*.yaml, or one test file \
        (its pack is the folder above its tests/ folder). A failure prints the test's \
        file:line and each expected part against what the decision had. The last line is \
        'N passed, N failed'. No test found is a failure.

        Examples:
          mailsave test                         the pack in ./rules
          mailsave test --require-coverage rules/
          mailsave test rules/tests/modes.yaml
        """
    )

    @Flag(help: "Fail when a rule of the pack is applied by no test.")
    var requireCoverage = false

    @Flag(help: "Also list the tests that pass.")
    var verbose = false

    @Argument(help: "Rule pack folders or rule test files (default: rules).")
    var paths: [String] = ["rules"]

    func run() throws {
        var passed = 0
        var failed = 0
        var uncovered: [String] = []
        for path in paths {
            let isFile = path.hasSuffix(".yaml") || path.hasSuffix(".yml")
            let packPath = isFile ? parent(parent(path)) : path
            let testFiles: [String]
            if isFile {
                testFiles = [path]
            } else {
                let folder = (path.hasSuffix("/") ? String(path.dropLast()) : path) + "/tests"
                testFiles = ((try? PackLoader.entries(of: folder)) ?? []).filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.map { folder + "/" + $0 }
            }
            var options = try DecisionOptions.parse(["--mailbox", "x@x.example", "--rules", packPath])
            options.rules = packPath
            let pack = try options.loadPack()
            var runner = RuleTestRunner(pack: pack)
            var tests: [RuleTestCase] = []
            for file in testFiles {
                do {
                    tests += runner.load(try PackLoader.read(file))
                } catch {
                    throw CommandFailure(status: .couldNotRun, message: error.description)
                }
            }
            if !runner.diagnostics.isEmpty {
                for diagnostic in runner.diagnostics {
                    Terminal.out("\(diagnostic.location.description): \(diagnostic.severity.rawValue): \(diagnostic.message)")
                }
                failed += runner.diagnostics.filter { $0.severity == .error }.count
            }
            var applied = Set<String>()
            for test in tests {
                let result = runner.run(test, loadCRM: loadCRMRecords)
                applied.formUnion(result.applied)
                if result.passed {
                    passed += 1
                    if verbose { Terminal.out("ok    \(test.location.path):\(test.location.line): \(test.name)") }
                } else {
                    failed += 1
                    Terminal.out("FAIL  \(test.location.path):\(test.location.line): \(test.name)")
                    for failure in result.failures { Terminal.out("        \(failure)") }
                }
            }
            let missing = pack.rules.map(\.id).filter { !applied.contains($0) }
            if !missing.isEmpty && !tests.isEmpty {
                Terminal.out("rules no test applies in \(packPath): \(missing.joined(separator: ", "))")
                uncovered += missing
            }
        }
        if passed + failed == 0 {
            Terminal.out("no rule tests found in \(paths.joined(separator: " ")) (tests live in <pack>/tests/*.yaml)")
            Terminal.out("0 passed, 0 failed")
            throw ExitCode(ExitStatus.problems.rawValue)
        }
        Terminal.out("\(passed) passed, \(failed) failed")
        if failed > 0 || (requireCoverage && !uncovered.isEmpty) { throw ExitCode(ExitStatus.problems.rawValue) }
    }

    func parent(_ path: String) -> String {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).dropLast()
        let joined = parts.joined(separator: "/")
        return joined.isEmpty ? "." : joined
    }
}
