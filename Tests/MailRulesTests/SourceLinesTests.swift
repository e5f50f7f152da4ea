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

/// An expression's error is placed where its token is in the file, whatever the YAML style:
/// a tab, a doubled quote, an escape or an escaped line break in a quoted scalar, a blank line
/// in a plain or folded one (each was placed a few columns off, or on the blank line).
@Suite struct ExpressionPlaceTests {
    @Test(arguments: [
        ("rules:\n  - id: a\n    description: d\n    then: skip\n    when: \"\\t\\t message.subjct == \\\"a\\\"\"\n", 5, 17),
        ("rules:\n  - id: a\n    description: d\n    then: skip\n    when: 'message.subject == ''x'' and message.subjct == ''y'''\n", 5, 41),
        ("rules:\n  - id: a\n    description: d\n    then: skip\n    when: message.subject == \"x\" or\n\n      message.subjct == \"y\"\n", 7, 7),
        ("rules:\n  - id: a\n    description: d\n    then: skip\n    when: >\n      message.subject == \"x\" or\n\n      message.subjct == \"y\"\n", 8, 7),
        ("rules:\n  - id: a\n    description: d\n    then: skip\n    when: |\n      message.subject == \"x\" or\n\n      message.subjct == \"y\"\n", 8, 7),
        // An indentation indicator: the content's indentation is the parent's plus its digit,
        // and the first line's further spaces belong to the value.
        ("rules:\n  - id: a\n    description: d\n    then: skip\n    when: >2\n          message.subjct == \"x\"\n", 6, 11),
        ("rules:\n  - id: a\n    description: d\n    then: skip\n    when: |-2\n        message.subject == \"x\" or\n        message.subjct == \"y\"\n", 7, 9),
        ("rules:\n  - when: >2\n        message.subjct == \"x\"\n    id: a\n    description: d\n    then: skip\n", 3, 9),
        ("rules:\n  - id: a\n    description: d\n    then: skip\n    when: \"message.subject == \\\"\\u00e9\\\" or \\\n      message.subjct == \\\"y\\\"\"\n", 6, 7),
        ("rules:\n  - id: a\n    description: d\n    then: skip\n    when: message.subject == \"x\" or\n      message.subjct == \"y\"\n", 6, 7),
    ])
    func anUnknownNameIsPlacedOnItsToken(text: String, line: Int, column: Int) {
        var loader = PackLoader()
        loader.loadOrgFile(SourceFile(path: "x.yaml", text: text))
        var compiler = PackCompiler()
        _ = compiler.compile(loader.definition)
        let found = (loader.diagnostics + compiler.diagnostics).first { $0.check == "expr-unknown-name" }
        #expect(found?.location.line == line && found?.location.column == column, "\(text): \(String(describing: found?.location)) \(found?.message ?? "")")
    }
}
