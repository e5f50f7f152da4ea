import FuzzSupport
import MailRules

/// The expression parser on any text, then the same text as a rule's condition through
/// the type checker and the compiler.
@main
enum FuzzExpression {
    static func main() {
        runFuzzer { bytes in
            let text = String(decoding: bytes, as: UTF8.self)
            _ = ExprParser.parse(text)
            // As a condition in a minimal pack, quoted as a YAML single-quoted scalar.
            let quoted = "'" + text.replacing("'", with: "''") + "'"
            let pack = "rules:\n  - id: fuzz\n    when: \(quoted)\n    then: skip\n    message: fuzz\n"
            _ = Linter.lint(org: [SourceFile(path: "fuzz.yaml", text: pack)])
        }
    }
}
