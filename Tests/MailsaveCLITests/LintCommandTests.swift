import Foundation
import MailRules
import Testing

/// `mailsave lint` the actionlint way: every check has a bad pack with its exact expected
/// output beside it (Tests/LintExamples/bad/<check>/expected.txt), and good packs lint clean.
@Suite struct LintCommandTests {
    static let examples = Binary.packageRoot.appendingPathComponent("Tests/LintExamples")

    static func folders(_ kind: String) -> [String] {
        let directory = examples.appendingPathComponent(kind)
        return ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
    }

    @Test func everyCheckHasAnExampleAndEveryExampleACheck() {
        #expect(Set(Self.folders("bad")) == Set(LintCheck.all.map(\.id)))
    }

    @Test(arguments: folders("bad"))
    func badExampleGivesExactlyItsExpectedOutput(check: String) throws {
        let folder = "Tests/LintExamples/bad/" + check
        let strict = FileManager.default.fileExists(atPath: Binary.packageRoot.appendingPathComponent(folder + "/STRICT").path)
        let result = try Binary.run(["lint"] + (strict ? ["--strict"] : []) + [folder])
        let expected = try String(contentsOf: Binary.packageRoot.appendingPathComponent(folder + "/expected.txt"), encoding: .utf8)
        #expect(result.status == 1)
        #expect(result.stdout == expected)
        #expect(result.stdout.contains("[\(check)]"), "the example for \(check) does not show it")
    }

    @Test(arguments: folders("good").map { "Tests/LintExamples/good/" + $0 } + ["rules"])
    func goodPackLintsClean(path: String) throws {
        let result = try Binary.run(["lint", "--strict", path])
        #expect(result.status == 0, "\(result.stdout)")
        #expect(result.stdout.hasPrefix("no problems in "))
    }

    /// One rule file is checked within the pack in its folder (a user file: the pack above
    /// users/), and only its problems are shown: alone, the shipped org.yaml lacked
    /// lists.yaml's lists (7 false errors) and a user file the org's settings.
    @Test func aSingleFileIsCheckedWithinItsPack() throws {
        for file in ["rules/org.yaml", "rules/policy.yaml", "rules/users/ann@contoso.com.yaml"] {
            let result = try Binary.run(["lint", file])
            #expect(result.status == 0 && result.stdout == "no problems in 1 file\n", "\(file): \(result.stdout)")
        }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mailsave-lint-one-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.copyItem(at: Binary.packageRoot.appendingPathComponent("rules"), to: folder)
        for (name, old, new) in [("org.yaml", "outbound_only: false", "outbound_only: maybe"), ("lists.yaml", "kind: domains", "kind: domain")] {
            let url = folder.appendingPathComponent(name)
            let text = try String(contentsOf: url, encoding: .utf8)
            try #require(text.contains(old))
            try text.replacing(old, with: new).write(to: url, atomically: true, encoding: .utf8)
        }
        let one = try Binary.run(["lint", folder.appendingPathComponent("org.yaml").path])
        #expect(one.status == 1)
        #expect(one.stdout.contains("org.yaml:") && !one.stdout.contains("lists.yaml:"), "\(one.stdout)")
        #expect(one.stdout.hasSuffix("in 1 file\n"), "\(one.stdout)")
        let whole = try Binary.run(["lint", folder.path])
        #expect(whole.stdout.contains("org.yaml:") && whole.stdout.contains("lists.yaml:"), "\(whole.stdout)")
        // A problem the file causes that is reported at another file (a rule id another file
        // has too) is shown; a file lint does not read is named, never passed.
        try "rules:\n  - id: service-email\n    description: d\n    when: message.subject == \"x\"\n    then: skip\n"
            .write(to: folder.appendingPathComponent("aaa.yaml"), atomically: true, encoding: .utf8)
        let duplicate = try Binary.run(["lint", folder.appendingPathComponent("aaa.yaml").path])
        #expect(duplicate.status == 1 && duplicate.stdout.contains("rule id 'service-email' is used twice [duplicate-rule-id]"), "\(duplicate.stdout)")
        // Given twice, linted once.
        let twice = try Binary.run(["lint", folder.appendingPathComponent("aaa.yaml").path, folder.appendingPathComponent("./aaa.yaml").path])
        #expect(twice.stdout == duplicate.stdout, "\(twice.stdout)")
        try "rules: []\n".write(to: folder.appendingPathComponent("Extra.YAML"), atomically: true, encoding: .utf8)
        let ignored = try Binary.run(["lint", folder.appendingPathComponent("Extra.YAML").path])
        #expect(ignored.status == 1 && ignored.stdout.contains("[ignored-file]"), "\(ignored.stdout)")
        // A link to a rule file, from outside its pack: the file is checked within its own pack.
        let link = FileManager.default.temporaryDirectory.appendingPathComponent("mailsave-lint-link-\(UUID().uuidString).yaml")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: Binary.packageRoot.appendingPathComponent("rules/org.yaml"))
        defer { try? FileManager.default.removeItem(at: link) }
        let linked = try Binary.run(["lint", link.path])
        #expect(linked.status == 0 && linked.stdout == "no problems in 1 file\n", "\(linked.stdout)")
        // A user file named from inside users/.
        let inUsers = try Binary.launch(Binary.path, ["lint", "ann@contoso.com.yaml"], directory: Binary.packageRoot.appendingPathComponent("rules/users"))
        #expect(inUsers.status == 0 && inUsers.stdout == "no problems in 1 file\n", "\(inUsers.stdout)")
    }

    @Test func jsonFormat() throws {
        let result = try Binary.run(["lint", "--format", "json", "Tests/LintExamples/bad/duplicate-rule-id"])
        #expect(result.status == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let diagnostics = try #require(object["diagnostics"] as? [[String: Any]])
        #expect(diagnostics.count == 1)
        #expect(diagnostics.first?["check"] as? String == "duplicate-rule-id")
        #expect(diagnostics.first?["line"] as? Int == 13)
        #expect((diagnostics.first?["related"] as? [String: Any])?["line"] as? Int == 9)
        #expect(object["errors"] as? Int == 1)
    }

    @Test func sarifIsWhatCodeScanningReads() throws {
        let result = try Binary.run(["lint", "--format", "sarif", "Tests/LintExamples/bad/shadowed-rule"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(object["version"] as? String == "2.1.0")
        #expect((object["$schema"] as? String)?.contains("sarif-2.1.0") == true)
        let run = try #require((object["runs"] as? [[String: Any]])?.first)
        let driver = try #require(((run["tool"] as? [String: Any])?["driver"]) as? [String: Any])
        #expect(driver["name"] as? String == "mailsave")
        let rules = try #require(driver["rules"] as? [[String: Any]])
        #expect(rules.map { $0["id"] as? String } == LintCheck.all.map(\.id))
        for rule in rules {
            #expect((rule["shortDescription"] as? [String: Any])?["text"] is String)
            #expect(((rule["defaultConfiguration"] as? [String: Any])?["level"] as? String).map { ["error", "warning", "note"].contains($0) } == true)
        }
        let results = try #require(run["results"] as? [[String: Any]])
        #expect(results.count == 2)
        for finding in results {
            let ruleIndex = try #require(finding["ruleIndex"] as? Int)
            #expect(rules[ruleIndex]["id"] as? String == finding["ruleId"] as? String)
            let region = ((((finding["locations"] as? [[String: Any]])?.first?["physicalLocation"]) as? [String: Any])?["region"]) as? [String: Any]
            #expect(region?["startLine"] as? Int != nil)
            #expect(finding["level"] as? String == "warning")
        }
    }

    /// SARIF names files by URI: `#`, `%`, spaces and non-ASCII letters are percent-encoded
    /// (GitHub read `a #1/org.yaml` as the file `a ` with a fragment); an absolute path is a
    /// `file:` URI without `%SRCROOT%`.
    @Test func sarifFileNamesAreURIs() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("mailsave-sarif-\(UUID().uuidString)")
        let folder = base.appendingPathComponent("a #1 100% é")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: base) }
        for file in try FileManager.default.contentsOfDirectory(atPath: "Tests/LintExamples/bad/shadowed-rule") {
            try FileManager.default.copyItem(atPath: "Tests/LintExamples/bad/shadowed-rule/" + file, toPath: folder.appendingPathComponent(file).path)
        }
        func artifact(_ argument: String, in directory: URL = Binary.packageRoot) throws -> [String: Any] {
            let result = try Binary.launch(Binary.path, ["lint", "--format", "sarif", argument], directory: directory)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
            let finding = try #require(((object["runs"] as? [[String: Any]])?.first?["results"] as? [[String: Any]])?.first)
            let physical = (finding["locations"] as? [[String: Any]])?.first?["physicalLocation"] as? [String: Any]
            return try #require(physical?["artifactLocation"] as? [String: Any])
        }
        let relative = try artifact("a #1 100% é", in: base)
        #expect(relative["uri"] as? String == "a%20%231%20100%25%20%C3%A9/org.yaml")
        #expect(relative["uriBaseId"] as? String == "%SRCROOT%")
        let absolute = try artifact(folder.path)
        let encodedBase = base.path.replacingOccurrences(of: " ", with: "%20")
        #expect(absolute["uri"] as? String == "file://" + encodedBase + "/a%20%231%20100%25%20%C3%A9/org.yaml")
        #expect(absolute["uriBaseId"] == nil)
    }

    @Test func githubAnnotations() throws {
        let result = try Binary.run(["lint", "--format", "github", "Tests/LintExamples/bad/expr-syntax"])
        #expect(result.stdout == "::error file=Tests/LintExamples/bad/expr-syntax/org.yaml,line=11,col=19,endColumn=20,"
                + "title=mailsave expr-syntax::unexpected character '='; write '==' to compare\n")
    }

    @Test func nothingToLintIsAnErrorNeverAPass() throws {
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("mailsave-empty-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: empty) }
        let result = try Binary.run(["lint", empty.path])
        #expect(result.status == 3)
        #expect(result.stderr.contains("no rule files (*.yaml, *.yml) found"))
        let missing = try Binary.run(["lint", "no/such/pack"])
        #expect(missing.status == 3)
        #expect(missing.stderr == "mailsave: no/such/pack: No such file or directory\n")
        #expect(try Binary.run(["lint"]).status == 2)
        #expect(try Binary.run(["lint", "--format", "xml", "rules"]).status == 2)
    }
}
