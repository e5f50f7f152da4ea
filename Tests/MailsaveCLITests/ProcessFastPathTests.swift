import Foundation
import SeededRandom
import Testing
@testable import mailsave

/// `process`'s fast reading of its command line against swift-argument-parser's: the same
/// command whenever the fast path takes a line, and the parser's reading otherwise.
struct ProcessFastPathTests {
    /// The parser's reading of `process ARGUMENTS`, as `dump` prints it; nil when it refuses.
    static func parserReading(_ arguments: [String]) -> String? {
        guard let command = try? Mailsave.parseAsRoot(["process"] + arguments) as? mailsave.Process else { return nil }
        var text = ""
        dump(command.job, to: &text)
        return text
    }

    static func fastReading(_ arguments: [String]) -> String? {
        guard let command = ProcessFastPath.parse(arguments) else { return nil }
        var text = ""
        dump(command, to: &text)
        return text
    }

    @Test func theNamesAreTheParsersNames() throws {
        let result = try Binary.run(["process", "--experimental-dump-help"])
        #expect(result.status == 0)
        let tool = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let arguments = try #require((tool["command"] as? [String: Any])?["arguments"] as? [[String: Any]])
        var parsers: [String: ProcessFastPath.Kind] = [:]
        for argument in arguments {
            guard let names = argument["names"] as? [[String: Any]],
                  let long = names.first(where: { $0["kind"] as? String == "long" })?["name"] as? String,
                  long != "help", long != "version" else { continue }
            let repeating = argument["isRepeating"] as? Bool == true
            parsers[long] = argument["kind"] as? String == "flag" ? .flag : repeating ? .repeating : .single
        }
        #expect(parsers.count == 16)
        #expect(parsers == ProcessFastPath.options, "the fast path's options differ from swift-argument-parser's for process")
    }

    /// Every option of the parser's command reaches the plain values both paths run: a
    /// property added to `Process` or `DecisionOptions` but not to `ProcessJob` or
    /// `DecisionSettings` would be read and then dropped.
    @Test func everyOptionReachesThePlainValues() {
        func labels(_ value: Any) -> Set<String> {
            Set(Mirror(reflecting: value).children.compactMap { $0.label.map { $0.hasPrefix("_") ? String($0.dropFirst()) : $0 } })
        }
        #expect(labels(mailsave.Process()) == labels(ProcessJob()))
        #expect(labels(DecisionOptions()) == labels(DecisionSettings()))
        #expect(labels(SalesforceOption()) == labels(SalesforceSettings()))
    }

    @Test func theLinesMailServersRunTakeTheFastPathAndReadAsTheParserReadsThem() throws {
        let lines: [[String]] = [
            ["--store", "/var/lib/mailsave/crm.sqlite", "--mailbox", "ann@contoso.com", "-"],
            ["--mailbox", "ann@contoso.com", "--crm", "examples/crm", "examples/messages/01-customer-question.eml"],
            ["--rules=/etc/mailsave/rules", "--mailbox=ann@contoso.com", "--folder", "Inbox/Deals", "--apply", "-"],
            ["--salesforce", "--mailbox", "ann@contoso.com", "--apply", "--store", "ledger.sqlite", "msg.eml"],
            ["--mailbox", "ann@contoso.com", "--trigger", "button", "--select", "contact=0035e00000AbCdEAAX", "--format", "table", "a.eml", "b.eml"],
            ["--thread", "--mailbox", "ann@contoso.com", "--message-folder", "Inbox", "--message-folder", "Sent", "a.eml", "b.eml"],
            ["--mailbox", "ann@contoso.com", "--folder-role", "sentitems", "--category", "Deals", "--category", "Q4", "-"],
            ["-", "--mailbox", "ann@contoso.com", "--folder=Entwürfe"],
        ]
        for line in lines {
            let fast = try #require(Self.fastReading(line), "\(line) did not take the fast path")
            #expect(fast == Self.parserReading(line), "\(line)")
        }
    }

    @Test func whatTheFastPathCannotReadPlainlyGoesToTheParser() {
        let base = ["--mailbox", "ann@contoso.com"]
        let refused: [[String]] = [
            [], ["-"], base, ["--help"], ["-h"], ["help"] + base + ["-"], base + ["--version", "-"], base + ["--", "-"],
            base + ["--nope", "-"], base + ["--folder", "-"], base + ["--folder", "-x", "-"], base + ["--folder", "", "-"],
            base + ["--folder=", "-"], base + ["--apply=yes", "-"], base + ["--apply", "--apply", "-"], base + ["--folder", "A", "--folder", "B", "-"],
            base + ["--format", "yaml", "-"], base + ["--trigger", "sometimes", "-"], base + ["--select", "contact", "-"],
            ["--mailbox", "Ann <ann@contoso.com>", "-"], base + ["--store", "s", "--crm", "c", "-"], base + ["--mbox", "t.mbox"],
            base + ["-x"], base + ["--folder"], base + ["--mailbox=\u{301}x", "-"], base + ["--\u{301}folder", "x", "-"],
            base + ["--folder", "help", "-"], base + ["-\u{301}"],
        ]
        for line in refused { #expect(ProcessFastPath.parse(line) == nil, "\(line)") }
    }

    /// Random lines from the options, values and troublemakers above: wherever the fast path
    /// takes one, the parser takes it too and reads the same command.
    @Test func randomLinesReadAsTheParserReadsThem() {
        var random = SplitMix(state: 0x5EED_FA57)
        let names = ProcessFastPath.options.keys.sorted()
        let values = ["ann@contoso.com", "rules", "Inbox", "Sent Items", "sentitems", "json", "table", "text", "button", "auto",
                      "contact=0035e00000AbCdEAAX", "crm.sqlite", "a.eml", "-", "", "help", "x=y", "Entwürfe", "\u{301}", "-\u{301}", "--"]
        var taken = 0
        for _ in 0..<3_000 {
            var line: [String] = []
            if random.below(4) > 0 { line += ["--mailbox", "ann@contoso.com"] }
            for _ in 0..<random.below(7) {
                let name = names[random.below(names.count)]
                switch random.below(6) {
                case 0: line.append("--" + name + "=" + values[random.below(values.count)])
                case 1: line.append(values[random.below(values.count)])
                case 2: line.append(["--", "-h", "--version", "--nope", "-x", "--" + name + "\u{301}"][random.below(6)])
                default: line += ["--" + name, values[random.below(values.count)]]
                }
            }
            if random.below(3) > 0 { line.append(["-", "a.eml", "b.eml"][random.below(3)]) }
            guard let fast = Self.fastReading(line) else { continue }
            taken += 1
            #expect(fast == Self.parserReading(line), "\(line)")
        }
        #expect(taken > 300, "only \(taken) of 3,000 lines took the fast path: the test no longer compares much")
    }

    /// A run of the fast path that saves closes its store: closing checkpoints the WAL into the
    /// store and syncs it (ending without it left the save in the -wal file only: deleting that
    /// file between runs, which the README allows, lost the save, and a copy of the store
    /// missed it). A run that only reads ends without closing and leaves nothing new.
    @Test func aSavingRunClosesItsStore() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mailsave-fast-close-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try StoreHardeningTests.sampleStore(in: folder)
        let line = ["process", "--store", store, "--mailbox", "ann@contoso.com", "examples/messages/01-customer-question.eml"]
        #expect(ProcessFastPath.parse(Array(line.dropFirst()) + ["--apply"]) != nil, "the line takes the fast path")
        let saved = try Binary.run(line + ["--apply"])
        #expect(saved.status == 0, "\(saved.stderr)")
        #expect(saved.stdout.contains("\"created\": true"))
        #expect(!FileManager.default.fileExists(atPath: store + "-wal"), "the save is in the store's file, not only in its WAL")
        let read = try Binary.run(line)
        #expect(read.status == 0 && read.stdout.contains("already-saved"), "\(read.stdout)")
    }

}
