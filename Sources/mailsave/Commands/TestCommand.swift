import ArgumentParser
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
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

    @Argument(help: "Rule pack folders or rule test files.")
    var paths: [String] = ["rules"]

    func run() throws {
        var passed = 0
        var failed = 0
        var uncovered: [String] = []
        for given in paths {
            // "." or ".." (run from inside the pack): its real path, so that the folder above
            // it, the project the tests read from, is not "." again.
            let last = given.split(separator: "/").last.map(String.init) ?? given
            let path = (last == "." || last == "..") ? (PackLoader.realPath(given) ?? given) : given
            let isFile = path.hasSuffix(".yaml") || path.hasSuffix(".yml")
            let packPath = isFile ? parent(parent(path)) : path
            let testFiles: [String]
            if isFile {
                testFiles = [path]
            } else {
                let folder = (path.hasSuffix("/") ? String(path.dropLast()) : path) + "/tests"
                var entries: [String] = []
                var info = stat()
                if lstat(folder, &info) == 0 {
                    // A tests/ that is there but cannot be listed (a file, no permission) is an
                    // error, not a pack without tests.
                    do {
                        entries = try PackLoader.entries(of: folder)
                    } catch {
                        throw CommandFailure(status: .couldNotRun, message: "\(folder): cannot list the rule tests: \(error.reason)")
                    }
                }
                testFiles = entries.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.map { folder + "/" + $0 }
            }
            var options = try DecisionOptions.parse(["--mailbox", "x@x.example", "--rules", packPath])
            options.rules = packPath
            // Each test checks its own mailbox's user file.
            let pack = try options.loadPack(checkingMailbox: false)
            // Tests read files inside the project: the folder that contains the pack.
            let root = parent(packPath)
            var runner = RuleTestRunner(pack: pack, root: root)
            var tests: [RuleTestCase] = []
            for file in testFiles {
                do {
                    tests += runner.load(try PackLoader.read(file, inside: isFile ? nil : packPath))
                } catch {
                    throw CommandFailure(status: .couldNotRun, message: error.description)
                }
            }
            if !runner.diagnostics.isEmpty {
                for diagnostic in runner.diagnostics {
                    Terminal.out(visible("\(diagnostic.location.description): \(diagnostic.severity.rawValue): \(diagnostic.message)"))
                }
                // One failure a broken test, whatever its problems; one a problem of a file's own.
                for broken in runner.brokenTests {
                    Terminal.out(visible("FAIL  \(broken.location.path):\(broken.location.line): \(broken.name.isEmpty ? "(a test without a name)" : broken.name)"))
                    Terminal.out("        not run: the test has problems (above)")
                }
                failed += runner.brokenTests.count + runner.fileProblemCount
            }
            var applied = Set<String>()
            for test in tests {
                let result = runner.run(test) { folder in try Self.loadConfinedCRM(folder, root: root) }
                applied.formUnion(result.applied)
                if result.passed {
                    passed += 1
                    if verbose { Terminal.out(visible("ok    \(test.location.path):\(test.location.line): \(test.name)")) }
                } else {
                    failed += 1
                    // Names, paths and what a message held are shown escaped: a control character
                    // or a line feed from a test file or a header cannot drive the terminal or
                    // fake a line of the summary.
                    Terminal.out(visible("FAIL  \(test.location.path):\(test.location.line): \(test.name)"))
                    for failure in result.failures { Terminal.out(visible("        \(failure)")) }
                }
            }
            let missing = pack.rules.map(\.id).filter { !applied.contains($0) }
            if !missing.isEmpty && !tests.isEmpty {
                Terminal.out(visible("rules no test applies in \(packPath): \(missing.joined(separator: ", "))"))
                uncovered += missing
            } else if tests.isEmpty && paths.count > 1 && requireCoverage {
                // One pack of several without tests: the others' tests do not cover it.
                Terminal.out(visible("no rule tests found in \(packPath) (tests live in <pack>/tests/*.yaml)"))
                uncovered += pack.rules.map(\.id)
            }
        }
        if passed + failed == 0 {
            Terminal.out(visible("no rule tests found in \(paths.joined(separator: " ")) (tests live in <pack>/tests/*.yaml)"))
            Terminal.out("0 passed, 0 failed")
            throw ExitCode(ExitStatus.problems.rawValue)
        }
        Terminal.out("\(passed) passed, \(failed) failed")
        if failed > 0 || (requireCoverage && !uncovered.isEmpty) { throw ExitCode(ExitStatus.problems.rawValue) }
    }

    /// An error of a rule test's CRM folder, printed as its message.
    struct CRMFolderProblem: Error, CustomStringConvertible {
        var description: String
    }

    /// The CRM export of a rule test: each CSV must be a regular file inside the project.
    static func loadConfinedCRM(_ folder: String, root: String) throws -> [CRMRecord] {
        for object in DecisionOptions.crmObjects {
            let path = folder + "/" + object + ".csv"
            var info = stat()
            guard lstat(path, &info) == 0 else { continue }
            do {
                try PackLoader.checkRegularFile(path, inside: root)
            } catch {
                throw CRMFolderProblem(description: error.description)
            }
        }
        do {
            return try loadCRMRecords(folder)
        } catch let failure as CommandFailure {
            throw CRMFolderProblem(description: failure.message)
        }
    }

    func parent(_ path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return "." }
        return slash == trimmed.startIndex ? "/" : String(trimmed[..<slash])
    }
}
