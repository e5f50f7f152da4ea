import Foundation
import Testing

/// Hostile messages through the binary: bounded memory, checked arithmetic, safe terminals.
@Suite struct HostileMessageCommandTests {
    /// Runs the binary under an address-space limit, so reading without a limit fails the run
    /// instead of passing slowly.
    func runLimited(_ arguments: [String], virtualKiB: Int = 1_500_000, stdinFrom: String? = nil) throws -> Binary.Result {
        let quoted = ([Binary.path] + arguments).map { "'" + $0.replacing("'", with: "'\\''") + "'" }.joined(separator: " ")
        let redirect = stdinFrom.map { " < '\($0)'" } ?? ""
        return try Binary.launch("/bin/bash", ["-c", "ulimit -v \(virtualKiB); exec \(quoted)\(redirect)"])
    }

    @Test func anEndlessInputIsRefusedAtTheLimitNotReadToTheEnd() throws {
        let result = try runLimited(["inspect", "/dev/zero"])
        #expect(result.status == 4, "\(result.stderr)")
        #expect(result.stderr.contains("/dev/zero: larger than the limit of 67108864 bytes"))
    }

    @Test func a150MBStandardInputIsRefusedWithoutHoldingIt() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mailsave-150mb-\(UUID().uuidString).eml").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.write(Data("From: a@b.example\nSubject: big\n\n".utf8))
        let chunk = Data(repeating: 0x61, count: 1 << 20)
        for _ in 0..<150 { handle.write(chunk) }
        try handle.close()
        // 700 MB of address space: the message limit (64 MiB) fits, the old peak (547 MiB
        // resident, more in address space) did not.
        let result = try runLimited(["inspect", "-"], virtualKiB: 700_000, stdinFrom: path)
        #expect(result.status == 4, "\(result.stderr)")
        #expect(result.stderr.contains("-: larger than the limit"))
        let process = try runLimited(["process", "--mailbox", "ann@contoso.com", "--crm", "examples/crm", path], virtualKiB: 700_000)
        #expect(process.status == 4, "\(process.stderr)")
    }

    func writeMessage(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mailsave-hostile-\(UUID().uuidString).eml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func aTwelveDigitYearIsADefectInInspectAndProcess() throws {
        let path = try writeMessage("From: bob@fabrikam.com\nTo: ann@contoso.com\nDate: 1 Jan 999999999999 10:00:00 +0000\nSubject: x\n\nbody\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let inspect = try Binary.run(["inspect", path])
        #expect(inspect.status == 0, "\(inspect.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [String: Any])
        #expect(object["date"] is NSNull)
        #expect((object["defects"] as? [[String: Any]])?.contains { $0["kind"] as? String == "date" } == true)
        let process = try Binary.run(["process", "--mailbox", "ann@contoso.com", "--crm", "examples/crm", path])
        #expect(process.status == 0, "\(process.stderr)")
    }

    @Test func controlCharactersFromAMessageNeverReachTheTerminal() throws {
        // An encoded-word Subject that would set the terminal's title and clear the screen,
        // a display name with a bidi override, a filename with a bell.
        let path = try writeMessage("""
            From: =?utf-8?q?Bob=E2=80=AEevil?= <bob@fabrikam.com>
            To: ann@contoso.com
            Subject: =?utf-8?q?=1B]0;pwned=07=1B[2JHello=0AVerdict_save?=
            Message-ID: <ctl-1@fabrikam.com>
            Content-Type: multipart/mixed; boundary=b

            --b
            Content-Type: text/plain

            hi
            --b
            Content-Type: application/octet-stream; name="=?utf-8?q?a=07b.bin?="
            Content-Disposition: attachment

            x
            --b--

            """)
        defer { try? FileManager.default.removeItem(atPath: path) }
        for arguments in [["inspect", "--format", "text", path],
                          ["process", "--format", "text", "--mailbox", "ann@contoso.com", "--crm", "examples/crm", path],
                          ["process", "--format", "table", "--mailbox", "ann@contoso.com", "--crm", "examples/crm", path, path],
                          ["explain", "--mailbox", "ann@contoso.com", "--crm", "examples/crm", path]] {
            let result = try Binary.run(arguments)
            #expect(result.status == 0, "\(arguments): \(result.stderr)")
            let controls = result.stdout.unicodeScalars.filter {
                ($0.value < 0x20 && $0 != "\n") || (0x7F...0x9F).contains($0.value) || (0x202A...0x202E).contains($0.value)
            }
            #expect(controls.isEmpty, "\(arguments[0]) printed \(controls.map { String($0.value, radix: 16) })")
        }
        let text = try Binary.run(["inspect", "--format", "text", path]).stdout
        #expect(text.contains(#"\u{1B}]0;pwned\u{7}\u{1B}[2JHello\u{A}Verdict save"#))
        #expect(text.contains(#"Bob\u{202E}evil"#))
        // JSON keeps the exact text, escaped the JSON way.
        let json = try Binary.run(["inspect", path]).stdout
        #expect(json.contains(#"\u001b]0;pwned\u0007\u001b[2JHello\nVerdict save"#))
    }
}
