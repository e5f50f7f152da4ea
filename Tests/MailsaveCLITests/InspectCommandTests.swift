import Foundation
import Testing

/// The `mailsave` binary end to end: arguments, output, exit codes.
enum Binary {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The binary next to the test bundle (the same build), else the package's debug build;
    /// MAILSAVE_TEST_BINARY runs the command-line tests against another build (the release
    /// binary of `scripts/release-build`, as installed; a few tests time a debug build's
    /// speed, such as a kill in the middle of a batch, and can finish first in release).
    static var path: String {
        if let chosen = ProcessInfo.processInfo.environment["MAILSAVE_TEST_BINARY"], !chosen.isEmpty { return chosen }
        let bundleDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [bundleDirectory.appendingPathComponent("mailsave"),
                          packageRoot.appendingPathComponent(".build/debug/mailsave")]
        where FileManager.default.isExecutableFile(atPath: candidate.path) {
            return candidate.path
        }
        return packageRoot.appendingPathComponent(".build/debug/mailsave").path
    }

    static let cacheDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("mailsave-test-cache-\(getpid())").path

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The environment every test run gets: the compiled-pack cache and the default store
    /// kept out of the user's home.
    static var environment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["MAILSAVE_CACHE_DIR"] = cacheDirectory
        environment["XDG_DATA_HOME"] = cacheDirectory + "/data"
        environment["XDG_CACHE_HOME"] = cacheDirectory + "/cache"
        environment["HOME"] = cacheDirectory + "/home"
        // Salesforce only where a test configures it (its test server).
        for key in environment.keys where key.hasPrefix("MAILSAVE_SF_") { environment[key] = nil }
        return environment
    }

    static func run(_ arguments: [String], stdin: Data? = nil) throws -> Result {
        try launch(path, arguments, stdin: stdin)
    }

    /// Runs `executable` with `arguments` (in the package folder unless `directory` says
    /// otherwise, with the test `environment` plus `extra`) and collects its exit status and
    /// output: the one place the CLI tests start a program and wait for it.
    static func launch(_ executable: String, _ arguments: [String], directory: URL = packageRoot,
                       environment extra: [String: String] = [:], stdin: Data? = nil) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = directory
        process.environment = environment.merging(extra) { _, added in added }
        let out = Pipe(), err = Pipe(), input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(stdin) }
        try input.fileHandleForWriting.close()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self))
    }
}

@Suite struct InspectCommandTests {
    @Test func printsTheContractFieldsAsJSON() throws {
        let result = try Binary.run(["inspect", "examples/messages/01-customer-question.eml"])
        #expect(result.status == 0, "\(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        for key in ["message_id", "date", "subject", "from", "sender", "to", "cc", "bcc", "reply_to", "in_reply_to", "references",
                    "service", "auto_submitted", "attachments", "signature", "body_emails", "body_links", "defects"] {
            #expect(object.keys.contains(key), "missing \(key)")
        }
        let from = try #require((object["from"] as? [[String: Any]])?.first)
        #expect(from["address"] as? String == "bob@fabrikam.com")
        #expect(from["name"] as? String == "Bob Buyer")
        #expect((object["service"] as? [String: Any])?["kind"] as? String == "none")
    }

    @Test func readsStandardInput() throws {
        let result = try Binary.run(["inspect", "--format", "text", "-"],
                                    stdin: Data("From: Ann <ann@x.example>\nSubject: hi\n\nbody\n".utf8))
        #expect(result.status == 0)
        #expect(result.stdout.contains("Ann <ann@x.example>"))
        #expect(result.stdout.contains("Subject      hi"))
    }

    @Test func mboxPrintsOneObjectALine() throws {
        let mbox = "From a@x Mon Jan  1 00:00:00 2026\nFrom: a@x.example\nSubject: one\n\n>From the start\n\n"
            + "From b@x Mon Jan  1 00:00:00 2026\nFrom: b@x.example\nSubject: two\n\nbody\n"
        let result = try Binary.run(["inspect", "--mbox", "-"], stdin: Data(mbox.utf8))
        #expect(result.status == 0)
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count == 2)
        let first = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        #expect(first["subject"] as? String == "one")
        #expect(first["mbox_line"] as? Int == 1)
        #expect(first["text_body"] as? String == "From the start")
    }

    @Test func missingFileIsExit3WithTheFileNamed() throws {
        let result = try Binary.run(["inspect", "no/such.eml"])
        #expect(result.status == 3)
        #expect(result.stderr == "mailsave: no/such.eml: cannot open: No such file or directory\n")
        #expect(result.stdout.isEmpty)
    }

    @Test func notAMessageIsExit4WithThePlace() throws {
        let result = try Binary.run(["inspect", "-"], stdin: Data("// Not an RFC-822 Document".utf8))
        #expect(result.status == 4)
        #expect(result.stderr == "mailsave: -:1: not an RFC 5322 message: no header field before the body\n")
    }

    @Test func usageErrorsAreExit2() throws {
        #expect(try Binary.run(["inspect", "--format", "xml", "x.eml"]).status == 2)
        #expect(try Binary.run(["inspect"]).status == 2)
        #expect(try Binary.run(["frobnicate"]).status == 2)
    }

    @Test func helpTeachesWithExamples() throws {
        let result = try Binary.run(["inspect", "--help"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("Examples:"))
        #expect(result.stdout.contains("--mbox"))
    }

    @Test func everyShippedExampleMessageInspects() throws {
        let folder = Binary.packageRoot.appendingPathComponent("examples/messages")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".eml") }
        #expect(files.count >= 6)
        for file in files {
            let result = try Binary.run(["inspect", "examples/messages/" + file])
            #expect(result.status == 0, "\(file): \(result.stderr)")
        }
    }
}
