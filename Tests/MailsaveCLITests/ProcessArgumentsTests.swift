import ArgumentParser
@testable import mailsave
import Testing

/// `process` reads its usual command lines without the argument parser's reflection
/// (`Process.quickParse`, a start-up cost per message); these must read exactly as the full
/// parser reads them, and everything else must be left to the full parser.
@Suite struct ProcessArgumentsTests {
    /// What a parsed `process` command holds, to compare the two readings.
    static func summary(_ command: Process) -> [String] {
        let options = command.options
        return [options.rules, options.mailbox, options.folder, options.folderRole ?? "<nil>", options.categories.joined(separator: "|"),
                options.trigger, options.selections.joined(separator: "|"), options.crm ?? "<nil>", options.store ?? "<nil>",
                command.format.rawValue, String(command.apply), command.files.joined(separator: "|")]
    }

    static let agreeing: [[String]] = [
        ["--store", "crm.sqlite", "--mailbox", "ann@contoso.com", "-"],
        ["--mailbox", "ann@contoso.com", "--crm", "examples/crm", "a.eml", "b.eml"],
        ["--mailbox=ann@contoso.com", "--rules=rules", "--format", "table", "--folder", "Inbox/Deals", "x.eml"],
        ["a.eml", "--mailbox", "ann@contoso.com", "--category", "Red", "--category", "Blue", "--trigger", "button",
         "--select", "contact=0035e00000AbCdEAAX", "--folder-role", "sent", "--apply", "--store", "s.sqlite"],
        ["--mailbox", "ann@contoso.com", "--format=text", "-", "other.eml"],
    ]

    @Test(arguments: agreeing) func readsAsTheFullParserReads(_ arguments: [String]) throws {
        let quick = try #require(Process.quickParse(arguments))
        let full = try #require(try Mailsave.parseAsRoot(["process"] + arguments) as? Process)
        #expect(Self.summary(quick) == Self.summary(full))
        let chosen = try #require(try Mailsave.parseForRun(["process"] + arguments) as? Process)
        #expect(Self.summary(chosen) == Self.summary(full))
    }

    static let leftToTheParser: [[String]] = [
        ["--help"], ["-h"], ["help"], ["--mailbox", "ann@contoso.com", "--help", "-"],
        ["--mailbox", "ann@contoso.com"],                                   // no file: a usage error
        ["--mailbox", "ann"],                                               // refused by validate
        ["--mailbox", "ann@contoso.com", "--trigger", "sometimes", "-"],    // refused by validate
        ["--mailbox", "ann@contoso.com", "--format", "yaml", "-"],          // not a format
        ["--mailbox", "ann@contoso.com", "--mailbox", "bob@contoso.com", "-"],
        ["--mailbox", "ann@contoso.com", "--store", "s", "--crm", "c", "-"],
        ["--mailbox", "ann@contoso.com", "--apply", "--crm", "c", "-"],
        ["--mailbox", "ann@contoso.com", "--unknown", "x", "-"],
        ["--mailbox", "ann@contoso.com", "--", "-x.eml"],
        ["--mailbox", "-", "-"],
        ["--mailbox", "ann@contoso.com", "--apply=yes", "-"],
        ["--mailbox", "ann@contoso.com", "--version", "-"],
        ["--mailbox", "ann@contoso.com", "--generate-completion-script", "bash"],
        ["--mailbox"],
    ]

    @Test(arguments: leftToTheParser) func leavesTheRestToTheFullParser(_ arguments: [String]) {
        #expect(Process.quickParse(arguments) == nil)
    }
}
