import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing

/// Hostile rule packs through the binary: lint, process and test.
@Suite struct RulePackHardeningCLITests {
    /// `<folder>/rules`: a copy of the shipped pack; `<folder>` is the project.
    struct Project {
        let folder: String
        var rules: String { folder + "/rules" }

        init() throws {
            folder = FileManager.default.temporaryDirectory.appendingPathComponent("mailsave-cli-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: Binary.packageRoot.appendingPathComponent("rules").path, toPath: rules)
            try FileManager.default.copyItem(atPath: Binary.packageRoot.appendingPathComponent("examples").path, toPath: folder + "/examples")
        }

        func write(_ relative: String, _ text: String) throws {
            try text.write(toFile: folder + "/" + relative, atomically: false, encoding: .utf8)
        }
    }

    static let message = Binary.packageRoot.appendingPathComponent("examples/messages/01-customer-question.eml").path

    @Test func lintRefusesALinkOutOfThePackWithoutPrintingIt() throws {
        let project = try Project()
        try project.write("secret.yaml", "password: TOPSECRET-42\n")
        symlink(project.folder + "/secret.yaml", project.rules + "/leak.yaml")
        let result = try Binary.run(["lint", project.rules])
        #expect(result.status == 3)
        #expect(result.stderr.contains("rules/leak.yaml: is a symbolic link to a file outside"))
        #expect(!(result.stdout + result.stderr).contains("TOPSECRET"))
    }

    @Test func lintRefusesAFIFOInsteadOfHanging() throws {
        let project = try Project()
        #expect(mkfifo(project.rules + "/x.yaml", 0o600) == 0)
        let started = Date()
        let result = try Binary.run(["lint", project.rules])
        #expect(result.status == 3)
        #expect(result.stderr.contains("rules/x.yaml: is a FIFO, not a regular file"))
        #expect(Date().timeIntervalSince(started) < 10)
    }

    @Test func aBrokenUserFileStopsOnlyItsMailbox() throws {
        let project = try Project()
        try project.write("rules/users/carl@contoso.com.yaml", "mailbox: carl@contoso.com\nblocklist:\n  remove:\n    - spam.example\n")
        let lint = try Binary.run(["lint", project.rules])
        #expect(lint.status == 1 && lint.stdout.contains("carl@contoso.com.yaml:4:7: error:"))
        let carl = try Binary.run(["process", "--rules", project.rules, "--mailbox", "carl@contoso.com", "--crm", "examples/crm", Self.message])
        #expect(carl.status == 5)
        #expect(carl.stderr.contains("carl@contoso.com.yaml: the user file of carl@contoso.com has 1 error, so no decision is made for this mailbox"))
        #expect(carl.stdout.isEmpty)
        for mailbox in ["ann@contoso.com", "dan@contoso.com"] {
            let other = try Binary.run(["process", "--rules", project.rules, "--mailbox", mailbox, "--crm", "examples/crm", Self.message])
            #expect(other.status == 0, "\(mailbox): \(other.stderr)")
            #expect(other.stdout.contains("\"verdict\": \"save\""))
        }
    }

    @Test func aUserFileForAnotherMailboxDoesNotChangeIt() throws {
        let project = try Project()
        // Bob's file tries to blocklist Fabrikam (the sender's domain) for Dan.
        try project.write("rules/users/bob@contoso.com.yaml", "mailbox: dan@contoso.com\nblocklist:\n  add:\n    - fabrikam.com\n")
        let lint = try Binary.run(["lint", project.rules])
        #expect(lint.status == 1 && lint.stdout.contains("speaks only for bob@contoso.com, not for 'dan@contoso.com'"))
        let dan = try Binary.run(["process", "--rules", project.rules, "--mailbox", "dan@contoso.com", "--crm", "examples/crm", Self.message])
        #expect(dan.status == 0 && dan.stdout.contains("\"verdict\": \"save\""), "\(dan.stderr)")
    }

    @Test func aRuleThatBuildsGigabytesIsARuleErrorNotUsage() throws {
        let project = try Project()
        let policy = try String(contentsOfFile: project.rules + "/policy.yaml", encoding: .utf8)
        try project.write("rules/policy.yaml", policy.replacingOccurrences(of: "rules:\n", with: """
            rules:
              - id: huge
                description: Joins every participant's copy of the body.
                when: size(join(participants.map(p, message.body), "")) > 0
                then: skip

            """))
        #expect(try Binary.run(["lint", project.rules]).status == 0)
        let recipients = (0..<1_000).map { "r\($0)@example\($0 % 50).com" }.joined(separator: ", ")
        let body = String(repeating: String(repeating: "x", count: 99) + "\n", count: 100_000)
        try project.write("big.eml", "From: a@fabrikam.com\nTo: \(recipients)\nSubject: hi\nMessage-ID: <big@x>\n\n" + body)
        let result = try Binary.run(["process", "--rules", project.rules, "--mailbox", "ann@contoso.com", "--crm", "examples/crm", project.folder + "/big.eml"])
        #expect(result.status == 5)
        #expect(result.stderr.contains("rules/policy.yaml:7:16: rule 'huge': evaluation would build more than 128 MiB of values on this message"))
    }

    /// A mapping over an evaluation budget fails the message as a rule does (exit 5, naming
    /// `mapping Task.Subject` and its place), and nothing is saved: it was dropped with every
    /// field after it, and the Task saved without them (for good: the ledger has it).
    @Test func aMappingOverItsBudgetFailsTheMessageAndSavesNothing() throws {
        let project = try Project()
        let org = try String(contentsOfFile: project.rules + "/org.yaml", encoding: .utf8)
        try project.write("rules/org.yaml", org.replacingOccurrences(of: "      Subject: message.subject\n",
                                                                      with: "      Subject: join(participants.map(p, message.body), \"\")\n"))
        let recipients = (0..<1_000).map { "r\($0)@example\($0 % 50).com" }.joined(separator: ", ")
        let body = String(repeating: String(repeating: "x", count: 99) + "\n", count: 100_000)
        try project.write("big.eml", "From: bob@fabrikam.com\nTo: ann@contoso.com, \(recipients)\nSubject: hi\nMessage-ID: <big@x>\n\n" + body)
        let store = project.folder + "/crm.sqlite"
        for object in ["Account", "Contact", "Opportunity", "User"] {
            #expect(try Binary.run(["crm", "import", "--store", store, "--object", object, "examples/crm/\(object).csv"]).status == 0)
        }
        let result = try Binary.run(["process", "--rules", project.rules, "--mailbox", "ann@contoso.com", "--store", store, "--apply", project.folder + "/big.eml"])
        #expect(result.status == 5, "\(result.stderr)")
        #expect(result.stderr.contains("rules/org.yaml:37:16: rule 'mapping Task.Subject': evaluation would build more than 128 MiB of values on this message"), "\(result.stderr)")
        #expect(try Binary.run(["crm", "export", "--store", store, "--object", "Task"]).stdout.split(separator: "\n").count == 1, "no Task saved")
    }

    @Test func ruleTestsAreConfinedToTheProject() throws {
        let project = try Project()
        for name in try FileManager.default.contentsOfDirectory(atPath: project.rules + "/tests") {
            try FileManager.default.removeItem(atPath: project.rules + "/tests/" + name)
        }
        symlink("/etc/hostname", project.rules + "/tests/host.eml")
        try FileManager.default.createDirectory(atPath: project.folder + "/crm-bad", withIntermediateDirectories: true)
        try project.write("crm-bad/Contact.csv", "Id,Email\n\"0035e00000X,x@y.example\n")
        let escapes = String(repeating: "../", count: project.folder.split(separator: "/").count + 2)
        try project.write("rules/tests/escape.yaml", """
            tests:
              - name: dot-dot
                message: \(escapes)etc/passwd
                expect: {verdict: save}
              - name: absolute
                message: /etc/passwd
                expect: {verdict: save}
              - name: link
                message: host.eml
                expect: {verdict: save}
              - name: crm outside
                crm: \(escapes)etc
                message: ../../examples/messages/01-customer-question.eml
                expect: {verdict: save}
              - name: inside
                message: ../../examples/messages/01-customer-question.eml
                expect: {verdict: skip}
              - name: bad crm
                crm: ../../crm-bad
                message: ../../examples/messages/01-customer-question.eml
                expect: {verdict: save}
              - name: crm not a path
                crm: [\(escapes)etc]
                message: ../../examples/messages/01-customer-question.eml
                expect: {verdict: save}

            """)
        let result = try Binary.run(["test", project.rules])
        #expect(result.status == 1)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains("\(project.rules)/tests/escape.yaml:3:14: error: the message file '\(escapes)etc/passwd' is outside the project (\(project.folder)); rule tests read only files inside it"))
        #expect(lines.contains { $0.hasSuffix("escape.yaml:6:14: error: the message file '/etc/passwd' is an absolute path; give a path relative to the test file, inside the project (\(project.folder))") })
        #expect(lines.contains { $0.hasSuffix("escape.yaml:9:14: error: the message file 'host.eml' is outside the project (\(project.folder)); rule tests read only files inside it") })
        #expect(lines.contains { $0.hasSuffix("escape.yaml:12:10: error: the CRM folder '\(escapes)etc' is outside the project (\(project.folder)); rule tests read only files inside it") })
        // A test inside the project runs; a CRM that cannot be read is one clear line.
        #expect(lines.contains { $0.hasSuffix("escape.yaml:15: inside") } == false)
        #expect(lines.contains { $0.hasPrefix("FAIL") && $0.hasSuffix("escape.yaml:18: bad crm") })
        #expect(result.stdout.contains("the CRM folder cannot be read: \(project.folder)/crm-bad/Contact.csv:"))
        #expect(!result.stdout.contains("CommandFailure"))
        #expect(!result.stdout.contains("root:"))
        // A CRM that is no path (a list) was ignored and the test ran against another CRM.
        #expect(lines.contains { $0.hasSuffix("escape.yaml:23:10: error: 'crm' must be a folder path (a string)") }, "\(result.stdout)")
        #expect(lines.last == "1 passed, 6 failed")
    }
}
