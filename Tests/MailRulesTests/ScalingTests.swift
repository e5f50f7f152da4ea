import Foundation
@testable import MailRules
import ScalingCheck
import Testing

/// Doubling a rule file or an expression about doubles the time to lint it: no parser or
/// checker path is quadratic (the message parser's paths: `HostileInputTests`).
@Suite struct ScalingTests {
    /// Doubling `small` into `large` must not more than `Scaling.limit`-fold the time.
    func expectLinear(_ name: String, _ small: String, _ large: String, _ work: (String) -> Void) {
        let ratio = Scaling.ratio(small: small, large: large, work)
        #expect(ratio < Scaling.limit, "\(name): doubling the input multiplied the time by \(ratio)")
    }

    func lint(_ text: String) {
        _ = Linter.lint(org: [SourceFile(path: "scale.yaml", text: text)])
    }

    func blocklist(_ entries: Int) -> String {
        var text = "lists:\n  - name: blocked\n    kind: addresses\n    entries:\n"
        for index in 0..<entries { text += "      - user\(index)@spam\(index % 97).example\n" }
        return text + "settings:\n  org_blocklist: blocked\n"
    }

    func rules(_ count: Int) -> String {
        var text = "rules:\n"
        for index in 0..<count {
            text += "  - id: rule-\(index)\n    when: message.subject == \"s\(index)\" and trigger == \"auto\"\n    then: skip\n    message: m\(index)\n"
        }
        return text
    }

    /// Choosing one mailbox's user files reads `users/` once: twice the files, about twice
    /// the time (a `process` in an org of many users).
    @Test func choosingAMailboxsUserFilesIsLinearInTheFolder() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("mailsave-users-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        for (pack, count) in [("small", 2_000), ("large", 4_000)] {
            try FileManager.default.createDirectory(atPath: base + "/" + pack + "/users", withIntermediateDirectories: true)
            try Data("rules: []\n".utf8).write(to: URL(fileURLWithPath: base + "/" + pack + "/org.yaml"))
            for index in 0..<count {
                try Data().write(to: URL(fileURLWithPath: base + "/\(pack)/users/u\(index)@contoso.com.yaml"))
            }
        }
        #expect(try PackLoader.files(at: base + "/large", mailbox: "U17@Contoso.com").users == [base + "/large/users/u17@contoso.com.yaml"])
        let ratio = Scaling.ratio(small: base + "/small", large: base + "/large") { pack in _ = try? PackLoader.files(at: pack, mailbox: "u17@contoso.com") }
        #expect(ratio < Scaling.limit, "doubling users/ multiplied the time by \(ratio)")
    }

    @Test func aBlocklistLintsInLinearTime() {
        expectLinear("blocklist entries", blocklist(5_000), blocklist(10_000), lint)
    }

    @Test func rulesLintInLinearTime() {
        expectLinear("rules", rules(150), rules(300), lint)
        // Enough rules for the reachability check's pairs to show (it compared every rule
        // with every earlier one: 20,000 rules took 29 s).
        func sharing(_ count: Int) -> String {
            var text = "rules:\n"
            for index in 0..<count {
                text += "  - id: rule-\(index)\n    description: d\n    when: trigger == \"auto\" and direction == \"inbound\" and message.size > 1"
                    + " and message.has_body and message.subject == \"s\(index)\"\n    then: skip\n    message: m\(index)\n"
            }
            return text
        }
        #expect(Linter.lint(org: [SourceFile(path: "scale.yaml", text: sharing(3))]).diagnostics.isEmpty)
        expectLinear("many rules", sharing(1_500), sharing(3_000), lint)
    }

    @Test func anExpressionParsesAndChecksInLinearTime() {
        // The longest expressions the language takes (4,096 characters), and half of them.
        func terms(_ count: Int) -> String {
            (0..<count).map { "message.subject == \"\($0 % 10)\"" }.joined(separator: " or ")
        }
        let small = terms(50), large = terms(100)
        #expect(large.count <= ExprParser.maxLength)
        expectLinear("expression terms", small, large) { text in _ = compile(text) }
        func calls(_ count: Int) -> String {
            (0..<count).map { _ in "participants.any(p, p.blocked)" }.joined(separator: " and ")
        }
        expectLinear("macro calls", calls(60), calls(120)) { text in _ = compile(text) }
    }
}
