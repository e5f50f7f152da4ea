@testable import MailRules
import Testing

/// Broken rule files never trap or hang: mutated copies of the shipped pack and random
/// expressions all come back as a pack or as diagnostics.
@Suite struct RuleFuzzTests {
    struct SplitMix {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(max(bound, 1))) }
    }

    static let pieces = [":", "-", " ", "\n", "'", "\"", "&", "*", "[", "]", "{", "}", "#", "(", ")", "and", "not", "==", ".", ",",
                         "has(", "participants", "lists.", "\t", "|", ">", "!", "\u{0}", "é", "when: ", "then: ", "- id: x\n"]

    @Test func mutatedShippedFilesNeverTrap() throws {
        var random = SplitMix(state: 7)
        var outcomes = (clean: 0, diagnosed: 0)
        for name in ["policy.yaml", "org.yaml", "lists.yaml"] {
            let original = try PackLoader.read(Paths.rules + "/" + name).text
            for _ in 0..<300 {
                var scalars = Array(original.unicodeScalars)
                for _ in 0...random.below(6) where !scalars.isEmpty {
                    let position = random.below(scalars.count)
                    switch random.below(3) {
                    case 0: scalars.remove(at: position)
                    case 1: scalars.insert(contentsOf: Self.pieces[random.below(Self.pieces.count)].unicodeScalars, at: position)
                    default:
                        let end = min(scalars.count, position + random.below(40))
                        scalars.removeSubrange(position..<end)
                    }
                }
                var loader = PackLoader()
                loader.loadOrgFile(SourceFile(path: name, text: String(String.UnicodeScalarView(scalars))))
                var compiler = PackCompiler(strict: true)
                _ = compiler.compile(loader.definition)
                if loader.diagnostics.isEmpty && compiler.diagnostics.isEmpty { outcomes.clean += 1 } else { outcomes.diagnosed += 1 }
            }
        }
        #expect(outcomes.diagnosed > 100)
    }

    @Test func randomExpressionsNeverTrap() {
        var random = SplitMix(state: 11)
        let words = ["participants", "p", "p.internal", "message.subject", "lists.x", "trigger", "\"auto\"", "1", "true", "has(",
                     "thread.case", "(", ")", "and", "or", "not", "in", "==", "<", "+", "-", ",", ".any(p,", ".count(q,", "lower(",
                     "size(", "[", "]", "'", "settings.outbound_only", "mailbox.folder", "settings.synchronized_folders"]
        for _ in 0..<2_000 {
            let text = (0..<random.below(14)).map { _ in words[random.below(words.count)] }.joined(separator: " ")
            _ = compile(text)
        }
    }
}
