import MailRules
import Testing

/// A rule file's lines as libyaml counts them (its marks name lines, and diagnostics quote
/// them): LF, CR, CR LF, NEL, LS and PS each end a line.
struct SourceLinesTests {
    @Test(arguments: [
        ("a\nb", ["a", "b"]),
        ("a\r\nb", ["a", "b"]),
        ("a\rb", ["a", "b"]),
        ("a\r\r\nb", ["a", "", "b"]),
        ("a\n\rb", ["a", "", "b"]),
        ("a\u{85}b\u{2028}c\u{2029}d", ["a", "b", "c", "d"]),
        ("a\n", ["a", ""]),
        ("", [""]),
        ("\u{E2}\u{80}x é\u{301}\r", ["\u{E2}\u{80}x é\u{301}", ""]),
    ])
    func linesEndWhereLibyamlEndsThem(text: String, lines: [String]) {
        let file = SourceFile(path: "x.yaml", text: text)
        #expect(file.lines.map(String.init) == lines)
        #expect(String(file.line(lines.count)) == lines.last)
        #expect(file.line(lines.count + 1) == "")
        #expect(file.line(0) == "")
    }

    /// A file of CR endings: the diagnostic quotes its line, as with LF endings (it quoted
    /// nothing: the whole file was one line).
    @Test func aFileOfCREndingsIsQuoted() throws {
        let text = "rules:\r  - id: x\r    description: y\r    when: message.subject = 1\r    then: skip\r"
        let lf = text.replacingOccurrences(of: "\r", with: "\n")
        let diagnostics = [text, lf].map { text in
            Linter.lint(org: [SourceFile(path: "policy.yaml", text: text)]).diagnostics.map { "\($0.location.line):\($0.location.column)" }
        }
        #expect(!diagnostics[0].isEmpty)
        #expect(diagnostics[0] == diagnostics[1])
        let file = SourceFile(path: "policy.yaml", text: text)
        #expect(file.line(4) == "    when: message.subject = 1")
    }
}
