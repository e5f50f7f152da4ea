import Foundation
#if canImport(Glibc)
import Glibc
#endif
@testable import mailsave
import Testing

/// What a hostile or careless user found (a review that attacked the binary): each case
/// crashed, hung, wrote where it must not, or answered success for a failure.
@Suite struct HostileUseTests {
    static let process = ["process", "--mailbox", "ann@contoso.com", "--crm", Binary.packageRoot.appendingPathComponent("examples/crm").path]
    static let sample = Binary.packageRoot.appendingPathComponent("examples/messages/01-customer-question.eml").path
    static let mbox = Binary.packageRoot.appendingPathComponent("examples/mailbox.mbox").path
    static let batch = ["batch", "--mailbox", "ann@contoso.com", "--crm", Binary.packageRoot.appendingPathComponent("examples/crm").path,
                        "--rules", Binary.packageRoot.appendingPathComponent("rules").path, "--quiet"]

    /// `--store x` and `--out x` (one character, in the current folder) crashed in Foundation's
    /// path splitting (SIGILL).
    @Test func oneCharacterPathsWork() throws {
        let folder = try Mailboxes.temporaryFolder("one-character")
        defer { try? FileManager.default.removeItem(at: folder) }
        let saved = try Binary.launch(Binary.path, ["process", "--store", "x", "--mailbox", "ann@contoso.com", "--apply",
                                                    "--rules", Binary.packageRoot.appendingPathComponent("rules").path, Self.sample],
                                      directory: folder)
        #expect(saved.status == 0, "\(saved.stderr)")
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("x").path))
        let written = try Binary.launch(Binary.path, Self.batch + ["--mbox", Self.mbox, "--out", "y"], directory: folder)
        #expect(written.status == 0, "\(written.stderr)")
        #expect(try String(contentsOf: folder.appendingPathComponent("y"), encoding: .utf8).split(separator: "\n").count == 12)
        let dot = try Binary.launch(Binary.path, Self.batch + ["--mbox", Self.mbox, "--out", "."], directory: folder)
        #expect(dot.status == 3)
        #expect(dot.stderr == "mailsave: .: cannot write: it is a folder; give a file name\n")
    }

    /// `--out` replaced whatever was at the path with a new file: /dev/null itself (as root),
    /// a FIFO, a link. Now a device or FIFO is written to, and a link's file is written.
    @Test func outWritesThroughDevicesFIFOsAndLinks() throws {
        let folder = try Mailboxes.temporaryFolder("out-targets")
        defer { try? FileManager.default.removeItem(at: folder) }
        let null = try Binary.launch(Binary.path, Self.batch + ["--mbox", Self.mbox, "--out", "/dev/null"], directory: folder)
        #expect(null.status == 0, "\(null.stderr)")
        var info = stat()
        #expect(stat("/dev/null", &info) == 0 && info.st_mode & S_IFMT == S_IFCHR, "/dev/null is still a device")

        let fifo = folder.appendingPathComponent("fifo").path
        #expect(mkfifo(fifo, 0o600) == 0)
        let reader = Foundation.Process()
        reader.executableURL = URL(fileURLWithPath: "/bin/cat")
        reader.arguments = [fifo]
        let lines = Pipe()
        reader.standardOutput = lines
        try reader.run()
        let through = try Binary.launch(Binary.path, Self.batch + ["--mbox", Self.mbox, "--out", fifo], directory: folder)
        let read = String(decoding: lines.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        reader.waitUntilExit()
        #expect(through.status == 0, "\(through.stderr)")
        #expect(read.split(separator: "\n").count == 12)
        #expect(lstat(fifo, &info) == 0 && info.st_mode & S_IFMT == S_IFIFO, "the FIFO is still a FIFO")

        let file = folder.appendingPathComponent("decisions.jsonl").path
        let link = folder.appendingPathComponent("link").path
        #expect(FileManager.default.createFile(atPath: file, contents: Data("old\n".utf8)))
        #expect(symlink(file, link) == 0)
        let linked = try Binary.launch(Binary.path, Self.batch + ["--mbox", Self.mbox, "--out", link], directory: folder)
        #expect(linked.status == 0, "\(linked.stderr)")
        #expect(lstat(link, &info) == 0 && info.st_mode & S_IFMT == S_IFLNK, "the link is still a link")
        #expect(try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").count == 12)
    }

    /// Output that cannot be written (a full disk) is a failure, not a truncated success.
    @Test func aFullStandardOutputIsATemporaryFailure() throws {
        for arguments in [Self.process + [Self.sample], ["inspect", Self.sample], ["reference", "facts"]] {
            let process = Foundation.Process()
            process.executableURL = URL(fileURLWithPath: Binary.path)
            process.arguments = arguments
            process.currentDirectoryURL = Binary.packageRoot
            process.environment = Binary.environment
            process.standardOutput = FileHandle(forWritingAtPath: "/dev/full")
            let errors = Pipe()
            process.standardError = errors
            try process.run()
            let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus == 75, "\(arguments.first ?? ""): \(stderr)")
            #expect(stderr == "mailsave: cannot write the output: No space left on device\n", "\(arguments.first ?? "")")
        }
    }

    /// `--jobs` is bounded: 100,000 threads exhausted memory.
    @Test func jobsAreBounded() throws {
        for jobs in ["0", "257", "100000"] {
            let result = try Binary.run(Self.batch + ["--mbox", Self.mbox, "--jobs", jobs])
            #expect(result.status == 2)
            #expect(result.stderr.contains("--jobs must be from 1 to 256 (default: the number of cores), not \(jobs)"))
        }
        #expect(try Binary.run(Self.batch + ["--mbox", Self.mbox, "--jobs", "256"]).status == 0)
    }

    /// Input that is not an mbox is refused after its first MiB, not after the whole of it
    /// (which, from a pipe, may never end).
    @Test func endlessInputThatIsNotAnMboxIsRefusedEarly() throws {
        // The child stops reading after 1 MiB: writing the rest fails (EPIPE), which must
        // not kill the test process.
        signal(SIGPIPE, SIG_IGN)
        let process = Foundation.Process()
        process.executableURL = URL(fileURLWithPath: Binary.path)
        process.arguments = Self.batch + ["-"]
        process.currentDirectoryURL = Binary.packageRoot
        process.environment = Binary.environment
        let input = Pipe(), errors = Pipe()
        process.standardInput = input
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        try process.run()
        let started = ContinuousClock.now
        // 3 MiB, then the pipe stays open (an endless producer) until the child has answered.
        try? input.fileHandleForWriting.write(contentsOf: Data(repeating: UInt8(ascii: "x"), count: 3 << 20))
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        try? input.fileHandleForWriting.close()
        #expect(process.terminationStatus == 4, "\(stderr)")
        #expect(stderr.contains("-:1: not an mbox: no 'From ' separator line in its first 1048576 bytes"), "\(stderr)")
        #expect(ContinuousClock.now - started < .seconds(30))
    }

    /// An mbox whose lines end in CR alone (classic Mac OS) was called "empty input: no message".
    @Test func anMboxOfCarriageReturnLinesIsNamedAsSuch() throws {
        let folder = try Mailboxes.temporaryFolder("cr-mbox")
        defer { try? FileManager.default.removeItem(at: folder) }
        let mbox = folder.appendingPathComponent("mac.mbox")
        try Data("From a@example.com Mon Jan  1 00:00:00 2024\rFrom: a@example.com\rSubject: hi\r\rbody\r\rFrom b\rSubject: x\r\r".utf8).write(to: mbox)
        let result = try Binary.launch(Binary.path, Self.batch + ["--mbox", mbox.path], directory: folder)
        #expect(result.status == 4, "\(result.stderr)")
        #expect(result.stderr.contains("mac.mbox:1: the mbox's lines end in a carriage return alone (classic Mac OS); convert them first: tr '\\r' '\\n' < IN > OUT"),
                "\(result.stderr)")
        #expect(result.stdout.contains("\"errors_by_kind\":{\"not_a_message\":1}"), "\(result.stdout)")
    }

    /// `--mailbox "Ann <ann@contoso.com>"` passed the check and then matched neither the user's
    /// file nor the owner: her personal blocklist and outbound-only were lost without a word.
    @Test func theMailboxIsOneBareAddress() throws {
        let process = ["process", "--crm", Binary.packageRoot.appendingPathComponent("examples/crm").path]
        for value in ["<ann@contoso.com>", "Ann Seller <ann@contoso.com>"] {
            let result = try Binary.run(process + ["--mailbox", value, Self.sample])
            #expect(result.status == 2, "\(value): \(result.stderr)")
            #expect(result.stderr.contains("--mailbox must be one email address, not '\(value)'; give the address alone: --mailbox ann@contoso.com"),
                    "\(result.stderr)")
        }
        for value in ["ann", "a@x.example, b@x.example", "@contoso.com"] {
            #expect(try Binary.run(process + ["--mailbox", value, Self.sample]).status == 2, "\(value)")
        }
        #expect(try Binary.run(process + ["--mailbox", "ANN@Contoso.com", Self.sample]).status == 0)
    }

    /// `MAILSAVE_BUSY_TIMEOUT=3000000` trapped (SQLite's milliseconds are an Int32), and `abc`
    /// or `0x10` were taken in silence: only 0 to 86400 decimal seconds are accepted.
    @Test func theBusyTimeoutIsANumberOfSecondsOrRefused() throws {
        let folder = try Mailboxes.temporaryFolder("busy-timeout")
        defer { try? FileManager.default.removeItem(at: folder) }
        let save = ["process", "--store", folder.appendingPathComponent("s.sqlite").path, "--mailbox", "ann@contoso.com", "--apply",
                    "--rules", Binary.packageRoot.appendingPathComponent("rules").path, Self.sample]
        for value in ["3000000", "86400.5", "abc", "-1", "0x10", "1e3", "nan", "", " 5"] {
            let result = try Binary.launch(Binary.path, save, environment: ["MAILSAVE_BUSY_TIMEOUT": value])
            #expect(result.status == 2, "\(value): \(result.stderr)")
            #expect(result.stderr.contains("MAILSAVE_BUSY_TIMEOUT: \(value.debugDescription) is not a number of seconds from 0 to 86400"), "\(result.stderr)")
        }
        for value in ["0", "2.5", "86400"] {
            let result = try Binary.launch(Binary.path, save, environment: ["MAILSAVE_BUSY_TIMEOUT": value])
            #expect(result.status == 0, "\(value): \(result.stderr)")
        }
    }

    /// A FIFO given as the Salesforce key, configuration or CA file blocked the run for ever
    /// (the open waited for a writer): each is refused as no regular file.
    @Test func aFIFOAsASecretOrCAFileIsRefusedNotWaitedFor() throws {
        let folder = try Mailboxes.temporaryFolder("fifo-secrets")
        defer { try? FileManager.default.removeItem(at: folder) }
        let fifo = folder.appendingPathComponent("fifo").path
        #expect(mkfifo(fifo, 0o600) == 0)
        let process = ["20", Binary.path, "process", "--rules", Binary.packageRoot.appendingPathComponent("rules").path, "--mailbox", "ann@contoso.com",
                       "--salesforce", Self.sample]
        let base = ["MAILSAVE_SF_LOGIN_URL": "http://127.0.0.1:9", "MAILSAVE_SF_CLIENT_ID": "client", "MAILSAVE_SF_TOKEN_CACHE": "off"]
        let key = try Binary.launch("/usr/bin/timeout", process,
                                    environment: base.merging(["MAILSAVE_SF_USERNAME": "u@example.com", "MAILSAVE_SF_KEY_FILE": fifo]) { $1 })
        #expect(key.status == 3, "\(key.stderr)")
        #expect(key.stderr.contains("\(fifo): the JWT private key (MAILSAVE_SF_KEY_FILE) is not a regular file"), "\(key.stderr)")
        let ca = try Binary.launch("/usr/bin/timeout", process,
                                   environment: base.merging(["MAILSAVE_SF_CLIENT_SECRET": "secret", "MAILSAVE_SF_CA_FILE": fifo]) { $1 })
        #expect(ca.status == 12, "\(ca.stderr)")
        #expect(ca.stderr.contains("MAILSAVE_SF_CA_FILE \(fifo) is not a regular file"), "\(ca.stderr)")
        var configuration = process
        configuration[configuration.firstIndex(of: "--salesforce")!] = "--salesforce-config"
        configuration.insert(fifo, at: configuration.firstIndex(of: "--salesforce-config")! + 1)
        let file = try Binary.launch("/usr/bin/timeout", configuration)
        #expect(file.status == 12, "\(file.stderr)")
        #expect(file.stderr.contains("\(fifo): the Salesforce configuration is not a regular file"), "\(file.stderr)")
    }

    /// `diff --old-rev` wrote a revision's pack through a link the revision itself held (a
    /// link and a folder of the same name): a file outside the temporary folder was written.
    @Test func aRevisionCannotWriteOutsideItsPack() throws {
        let repository = try Mailboxes.temporaryFolder("diff-escape")
        let outside = try Mailboxes.temporaryFolder("diff-escape-target")
        defer {
            try? FileManager.default.removeItem(at: repository)
            try? FileManager.default.removeItem(at: outside)
        }
        let git = try GitRepository.withShippedPack(in: repository)
        let blob = try git.run(["hash-object", "-w", "--stdin"], input: "pwned\n")
        let link = try git.run(["hash-object", "-w", "--stdin"], input: outside.path)
        let sub = try git.run(["mktree"], input: "100644 blob \(blob)\tx.yaml\n")
        let listing = try git.run(["ls-tree", "HEAD:r"])
        let others = listing.split(separator: "\n").filter { !$0.hasSuffix("\tusers") }.joined(separator: "\n")
        let tree = try git.run(["mktree"], input: others + "\n120000 blob \(link)\tusers\n040000 tree \(sub)\tusers\n")
        let top = try git.run(["mktree"], input: "040000 tree \(tree)\tr\n")
        let commit = try git.run(["commit-tree", top, "-p", "HEAD", "-m", "escape"])
        let result = try Binary.launch(Binary.path, ["diff", "--old-rev", commit, "--new", "r", "--mailbox", "ann@contoso.com",
                                                     "--crm", Binary.packageRoot.appendingPathComponent("examples/crm").path,
                                                     "--mbox", Self.mbox], directory: repository)
        #expect(result.status == 3, "\(result.stderr)")
        #expect(result.stderr.contains("refusing to"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: outside.appendingPathComponent("x.yaml").path), "written outside the pack")
    }
    /// Control characters from a message (a NUL in the Subject) are not saved: a CRM's text
    /// cannot hold them, and an export holding a NUL could not be imported again.
    @Test func controlCharactersAreNotSaved() throws {
        let message = "From: Bob <bob@fabrikam.com>\r\nTo: ann@contoso.com\r\nSubject: quote\u{0} for\u{1B}[2J 20\r\n"
            + "Message-ID: <nul-subject@fabrikam.com>\r\n\r\nHello\u{C} Ann\r\n"
        let result = try Binary.run(Self.process + ["-"], stdin: Data(message.utf8))
        #expect(result.status == 0, "\(result.stderr)")
        let decision = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let fields = try #require((decision["record"] as? [String: Any])?["fields"] as? [String: Any])
        #expect(fields["Subject"] as? String == "quote for[2J 20")
        #expect((fields["Description"] as? String)?.contains("Hello Ann") == true)
        let observations = decision["observations"] as? [String] ?? []
        #expect(observations.contains("Task.Subject: 2 control characters removed (a CRM's text cannot hold them)"), "\(observations)")
    }

    /// A file name quoted in an error cannot drive the terminal: its controls are escaped.
    @Test func errorsEscapeControlCharactersOfNames() throws {
        let result = try Binary.run(["inspect", "no\u{1B}[2Jsuch.eml"])
        #expect(result.status == 3)
        #expect(result.stderr == "mailsave: no\\u{1B}[2Jsuch.eml: cannot open: No such file or directory\n")
        // A line feed in a name cannot fake a line of mailsave's own.
        let forged = try Binary.run(["inspect", "a\nmailsave: all 12 messages saved.eml"])
        #expect(forged.status == 3)
        #expect(forged.stderr == "mailsave: a\\u{A}mailsave: all 12 messages saved.eml: cannot open: No such file or directory\n")
    }

    /// A file whose name is not UTF-8 is reported, not skipped in silence.
    @Test func aFileNameThatIsNotUTF8IsReported() throws {
        let folder = try Mailboxes.temporaryFolder("latin1-name")
        defer { try? FileManager.default.removeItem(at: folder) }
        let name = Array(folder.path.utf8) + Array("/caf".utf8) + [0xE9] + Array(".eml".utf8) + [0]
        let descriptor = name.withUnsafeBufferPointer { $0.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_WRONLY | O_CREAT, 0o600) } }
        #expect(descriptor >= 0)
        close(descriptor)
        try FileManager.default.copyItem(atPath: Self.sample, toPath: folder.appendingPathComponent("ok.eml").path)
        let result = try Binary.run(Self.batch + ["--eml", folder.path])
        #expect(result.status == 4, "\(result.stderr)")
        #expect(result.stderr.contains("the file name is not UTF-8 (shown with \u{FFFD}); mailsave cannot open it by that name: rename it"), "\(result.stderr)")
        #expect(result.stdout.contains("\"messages\":2"), "\(result.stdout)")
        // A folder of that kind too (its messages cannot be listed by the decoded name), but
        // not any other file.
        let other = Array(folder.path.utf8) + Array("/notes-".utf8) + [0xE9] + Array(".txt".utf8) + [0]
        let folderName = Array(folder.path.utf8) + Array("/archiv".utf8) + [0xE9] + [0]
        let made = other.withUnsafeBufferPointer { $0.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_WRONLY | O_CREAT, 0o600) } }
        #expect(made >= 0)
        close(made)
        #expect(folderName.withUnsafeBufferPointer { $0.withMemoryRebound(to: CChar.self) { mkdir($0.baseAddress!, 0o700) } } == 0)
        let again = try Binary.run(Self.batch + ["--eml", folder.path])
        #expect(again.status == 4)
        #expect(again.stdout.contains("\"messages\":3"), "\(again.stdout)")
        #expect(again.stderr.contains("archiv\u{FFFD}: the file name is not UTF-8"), "\(again.stderr)")
        #expect(!again.stderr.contains("notes-"), "\(again.stderr)")
    }
    /// A Maildir's message that is a link is reported, not read (it could bring any file the
    /// run may read into the CRM); a Maildir++ folder that is a link stops the run.
    @Test func maildirLinksAreNotFollowed() throws {
        let root = try Mailboxes.temporaryFolder("maildir-links")
        let secret = try Mailboxes.temporaryFolder("maildir-secret")
        defer {
            try? FileManager.default.removeItem(at: root)
            try? FileManager.default.removeItem(at: secret)
        }
        for sub in ["cur", "new", "tmp"] {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        try FileManager.default.copyItem(atPath: Self.sample, toPath: root.appendingPathComponent("cur/1000.a:2,S").path)
        let other = secret.appendingPathComponent("other.eml").path
        try FileManager.default.copyItem(atPath: Self.sample, toPath: other)
        #expect(symlink(other, root.appendingPathComponent("cur/1001.b:2,S").path) == 0)
        // One message that could not be read: exit 4, as for any unreadable message.
        let result = try Binary.run(Self.batch + ["--maildir", root.path])
        #expect(result.status == 4, "\(result.stderr)")
        #expect(result.stderr.contains("cur/1001.b:2,S: a link, not followed"), "\(result.stderr)")
        #expect(result.stderr.contains("--follow-links reads it"), "\(result.stderr)")
        #expect(result.stdout.contains("\"messages\":2") && result.stdout.contains("\"errors\":1"), "\(result.stdout)")
        // Asked for (a mu or notmuch search folder is links): followed to the regular file.
        let followed = try Binary.run(Self.batch + ["--maildir", root.path, "--follow-links"])
        #expect(followed.status == 0, "\(followed.stderr)")
        #expect(followed.stdout.contains("\"messages\":2") && followed.stdout.contains("\"errors\":0"), "\(followed.stdout)")
        #expect(try Binary.run(Self.batch + ["--mbox", Self.sample, "--follow-links"]).status == 2, "--follow-links goes with a folder")
        // A Maildir whose new/ is a file (or a FIFO) is no Maildir: said, not read as empty.
        let odd = try Mailboxes.temporaryFolder("maildir-odd")
        defer { try? FileManager.default.removeItem(at: odd) }
        try FileManager.default.createDirectory(at: odd.appendingPathComponent("cur"), withIntermediateDirectories: true)
        #expect(mkfifo(odd.appendingPathComponent("new").path, 0o600) == 0)
        let fifo = try Binary.run(Self.batch + ["--maildir", odd.path])
        #expect(fifo.status == 3 && fifo.stderr.contains("/new: not a folder"), "\(fifo.stderr)")

        try FileManager.default.createDirectory(at: secret.appendingPathComponent("cur"), withIntermediateDirectories: true)
        #expect(symlink(secret.path, root.appendingPathComponent(".Stolen").path) == 0)
        let folders = try Binary.run(Self.batch + ["--maildir", root.path, "--folder-from-maildir"])
        #expect(folders.status == 3)
        #expect(folders.stderr.contains("/.Stolen: the Maildir++ folder is a link; not followed"), "\(folders.stderr)")
    }
    /// A name that is not UTF-8 is held with U+FFFD, which may be another file's real name:
    /// that file was decided twice and this one never. Now each name is reported or read as
    /// itself.
    @Test func aNameThatIsNotUTF8NeverOpensAnotherFile() throws {
        let root = try Mailboxes.temporaryFolder("maildir-fffd")
        defer { try? FileManager.default.removeItem(at: root) }
        for sub in ["cur", "new"] { try FileManager.default.createDirectory(at: root.appendingPathComponent(sub), withIntermediateDirectories: true) }
        let quote = try Data(contentsOf: URL(fileURLWithPath: Self.sample))
        let prospect = try Data(contentsOf: Binary.packageRoot.appendingPathComponent("examples/messages/08-gmail-prospect.eml"))
        let latin1 = Array(root.path.utf8) + Array("/cur/6.".utf8) + [0xFF, 0]
        let descriptor = latin1.withUnsafeBufferPointer { $0.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_WRONLY | O_CREAT, 0o600) } }
        #expect(descriptor >= 0)
        _ = quote.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        close(descriptor)
        try prospect.write(to: root.appendingPathComponent("cur/6.\u{FFFD}"))
        let result = try Binary.run(Self.batch + ["--maildir", root.path])
        #expect(result.status == 4, "\(result.stderr)")
        let lines = try Mailboxes.objects(result.stdout)
        #expect(lines.compactMap { $0["message_id"] as? String } == ["<CAGmail-998877@mail.gmail.com>"], "\(result.stdout)")
        #expect(result.stderr.contains("the file name is not UTF-8"), "\(result.stderr)")
        // A Maildir++ folder named so (an old Courier's Latin-1 `.Kunden ä`) was skipped in
        // silence with --folder-from-maildir: now one error, the rest decided.
        let folder = Array(root.path.utf8) + Array("/.Kunden ".utf8) + [0xE4, 0]
        #expect(folder.withUnsafeBufferPointer { $0.withMemoryRebound(to: CChar.self) { mkdir($0.baseAddress!, 0o700) } } == 0)
        let cur = Array(root.path.utf8) + Array("/.Kunden ".utf8) + [0xE4] + Array("/cur".utf8) + [0]
        #expect(cur.withUnsafeBufferPointer { $0.withMemoryRebound(to: CChar.self) { mkdir($0.baseAddress!, 0o700) } } == 0)
        let folders = try Binary.run(Self.batch + ["--maildir", root.path, "--folder-from-maildir"])
        #expect(folders.status == 4, "\(folders.stderr)")
        #expect(folders.stderr.contains(".Kunden \u{FFFD}: the file name is not UTF-8"), "\(folders.stderr)")
        #expect(folders.stdout.contains("\"messages\":3") && folders.stdout.contains("\"errors\":2"), "\(folders.stdout)")
    }

    /// A mailbox's messages are regular files: a FIFO blocked the run for ever (Ctrl-C and
    /// SIGTERM too), a device was read up to the message limit, and a --eml link brought in
    /// a file from anywhere. Each is one message that could not be read (exit 4), at once.
    @Test func fifosDevicesAndLinksInAMailboxAreReportedNotRead() throws {
        let root = try Mailboxes.temporaryFolder("maildir-fifo")
        let outside = try Mailboxes.temporaryFolder("eml-outside")
        defer {
            try? FileManager.default.removeItem(at: root)
            try? FileManager.default.removeItem(at: outside)
        }
        for sub in ["cur", "new"] { try FileManager.default.createDirectory(at: root.appendingPathComponent(sub), withIntermediateDirectories: true) }
        try FileManager.default.copyItem(atPath: Self.sample, toPath: root.appendingPathComponent("cur/1.a").path)
        #expect(mkfifo(root.appendingPathComponent("cur/2.fifo").path, 0o600) == 0)
        let started = Date()
        let result = try Binary.run(Self.batch + ["--maildir", root.path])
        #expect(Date().timeIntervalSince(started) < 30)
        #expect(result.status == 4, "\(result.stderr)")
        #expect(result.stderr.contains("cur/2.fifo: not a regular file (a FIFO, socket or device); not read"), "\(result.stderr)")
        #expect(result.stdout.contains("\"messages\":2") && result.stdout.contains("\"errors\":1"), "\(result.stdout)")

        let eml = root.appendingPathComponent("eml")
        try FileManager.default.createDirectory(at: eml, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Self.sample, toPath: outside.appendingPathComponent("private.eml").path)
        #expect(symlink(outside.appendingPathComponent("private.eml").path, eml.appendingPathComponent("innocent.eml").path) == 0)
        let linked = try Binary.run(Self.batch + ["--eml", eml.path])
        #expect(linked.status == 4, "\(linked.stderr)")
        #expect(linked.stderr.contains("innocent.eml: a link, not followed"), "\(linked.stderr)")
        #expect(!linked.stdout.contains("CAB1234567"), "\(linked.stdout)")
        // With --follow-links a link is followed to a regular file only: one to a FIFO or a
        // folder is still reported and not read, and nothing waits on the FIFO.
        #expect(symlink(root.appendingPathComponent("cur/2.fifo").path, eml.appendingPathComponent("fifo.eml").path) == 0)
        #expect(symlink(root.path, eml.appendingPathComponent("folder.eml").path) == 0)
        let start = Date()
        let following = try Binary.run(Self.batch + ["--eml", eml.path, "--follow-links"])
        #expect(Date().timeIntervalSince(start) < 30)
        #expect(following.status == 4, "\(following.stderr)")
        #expect(following.stdout.contains("CAB1234567"), "\(following.stdout)")
        #expect(following.stderr.contains("fifo.eml: not a regular file") && following.stderr.contains("folder.eml: is a directory"), "\(following.stderr)")
    }

    /// `batch --apply -` keeps standard input in a temporary file (it is read twice): input
    /// that is not an mbox was copied whole first (`cat /dev/zero` filled the disk), now it is
    /// refused once its first MiB holds no `From ` line, and the copy goes.
    @Test func applyFromStandardInputRefusesWhatIsNoMboxBeforeCopyingIt() throws {
        let folder = try Mailboxes.temporaryFolder("spool-zero")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = folder.appendingPathComponent("crm.sqlite").path
        #expect(try Binary.run(["crm", "import", "--store", store, "--object", "User", "examples/crm/User.csv"]).status == 0)
        let spool = folder.appendingPathComponent("tmp")
        try FileManager.default.createDirectory(at: spool, withIntermediateDirectories: true)
        // Through a shell pipe: the run stops reading at 1 MiB, and a writer of the rest must
        // not be this test (it would wait on the pipe).
        let result = try Binary.launch("/bin/sh", ["-c", "head -c 3145728 /dev/zero | \"$0\" batch --mailbox ann@contoso.com --store \"$1\" --apply --quiet -",
                                                   Binary.path, store], environment: ["TMPDIR": spool.path])
        #expect(result.status == 4, "\(result.stderr)")
        #expect(result.stderr.contains("-:1: not an mbox: no 'From ' separator line in its first 1048576 bytes"), "\(result.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: spool.path).isEmpty)
    }

    /// The first MiB of an mbox must hold its first From line, whatever the reads' sizes: a
    /// From line across that byte was refused from a file and accepted from a pipe.
    @Test func theMboxPreambleLimitIsTheSameFromAFileAndAPipe() throws {
        let folder = try Mailboxes.temporaryFolder("preamble")
        defer { try? FileManager.default.removeItem(at: folder) }
        var bytes = Data()
        while bytes.count < 1_048_574 - 100 { bytes.append(Data((String(repeating: "a", count: 99) + "\n").utf8)) }
        bytes.append(Data(String(repeating: "b", count: 1_048_574 - bytes.count - 1).utf8) + Data("\n".utf8))
        #expect(bytes.count == 1_048_574)
        bytes.append(try Data(contentsOf: URL(fileURLWithPath: Self.mbox)))
        let file = folder.appendingPathComponent("late.mbox").path
        try bytes.write(to: URL(fileURLWithPath: file))
        let direct = try Binary.run(Self.batch + ["--mbox", file])
        let piped = try Binary.launch("/bin/sh", ["-c", "cat \"$1\" | \"$0\" batch --mailbox ann@contoso.com --crm \"$2\" --quiet -",
                                                  Binary.path, file, Binary.packageRoot.appendingPathComponent("examples/crm").path])
        #expect(direct.status == 4, "\(direct.stderr)")
        #expect(piped.status == 4, "\(piped.stderr)")
        #expect(piped.stderr.contains("not an mbox: no 'From ' separator line in its first 1048576 bytes"), "\(piped.stderr)")
    }

    /// `--out` naming the store, the mailbox or a file of the pack replaced it with the
    /// decisions (the store and its ledger gone, exit 0): refused before anything is written.
    /// A new output file is the user's alone; a replaced one keeps its mode.
    @Test func outNeverReplacesTheRunsOwnFiles() throws {
        let folder = try Mailboxes.temporaryFolder("out-own")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = folder.appendingPathComponent("crm.sqlite").path
        for object in ["Account", "Contact", "User"] {
            #expect(try Binary.run(["crm", "import", "--store", store, "--object", object, "examples/crm/\(object).csv"]).status == 0)
        }
        let mbox = folder.appendingPathComponent("in.mbox").path
        try FileManager.default.copyItem(atPath: Self.mbox, toPath: mbox)
        let storeBefore = try Data(contentsOf: URL(fileURLWithPath: store)), mboxBefore = try Data(contentsOf: URL(fileURLWithPath: mbox))
        let base = ["batch", "--mailbox", "ann@contoso.com", "--quiet"]
        let overStore = try Binary.run(base + ["--store", store, "--apply", "--eml", "examples/messages", "--out", store])
        #expect(overStore.status == 2, "\(overStore.stderr)")
        #expect(overStore.stderr.contains("--out \(store): it is the store"), "\(overStore.stderr)")
        #expect(symlink(mbox, folder.appendingPathComponent("link.jsonl").path) == 0)
        let overMailbox = try Binary.run(base + ["--store", store, "--mbox", mbox, "--out", folder.appendingPathComponent("link.jsonl").path])
        #expect(overMailbox.status == 2, "\(overMailbox.stderr)")
        #expect(overMailbox.stderr.contains("it is the mailbox"), "\(overMailbox.stderr)")
        let overPack = try Binary.run(base + ["--store", store, "--mbox", mbox, "--out", "rules/org.yaml"])
        #expect(overPack.status == 2, "\(overPack.stderr)")
        #expect(overPack.stderr.contains("it is a file of the rule pack"), "\(overPack.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: store)) == storeBefore)
        #expect(try Data(contentsOf: URL(fileURLWithPath: mbox)) == mboxBefore)
        // A store the run would create, or its WAL, named by --out: refused by path.
        let newStore = folder.appendingPathComponent("new.sqlite").path
        for out in [newStore, newStore + "-wal"] {
            let refused = try Binary.run(base + ["--store", newStore, "--apply", "--eml", "examples/messages", "--out", out])
            #expect(refused.status == 2, "\(refused.stderr)")
            #expect(refused.stderr.contains("--out \(out): it is the store"), "\(refused.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: newStore))
        // A store named through a link: its real name's WAL (SQLite's) is protected too.
        #expect(symlink("crm.sqlite", folder.appendingPathComponent("link.sqlite").path) == 0)
        let realWAL = try Binary.run(base + ["--store", folder.appendingPathComponent("link.sqlite").path, "--apply", "--mbox", mbox,
                                             "--out", store + "-wal"])
        #expect(realWAL.status == 2, "\(realWAL.stderr)")
        #expect(realWAL.stderr.contains("it is the store's WAL"), "\(realWAL.stderr)")
        // A file inside the --eml folder (an existing message, or a new one) is refused too.
        let inside = try Binary.run(base + ["--store", store, "--eml", "examples/messages", "--out", "examples/messages/01-customer-question.eml"])
        #expect(inside.status == 2, "\(inside.stderr)")
        #expect(inside.stderr.contains("it is inside the --eml folder"), "\(inside.stderr)")
        // A pack that is one file.
        let single = try Binary.run(base + ["--rules", "rules/policy.yaml", "--store", store, "--mbox", mbox, "--out", "rules/policy.yaml"])
        #expect(single.status == 2, "\(single.stderr)")
        let fresh = folder.appendingPathComponent("fresh.jsonl").path
        #expect(try Binary.run(base + ["--store", store, "--mbox", mbox, "--out", fresh]).status == 0)
        #expect((try FileManager.default.attributesOfItem(atPath: fresh)[.posixPermissions] as? Int) == 0o600)
        #expect(chmod(fresh, 0o640) == 0)
        #expect(try Binary.run(base + ["--store", store, "--mbox", mbox, "--out", fresh]).status == 0)
        #expect((try FileManager.default.attributesOfItem(atPath: fresh)[.posixPermissions] as? Int) == 0o640)
        // As root, another user's FILE stays theirs (it became root's).
        if geteuid() == 0 {
            #expect(chown(fresh, 65534, 65534) == 0)
            #expect(try Binary.run(base + ["--store", store, "--mbox", mbox, "--out", fresh]).status == 0)
            let attributes = try FileManager.default.attributesOfItem(atPath: fresh)
            #expect(attributes[.ownerAccountID] as? Int == 65534 && attributes[.groupOwnerAccountID] as? Int == 65534)
            #expect(attributes[.posixPermissions] as? Int == 0o640)
        }
    }

    /// A store path ending in "/" names a folder: refused, not created as a file named
    /// without the slash.
    @Test func aStorePathEndingInASlashIsRefused() throws {
        let folder = try Mailboxes.temporaryFolder("store-slash")
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try Binary.launch(Binary.path, ["process", "--store", "zz/", "--mailbox", "ann@contoso.com", "--apply",
                                                     "--rules", Binary.packageRoot.appendingPathComponent("rules").path, Self.sample],
                                       directory: folder)
        #expect(result.status == 3)
        #expect(result.stderr.contains("zz/: a store is a file; give its file name, not a folder"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("zz").path))
    }

    /// Lint shows a window of a long line around the place, not the whole line.
    @Test func lintShowsAWindowOfALongLine() throws {
        let folder = try Mailboxes.temporaryFolder("lint-long-line")
        defer { try? FileManager.default.removeItem(at: folder) }
        let text = "rules: " + String(repeating: "[", count: 1_200) + String(repeating: "]", count: 1_200) + "\n"
        try text.write(to: folder.appendingPathComponent("rules.yaml"), atomically: true, encoding: .utf8)
        let result = try Binary.run(["lint", folder.path])
        #expect(result.status == 1)
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count == 4, "\(result.stdout.prefix(400))")
        #expect(lines.allSatisfy { $0.count < 200 })
        #expect(lines.first?.hasSuffix("[yaml-limit]") == true)
        #expect(lines.dropFirst().first?.hasSuffix("[[[…") == true)
    }
    /// A file whose bytes are not UTF-8 is one problem among the others: lint goes on to the
    /// pack's other files and reports theirs too (exit 1), placing the first bad byte.
    @Test func lintReportsAFileThatIsNotUTF8WithTheOtherProblems() throws {
        let folder = try Mailboxes.temporaryFolder("lint-latin1")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.copyItem(at: Binary.packageRoot.appendingPathComponent("rules"), to: folder.appendingPathComponent("rules"))
        let rules = folder.appendingPathComponent("rules")
        #expect(FileManager.default.createFile(atPath: rules.appendingPathComponent("extra.yaml").path,
                                               contents: Data(Array("lists:\n  caf".utf8) + [0xE9] + Array(":\n    kind: domains\n".utf8))))
        try "rules:\n  - id: broken\n    description: A verdict that does not exist.\n    then: maybe\n"
            .write(to: rules.appendingPathComponent("more.yaml"), atomically: true, encoding: .utf8)
        let result = try Binary.run(["lint", rules.path])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stdout.contains("extra.yaml:2:6: error: not UTF-8 text (byte 0xE9 here); rule files are UTF-8 [yaml-syntax]"), "\(result.stdout)")
        #expect(result.stdout.contains("[schema-value]"), "the other file's problem is reported too: \(result.stdout)")
        // A command that runs the pack cannot, and says so (exit 3).
        #expect(try Binary.run(["process", "--rules", rules.path, "--mailbox", "ann@contoso.com", "examples/messages/01-customer-question.eml"]).status == 3)
    }

    /// A pack that cannot be read still gives a SARIF (or GitHub) report saying so: a CI job
    /// uploads it whatever the exit code, and an empty report would read as clean.
    @Test func lintReportsAnUnreadablePackInMachineFormats() throws {
        let folder = try Mailboxes.temporaryFolder("lint-unreadable")
        defer { try? FileManager.default.removeItem(at: folder) }
        let pack = folder.appendingPathComponent("pack")
        try FileManager.default.createDirectory(at: pack, withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: folder.appendingPathComponent("outside.yaml").path, contents: Data("rules: []\n".utf8)))
        try FileManager.default.createSymbolicLink(atPath: pack.appendingPathComponent("rules.yaml").path, withDestinationPath: "../outside.yaml")
        let sarif = try Binary.run(["lint", "--format", "sarif", pack.path])
        #expect(sarif.status == 3)
        let run = try #require(((try JSONSerialization.jsonObject(with: Data(sarif.stdout.utf8)) as? [String: Any])?["runs"] as? [[String: Any]])?.first)
        let invocation = try #require((run["invocations"] as? [[String: Any]])?.first)
        #expect(invocation["executionSuccessful"] as? Bool == false)
        let notification = (invocation["toolExecutionNotifications"] as? [[String: Any]])?.first
        #expect(((notification?["message"] as? [String: Any])?["text"] as? String)?.hasSuffix("rules.yaml: is a symbolic link to a file outside \(pack.path); only files inside it are read") == true,
                "\(notification ?? [:])")
        let github = try Binary.run(["lint", "--format", "github", pack.path])
        #expect(github.status == 3)
        #expect(github.stdout.hasPrefix("::error title=mailsave lint::"))
        let clean = try Binary.run(["lint", "--format", "sarif", "rules"])
        #expect(clean.stdout.contains("\"executionSuccessful\" : true") || clean.stdout.contains("\"executionSuccessful\": true"), "\(clean.stdout.suffix(300))")
    }
    /// A link is followed only as the kernel's fs.protected_symlinks would: ours, or not in a
    /// sticky folder, or the folder owner's (realpath reads links itself, past that check).
    @Test func outFollowsOnlyLinksTheKernelWouldFollow() throws {
        let folder = try Mailboxes.temporaryFolder("sticky")
        defer { try? FileManager.default.removeItem(at: folder) }
        let link = folder.appendingPathComponent("report.jsonl").path
        #expect(symlink("/nonexistent", link) == 0)
        let me = geteuid()
        #expect(LineOutput.mayFollow(link: link, owner: me))
        #expect(LineOutput.mayFollow(link: link, owner: me &+ 1), "a folder that is not sticky")
        #expect(chmod(folder.path, 0o1777) == 0)
        #expect(!LineOutput.mayFollow(link: link, owner: me &+ 1), "another user's link in a shared sticky folder")
        #expect(LineOutput.mayFollow(link: link, owner: me), "our own link there")
        let dangling = try Binary.run(Self.batch + ["--mbox", Self.mbox, "--out", link])
        #expect(dangling.status == 3)
        #expect(dangling.stderr.contains("report.jsonl: cannot write: it is a link to nothing"), "\(dangling.stderr)")
        // /dev/stdout onto a pipe: written directly, not "a link to nothing".
        let stdout = try Binary.run(Self.batch + ["--mbox", Self.mbox, "--out", "/dev/stdout"])
        #expect(stdout.status == 0, "\(stdout.stderr)")
        #expect(stdout.stdout.split(separator: "\n").count == 13) // 12 lines and the summary
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["report.jsonl"], "no temporary file left")
    }

    /// Ctrl-C stops a batch waiting on an idle pipe (a read restarted after the signal never
    /// returned), and the run dies of the signal.
    @Test func ctrlCStopsAReadFromAnIdlePipe() throws {
        let process = Foundation.Process()
        process.executableURL = URL(fileURLWithPath: Binary.path)
        process.arguments = Self.batch + ["-"]
        process.currentDirectoryURL = Binary.packageRoot
        process.environment = Binary.environment
        let input = Pipe()
        process.standardInput = input
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        try input.fileHandleForWriting.write(contentsOf: Data("From a@x Mon Jan  1 00:00:00 2026\nFrom: a@x.example\n".utf8))
        Thread.sleep(forTimeInterval: 1)
        let sent = ContinuousClock.now
        kill(process.processIdentifier, SIGINT)
        // The pipe stays open: only the signal can end the run.
        while process.isRunning && ContinuousClock.now - sent < .seconds(20) { Thread.sleep(forTimeInterval: 0.05) }
        let stopped = !process.isRunning
        if !stopped { process.terminate() }
        process.waitUntilExit()
        try? input.fileHandleForWriting.close()
        #expect(stopped, "still reading 20 s after Ctrl-C")
        #expect(process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGINT)
    }

    /// Ctrl-C after the last message was decided (here: while the summary waits on a full
    /// standard output) ended with exit 0, so a script that started the run went on.
    @Test func ctrlCAfterTheLastDecisionStillEndsByTheSignal() throws {
        let folder = try Mailboxes.temporaryFolder("late-interrupt")
        defer { try? FileManager.default.removeItem(at: folder) }
        let out = folder.appendingPathComponent("decisions.jsonl").path
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        // Standard output full before the run starts: its summary line blocks there.
        let flags = fcntl(ends[1], F_GETFL)
        _ = fcntl(ends[1], F_SETFL, flags | O_NONBLOCK)
        let filler = [UInt8](repeating: 0x2E, count: 4096)
        while write(ends[1], filler, filler.count) > 0 {}
        _ = fcntl(ends[1], F_SETFL, flags)
        let process = Foundation.Process()
        process.executableURL = URL(fileURLWithPath: Binary.path)
        process.arguments = Self.batch + ["--mbox", Self.mbox, "--out", out]
        process.currentDirectoryURL = Binary.packageRoot
        process.environment = Binary.environment
        process.standardOutput = FileHandle(fileDescriptor: ends[1], closeOnDealloc: false)
        process.standardError = FileHandle.nullDevice
        try process.run()
        close(ends[1])
        let started = ContinuousClock.now
        while !FileManager.default.fileExists(atPath: out) && ContinuousClock.now - started < .seconds(60) { Thread.sleep(forTimeInterval: 0.05) }
        #expect(FileManager.default.fileExists(atPath: out), "the run never wrote its output")
        kill(process.processIdentifier, SIGINT)
        var buffer = [UInt8](repeating: 0, count: 65536)
        var drained = ""
        while true {
            let got = read(ends[0], &buffer, buffer.count)
            if got <= 0 { break }
            drained += String(decoding: buffer[0..<got].filter { $0 != 0x2E }, as: UTF8.self)
        }
        close(ends[0])
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGINT,
                "exit \(process.terminationStatus), reason \(process.terminationReason.rawValue)")
        // The run was whole: every line and the summary.
        #expect(try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").count == 12)
        #expect(drained.contains("\"summary\""), "\(drained)")
    }

    /// Output that fails ends the run at once, and the run's temporary files go with it (a
    /// git revision's pack extracted by `diff --old-rev` was left in the temporary folder).
    @Test func aFailedOutputLeavesNoTemporaryFiles() throws {
        let repository = try Mailboxes.temporaryFolder("diff-full")
        let temporary = try Mailboxes.temporaryFolder("diff-full-tmp")
        defer {
            try? FileManager.default.removeItem(at: repository)
            try? FileManager.default.removeItem(at: temporary)
        }
        try GitRepository.withShippedPack(in: repository)
        let process = Foundation.Process()
        process.executableURL = URL(fileURLWithPath: Binary.path)
        process.arguments = ["diff", "--old-rev", "HEAD", "--new", "r", "--mailbox", "ann@contoso.com",
                             "--crm", Binary.packageRoot.appendingPathComponent("examples/crm").path, "--mbox", Self.mbox]
        process.currentDirectoryURL = repository
        process.environment = Binary.environment.merging(["TMPDIR": temporary.path]) { _, new in new }
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/full")
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 75)
        #expect(try FileManager.default.contentsOfDirectory(atPath: temporary.path).isEmpty, "the revision's pack was left behind")
    }
    /// A --crm folder with no export in it is a mistake said at once, not an empty CRM.
    @Test func aCRMFolderWithoutAnExportIsRefused() throws {
        let folder = try Mailboxes.temporaryFolder("empty-crm")
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try Binary.run(["process", "--mailbox", "ann@contoso.com", "--crm", folder.path, Self.sample])
        #expect(result.status == 6)
        #expect(result.stderr.contains("no Salesforce data export in the folder (expected Contact.csv"), "\(result.stderr)")
        #expect(FileManager.default.createFile(atPath: folder.appendingPathComponent("Contact.csv").path, contents: Data("Id,Email\n".utf8)))
        #expect(try Binary.run(["process", "--mailbox", "ann@contoso.com", "--crm", folder.path, Self.sample]).status == 0)
    }
}
