import Foundation
import Testing
@testable import mailsave

/// What `test` and `lint --format github` print from files and messages is escaped: a control
/// character or a line feed in a test's name, a header, a file name or a rule id cannot drive
/// the terminal or fake a line (a "119 passed, 0 failed" of its own).
@Suite struct OutputEscapingTests {
    /// Invisible characters that make two addresses or ids look alike are shown; the joiners
    /// Persian, Indic scripts and emoji need are kept.
    @Test func invisibleCharactersAreShownAndJoinersKept() {
        #expect(visible("bob\u{200B}@fabrikam.com") == "bob\\u{200B}@fabrikam.com")
        #expect(visible("a\u{200E}b\u{200F}c\u{061C}d\u{2060}e\u{FEFF}f") == "a\\u{200E}b\\u{200F}c\\u{61C}d\\u{2060}e\\u{FEFF}f")
        #expect(visible("میخواهم\u{200C}ها 👩\u{200D}💻") == "میخواهم\u{200C}ها 👩\u{200D}💻")
    }

    @Test func ruleTestOutputEscapesControlCharacters() throws {
        let folder = try Mailboxes.temporaryFolder("test-escape")
        defer { try? FileManager.default.removeItem(at: folder) }
        for name in ["rules", "examples"] {
            try FileManager.default.copyItem(at: Binary.packageRoot.appendingPathComponent(name), to: folder.appendingPathComponent(name))
        }
        let evil = """
            crm: ../../examples/crm
            tests:
              - name: "evil\\e]0;OWNED\\a\\e[31mRED\\n119 passed, 0 failed"
                message: ../../examples/messages/01-customer-question.eml
                expect: {verdict: skip}
            """
        try evil.write(to: folder.appendingPathComponent("rules/tests/evil.yaml"), atomically: true, encoding: .utf8)
        let result = try Binary.run(["test", folder.appendingPathComponent("rules").path])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(!result.stdout.contains("\u{1B}") && !result.stdout.contains("\u{7}"), "\(result.stdout)")
        #expect(result.stdout.contains("evil\\u{1B}]0;OWNED\\u{7}\\u{1B}[31mRED\\u{A}119 passed, 0 failed"), "\(result.stdout)")
        #expect(!result.stdout.split(separator: "\n").contains("119 passed, 0 failed"), "\(result.stdout)")
    }

    @Test func githubAnnotationsEscapeControlCharacters() throws {
        let folder = try Mailboxes.temporaryFolder("github-escape")
        defer { try? FileManager.default.removeItem(at: folder) }
        let rules = "rules:\n  - id: \"bad\\e[2Jid\"\n    description: d\n    when: \"true\"\n    then: save\n"
        try rules.write(to: folder.appendingPathComponent("a\u{1B}[31mx.yaml"), atomically: true, encoding: .utf8)
        let result = try Binary.run(["lint", "--format", "github", folder.path])
        #expect(!result.stdout.contains("\u{1B}"), "\(result.stdout)")
        #expect(result.stdout.contains("\\u{1B}[31mx.yaml"), "\(result.stdout)")
    }
}

/// `mailsave test` over several packs, or from inside one.
@Suite struct RuleTestPathsTests {
    /// A pack without tests among several fails --require-coverage (the others' tests counted
    /// for it); a tests/ that cannot be listed is an error, not "no tests".
    @Test func eachPackIsCoveredOnItsOwn() throws {
        let folder = try Mailboxes.temporaryFolder("test-packs")
        defer { try? FileManager.default.removeItem(at: folder) }
        let bare = folder.appendingPathComponent("bare")
        try FileManager.default.copyItem(at: Binary.packageRoot.appendingPathComponent("rules"), to: bare)
        try FileManager.default.removeItem(at: bare.appendingPathComponent("tests"))
        let covered = try Binary.run(["test", "--require-coverage", "rules", bare.path])
        #expect(covered.status == 1, "\(covered.stdout)")
        #expect(covered.stdout.contains("no rule tests found in \(bare.path)"), "\(covered.stdout)")
        try "x\n".write(to: bare.appendingPathComponent("tests"), atomically: true, encoding: .utf8)
        let unreadable = try Binary.run(["test", "rules", bare.path])
        #expect(unreadable.status == 3, "\(unreadable.stderr)")
        #expect(unreadable.stderr.contains("/tests: cannot list the rule tests"), "\(unreadable.stderr)")
    }

    /// Run from inside the pack, `mailsave test .` finds the project above it, as with the
    /// pack's path (every test failed: "." was its own project).
    @Test func aPackNamedDotIsItsRealFolder() throws {
        let result = try Binary.launch(Binary.path, ["test", "."], directory: Binary.packageRoot.appendingPathComponent("rules"))
        #expect(result.status == 0, "\(result.stdout)")
        #expect(result.stdout.hasSuffix("131 passed, 0 failed\n"), "\(result.stdout)")
    }
}
