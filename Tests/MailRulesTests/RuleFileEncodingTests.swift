import Foundation
import MailRules
import Testing

/// A rule file that is not UTF-8 cannot be read; the error says where its first bad byte is.
@Suite struct RuleFileEncodingTests {
    @Test func theFirstByteThatIsNotUTF8IsPlaced() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("latin1-\(UUID().uuidString).yaml").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let bytes = Array("rules:\n  - id: café\n    description: ".utf8) + [0x63, 0x61, 0x66, 0xE9] + Array("\n".utf8)
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        #expect(throws: PackReadError(path: path + ":3:21", reason: "not UTF-8 text (byte 0xE9 here); rule files are UTF-8",
                                      notUTF8At: SourceLocation(path: path, line: 3, column: 21))) {
            _ = try PackLoader.read(path)
        }
    }
}

/// YAML's own refusals are placed where they happen, under the check that says why.
@Suite struct YAMLRefusalTests {
    @Test func aControlCharacterIsPlacedAtItsLineAndColumn() {
        let text = "rules:\n  - id: a\n    description: d\n    then: skip\n  - id: b\u{0}c\n"
        let (_, diagnostics) = YAMLLoader.load(SourceFile(path: "r.yaml", text: text))
        let first = diagnostics.first
        #expect(first?.check == "yaml-syntax")
        #expect(first?.location == SourceLocation(path: "r.yaml", line: 5, column: 10))
        #expect(first?.message.contains("control characters are not allowed (U+0000)") == true, "\(first?.message ?? "")")
    }

    /// An error at the very end of a file that ends with a line feed (libyaml's mark is a line
    /// past the last) is placed after the last line's text, inside the file.
    @Test func anErrorAtTheEndIsPlacedOnTheLastLine() {
        for text in ["settings:\n  a: [b,\n", "settings:\n  a: \"b\n", "rules:\n  - id: a\n    when: {x\n"] {
            let file = SourceFile(path: "r.yaml", text: text)
            let (_, diagnostics) = YAMLLoader.load(file)
            let location = diagnostics.first?.location
            #expect(diagnostics.first?.check == "yaml-syntax", "\(text)")
            #expect(location?.line == file.lines.count && location?.column == file.lines.last.map { $0.unicodeScalars.count + 1 }, "\(text): \(String(describing: location))")
        }
    }

    /// A YAML tag (`!!int`, `!custom`, `!!null`) says how to read a value; rule files are
    /// read one way, and tags were ignored in silence (`kind: !!int domains` passed lint).
    /// Quoted and block scalars, which the parser itself tags as strings, are not tags.
    @Test func aTagIsRefusedWhereItIs() {
        for (text, line, column, shown) in [("lists:\n  a:\n    kind: !!int domains\n", 3, 11, "!!int"),
                                            ("lists:\n  a:\n    kind: domains\n    entries: [ !custom b.example ]\n", 4, 16, "!custom"),
                                            ("lists:\n  a: !!map\n    kind: domains\n", 2, 6, "!!map"),
                                            ("settings: !!null\n", 1, 11, "!!null")] {
            let (_, diagnostics) = YAMLLoader.load(SourceFile(path: "r.yaml", text: text))
            let first = diagnostics.first
            #expect(first?.check == "schema-type" && first?.location == SourceLocation(path: "r.yaml", line: line, column: column), "\(text): \(String(describing: first))")
            #expect(first?.message == "YAML tags are not used in rule files: remove '\(shown)'", "\(first?.message ?? "")")
        }
        let (_, none) = YAMLLoader.load(SourceFile(path: "r.yaml", text: "a: 'x'\nb: \"y\"\nc: |\n  z\nd: >\n  w\ne: [\"!!int\", plain]\n"))
        #expect(none.isEmpty, "\(none.map(\.message))")
    }

    @Test func nestingPastTheParsersLimitIsALimit() {
        let text = "rules: " + String(repeating: "[", count: 1_200) + String(repeating: "]", count: 1_200) + "\n"
        let (_, diagnostics) = YAMLLoader.load(SourceFile(path: "r.yaml", text: text))
        #expect(diagnostics.first?.check == "yaml-limit", "\(diagnostics.first?.message ?? "")")
    }
}
