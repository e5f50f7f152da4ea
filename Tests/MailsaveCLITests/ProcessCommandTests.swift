import Foundation
import Testing

/// `process`, `explain` and `test` end to end, through the binary.
@Suite struct ProcessCommandTests {
    /// An mbox given to process is refused, exit 4, naming batch: read as one message its
    /// other messages became the first one's body (with --apply, one Task holding twelve
    /// emails). Nothing is saved. One message with its `From ` line is decided as ever.
    /// A mailbox outside the org's corporate domains is a usage error (exit 2) before any
    /// decision or save: mistyped, every message was a stranger's (its own mail inbound, its
    /// saves without an owner, and once saved claimed org-wide). Case and subdomains are the
    /// corporate list's own.
    @Test func aMailboxOutsideTheCorporateDomainsIsRefused() throws {
        let wrong = try Binary.run(["process", "--crm", "examples/crm", "--mailbox", "ann@contso.com", "examples/messages/03-outbound-reply.eml"])
        #expect(wrong.status == 2)
        #expect(wrong.stdout.isEmpty)
        #expect(wrong.stderr == "mailsave: --mailbox ann@contso.com is not in the corporate domains of rules (contoso-group.com, contoso.co.uk, contoso.com), nor a User of the CRM: "
                + "a mailbox is a user of the org; check the address, or add its domain to settings.corporate_domains\n", "\(wrong.stderr)")
        let batch = try Binary.run(["batch", "--crm", "examples/crm", "--mailbox", "ann@contso.com", "--eml", "examples/messages", "--quiet"])
        #expect(batch.status == 2 && batch.stdout.isEmpty)
        for mailbox in ["ANN@Contoso.COM", "ann@eu.contoso.com"] {
            let right = try Binary.run(["process", "--crm", "examples/crm", "--mailbox", mailbox, "--format", "table", "examples/messages/03-outbound-reply.eml"])
            #expect(right.status == 0, "\(mailbox): \(right.stderr)")
        }
        // A User of the CRM whose own address is elsewhere (a free-mail one) is the org's.
        let crm = FileManager.default.temporaryDirectory.appendingPathComponent("mailsave-crm-user-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: Binary.packageRoot.appendingPathComponent("examples/crm"), to: crm)
        defer { try? FileManager.default.removeItem(at: crm) }
        let users = crm.appendingPathComponent("User.csv")
        let header = try String(contentsOf: users, encoding: .utf8).split(separator: "\n").first.map(String.init) ?? ""
        let columns = header.split(separator: ",").map(String.init)
        let row = columns.map { $0 == "Id" ? "0055e00000Gml01" : $0 == "Email" ? "ann.seller@gmail.com" : $0 == "LastName" ? "Seller" : "" }.joined(separator: ",")
        try (try String(contentsOf: users, encoding: .utf8) + row + "\n").write(to: users, atomically: true, encoding: .utf8)
        let user = try Binary.run(["process", "--crm", crm.path, "--mailbox", "ann.seller@gmail.com", "--format", "table", "examples/messages/03-outbound-reply.eml"])
        #expect(user.status == 0, "\(user.stderr)")
        // A CRM that cannot answer now is its own error (75: deliver again), not a wrong mailbox.
        let unreachable = try Binary.launch(Binary.path, ["process", "--salesforce", "--mailbox", "ann.seller@gmail.com", "examples/messages/03-outbound-reply.eml"],
                                            environment: ["MAILSAVE_SF_LOGIN_URL": "http://127.0.0.1:9", "MAILSAVE_SF_CLIENT_ID": "x", "MAILSAVE_SF_CLIENT_SECRET": "y"])
        #expect(unreachable.status == 75, "\(unreachable.stderr)")
    }

    /// Several files as a table: a file that cannot be decided keeps its row ("error", its
    /// exit code; the reason on standard error), as batch's table does, and the run exits
    /// with the first failure's code.
    @Test func aTableKeepsARowForAFileThatFailed() throws {
        let bad = FileManager.default.temporaryDirectory.appendingPathComponent("mailsave-bad-\(UUID().uuidString).eml")
        try Data("not a message".utf8).write(to: bad)
        defer { try? FileManager.default.removeItem(at: bad) }
        let result = try Binary.run(["process", "--crm", "examples/crm", "--mailbox", "ann@contoso.com", "--format", "table",
                                     "examples/messages/01-customer-question.eml", bad.path, "examples/messages/02-internal-only.eml"])
        #expect(result.status == 4)
        let rows = result.stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        #expect(rows.count == 4 && rows[2] == [bad.lastPathComponent, "error", "exit", "4"], "\(result.stdout)")
        #expect(result.stderr.contains("not an RFC 5322 message"))
    }

    @Test func anMboxIsNotOneMessage() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mailsave-mbox-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = folder.appendingPathComponent("crm.sqlite").path
        for object in ["Account", "Contact", "Opportunity", "Case", "User"] {
            #expect(try Binary.run(["crm", "import", "--store", store, "--object", object, "examples/crm/\(object).csv"]).status == 0)
        }
        let result = try Binary.run(["process", "--store", store, "--mailbox", "ann@contoso.com", "--apply", "examples/mailbox.mbox"])
        #expect(result.status == 4)
        #expect(result.stderr == "mailsave: examples/mailbox.mbox: an mbox of 12 messages, not one message: process decides one message; "
                + "decide a mailbox with mailsave batch --mbox examples/mailbox.mbox\n")
        #expect(try Binary.run(["crm", "export", "--store", store, "--object", "Task"]).stdout.split(separator: "\n").count == 1, "only the header line")
        let delivered = folder.appendingPathComponent("delivered.eml")
        try Data(("From bob@fabrikam.com Mon Mar  2 09:00:00 2026\n" + (try String(contentsOfFile: "examples/messages/01-customer-question.eml", encoding: .utf8))).utf8)
            .write(to: delivered)
        let one = try Binary.run(["process", "--store", store, "--mailbox", "ann@contoso.com", "--format", "table", delivered.path])
        #expect(one.status == 0 && one.stdout.contains("save"), "\(one.stderr)")
    }

    static let base = ["process", "--mailbox", "ann@contoso.com", "--crm", "examples/crm"]

    func decision(_ arguments: [String]) throws -> [String: Any] {
        let result = try Binary.run(Self.base + arguments)
        #expect(result.status == 0, "\(result.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    }

    @Test func theSampleMailboxDecidesAsDesigned() throws {
        let folder = Binary.packageRoot.appendingPathComponent("examples/messages").path
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".eml") }.sorted()
        let result = try Binary.run(Self.base + ["--format", "table"] + files.map { "examples/messages/" + $0 })
        #expect(result.status == 0, "\(result.stderr)")
        let rows = result.stdout.split(separator: "\n").dropFirst().map { $0.split(separator: " ", omittingEmptySubsequences: true) }
        let verdicts = rows.map { "\($0[0]) \($0[1]) \($0.last ?? "")" }
        #expect(verdicts == [
            "01-customer-question.eml save general-mode",
            "02-internal-only.eml blocked all-internal-or-blocked",
            "03-outbound-reply.eml save general-mode",
            "04-case-thread.eml save case-thread",
            "05-bounce-postfix.eml unsupported service-email",
            "06-read-receipt.eml unsupported service-email",
            "07-meeting-accepted.eml unsupported service-email",
            "08-gmail-prospect.eml save general-mode",
            "09-attachment.eml skip already-saved",
            "10-out-of-office.eml save general-mode",
            "11-reply-to-salesforce-email.eml save magic-anchor",
            "12-blocklisted-newsletter.eml blocked all-internal-or-blocked",
        ])
    }

    /// Spaces around --mailbox are trimmed, as its check trims them: a leading space made
    /// another mailbox, which Ann's user file (category CRM) did not apply to. Both parsers.
    @Test func aMailboxWithSpacesAroundIsTheMailbox() throws {
        for mailbox in ["ann@contoso.com", " ann@contoso.com", "ann@contoso.com ", "  ann@contoso.com\t"] {
            for extra in [[], ["--format", "json"]] {
                let result = try Binary.run(["process", "--mailbox", mailbox, "--crm", "examples/crm"] + extra + ["examples/messages/01-customer-question.eml"])
                #expect(result.status == 0, "\(result.stderr)")
                #expect(result.stdout.contains("\"category\": \"CRM\"") || result.stdout.contains("\"category\":\"CRM\""), "'\(mailbox)' \(extra): \(result.stdout)")
            }
        }
    }

    @Test func theDecisionHasTheContractFields() throws {
        let object = try decision(["examples/messages/01-customer-question.eml"])
        #expect(object["verdict"] as? String == "save")
        #expect(object["save_as"] as? String == "Task")
        #expect(object["message_id"] as? String == "<CAB1234567@mail.fabrikam.com>")
        let links = try #require(object["links"] as? [String: Any])
        #expect(links["who"] as? [String] == ["0035e00000Bob01"])
        #expect(links["what"] as? String == "0065e00000Opp01")
        #expect((object["reasons"] as? [[String: String]])?.first?["rule"] == "general-mode")
        #expect(object["category"] as? String == "CRM")
        let record = try #require(object["record"] as? [String: Any])
        #expect(record["object"] as? String == "Task")
        #expect((record["fields"] as? [String: Any])?["WhoId"] as? String == "0035e00000Bob01")
    }

    @Test func forceSyncWithASelection() throws {
        let object = try decision(["--trigger", "button", "--folder", "Archive", "--select", "contact=0035e00000Car01",
                                   "--select", "case=5005e00000Cas01", "examples/messages/01-customer-question.eml"])
        #expect((object["reasons"] as? [[String: String]])?.first?["rule"] == "force-sync")
        #expect((object["links"] as? [String: Any])?["what"] as? String == "5005e00000Cas01")
    }

    @Test func everyDecisionMatchesTheDecisionSchema() throws {
        let folder = Binary.packageRoot.appendingPathComponent("examples/messages")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".eml") }.sorted()
        let result = try Binary.run(Self.base + files.map { "examples/messages/" + $0 })
        #expect(result.status == 0)
        let process = Foundation.Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Binary.packageRoot.appendingPathComponent("Tests/MailsaveCLITests/Reference/validate_decisions.py").path]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(Data(result.stdout.utf8))
        try input.fileHandleForWriting.close()
        let report = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(report)")
        #expect(report.contains("\(files.count) decisions, 0 invalid"))
    }

    @Test func everyCorpusMessageGetsADecisionOrOneClearError() throws {
        let root = Binary.packageRoot.deletingLastPathComponent().appendingPathComponent("shared/corpus/enmime")
        let corpus = ProcessInfo.processInfo.environment["MAILSAVE_CORPUS"].map { URL(fileURLWithPath: $0) } ?? root
        guard let walker = FileManager.default.enumerator(at: corpus, includingPropertiesForKeys: nil) else {
            Issue.record("the enmime corpus is not at \(corpus.path); set MAILSAVE_CORPUS")
            return
        }
        let files = walker.compactMap { $0 as? URL }.filter { $0.pathExtension == "raw" }.map(\.path).sorted()
        #expect(files.count >= 70, "the enmime corpus at \(corpus.path) is missing or incomplete")
        let result = try Binary.run(Self.base + files)
        let decisions = result.stdout.split(separator: "\n")
        let errors = result.stderr.split(separator: "\n")
        #expect(decisions.count + errors.count == files.count)
        #expect(errors == ["mailsave: \(corpus.path)/mail/erroneous.raw:1: not an RFC 5322 message: no header field before the body"])
        #expect(result.status == 4)
        for line in decisions {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(["save", "skip", "blocked", "unsupported"].contains(object?["verdict"] as? String ?? ""))
        }
    }

    @Test func badInputGetsDistinctExitCodes() throws {
        #expect(try Binary.run(Self.base + ["no/such.eml"]).status == 3)
        #expect(try Binary.run(Self.base + ["-"], stdin: Data("// not mail".utf8)).status == 4)
        let badRules = try Binary.run(["process", "--rules", "Tests/LintExamples/bad/expr-syntax", "--mailbox", "ann@contoso.com",
                                       "examples/messages/01-customer-question.eml"])
        #expect(badRules.status == 5)
        #expect(badRules.stderr.contains("the rule pack has 1 error; run mailsave lint Tests/LintExamples/bad/expr-syntax"))
        #expect(try Binary.run(Self.base + ["--trigger", "sometimes", "examples/messages/01-customer-question.eml"]).status == 2)
        #expect(try Binary.run(Self.base + ["--select", "banana=1", "examples/messages/01-customer-question.eml"]).status == 2)
        let crm = FileManager.default.temporaryDirectory.appendingPathComponent("mailsave-crm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: crm, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: crm) }
        try "Id,Email\n0035e00000Aaa01,a@b.example\n0035e00000Bbb01,b@b.example,extra\n".write(to: crm.appendingPathComponent("Contact.csv"), atomically: true, encoding: .utf8)
        let badCRM = try Binary.run(["process", "--mailbox", "ann@contoso.com", "--crm", crm.path, "examples/messages/01-customer-question.eml"])
        #expect(badCRM.status == 6)
        #expect(badCRM.stderr == "mailsave: \(crm.path)/Contact.csv:3: 3 fields where the header has 2\n")
    }

    @Test func explainShowsEveryRuleAndTheFactsItRead() throws {
        let result = try Binary.run(["explain", "--mailbox", "ann@contoso.com", "--crm", "examples/crm",
                                     "examples/messages/02-internal-only.eml"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("decision  blocked (all-internal-or-blocked: Every participant is internal or blocklisted)"))
        #expect(result.stdout.contains("  to   dan@contoso.com                   blocked: internal (contoso.com)"))
        #expect(result.stdout.contains("  6 all-internal-or-blocked       HELD, decided size(participants) > 0 and participants.all(p, p.blocked) -> blocked"))
        #expect(result.stdout.contains("       p.blocked = true, true"))
        #expect(result.stdout.contains(" 24 no-related-records            not reached"))
        let json = try Binary.run(["explain", "--format", "json", "--mailbox", "ann@contoso.com", "--crm", "examples/crm",
                                   "examples/messages/02-internal-only.eml"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect((object["decision"] as? [String: Any])?["verdict"] as? String == "blocked")
        let rules = try #require(object["rules"] as? [[String: Any]])
        #expect(rules.count == 24)
        let decided = try #require(rules.first { $0["rule"] as? String == "all-internal-or-blocked" })
        #expect(decided["held"] as? Bool == true)
        #expect((decided["reads"] as? [[String: String]])?.contains { $0["expression"] == "p.blocked" && $0["value"] == "true, true" } == true)
        #expect(rules.last?["held"] is NSNull)
        let participants = ((object["facts"] as? [String: Any])?["participants"] as? [[String: Any]]) ?? []
        #expect(participants.map { $0["blocked_by"] as? String } == ["internal", "internal"])
        let failing = try Binary.run(["explain", "--failing-only", "--mailbox", "ann@contoso.com", "--crm", "examples/crm",
                                      "examples/messages/02-internal-only.eml"])
        #expect(!failing.stdout.contains("HELD"))
        #expect(failing.stdout.contains("  1 already-saved                 false"))
    }

    @Test func ruleTestsOfTheShippedPackPassAndCoverEveryRule() throws {
        let result = try Binary.run(["test", "--require-coverage", "rules"])
        #expect(result.status == 0, "\(result.stdout)")
        #expect(result.stdout.hasSuffix("131 passed, 0 failed\n"))
        #expect(!result.stdout.contains("rules no test applies"))
    }

    @Test func aFailingRuleTestShowsWhereAndWhat() throws {
        let pack = FileManager.default.temporaryDirectory.appendingPathComponent("mailsave-pack-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: pack.appendingPathComponent("tests"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: pack) }
        for name in ["lists.yaml", "org.yaml", "policy.yaml"] {
            try FileManager.default.copyItem(at: Binary.packageRoot.appendingPathComponent("rules/" + name), to: pack.appendingPathComponent(name))
        }
        try """
        tests:
          - name: wrong on purpose
            message:
              headers: {From: stranger@unknown.example, To: ann@contoso.com, Subject: Hi}
              body: Hello
            expect: {verdict: save, rule: general-mode}
        """.write(to: pack.appendingPathComponent("tests/wrong.yaml"), atomically: true, encoding: .utf8)
        let result = try Binary.run(["test", pack.path])
        #expect(result.status == 1)
        #expect(result.stdout.contains("FAIL  \(pack.path)/tests/wrong.yaml:2: wrong on purpose\n        verdict: expected \"save\", got \"skip\"\n        rule: expected \"general-mode\", got \"no-related-records\""))
        #expect(result.stdout.hasSuffix("0 passed, 1 failed\n"))
        // A test with problems of its own is not run, and counts one failure whatever its
        // problems: a misspelt expectation (which would pass, expecting nothing), a message
        // file that is not there. A problem of the file itself counts one.
        try """
        tests:
          - name: misspelt
            message: ../../01.eml
            expect: {verdcit: save}
          - name: no such message
            message: ../../99.eml
            expect: {verdict: save}
        wrong: 1
        """.write(to: pack.appendingPathComponent("tests/wrong.yaml"), atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(at: Binary.packageRoot.appendingPathComponent("examples/messages/01-customer-question.eml"),
                                         to: pack.deletingLastPathComponent().appendingPathComponent("01.eml"))
        defer { try? FileManager.default.removeItem(at: pack.deletingLastPathComponent().appendingPathComponent("01.eml")) }
        let broken = try Binary.run(["test", pack.path])
        #expect(broken.status == 1)
        #expect(broken.stdout.contains("FAIL  \(pack.path)/tests/wrong.yaml:2: misspelt\n        not run: the test has problems (above)"), "\(broken.stdout)")
        #expect(broken.stdout.contains("FAIL  \(pack.path)/tests/wrong.yaml:5: no such message\n"), "\(broken.stdout)")
        #expect(broken.stdout.hasSuffix("0 passed, 3 failed\n"), "\(broken.stdout)")
        let none = try Binary.run(["test", "Tests/LintExamples/good/minimal"])
        #expect(none.status == 1)
        #expect(none.stdout.hasSuffix("0 passed, 0 failed\n"))
    }
}
