import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Mailboxes and corpora the batch tests read and write.
enum Mailboxes {
    static let base = ["batch", "--mailbox", "ann@contoso.com", "--crm", "examples/crm"]

    static var samples: [String] {
        let folder = Binary.packageRoot.appendingPathComponent("examples/messages").path
        return ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(".eml") }.sorted()
            .map { "examples/messages/" + $0 }
    }

    /// A corpus folder under ../shared/corpus, or where `MAILSAVE_CORPUS` (enmime) or
    /// `MAILSAVE_SISIMAI_CORPUS` says, as the other corpus tests read them; the test fails,
    /// loudly, when it is missing.
    static func corpus(_ name: String, minimum: Int, sourceLocation: SourceLocation = #_sourceLocation) throws -> URL {
        let override = ProcessInfo.processInfo.environment[name == "sisimai" ? "MAILSAVE_SISIMAI_CORPUS" : "MAILSAVE_CORPUS"]
        let root = override.map { URL(fileURLWithPath: $0) }
            ?? Binary.packageRoot.deletingLastPathComponent().appendingPathComponent("shared/corpus/\(name)")
        let files = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)?.compactMap { $0 as? URL } ?? []
        try #require(files.count >= minimum, "the \(name) corpus is missing or incomplete at \(root.path) (\(files.count) files)",
                     sourceLocation: sourceLocation)
        return root
    }

    static func temporaryFolder(_ label: String) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mailsave-\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    /// An mboxrd of the given messages: a `From ` line each, `From ` lines quoted, a blank line after each.
    static func mbox(_ messages: [Data]) -> Data {
        var output = Data()
        for message in messages {
            output += Data("From mailsave@example.com Thu Jan  1 00:00:00 2026\n".utf8)
            var text = message
            if text.last != 0x0A { text.append(0x0A) }
            for line in text.split(separator: 0x0A, omittingEmptySubsequences: false).dropLast() {
                var quoted = Data(line)
                let start = quoted.prefix { $0 == 0x3E }.count
                if quoted.dropFirst(start).starts(with: Data("From ".utf8)) { quoted.insert(0x3E, at: quoted.startIndex) }
                output += quoted
                output.append(0x0A)
            }
            output.append(0x0A)
        }
        return output
    }

    static func files(_ paths: [String]) throws -> [Data] {
        try paths.map { try Data(contentsOf: $0.hasPrefix("/") ? URL(fileURLWithPath: $0) : Binary.packageRoot.appendingPathComponent($0)) }
    }

    /// The peak memory `--report-peak-memory` printed, in kB.
    static func peak(_ stderr: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> Int {
        let line = stderr.split(separator: "\n").last { $0.hasPrefix("mailsave: peak memory ") }
        return try #require(line.flatMap { Int($0.split(separator: " ")[3]) }, "no peak memory in \(stderr)", sourceLocation: sourceLocation)
    }

    /// The JSON objects of a JSON Lines output.
    static func objects(_ text: String) throws -> [[String: Any]] {
        try text.split(separator: "\n").map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
    }

    /// The decision without the keys the command adds (`file`, `position`, `folder`).
    static func decision(_ object: [String: Any]) -> NSDictionary {
        var copy = object
        for key in ["file", "position", "folder"] { copy.removeValue(forKey: key) }
        return copy as NSDictionary
    }

    /// A fresh store with the sample CRM imported.
    static func store(in folder: URL) throws -> String {
        let store = folder.appendingPathComponent("crm.sqlite").path
        for object in ["Account", "Contact", "Lead", "Opportunity", "Case", "User", "EmailMessage", "EmailMessageRelation", "Task"] {
            let result = try Binary.run(["crm", "import", "--store", store, "--object", object, "examples/crm/\(object).csv"])
            try #require(result.status == 0, "\(result.stderr)")
        }
        return store
    }

    static func process(_ arguments: [String]) -> Foundation.Process {
        let process = Foundation.Process()
        process.executableURL = URL(fileURLWithPath: Binary.path)
        process.arguments = arguments
        process.currentDirectoryURL = Binary.packageRoot
        process.environment = Binary.environment
        return process
    }
}

@Suite struct BatchCommandTests {
    /// A message that arrives on standard input after a wait is decided against the CRM as
    /// it is then (a Contact imported meanwhile makes it a save): standard input can keep the
    /// reader waiting, so its messages never share a snapshot, which would also hold the
    /// store's read lock through the wait. (Runs from files: `PipelineTests`.)
    @Test func aMessageReadAfterAWaitIsDecidedAgainstTheCRMAsItIsThen() throws {
        let folder = try Mailboxes.temporaryFolder("fresh-snapshot")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = folder.appendingPathComponent("crm.sqlite").path
        for object in ["User", "Account", "Contact"] {
            #expect(try Binary.run(["crm", "import", "--store", store, "--object", object, "examples/crm/\(object).csv"]).status == 0)
        }
        let newcomer = folder.appendingPathComponent("newcomer.csv")
        try Data("Id,FirstName,LastName,Email\n0035e00000New01,Nia,Newcomer,nia@newcomer.example\n".utf8).write(to: newcomer)
        func message(_ from: String, _ id: String) -> Data {
            Data("From: \(from)\nTo: Ann <ann@contoso.com>\nSubject: Order\nDate: Mon, 2 Mar 2026 09:15:00 +0000\nMessage-ID: <\(id)@x.example>\n\nPlease confirm.\n".utf8)
        }
        let first = folder.appendingPathComponent("first.mbox"), last = folder.appendingPathComponent("last.mbox")
        try Mailboxes.mbox([message("bob@fabrikam.com", "one"), message("bob@fabrikam.com", "two")]).write(to: first)
        try Mailboxes.mbox([message("nia@newcomer.example", "three")]).write(to: last)
        // The second message is handed over only when the third's From line arrives, after the import.
        let script = "(cat \"$2\"; sleep 0.3; \"$0\" crm import --store \"$1\" --object Contact \"$4\" >/dev/null; cat \"$3\") "
            + "| \"$0\" batch --mailbox ann@contoso.com --store \"$1\" --jobs 1 -"
        let result = try Binary.launch("/bin/sh", ["-c", script, Binary.path, store, first.path, last.path, newcomer.path])
        #expect(result.status == 0, "\(result.stderr)")
        var lines = try Mailboxes.objects(result.stdout)
        _ = lines.popLast()
        #expect(lines.map { $0["verdict"] as? String } == ["save", "save", "save"], "\(result.stdout)")
        #expect((lines.last?["links"] as? [String: Any]).map { "\($0)" }?.contains("0035e00000New01") == true, "\(result.stdout)")
    }

    /// A `batch --jobs 2` over a folder of 4,000 messages, started and waited on until it has
    /// forked its two jobs: the run, its standard error, its `--out` path and the jobs' ids.
    static func startForkedRun(_ folder: URL) throws -> (process: Foundation.Process, errors: Pipe, out: String, jobs: [pid_t]) {
        let eml = folder.appendingPathComponent("eml")
        try FileManager.default.createDirectory(at: eml, withIntermediateDirectories: true)
        let samples = try Mailboxes.files(Mailboxes.samples)
        for copy in 0..<4_000 { try samples[copy % samples.count].write(to: eml.appendingPathComponent("m\(copy).eml")) }
        let out = folder.appendingPathComponent("decisions.jsonl").path
        let process = Mailboxes.process(Mailboxes.base + ["--eml", eml.path, "--jobs", "2", "--out", out])
        let errors = Pipe()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        try process.run()
        // The jobs are forked once the folder is listed: wait until the run has two children.
        func children() -> [pid_t] {
            ((try? String(contentsOfFile: "/proc/\(process.processIdentifier)/task/\(process.processIdentifier)/children", encoding: .utf8)) ?? "")
                .split(separator: " ").compactMap { pid_t($0) }
        }
        let started = Date()
        while children().count < 2 && process.isRunning && Date().timeIntervalSince(started) < 30 { usleep(2_000) }
        return (process, errors, out, children())
    }

    /// `--jobs 2` over message files forks its jobs: Ctrl-C (to the run alone, as `kill`
    /// sends it) stops them too, the run ends by the signal and says how far it got, `--out`
    /// is not written, and no job is left running.
    @Test func anInterruptedRunOfForkedJobsLeavesNoJobBehind() throws {
        let folder = try Mailboxes.temporaryFolder("forked-int")
        defer { try? FileManager.default.removeItem(at: folder) }
        let (process, errors, out, jobs) = try Self.startForkedRun(folder)
        #expect(jobs.count == 2)
        kill(process.processIdentifier, SIGINT)
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGINT, "\(stderr)")
        #expect(stderr.contains("interrupted after"), "\(stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
        for job in jobs { #expect(kill(job, 0) != 0, "job \(job) is still running") }
    }

    /// A forked job that stops on its own (a signal to it alone) fails the run (exit 3, saying
    /// so): its messages are never silently missing from a run that exits 0.
    @Test func aForkedJobStoppedOnItsOwnFailsTheRun() throws {
        let folder = try Mailboxes.temporaryFolder("forked-job-stop")
        defer { try? FileManager.default.removeItem(at: folder) }
        let (process, errors, out, jobs) = try Self.startForkedRun(folder)
        let job = try #require(jobs.first)
        kill(job, SIGTERM)
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationReason == .exit && process.terminationStatus == 3, "\(stderr)")
        #expect(stderr.contains("batch job"), "\(stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    /// `--eml` lists `*.eml` in any case, in folders at any depth (a folder named `x.eml`
    /// is searched, not read), sorted by path; other names are not messages. The listing
    /// takes each entry's type from the folder itself where the file system gives it.
    @Test func emlListsMessageFilesByNameAtAnyDepth() throws {
        let folder = try Mailboxes.temporaryFolder("eml-listing")
        defer { try? FileManager.default.removeItem(at: folder) }
        let message = try Mailboxes.files(["examples/messages/01-customer-question.eml"])[0]
        for path in ["b.EML", "a.eml", "deep/x.eml/c.Eml", "deep/x.eml/notes.txt", "d\u{0E}eml", "eml", "e.emlx", ".hidden.eml"] {
            let url = folder.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try message.write(to: url)
        }
        let result = try Binary.run(Mailboxes.base + ["--eml", folder.path, "--jobs", "2"])
        #expect(result.status == 0, "\(result.stderr)")
        var lines = try Mailboxes.objects(result.stdout)
        _ = lines.popLast()
        #expect(lines.map { $0["position"] as? String } == ["a.eml", "b.EML", "deep/x.eml/c.Eml"].map { Optional(folder.path + "/" + $0) })
        #expect(lines.allSatisfy { $0["verdict"] as? String == "save" })
    }

    @Test func theSampleMailboxIsDecidedAsProcessDecidesIt() throws {
        let process = try Binary.run(["process", "--mailbox", "ann@contoso.com", "--crm", "examples/crm"] + Mailboxes.samples)
        #expect(process.status == 0, "\(process.stderr)")
        let batch = try Binary.run(Mailboxes.base + ["--eml", "examples/messages", "--jobs", "1"])
        #expect(batch.status == 0, "\(batch.stderr)")
        #expect(batch.stderr.isEmpty) // no progress bar when standard error is not a terminal
        var lines = try Mailboxes.objects(batch.stdout)
        let summary = try #require(lines.popLast()?["summary"] as? [String: Any])
        let expected = try Mailboxes.objects(process.stdout)
        #expect(lines.count == 12)
        #expect(lines.map { $0["position"] as? String } == Mailboxes.samples.map { Optional("examples/messages/" + ($0 as NSString).lastPathComponent) })
        #expect(lines.map(Mailboxes.decision) == expected.map(Mailboxes.decision))
        #expect(summary["messages"] as? Int == 12)
        #expect(summary["errors"] as? Int == 0)
        #expect(summary["by_verdict"] as? [String: Int] == ["save": 6, "skip": 1, "blocked": 2, "unsupported": 3])
        #expect(summary["by_rule"] as? [String: Int] == ["general-mode": 4, "service-email": 3, "all-internal-or-blocked": 2,
                                                         "already-saved": 1, "case-thread": 1, "magic-anchor": 1])
        #expect(summary["by_link"] as? [String: Int] == ["Contact+Opportunity": 3, "Contact": 1, "Contact+Case": 1, "Lead": 1])
    }

    @Test func theShippedMboxGivesTheSameDecisionsWithItsLines() throws {
        // examples/mailbox.mbox is examples/messages/*.eml as one mboxrd.
        let shipped = try Data(contentsOf: Binary.packageRoot.appendingPathComponent("examples/mailbox.mbox"))
        #expect(shipped == Mailboxes.mbox(try Mailboxes.files(Mailboxes.samples)))
        let eml = try Mailboxes.objects(try Binary.run(Mailboxes.base + ["--eml", "examples/messages"]).stdout).dropLast()
        let result = try Binary.run(Mailboxes.base + ["--mbox", "examples/mailbox.mbox"])
        #expect(result.status == 0, "\(result.stderr)")
        let mbox = try Mailboxes.objects(result.stdout).dropLast()
        #expect(mbox.map(Mailboxes.decision) == eml.map(Mailboxes.decision))
        let lines = mbox.compactMap { $0["position"] as? Int }
        let text = String(decoding: shipped, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 12)
        #expect(lines.allSatisfy { text[$0 - 1].hasPrefix("From ") })
        // Standard input, with -.
        let piped = try Binary.run(Mailboxes.base + ["-"], stdin: shipped)
        #expect(piped.stdout == result.stdout)
    }

    @Test func oneJobOrTwoGiveTheSameOutput() throws {
        let enmime = try Mailboxes.corpus("enmime", minimum: 70)
        let sisimai = try Mailboxes.corpus("sisimai", minimum: 600)
        let folder = try Mailboxes.temporaryFolder("jobs")
        defer { try? FileManager.default.removeItem(at: folder) }
        let raws = FileManager.default.enumerator(at: enmime, includingPropertiesForKeys: nil)!.compactMap { $0 as? URL }
            .filter { $0.pathExtension == "raw" }.map(\.path).sorted()
        let mbox = folder.appendingPathComponent("enmime.mbox")
        try Mailboxes.mbox(try Mailboxes.files(raws)).write(to: mbox)
        for source in [["--eml", "examples/messages"], ["--mbox", "examples/mailbox.mbox"], ["--eml", sisimai.path], ["--mbox", mbox.path]] {
            let one = try Binary.run(Mailboxes.base + source + ["--jobs", "1"])
            let two = try Binary.run(Mailboxes.base + source + ["--jobs", "2"])
            let three = try Binary.run(Mailboxes.base + source + ["--jobs", "3"])
            #expect(one.stdout.split(separator: "\n").count > 12)
            #expect(one.stdout == two.stdout, "\(source)")
            #expect(one.stdout == three.stdout, "\(source)")
            #expect(one.stderr == two.stderr)
            #expect(one.status == two.status)
        }
    }

    @Test func aBadMessageInTheMiddleIsReportedAndSkipped() throws {
        let folder = try Mailboxes.temporaryFolder("bad")
        defer { try? FileManager.default.removeItem(at: folder) }
        let mbox = folder.appendingPathComponent("bad.mbox")
        let messages = try Mailboxes.files(["examples/messages/01-customer-question.eml"]) + [Data("// not mail\n".utf8)]
            + (try Mailboxes.files(["examples/messages/02-internal-only.eml"]))
        try Mailboxes.mbox(messages).write(to: mbox)
        let separator = String(decoding: try Data(contentsOf: mbox), as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            .enumerated().filter { $0.element.hasPrefix("From ") }.map { $0.offset + 1 }
        #expect(separator.count == 3)
        for jobs in ["1", "2"] {
            let result = try Binary.run(Mailboxes.base + ["--mbox", mbox.path, "--jobs", jobs])
            #expect(result.status == 4)
            #expect(result.stderr == "mailsave: \(mbox.path):\(separator[1] + 1): not an RFC 5322 message: no header field before the body\n")
            let lines = try Mailboxes.objects(result.stdout)
            #expect(lines.count == 4)
            #expect(lines[0]["verdict"] as? String == "save")
            #expect(lines[1]["position"] as? Int == separator[1])
            #expect((lines[1]["error"] as? [String: Any])?["kind"] as? String == "not_a_message")
            #expect(lines[2]["verdict"] as? String == "blocked")
            let summary = try #require(lines[3]["summary"] as? [String: Any])
            #expect(summary["errors"] as? Int == 1)
            #expect(summary["decided"] as? Int == 2)
            #expect(summary["errors_by_kind"] as? [String: Int] == ["not_a_message": 1])
        }
    }

    /// A message over the 64 MiB limit is reported and skipped without being held: the run
    /// stays far below the message's size.
    @Test func aMessageOverTheLimitIsSkippedWithoutBeingRead() throws {
        let folder = try Mailboxes.temporaryFolder("huge")
        defer { try? FileManager.default.removeItem(at: folder) }
        let mbox = folder.appendingPathComponent("huge.mbox")
        _ = FileManager.default.createFile(atPath: mbox.path, contents: nil)
        let handle = try FileHandle(forWritingTo: mbox)
        let small = try Mailboxes.files(["examples/messages/01-customer-question.eml"])[0]
        handle.write(Mailboxes.mbox([small]))
        handle.write(Data("From huge@example.com Thu Jan  1 00:00:00 2026\nFrom: a@b.example\nSubject: huge\n\n".utf8))
        let line = Data((String(repeating: "x", count: 1023) + "\n").utf8)
        let block = Data(repeating: 0, count: 0) + (0..<1024).reduce(into: Data()) { data, _ in data += line }
        for _ in 0..<65 { handle.write(block) }
        handle.write(Data("\n".utf8))
        handle.write(Mailboxes.mbox(try Mailboxes.files(["examples/messages/02-internal-only.eml"])))
        try handle.close()
        let result = try Binary.run(Mailboxes.base + ["--mbox", mbox.path, "--report-peak-memory"])
        #expect(result.status == 4)
        let lines = try Mailboxes.objects(result.stdout)
        #expect(lines.count == 4)
        #expect((lines[1]["error"] as? [String: Any])?["kind"] as? String == "too_large")
        #expect(lines[2]["verdict"] as? String == "blocked")
        #expect(result.stderr.contains("over the limit of 67108864; skipped"))
        let peak = try Mailboxes.peak(result.stderr)
        #expect(peak < 60_000, "peak \(peak) kB for a 65 MiB message that must not be held")
    }

    /// Memory does not grow with the mailbox: a 20 MB and a 200 MB mbox (1 MiB messages) peak
    /// alike (measured by the child itself: VmHWM).
    @Test func peakMemoryIsFlatFrom20MBTo200MB() throws {
        let folder = try Mailboxes.temporaryFolder("flat")
        defer { try? FileManager.default.removeItem(at: folder) }
        func generate(_ megabytes: Int) throws -> String {
            let path = folder.appendingPathComponent("\(megabytes).mbox").path
            _ = FileManager.default.createFile(atPath: path, contents: nil)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            let line = String(repeating: "0123456789abcdef", count: 4) + "\n"
            let attachment = Data(String(repeating: line, count: (1 << 20) / line.utf8.count).utf8)
            for index in 0..<megabytes {
                handle.write(Data("""
                    From mailsave@example.com Thu Jan  1 00:00:00 2026
                    From: Bob Buyer <bob@fabrikam.com>
                    To: Ann Seller <ann@contoso.com>
                    Subject: Order \(index)
                    Message-ID: <flat-\(index)@fabrikam.com>
                    MIME-Version: 1.0
                    Content-Type: multipart/mixed; boundary="b1"

                    --b1
                    Content-Type: text/plain

                    The order is attached.
                    >From the archive

                    --b1
                    Content-Type: application/octet-stream; name="order.bin"
                    Content-Transfer-Encoding: 7bit


                    """.utf8))
                handle.write(attachment)
                handle.write(Data("--b1--\n\n".utf8))
            }
            try handle.close()
            return path
        }
        var peaks: [Int] = []
        for megabytes in [20, 200] {
            let path = try generate(megabytes)
            let result = try Binary.run(Mailboxes.base + ["--mbox", path, "--jobs", "2", "--out", folder.appendingPathComponent("out.jsonl").path,
                                                          "--report-peak-memory"])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.contains("\"messages\":\(megabytes),"))
            peaks.append(try Mailboxes.peak(result.stderr))
            try FileManager.default.removeItem(atPath: path)
        }
        // Ten times the mailbox, the same peak give or take 8 MB (allocator noise), and far below 200 MB.
        #expect(peaks[1] < peaks[0] + 8_000, "peaks \(peaks) kB")
        #expect(peaks[1] < 80_000, "peaks \(peaks) kB")
    }

    @Test func outWritesTheFileWholeOrNotAtAll() throws {
        let folder = try Mailboxes.temporaryFolder("out")
        defer { try? FileManager.default.removeItem(at: folder) }
        let out = folder.appendingPathComponent("decisions.jsonl")
        let result = try Binary.run(Mailboxes.base + ["--eml", "examples/messages", "--out", out.path])
        #expect(result.status == 0)
        #expect(result.stdout.hasPrefix("{\"summary\":"))
        #expect(result.stdout.split(separator: "\n").count == 1)
        let written = try String(contentsOf: out, encoding: .utf8)
        #expect(written.split(separator: "\n").count == 12)
        #expect(!written.contains("summary"))
        // The temporary file of a run killed with -9 (its process gone) goes with the next run.
        let stale = folder.appendingPathComponent(".decisions.jsonl.mailsave-999999999.tmp")
        try "half".write(to: stale, atomically: false, encoding: .utf8)
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -3600)], ofItemAtPath: stale.path)
        #expect(try Binary.run(Mailboxes.base + ["--eml", "examples/messages", "--out", out.path]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: stale.path))
        // A failed run leaves the previous file as it was, and no temporary file.
        try "previous\n".write(to: out, atomically: true, encoding: .utf8)
        let missing = try Binary.run(Mailboxes.base + ["--mbox", folder.appendingPathComponent("no-such.mbox").path, "--out", out.path])
        #expect(missing.status == 3)
        #expect(missing.stderr.contains("no-such.mbox: cannot open"))
        let badRules = try Binary.run(["batch", "--rules", "Tests/LintExamples/bad/expr-syntax", "--mailbox", "ann@contoso.com",
                                       "--eml", "examples/messages", "--out", out.path])
        #expect(badRules.status == 5)
        #expect(try String(contentsOf: out, encoding: .utf8) == "previous\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["decisions.jsonl"])
    }

    @Test func theTableAndItsSummary() throws {
        let result = try Binary.run(Mailboxes.base + ["--eml", "examples/messages", "--format", "table"])
        #expect(result.status == 0)
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines[0].hasPrefix("MESSAGE "))
        #expect(lines[1].split(separator: " ", omittingEmptySubsequences: true).map(String.init)
                == ["01-customer-question.eml", "save", "Task", "0035e00000Bob01", "0065e00000Opp01", "general-mode"])
        #expect(lines.contains("12 messages, 12 decided, 0 errors"))
        #expect(lines.contains("verdicts  save 6, skip 1, blocked 2, unsupported 3"))
    }

    @Test func maildirFoldersAndTheirNames() throws {
        let root = try Mailboxes.temporaryFolder("maildir")
        defer { try? FileManager.default.removeItem(at: root) }
        let message = try Mailboxes.files(["examples/messages/01-customer-question.eml"])[0]
        func put(_ folder: String, _ name: String, id: String) throws {
            let directory = root.appendingPathComponent(folder)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let text = String(decoding: message, as: UTF8.self).replacing("<CAB1234567@mail.fabrikam.com>", with: "<\(id)@fabrikam.com>")
            try text.write(to: directory.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        try put("cur", "1700000002.M2.host:2,S", id: "second")
        try put("new", "1700000001.M1.host", id: "first")
        try put("tmp", "1700000000.M0.host", id: "never")
        try put(".Sent/cur", "1700000003.M3.host:2,S", id: "sent")
        try put(".INBOX.Deals/new", "1700000004.M4.host", id: "deals")
        try put(".Archive/cur", "1700000005.M5.host:2,S", id: "archive")
        try put(".Entw&APw-rfe/cur", "1700000006.M6.host:2,S", id: "drafts")
        let top = try Binary.run(Mailboxes.base + ["--maildir", root.path])
        #expect(top.status == 0, "\(top.stderr)")
        #expect(try Mailboxes.objects(top.stdout).dropLast().map { $0["message_id"] as? String } == ["<first@fabrikam.com>", "<second@fabrikam.com>"])
        let all = try Binary.run(Mailboxes.base + ["--maildir", root.path, "--folder-from-maildir"])
        #expect(all.status == 0, "\(all.stderr)")
        let lines = try Mailboxes.objects(all.stdout).dropLast()
        #expect(lines.map { "\($0["folder"] as? String ?? "") \(($0["reasons"] as? [[String: Any]])?.first?["rule"] as? String ?? "")" } == [
            "Inbox general-mode", "Inbox general-mode", "Archive folder-not-synchronized", "Entwürfe folder-not-synchronized",
            "Inbox/Deals general-mode", "Sent general-mode",
        ])
        // The table names each file under the Maildir (a file name alone does not tell
        // `cur/` from `new/`, or one Maildir++ folder from another).
        let table = try Binary.run(Mailboxes.base + ["--maildir", root.path, "--folder-from-maildir", "--format", "table"])
        #expect(table.status == 0, "\(table.stderr)")
        #expect(table.stdout.split(separator: "\n").dropFirst().prefix(6).map { String($0.prefix(while: { $0 != " " })) } == [
            "new/1700000001.M1.host", "cur/1700000002.M2.host:2,S", ".Archive/cur/1700000005.M5.host:2,S",
            ".Entw&APw-rfe/cur/1700000006.M6.host:2,S", ".INBOX.Deals/new/1700000004.M4.host", ".Sent/cur/1700000003.M3.host:2,S",
        ], "\(table.stdout)")
    }

    /// On a terminal (a pseudo-terminal from script(1)) the progress bar is drawn on standard
    /// error; --quiet turns it off.
    @Test func theProgressBarIsDrawnOnATerminalOnly() throws {
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/script"), "script(1) (util-linux) is needed for a terminal")
        let command = ([Binary.path] + Mailboxes.base + ["--mbox", "examples/mailbox.mbox", "--out", "/dev/null"]).joined(separator: " ")
        func run(_ extra: String) throws -> String {
            let process = Mailboxes.process([])
            process.executableURL = URL(fileURLWithPath: "/usr/bin/script")
            process.arguments = ["-qec", command + extra, "/dev/null"]
            let out = Pipe()
            process.standardOutput = out
            process.standardInput = FileHandle.nullDevice
            try process.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return String(decoding: data, as: UTF8.self)
        }
        let drawn = try run("")
        #expect(drawn.contains(" messages  "))
        #expect(drawn.contains("/s"))
        #expect(drawn.contains("%  "))
        #expect(drawn.contains("\r\u{1B}[K["))
        let quiet = try run(" --quiet")
        #expect(!quiet.contains("\u{1B}[K"))
        #expect(quiet.contains("{\"summary\""))
        // A folder's total (the percentage and ETA) is taken only when the bar is drawn.
        let folderCommand = ([Binary.path] + Mailboxes.base + ["--eml", "examples/messages", "--out", "/dev/null"]).joined(separator: " ")
        let process = Mailboxes.process([])
        process.executableURL = URL(fileURLWithPath: "/usr/bin/script")
        process.arguments = ["-qec", folderCommand, "/dev/null"]
        let out = Pipe()
        process.standardOutput = out
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let folder = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(folder.contains("%  "), "\(folder)")
    }

    @Test func usageErrors() throws {
        #expect(try Binary.run(Mailboxes.base).status == 2)
        #expect(try Binary.run(Mailboxes.base + ["--eml", "examples/messages", "--mbox", "examples/mailbox.mbox"]).status == 2)
        #expect(try Binary.run(Mailboxes.base + ["--eml", "examples/messages", "--jobs", "0"]).status == 2)
        #expect(try Binary.run(Mailboxes.base + ["--eml", "examples/messages", "--apply"]).status == 2)
        #expect(try Binary.run(Mailboxes.base + ["--mbox", "examples/mailbox.mbox", "--folder-from-maildir"]).status == 2)
        #expect(try Binary.run(Mailboxes.base + ["examples/mailbox.mbox"]).status == 2)
        let notMaildir = try Binary.run(Mailboxes.base + ["--maildir", "examples/messages"])
        #expect(notMaildir.status == 3)
        #expect(notMaildir.stderr == "mailsave: examples/messages: not a Maildir (no cur/ or new/ folder)\n")
    }
}
