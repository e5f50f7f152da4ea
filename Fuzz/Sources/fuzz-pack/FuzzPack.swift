import FuzzSupport
import MailRules

/// A rule file through YAML, the format checks, the type checker and the compiler: any
/// input gives a pack or diagnostics that point inside the file.
@main
enum FuzzPack {
    static func main() {
        runFuzzer { bytes in
            let text = String(decoding: bytes, as: UTF8.self)
            let result = Linter.lint(org: [SourceFile(path: "fuzz.yaml", text: text)], strict: true)
            for diagnostic in result.diagnostics where diagnostic.location.line < 0 || diagnostic.location.column < 0 {
                fatalError("diagnostic before the start of the file: \(diagnostic)")
            }
        }
    }
}
