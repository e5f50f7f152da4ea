import MailRules
import Testing
import SeededRandom

/// The shadowed-rule check finds, for each deciding rule, the earliest earlier deciding rule
/// whose `and` terms are all among its own: compared here with the plain all-pairs search on
/// random packs (the check files rules by a term to avoid that search's quadratic time).
@Suite struct ReachabilityTests {

    static let terms = (0..<6).map { "message.subject == \"s\($0)\"" } + ["trigger == \"auto\"", "direction == \"inbound\""]

    @Test func findsWhatTheAllPairsSearchFinds() {
        var random = SplitMix(state: 7)
        var compared = 0, shadowed = 0
        for _ in 0..<200 {
            // Rules of 0 to 3 terms (0: applies to every message), some repeated, in random order.
            var rules: [Set<Int>?] = []
            var text = "rules:\n"
            for index in 0..<random.below(12) + 2 {
                let decides = random.below(5) != 0
                let count = random.below(8) == 0 ? 0 : random.below(3) + 1
                let chosen = (0..<count).map { _ in random.below(Self.terms.count) }
                text += "  - id: r\(index)\n    description: d\n"
                if !chosen.isEmpty { text += "    when: '" + chosen.map { Self.terms[$0] }.joined(separator: " and ") + "'\n" }
                text += decides ? "    then: skip\n    message: m\n" : "    observe: '\"o\"'\n"
                rules.append(decides ? Set(chosen) : nil)
            }
            // The all-pairs search.
            var expected: [String] = []
            for (index, mine) in rules.enumerated() {
                guard let mine else { continue }
                if let earlier = rules[..<index].firstIndex(where: { $0.map { $0.isSubset(of: mine) } ?? false }) {
                    expected.append("r\(index) by r\(earlier)")
                }
            }
            let result = Linter.lint(org: [SourceFile(path: "p.yaml", text: text)])
            #expect(result.errorCount == 0, "\(result.diagnostics.map(\.message))\n\(text)")
            let found: [String] = result.diagnostics.filter { $0.check == "shadowed-rule" }.compactMap { diagnostic in
                let parts = diagnostic.message.split(separator: "'")
                return parts.count >= 4 ? "\(parts[1]) by \(parts[3])" : nil
            }
            #expect(found == expected, "\(text)")
            compared += 1
            shadowed += expected.count
        }
        #expect(compared == 200 && shadowed > 100, "\(shadowed) shadowed rules in the sample")
    }
}
