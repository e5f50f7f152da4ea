import Foundation
#if canImport(Glibc)
import Glibc
#endif
@testable import MailRules
import Testing

/// A copy of the shipped pack in a temporary folder, to damage.
struct TemporaryPack {
    let folder: String
    var pack: String { folder + "/rules" }

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("mailsave-pack-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Paths.rules, toPath: pack)
    }

    func write(_ relative: String, _ text: String) throws {
        try text.write(toFile: pack + "/" + relative, atomically: false, encoding: .utf8)
    }
}

/// Hostile rule packs: files outside the pack, user files that speak for others, user files
/// that break, rules that build huge values.
@Suite struct PackHardeningTests {
    // MARK: Only regular files inside the pack

    @Test func aSymbolicLinkOutOfThePackIsRefusedAndItsContentNeverShown() throws {
        let temporary = try TemporaryPack()
        try "secret: TOPSECRET-1234\n".write(toFile: temporary.folder + "/outside.yaml", atomically: false, encoding: .utf8)
        symlink(temporary.folder + "/outside.yaml", temporary.pack + "/leak.yaml")
        do {
            _ = try Linter.lint(paths: [temporary.pack])
            Issue.record("a pack with a link out of it was linted")
        } catch {
            #expect(error.path == temporary.pack + "/leak.yaml")
            #expect(error.description.contains("outside"))
            #expect(!error.description.contains("TOPSECRET"))
        }
        #expect(throws: PackReadError.self) { try Linter.load(temporary.pack) }
        // A link that stays inside the pack is read.
        unlink(temporary.pack + "/leak.yaml")
        try FileManager.default.createDirectory(atPath: temporary.pack + "/shared", withIntermediateDirectories: true)
        try "lists:\n  extra:\n    kind: domains\n    entries: [extra.example]\n".write(toFile: temporary.pack + "/shared/extra.txt",
                                                                                   atomically: false, encoding: .utf8)
        symlink("shared/extra.txt", temporary.pack + "/extra.yaml")
        #expect(try Linter.lint(paths: [temporary.pack]).errorCount == 0)
    }

    @Test func aUsersFolderLinkedOutOfThePackIsRefused() throws {
        let temporary = try TemporaryPack()
        let elsewhere = temporary.folder + "/elsewhere"
        try FileManager.default.createDirectory(atPath: elsewhere, withIntermediateDirectories: true)
        try "mailbox: ann@contoso.com\n".write(toFile: elsewhere + "/ann@contoso.com.yaml", atomically: false, encoding: .utf8)
        try FileManager.default.removeItem(atPath: temporary.pack + "/users")
        symlink(elsewhere, temporary.pack + "/users")
        #expect(throws: PackReadError.self) { try Linter.lint(paths: [temporary.pack]) }
        // For process, it is that user's file that cannot be read: only Ann is stopped.
        let pack = try Linter.load(temporary.pack).get()
        #expect(pack.userFileProblems(for: "ann@contoso.com")?.first?.contains("outside") == true)
        #expect(pack.userFileProblems(for: "dan@contoso.com") == nil)
    }

    @Test func aFIFOOrADeviceIsRefusedWithoutBlocking() throws {
        let temporary = try TemporaryPack()
        #expect(mkfifo(temporary.pack + "/x.yaml", 0o600) == 0)
        let started = Date()
        do {
            _ = try Linter.lint(paths: [temporary.pack])
            Issue.record("a FIFO was read")
        } catch {
            #expect(error.description == temporary.pack + "/x.yaml: is a FIFO, not a regular file; only regular files are read")
        }
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(throws: PackReadError.self) { try PackLoader.read("/dev/zero") }
        #expect(throws: PackReadError.self) { try PackLoader.read(temporary.pack) }
    }

    @Test func aFileOverTheLimitIsRefusedWithoutReadingItWhole() throws {
        let temporary = try TemporaryPack()
        let path = temporary.pack + "/huge.yaml"
        #expect(FileManager.default.createFile(atPath: path, contents: Data("# x\n".utf8)))
        #expect(truncate(path, off_t(PackLoader.maxFileBytes + 1)) == 0)
        #expect(throws: PackReadError(path: path, reason: "is larger than the limit of \(PackLoader.maxFileBytes) bytes", overLimit: true)) {
            try PackLoader.read(path)
        }
        // The limit is where reading stops: 10 bytes of a 1 MiB file.
        #expect(throws: PackReadError.self) { try PackLoader.bytes(of: path, limit: 10) }
    }

    // MARK: A user file speaks only for its mailbox

    @Test func aUserFileThatClaimsAnotherMailboxIsAnErrorAndNeverApplied() throws {
        let temporary = try TemporaryPack()
        try temporary.write("users/bob@contoso.com.yaml", "mailbox: dan@contoso.com\nblocklist:\n  add:\n    - fabrikam.com\n")
        let result = try Linter.lint(paths: [temporary.pack])
        #expect(result.diagnostics.map { "\($0.location.line):\($0.check): \($0.message)" } == [
            "1:user-overstep: 'bob@contoso.com.yaml' speaks only for bob@contoso.com, not for 'dan@contoso.com'; a user file applies to the mailbox it is named after",
        ])
        let pack = try Linter.load(temporary.pack).get()
        #expect(pack.user("dan@contoso.com") == nil)
        #expect(pack.user("bob@contoso.com") == nil)
        #expect(pack.userFileProblems(for: "bob@contoso.com") != nil)
        #expect(pack.userFileProblems(for: "dan@contoso.com") == nil)
        #expect(pack.user("ann@contoso.com") != nil)
    }

    @Test func twoFilesForOneMailboxAreAnErrorAndNeitherApplies() throws {
        let temporary = try TemporaryPack()
        try temporary.write("users/Ann@contoso.com.yaml", "mailbox: Ann@contoso.com\nblocklist:\n  add:\n    - fabrikam.com\n")
        let result = try Linter.lint(paths: [temporary.pack])
        #expect(result.errorCount == 1)
        #expect(result.diagnostics.first?.message.contains("a second user file for ann@contoso.com") == true)
        #expect(result.diagnostics.first?.related != nil)
        let pack = try Linter.load(temporary.pack).get()
        #expect(pack.user("ann@contoso.com") == nil)
        #expect(pack.userFileProblems(for: "ANN@contoso.com") != nil)
        // A file not named after an address applies to no one.
        try FileManager.default.removeItem(atPath: temporary.pack + "/users/Ann@contoso.com.yaml")
        try temporary.write("users/dan.yaml", "mailbox: dan@contoso.com\n")
        #expect(try Linter.lint(paths: [temporary.pack]).diagnostics.first?.message.contains("is not an email address") == true)
        #expect(try Linter.load(temporary.pack).get().user("dan@contoso.com") == nil)
    }

    // MARK: One mailbox reads its own user file only

    /// The user files that speak for a mailbox: its name in any case, `.yaml` or `.yml`, an
    /// internationalised domain in either form; never another mailbox's, nor a name that is
    /// no address.
    @Test func theUserFilesOfAMailboxAreTheOnesNamedAfterIt() {
        let paths = ["p/users/ann@contoso.com.yaml", "p/users/Ann@Contoso.COM.yml", "p/users/anna@contoso.com.yaml",
                     "p/users/bob@contoso.com.yaml", "p/users/ann@contoso.co.yaml", "p/users/ann.yaml", "p/users/ann@contoso.com",
                     "p/users/jo@bücher.example.yaml", "p/users/jo@xn--bcher-kva.example.yaml", "p/users/JO@BÜCHER.example.yaml"]
        #expect(PackLoader.userFiles(paths, of: "ann@contoso.com") == ["p/users/ann@contoso.com.yaml", "p/users/Ann@Contoso.COM.yml", "p/users/ann@contoso.com"])
        #expect(PackLoader.userFiles(paths, of: "ANN@contoso.com") == PackLoader.userFiles(paths, of: "ann@contoso.com"))
        #expect(PackLoader.userFiles(paths, of: "bob@contoso.com") == ["p/users/bob@contoso.com.yaml"])
        #expect(PackLoader.userFiles(paths, of: "carl@contoso.com").isEmpty)
        #expect(PackLoader.userFiles(paths, of: "Jo@Bücher.example")
                == ["p/users/jo@bücher.example.yaml", "p/users/jo@xn--bcher-kva.example.yaml", "p/users/JO@BÜCHER.example.yaml"])
        // A file is chosen exactly when the full load would apply it to that mailbox: names
        // that normalise by more than lower-casing (a trailing dot or space, a tab, a bracket),
        // and non-ASCII names in NFC or NFD, included.
        let tricky = paths + ["p/users/ann@contoso.com..yaml", "p/users/ann@contoso.com .yaml", "p/users/ann@contoso.com\t.yaml",
                              "p/users/ANN@CONTOSO.COM.yaml", "p/users/[ann@contoso.com].yaml", "p/users/ann@contoso.com.",
                              "p/users/j\u{00F6}@x.example.yaml", "p/users/jo\u{0308}@x.example.yaml", "p/users/j\u{00D6}@x.example.yaml",
                              "p/users/\u{FF41}nn@contoso.com.yaml", "p/users/ann@\u{FF43}ontoso.com.yaml", "p/users/.yaml", "p/users/@.yaml",
                              "p/users/a`b@x.example.yaml", "p/users/\u{212A}en@contoso.com.yaml"]
        let mailboxes = ["ann@contoso.com", "Ann@Contoso.com", "j\u{00F6}@x.example", "jo\u{0308}@X.example", "jo@bücher.example", "bob@contoso.com",
                         "a\u{1FEF}b@x.example"]
        for mailbox in mailboxes {
            let wanted = CompiledList.normalize(mailbox, kind: .addresses)
            let chosen = PackLoader.userFiles(tricky, of: mailbox)
            for path in tricky {
                #expect(chosen.contains(path) == (PackLoader.mailbox(ofUserFile: path) == wanted), "\(mailbox): \(path)")
            }
        }
    }

    /// A rule file whose name is not UTF-8 is an error naming it (with U+FFFD), never a file
    /// skipped in silence nor one opened by another name; another mailbox's such file is not
    /// even listed for Ann.
    @Test func aRuleFileNamedInBytesThatAreNotUTF8IsNamed() throws {
        let temporary = try TemporaryPack()
        let bad = temporary.pack + "/users/b\u{FFFD}b@contoso.com.yaml"
        let name = (Array((temporary.pack + "/users/b").utf8) + [0xFF] + Array("b@contoso.com.yaml".utf8)).map { CChar(bitPattern: $0) } + [0]
        let descriptor = open(name, O_WRONLY | O_CREAT, 0o644)
        #expect(descriptor >= 0)
        close(descriptor)
        for load in [{ _ = try Linter.lint(paths: [temporary.pack]) }, { _ = try Linter.load(temporary.pack) }] as [() throws -> Void] {
            do {
                try load()
                Issue.record("a file named in bytes that are not UTF-8 went unnoticed")
            } catch let error as PackReadError {
                #expect(error.path == bad && error.reason.contains("not UTF-8"), "\(error)")
            }
        }
        #expect(try Linter.load(temporary.pack, mailbox: "ann@contoso.com").get().user("ann@contoso.com") != nil)
    }

    /// A user's removal takes away an org entry: an address or subdomain the org blocks by a
    /// broader entry (`newsletters.example`) was accepted and changed nothing; now an error
    /// naming the entry that blocks it. Exact entries, in any case, are removed as before.
    @Test func aRemovalUnderABroaderOrgEntryIsAnError() throws {
        let temporary = try TemporaryPack()
        let org = temporary.pack + "/org.yaml"
        try String(contentsOfFile: org, encoding: .utf8).replacing("users_may_remove_org_entries: false", with: "users_may_remove_org_entries: true")
            .write(toFile: org, atomically: true, encoding: .utf8)
        try temporary.write("users/bob@contoso.com.yaml",
                            "mailbox: bob@contoso.com\nblocklist:\n  remove:\n    - news@newsletters.example\n    - mail.newsletters.example\n    - mailer.example\n    - NoReply@Fabrikam.com\n")
        let result = try Linter.lint(paths: [temporary.pack])
        let errors = result.diagnostics.filter { $0.severity == .error }
        #expect(errors.map(\.location.line) == [4, 5], "\(errors.map(\.message))")
        #expect(errors.allSatisfy { $0.check == "user-overstep" && $0.message.contains("is blocked by the org entry 'newsletters.example'") })
    }

    /// A rule file whose extension is YAML's in capitals is read by no command; `lint` names
    /// each such file of the pack folder and of users/ (nothing else: other files, the tests
    /// folder, correctly named files), and a folder of nothing else says why it is empty.
    @Test func aRuleFileWithAnUpperCaseExtensionIsNamedByLint() throws {
        let temporary = try TemporaryPack()
        try temporary.write("Blocklist.YAML", "lists: {}\n")
        try temporary.write("extra.Yml", "lists: {}\n")
        try temporary.write("notes.yaml.bak", "")
        try temporary.write("README.md", "")
        try temporary.write("users/ANN@contoso.com.YML", "mailbox: ann@contoso.com\n")
        try temporary.write("tests/Case.YAML", "")
        let ignored = [temporary.pack + "/Blocklist.YAML", temporary.pack + "/extra.Yml", temporary.pack + "/users/ANN@contoso.com.YML"]
        #expect(PackLoader.ignoredFiles(at: temporary.pack) == ignored)
        #expect(PackLoader.ignoredFiles(at: temporary.pack + "/org.yaml").isEmpty, "a file named explicitly is read whatever its name")
        let result = try Linter.lint(paths: [temporary.pack])
        let warned = result.diagnostics.filter { $0.check == LintCheck.ignoredFile.id }
        #expect(warned.map(\.location.path) == ignored)
        #expect(warned.allSatisfy { $0.severity == .warning && $0.message.contains("rename it") })
        // What process reads is unchanged: the pack as if those files were not there.
        #expect(try Linter.load(temporary.pack, mailbox: "ann@contoso.com").get().user("ann@contoso.com") != nil)

        let empty = temporary.folder + "/empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        try "lists: {}\n".write(toFile: empty + "/Org.YAML", atomically: false, encoding: .utf8)
        do {
            _ = try Linter.lint(paths: [empty])
            Issue.record("a folder of upper-case YAML files linted as a pack")
        } catch {
            #expect(error.reason.contains("no rule files") && error.reason.contains(empty + "/Org.YAML"), "\(error)")
        }
    }

    /// A pack of user files alone still loads for a mailbox without one (the org defaults),
    /// as it did when every user file was read.
    @Test func aPackOfUserFilesAloneLoadsForAnyMailbox() throws {
        let temporary = try TemporaryPack()
        for file in ["org.yaml", "policy.yaml", "lists.yaml"] { try FileManager.default.removeItem(atPath: temporary.pack + "/" + file) }
        #expect(throws: Never.self) { try Linter.load(temporary.pack, mailbox: "bob@contoso.com") }
        #expect(throws: Never.self) { try Linter.load(temporary.pack) }
        try FileManager.default.removeItem(atPath: temporary.pack + "/users/ann@contoso.com.yaml")
        #expect(throws: PackReadError.self) { try Linter.load(temporary.pack, mailbox: "bob@contoso.com") }
    }

    /// Loading for one mailbox gives that mailbox what loading every user file gives it: its
    /// layer, or its problems (a broken file, two files, a file claiming another mailbox), from
    /// YAML and from the cache; another mailbox's broken or unreadable file is not read.
    @Test func loadingForOneMailboxGivesItWhatTheWholePackGives() throws {
        let temporary = try TemporaryPack()
        try temporary.write("users/bob@contoso.com.yaml", "mailbox: bob@contoso.com\nblocklist:\n  add:\n    - fabrikam.com\nsettings:\n  category: Sales\n")
        try temporary.write("users/carl@contoso.com.yaml", "mailbox: carl@contoso.com\nblocklist:\n  remove:\n    - spam.example\n")
        try temporary.write("users/dan@contoso.com.yaml", "mailbox: dan@contoso.com\n")
        try temporary.write("users/Dan@Contoso.com.yml", "mailbox: dan@contoso.com\nblocklist:\n  add:\n    - x.example\n")
        try temporary.write("users/erin@contoso.com.yaml", "mailbox: fred@contoso.com\n")
        let whole = try Linter.load(temporary.pack).get()
        let cache = MemoryPackCache()
        for mailbox in ["ann@contoso.com", "Bob@contoso.com", "carl@contoso.com", "dan@contoso.com", "erin@contoso.com", "fred@contoso.com", "gail@contoso.com"] {
            for round in 0..<2 {
                let one = try Linter.load(temporary.pack, cache: cache, mailbox: mailbox).get()
                #expect(one.userFileProblems(for: mailbox) == whole.userFileProblems(for: mailbox), "\(mailbox) \(round)")
                #expect(one.user(mailbox).map { CompiledPackFormat.encodeUsers(["m": $0], of: one) }
                        == whole.user(mailbox).map { CompiledPackFormat.encodeUsers(["m": $0], of: whole) }, "\(mailbox) \(round)")
                #expect(one.users.count <= 1 && one.brokenUsers.count <= 1, "\(mailbox): no other mailbox's file")
            }
        }
        #expect(whole.user("bob@contoso.com") != nil && whole.userFileProblems(for: "carl@contoso.com") != nil
                && whole.userFileProblems(for: "dan@contoso.com") != nil && whole.userFileProblems(for: "erin@contoso.com") != nil)
        // Ann's and Bob's layers were each compiled once and then read back.
        #expect(cache.userEntries.count == 2 && cache.userHits == 2)
        // Another mailbox's file that cannot be read at all (a FIFO) does not stop Ann.
        mkfifo(temporary.pack + "/users/hal@contoso.com.yaml", 0o600)
        let ann = try Linter.load(temporary.pack, cache: cache, mailbox: "ann@contoso.com").get()
        #expect(ann.user("ann@contoso.com") != nil && ann.brokenUsers.isEmpty)
        #expect(try Linter.load(temporary.pack, mailbox: "hal@contoso.com").get().userFileProblems(for: "hal@contoso.com") != nil)
    }

    // MARK: One bad user file does not stop the org

    @Test func aBrokenUserFileStopsOnlyItsMailbox() throws {
        let temporary = try TemporaryPack()
        let cache = MemoryPackCache()
        try temporary.write("users/carl@contoso.com.yaml", "mailbox: carl@contoso.com\nblocklist:\n  remove:\n    - spam.example\n")
        // lint still reports it...
        let result = try Linter.lint(paths: [temporary.pack])
        #expect(result.errorCount == 1 && result.diagnostics.first?.location.path.hasSuffix("carl@contoso.com.yaml") == true)
        // ...but the pack loads for everyone else, Ann's own layer included.
        let pack = try Linter.load(temporary.pack, cache: cache).get()
        #expect(pack.user("ann@contoso.com") != nil)
        #expect(pack.userFileProblems(for: "ann@contoso.com") == nil)
        let problems = try #require(pack.userFileProblems(for: "Carl@Contoso.com"))
        #expect(problems.count == 1 && problems[0].contains("carl@contoso.com.yaml:4:7") && problems[0].contains("[user-overstep]"))
        // The org layer is cached; the user files' layers are not, while one of them is broken.
        #expect(cache.entries.count == 1 && cache.userEntries.isEmpty)
        let again = try Linter.load(temporary.pack, cache: cache).get()
        #expect(cache.orgHits == 1 && cache.userHits == 0)
        #expect(again.user("ann@contoso.com") != nil && again.userFileProblems(for: "carl@contoso.com") == problems)
        // Loaded for Ann alone, Carl's file is not even read; for Carl, it stops him.
        let annOnly = try Linter.load(temporary.pack, cache: cache, mailbox: "Ann@Contoso.com").get()
        #expect(annOnly.user("ann@contoso.com") != nil && annOnly.userFileProblems(for: "carl@contoso.com") == nil)
        #expect(cache.userEntries.count == 1, "Ann's layer alone is whole, and cached")
        let carlOnly = try Linter.load(temporary.pack, cache: cache, mailbox: "carl@contoso.com").get()
        #expect(carlOnly.userFileProblems(for: "carl@contoso.com") == problems && carlOnly.users.isEmpty)
        // An error in an org file still stops the whole pack.
        try temporary.write("lists.yaml", "lists: [")
        if case .success = try Linter.load(temporary.pack) { Issue.record("a broken org file loaded") }
    }

    // MARK: Evaluation is bounded in memory and steps

    func packWithRule(_ when: String) throws -> (RulePack, TemporaryPack) {
        let temporary = try TemporaryPack()
        let policy = try String(contentsOfFile: temporary.pack + "/policy.yaml", encoding: .utf8)
        let rule = "rules:\n  - id: huge\n    description: Builds a value.\n    when: '\(when)'\n    then: skip\n"
        try temporary.write("policy.yaml", policy.replacingOccurrences(of: "rules:\n", with: rule))
        let result = try Linter.lint(paths: [temporary.pack])
        #expect(result.errorCount == 0, "\(result.diagnostics.map(\.message))")
        return (try Linter.load(temporary.pack).get(), temporary)
    }

    func crowdedFacts(_ pack: RulePack, recipients: Int, bodyBytes: Int) throws -> FactObject {
        var builder = FactsBuilder(settings: pack.settings(for: "ann@contoso.com"))
        builder.message["body"] = .string(String(repeating: "x", count: bodyBytes))
        builder.participants = (0..<recipients).map { FactsBuilder.person("r\($0)@example.com") }
        return try builder.build()
    }

    @Test func aRuleThatBuildsGigabytesFailsAtOnceNamingItsPlace() throws {
        let (pack, temporary) = try packWithRule("size(join(participants.map(p, message.body), \"\")) > 0")
        let facts = try crowdedFacts(pack, recipients: 1_000, bodyBytes: 10 << 20)
        let started = Date()
        do {
            _ = try pack.evaluate(facts)
            Issue.record("10 GB were joined")
        } catch {
            #expect(error.budget == .bytes)
            #expect(error.rule == "huge")
            #expect(error.location == SourceLocation(path: temporary.pack + "/policy.yaml", line: 7, column: 17))
            #expect(error.description == "\(temporary.pack)/policy.yaml:7:17: rule 'huge': evaluation would build more than 128 MiB of values on this message")
        }
        #expect(Date().timeIntervalSince(started) < 5)
        // The same rule on a small message decides.
        #expect(try pack.evaluate(try crowdedFacts(pack, recipients: 3, bodyBytes: 100)).0.deciding?.id == "huge")
    }

    @Test func everyWayOfBuildingIsCharged() throws {
        let facts = try crowdedFacts(try Linter.load(Paths.rules).get(), recipients: 200, bodyBytes: 1 << 16)
        for text in ["size(message.body + message.body) > 0", "size(lower(message.body)) > 0", "size(upper(message.body)) > 0",
                     "size(join(participants.map(p, message.body), \",\")) > 0",
                     "size(participants.map(p, participants.map(q, q.address))) > 0",
                     "size(participants.filter(p, size(participants.filter(q, true)) > 0)) > 0",
                     "size([message.body, message.body, message.body]) > 0"] {
            let (compiled, diagnostics) = compile(text)
            #expect(diagnostics.isEmpty, "\(text): \(diagnostics.map(\.message))")
            let node = try #require(compiled.node)
            var tight = Evaluator(facts: facts, slots: compiled.slots, byteLimit: 40)
            #expect(throws: EvaluationError.self, "\(text)") { try tight.evaluate(node) }
            var roomy = Evaluator(facts: facts, slots: compiled.slots)
            #expect(try roomy.evaluate(node) == .bool(true), "\(text)")
        }
    }

    @Test func theStepBudgetErrorNamesTheRuleToo() throws {
        let (pack, temporary) = try packWithRule("participants.any(p, participants.any(q, participants.any(r, r.address == \"x\")))")
        let facts = try crowdedFacts(pack, recipients: 200, bodyBytes: 10)
        do {
            _ = try pack.evaluate(facts)
            Issue.record("8 million steps ran")
        } catch {
            #expect(error.budget == .steps)
            // The place is the macro that went over, inside the rule's condition on line 7.
            #expect(error.description.hasPrefix("\(temporary.pack)/policy.yaml:7:"))
            #expect(error.description.hasSuffix(": rule 'huge': evaluation took more than 1000000 steps on this message"))
        }
    }
}
