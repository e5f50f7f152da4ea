import Foundation
import Testing
@testable import mailsave

/// `mailsave diff`: a policy preview of two packs over the sample mailbox.
@Suite struct DiffCommandTests {
    static let base = ["diff", "--mailbox", "ann@contoso.com", "--crm", "examples/crm", "--eml", "examples/messages"]

    /// A copy of the shipped pack with one line of org.yaml changed.
    func pack(_ folder: URL, replacing old: String, with new: String) throws -> String {
        let pack = folder.appendingPathComponent("rules")
        try FileManager.default.copyItem(at: Binary.packageRoot.appendingPathComponent("rules"), to: pack)
        let org = pack.appendingPathComponent("org.yaml")
        let text = try String(contentsOf: org, encoding: .utf8)
        try #require(text.contains(old))
        try text.replacing(old, with: new).write(to: org, atomically: true, encoding: .utf8)
        return pack.path
    }

    @Test func identicalPacksChangeNothing() throws {
        let result = try Binary.run(Self.base + ["--old", "rules", "--new", "rules", "--fail-on", "verdict"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("0 of 12 messages change (0 verdicts)"))
        let json = try Binary.run(Self.base + ["--old", "rules", "--new", "rules", "--format", "json", "--fail-on", "any"])
        #expect(json.status == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect((object["changes"] as? [Any])?.isEmpty == true)
        let verdicts = ((object["summary"] as? [String: Any])?["verdicts"] as? [[String: Any]]) ?? []
        #expect(verdicts.allSatisfy { $0["from"] as? String == $0["to"] as? String })
        #expect(verdicts.reduce(0) { $0 + ($1["count"] as? Int ?? 0) } == 12)
    }

    /// A preview of no message is refused (exit 3): a CI job given a wrong folder, or a
    /// Maildir as --eml, must not pass having compared nothing. `batch` says so on standard
    /// error and goes on (an empty mailbox has nothing new to save).
    @Test func noMessageToCompareIsAnErrorAndAnEmptyBatchSaysSo() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mailsave-empty-\(UUID().uuidString)")
        let maildir = folder.appendingPathComponent("md")
        for sub in ["cur", "new", "tmp"] { try FileManager.default.createDirectory(at: maildir.appendingPathComponent(sub), withIntermediateDirectories: true) }
        try Data("From: a@fabrikam.com\r\n\r\nhi\r\n".utf8).write(to: maildir.appendingPathComponent("cur/1.host:2,S"))
        let empty = folder.appendingPathComponent("empty.mbox")
        try Data().write(to: empty)
        defer { try? FileManager.default.removeItem(at: folder) }
        let common = ["--mailbox", "ann@contoso.com", "--crm", "examples/crm"]
        let diff = try Binary.run(["diff", "--old", "rules", "--new", "rules", "--fail-on", "verdict"] + common + ["--eml", maildir.path])
        #expect(diff.status == 3)
        #expect(diff.stdout.isEmpty)
        #expect(diff.stderr == "mailsave: \(maildir.path): no message found (it looks like a Maildir: give --maildir \(maildir.path)); nothing to compare\n")
        let fromMbox = try Binary.run(["diff", "--old", "rules", "--new", "rules"] + common + ["--mbox", empty.path])
        #expect(fromMbox.status == 3 && fromMbox.stderr == "mailsave: \(empty.path): no message found; nothing to compare\n", "\(fromMbox.stderr)")
        let batch = try Binary.run(["batch", "--quiet"] + common + ["--eml", maildir.path])
        #expect(batch.status == 0)
        #expect(batch.stdout.contains("\"messages\":0"))
        #expect(batch.stderr == "mailsave: \(maildir.path): no message found (it looks like a Maildir: give --maildir \(maildir.path))\n")
        let right = try Binary.run(["diff", "--old", "rules", "--new", "rules"] + common + ["--maildir", maildir.path])
        #expect(right.status == 0 && right.stdout.contains("0 of 1 message change (0 verdicts)"), "\(right.stdout)\(right.stderr)")
    }

    /// A change that adds the mailbox's domain to the corporate domains can be previewed:
    /// only the new pack must count the mailbox as the org's.
    @Test func theNewPackAloneMustKnowTheMailbox() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mailsave-corp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let without = folder.appendingPathComponent("rules").path
        try FileManager.default.copyItem(atPath: Binary.packageRoot.appendingPathComponent("rules").path, toPath: without)
        let lists = without + "/lists.yaml"
        try String(contentsOfFile: lists, encoding: .utf8).replacing("      - contoso.com\n", with: "").write(toFile: lists, atomically: true, encoding: .utf8)
        // eve@contoso.com is no User of the sample CRM: only a corporate domain makes her the org's.
        let eve = Self.base.map { $0 == "ann@contoso.com" ? "eve@contoso.com" : $0 }
        let added = try Binary.run(eve + ["--old", without, "--new", "rules"])
        #expect(added.status == 0, "\(added.stderr)")
        let removed = try Binary.run(eve + ["--old", "rules", "--new", without])
        #expect(removed.status == 2 && removed.stderr.contains("is not in the corporate domains of \(without)"), "\(removed.stderr)")
    }

    @Test func outboundOnlyStopsExactlyTheInboundSaves() throws {
        let folder = try Mailboxes.temporaryFolder("diff")
        defer { try? FileManager.default.removeItem(at: folder) }
        let new = try pack(folder, replacing: "outbound_only: false", with: "outbound_only: true")
        let result = try Binary.run(Self.base + ["--old", "rules", "--new", new, "--format", "json"])
        #expect(result.status == 0, "\(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let changes = try #require(object["changes"] as? [[String: Any]])
        let shown = changes.map { change -> String in
            let old = change["old"] as? [String: Any] ?? [:], new = change["new"] as? [String: Any] ?? [:]
            let name = ((change["position"] as? String ?? "") as NSString).lastPathComponent
            return "\(name) \(old["verdict"] ?? "")/\(old["rule"] ?? "") -> \(new["verdict"] ?? "")/\(new["rule"] ?? "") "
                + ((change["changed"] as? [String]) ?? []).joined(separator: ",")
        }
        #expect(shown == [
            "01-customer-question.eml save/general-mode -> skip/outbound-only verdict,save_as,links,category",
            "04-case-thread.eml save/case-thread -> skip/outbound-only verdict,save_as,links,category",
            "08-gmail-prospect.eml save/general-mode -> skip/outbound-only verdict,save_as,links,category",
            "10-out-of-office.eml save/general-mode -> skip/outbound-only verdict,save_as,links,category",
            "11-reply-to-salesforce-email.eml save/magic-anchor -> skip/outbound-only verdict,save_as,links,category",
        ])
        let summary = try #require(object["summary"] as? [String: Any])
        #expect(summary["changed"] as? Int == 5)
        #expect(summary["verdicts_changed"] as? Int == 5)
        let failing = try Binary.run(Self.base + ["--old", "rules", "--new", new, "--fail-on", "verdict"])
        #expect(failing.status == 1)
    }

    @Test func aSaveAsChangeIsListedWithoutAVerdictChange() throws {
        let folder = try Mailboxes.temporaryFolder("diff-saveas")
        defer { try? FileManager.default.removeItem(at: folder) }
        let new = try pack(folder, replacing: "  save_as: Task\n", with: "  save_as: EmailMessage\n")
        let result = try Binary.run(Self.base + ["--old", "rules", "--new", new, "--fail-on", "verdict"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("  save as   Task → EmailMessage"))
        #expect(result.stdout.contains("(0 verdicts)"))
        #expect(try Binary.run(Self.base + ["--old", "rules", "--new", new, "--fail-on", "any"]).status == 1)
    }

    @Test func markdownForAPullRequest() throws {
        let folder = try Mailboxes.temporaryFolder("diff-md")
        defer { try? FileManager.default.removeItem(at: folder) }
        let new = try pack(folder, replacing: "outbound_only: false", with: "outbound_only: true")
        let result = try Binary.run(Self.base + ["--old", "rules", "--new", new, "--format", "markdown"])
        #expect(result.status == 0, "\(result.stderr)")
        let golden = """
            ### mailsave diff: 5 of 12 messages change (5 verdicts)

            Old pack `rules`, new pack `\(new)`.

            | message | subject | verdict | rule | save as | links | category |
            | --- | --- | --- | --- | --- | --- | --- |
            | `01-customer-question.eml` | Quote for 20 licences | save → **skip** | general-mode → outbound-only | Task → **-** | 0035e00000Bob01 0065e00000Opp01 → **-** | CRM → **-** |
            | `04-case-thread.eml` | Re: Case 00001042: login fails \\[ ref:\\_00D5e0ABC.\\_5005e0XY... | save → **skip** | case-thread → outbound-only | Task → **-** | 0035e00000Car01 5005e00000Cas01 → **-** | CRM → **-** |
            | `08-gmail-prospect.eml` | Anfrage zu Lizenzen für München | save → **skip** | general-mode → outbound-only | Task → **-** | 00Q5e00000Kim01 → **-** | CRM → **-** |
            | `10-out-of-office.eml` | Automatic reply: Signed order form | save → **skip** | general-mode → outbound-only | Task → **-** | 0035e00000Bob01 0065e00000Opp01 → **-** | CRM → **-** |
            | `11-reply-to-salesforce-email.eml` | Re: Your trial licence | save → **skip** | magic-anchor → outbound-only | Task → **-** | 0035e00000Bob01 → **-** | CRM → **-** |

            | from | to | messages |
            | --- | --- | ---: |
            | **save** | **skip** | 5 |
            | unsupported | unsupported | 3 |
            | blocked | blocked | 2 |
            | save | save | 1 |
            | skip | skip | 1 |

            """
        #expect(result.stdout == golden)
    }

    /// --old-rev reads the pack at a git revision; a missing revision or no repository is a clear error.
    @Test func theOldPackFromAGitRevision() throws {
        let repository = try Mailboxes.temporaryFolder("diff-git")
        defer { try? FileManager.default.removeItem(at: repository) }
        func git(_ arguments: [String]) throws { try GitRepository(folder: repository).run(arguments) }
        try git(["init", "-q", "-b", "main"])
        let policy = repository.appendingPathComponent("policy")
        try FileManager.default.createDirectory(at: policy, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: Binary.packageRoot.appendingPathComponent("rules"), to: policy.appendingPathComponent("rules"))
        try git(["add", "."])
        try git(["commit", "-q", "-m", "pack"])
        let org = policy.appendingPathComponent("rules/org.yaml")
        try String(contentsOf: org, encoding: .utf8).replacing("outbound_only: false", with: "outbound_only: true")
            .write(to: org, atomically: true, encoding: .utf8)
        let cache = repository.appendingPathComponent("cache").path
        func diff(_ arguments: [String], in folder: URL) throws -> Binary.Result {
            try Binary.launch(Binary.path, ["diff", "--mailbox", "ann@contoso.com", "--crm", Binary.packageRoot.appendingPathComponent("examples/crm").path,
                                            "--eml", Binary.packageRoot.appendingPathComponent("examples/messages").path] + arguments,
                              directory: folder, environment: ["MAILSAVE_CACHE_DIR": cache])
        }
        // From the repository's top and from a subfolder: the same pack at main.
        let top = try diff(["--old-rev", "main", "--new", "policy/rules", "--fail-on", "verdict"], in: repository)
        #expect(top.status == 1, "\(top.stderr)")
        // The pack checked out for the run is compiled, not cached (its folder is gone after
        // the run): the cache holds the new pack's org entry and Ann's entry only.
        let entries = try FileManager.default.contentsOfDirectory(atPath: cache)
        #expect(entries.filter { $0.hasSuffix(".pack") }.count == 1 && entries.filter { $0.hasSuffix(".user") }.count == 1, "\(entries)")
        #expect(top.stdout.contains("old  policy/rules at main"))
        #expect(top.stdout.contains("5 of 12 messages change (5 verdicts)"))
        let inside = try diff(["--old-rev", "main", "--new", "rules"], in: policy)
        #expect(inside.status == 0, "\(inside.stderr)")
        #expect(inside.stdout.contains("5 of 12 messages change (5 verdicts)"))
        // The working tree against itself at HEAD after committing: nothing.
        try git(["commit", "-q", "-am", "outbound only"])
        #expect(try diff(["--old-rev", "HEAD", "--new", "policy/rules"], in: repository).stdout.contains("0 of 12 messages change"))
        let before = try diff(["--old-rev", "HEAD~1", "--new", "policy/rules", "--format", "markdown"], in: repository)
        #expect(before.stdout.hasPrefix("### mailsave diff: 5 of 12 messages change (5 verdicts)"))
        let missing = try diff(["--old-rev", "no-such-branch", "--new", "policy/rules"], in: repository)
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("--old-rev no-such-branch: no such revision in"))
        let absent = try diff(["--old-rev", "main", "--old", "policy/elsewhere", "--new", "policy/rules"], in: repository)
        #expect(absent.status == 3)
        #expect(absent.stderr == "mailsave: policy/elsewhere: no such folder at revision main\n")
        let outside = try Mailboxes.temporaryFolder("diff-nogit")
        defer { try? FileManager.default.removeItem(at: outside) }
        // The repository is the pack's, not the current folder's: from a folder outside it.
        let elsewhere = try diff(["--old-rev", "HEAD~1", "--new", policy.appendingPathComponent("rules").path], in: outside)
        #expect(elsewhere.status == 0 && elsewhere.stdout.contains("5 of 12 messages change (5 verdicts)"), "\(elsewhere.stderr)")
        try FileManager.default.copyItem(at: Binary.packageRoot.appendingPathComponent("rules"), to: outside.appendingPathComponent("rules"))
        let noRepository = try diff(["--old-rev", "main", "--new", "rules"], in: outside)
        #expect(noRepository.status == 3)
        #expect(noRepository.stderr.contains("not inside a git repository"))
    }

    /// A pack folder whose name git would read as pathspec magic (`:rules`) is that folder,
    /// not `rules/` with each path cut wrong; `:/text` names the commit whose message has it.
    @Test func aPackNamedLikePathspecMagicIsThatFolder() throws {
        let repository = try Mailboxes.temporaryFolder("diff-magic")
        defer { try? FileManager.default.removeItem(at: repository) }
        let git = GitRepository(folder: repository)
        try git.run(["init", "-q", "-b", "main"])
        try FileManager.default.copyItem(at: Binary.packageRoot.appendingPathComponent("rules"), to: repository.appendingPathComponent(":rules"))
        try FileManager.default.copyItem(at: Binary.packageRoot.appendingPathComponent("rules"), to: repository.appendingPathComponent("rules"))
        let other = repository.appendingPathComponent("rules/org.yaml")
        try String(contentsOf: other, encoding: .utf8).replacing("outbound_only: false", with: "outbound_only: true")
            .write(to: other, atomically: true, encoding: .utf8)
        try git.run(["add", "--", "."])
        try git.run(["commit", "-q", "-m", "first pack"])
        try git.run(["commit", "-q", "--allow-empty", "-m", "later"])
        func diff(_ arguments: [String]) throws -> Binary.Result {
            try Binary.launch(Binary.path, ["diff", "--mailbox", "ann@contoso.com", "--crm", Binary.packageRoot.appendingPathComponent("examples/crm").path,
                                            "--eml", Binary.packageRoot.appendingPathComponent("examples/messages").path] + arguments,
                              directory: repository, environment: ["MAILSAVE_NO_CACHE": "1"])
        }
        for revision in ["HEAD", ":/first pack"] {
            let result = try diff(["--old-rev", revision, "--new", ":rules"])
            #expect(result.status == 0, "\(revision): \(result.stderr)")
            #expect(result.stdout.contains("0 of 12 messages change"), "\(revision): \(result.stdout)")
        }
    }

    /// diff decides against a store but never writes it, and the ledger stays as it was.
    @Test func theStoreIsNeverWritten() throws {
        let folder = try Mailboxes.temporaryFolder("diff-store")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try Mailboxes.store(in: folder)
        // What the store holds (the file's bytes may change when SQLite opens it read-write).
        func contents() throws -> [String] {
            try ["Task", "EmailMessage", "EmailMessageRelation", "Contact", "Lead"].map { try Binary.run(["crm", "export", "--store", store, "--object", $0]).stdout }
        }
        let before = try contents()
        let ledger = try Binary.run(["ledger", "reconcile", "--store", store]).stdout
        let result = try Binary.run(["diff", "--mailbox", "ann@contoso.com", "--store", store, "--mbox", "examples/mailbox.mbox",
                                     "--old", "rules", "--new", "rules"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try contents() == before)
        #expect(try Binary.run(["ledger", "reconcile", "--store", store]).stdout == ledger)
        #expect(try Binary.run(["diff", "--mailbox", "ann@contoso.com", "--store", folder.appendingPathComponent("none.sqlite").path,
                                "--eml", "examples/messages", "--old", "rules", "--new", "rules"]).status == 3)
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("none.sqlite").path))
        #expect(try Binary.run(["diff", "--mailbox", "ann@contoso.com", "--eml", "examples/messages", "--new", "rules"]).status == 2)
    }

    /// The text report shows what a pack (a pull request's, untrusted) or the CRM put in a
    /// line as text: a terminal escape, a line feed starting a GitHub Actions command of its
    /// own, an invisible character.
    @Test func aCategoryCannotEscapeTheTextReport() throws {
        let folder = try Mailboxes.temporaryFolder("diff-escape")
        defer { try? FileManager.default.removeItem(at: folder) }
        let new = try pack(folder, replacing: "  category: Salesforce\n",
                           with: "  category: \"CRM\\e]52;c;ZXZpbA==\\a\\e[2J\\n::error::pwn\\u200B\"\n")
        try FileManager.default.removeItem(atPath: new + "/users/ann@contoso.com.yaml")
        let result = try Binary.run(Self.base + ["--old", "rules", "--new", new])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(!result.stdout.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 || $0.value == 0x200B })
        #expect(!result.stdout.split(separator: "\n").contains { $0.hasPrefix("::") })
        #expect(result.stdout.contains("CRM\\u{1B}]52;c;ZXZpbA==\\u{7}\\u{1B}[2J\\u{A}::error::pwn\\u{200B}"))
    }

    /// A sender's Subject in the markdown for a pull request is text: it cannot open an HTML
    /// comment (which hid every later change), make a link or an image, mention anyone or
    /// end its cell.
    @Test func aSubjectCannotInjectMarkdown() throws {
        let cell = DiffReport.cell("<!-- hi [Approve now](https://evil.example/) ![x](y) @admins #12 | `code` </table>")
        #expect(cell == "\\<\\!-- hi \\[Approve now\\]\\(https:\u{200B}//evil.example/\\) \\!\\[x\\]\\(y\\) @\u{200B}admins \\#\u{200B}12 \\| \\`code\\` \\</table\\>")
        #expect(DiffReport.code("a`b|c.eml") == "a'b\\|c.eml")
        #expect(DiffReport.cell("see www.evil.example") == "see www\u{200B}.evil.example")
    }

    /// --old-rev copies the pack folder through one git process: 500 other files took one git
    /// each (24 s; 5,000 took 259 s), and a 1 GB file in the folder was held in memory whole.
    /// A rule file over the loader's 32 MiB is refused from git's listing, unread (exit 3, as
    /// the loader refuses it in a folder).
    @Test func aRevisionsOtherFilesAreNotCopiedAndAHugeRuleFileIsRefused() throws {
        let repository = try Mailboxes.temporaryFolder("diff-many")
        defer { try? FileManager.default.removeItem(at: repository) }
        let git = try GitRepository.withShippedPack(in: repository)
        let notes = repository.appendingPathComponent("r/notes")
        try FileManager.default.createDirectory(at: notes, withIntermediateDirectories: true)
        for index in 0..<500 { try "note \(index)\n".write(to: notes.appendingPathComponent("\(index).txt"), atomically: false, encoding: .utf8) }
        try git.run(["add", "r"])
        try git.run(["commit", "-q", "-m", "notes"])
        let arguments = ["diff", "--old-rev", "HEAD", "--new", "r", "--mailbox", "ann@contoso.com",
                         "--crm", Binary.packageRoot.appendingPathComponent("examples/crm").path, "--mbox", HostileUseTests.mbox]
        let started = Date()
        let same = try Binary.launch(Binary.path, arguments, directory: repository)
        #expect(same.status == 0, "\(same.stderr)")
        #expect(same.stdout.contains("0 of 12 messages change"), "\(same.stdout)")
        #expect(Date().timeIntervalSince(started) < 20)
        // A rule file over 32 MiB: refused by its size in the listing.
        let big = repository.appendingPathComponent("r/big.yaml")
        let handle = try #require(FileHandle(forWritingAtPath: { FileManager.default.createFile(atPath: big.path, contents: nil); return big.path }()))
        try handle.truncate(atOffset: UInt64(33 << 20))
        try handle.close()
        try git.run(["add", "r"])
        try git.run(["commit", "-q", "-m", "big"])
        let huge = try Binary.launch(Binary.path, arguments, directory: repository)
        #expect(huge.status == 3, "\(huge.stderr)")
        #expect(huge.stderr.contains("r/big.yaml: 34603008 bytes at HEAD, over the 33554432 a rule file may have"), "\(huge.stderr)")
    }

    /// Ctrl-C during a diff of a revision ends the run by the signal, and the pack copied from
    /// git is removed (it was left in the temporary folder).
    @Test func anInterruptedDiffLeavesNoCopyOfThePack() throws {
        let repository = try Mailboxes.temporaryFolder("diff-int")
        defer { try? FileManager.default.removeItem(at: repository) }
        try GitRepository.withShippedPack(in: repository)
        let original = String(decoding: try Mailboxes.files(["examples/messages/01-customer-question.eml"])[0], as: UTF8.self)
        let mbox = repository.appendingPathComponent("big.mbox")
        try Mailboxes.mbox((0..<6000).map { Data(original.replacing("<CAB1234567@mail.fabrikam.com>", with: "<m\($0)@fabrikam.com>").utf8) }).write(to: mbox)
        let spool = repository.appendingPathComponent("tmp")
        try FileManager.default.createDirectory(at: spool, withIntermediateDirectories: true)
        // Two jobs whatever the machine's cores: more would finish before the signal.
        let process = Mailboxes.process(["diff", "--old-rev", "HEAD", "--new", "r", "--mailbox", "ann@contoso.com", "--quiet", "--jobs", "2",
                                         "--crm", Binary.packageRoot.appendingPathComponent("examples/crm").path, "--mbox", mbox.path])
        process.currentDirectoryURL = repository
        process.environment?["TMPDIR"] = spool.path
        process.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        // Interrupted once the old revision's pack is copied out and the copy is whole (a
        // tenth of a second later), while the messages are compared: a fixed sleep from the
        // start let a fast build finish the 6,000 messages first.
        let deadline = Date().addingTimeInterval(60)
        while try process.isRunning && Date() < deadline && FileManager.default.contentsOfDirectory(atPath: spool.path).isEmpty { usleep(1_000) }
        usleep(100_000)
        try #require(process.isRunning)
        kill(process.processIdentifier, SIGINT)
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGINT, "\(stderr)")
        #expect(stderr.contains("mailsave: interrupted after"), "\(stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: spool.path).isEmpty)
    }

    /// A pack whose users/ is a link to another folder of it: the copy of the revision holds
    /// the link and what it leads to, so the same commit on both sides changes nothing.
    @Test func aRevisionsLinksAreCopiedWithWhatTheyLeadTo() throws {
        let repository = try Mailboxes.temporaryFolder("diff-users-link")
        defer { try? FileManager.default.removeItem(at: repository) }
        let git = GitRepository(folder: repository)
        try git.run(["init", "-q", "-b", "main"])
        let pack = repository.appendingPathComponent("pack")
        try FileManager.default.copyItem(at: Binary.packageRoot.appendingPathComponent("rules"), to: pack)
        try FileManager.default.moveItem(at: pack.appendingPathComponent("users"), to: pack.appendingPathComponent("people"))
        #expect(symlink("people", pack.appendingPathComponent("users").path) == 0)
        try git.run(["add", "pack"])
        try git.run(["commit", "-q", "-m", "pack"])
        let result = try Binary.launch(Binary.path, ["diff", "--old-rev", "HEAD", "--new", "pack", "--mailbox", "ann@contoso.com", "--fail-on", "any",
                                                     "--crm", Binary.packageRoot.appendingPathComponent("examples/crm").path, "--mbox", HostileUseTests.mbox],
                                       directory: repository)
        #expect(result.status == 0, "\(result.stderr)\n\(result.stdout)")
        #expect(result.stdout.contains("0 of 12 messages change"), "\(result.stdout)")
    }
}
