import MailRules
@testable import mailsave
import ScalingCheck
import Testing

/// The text report of lint (printed by lint, and by process, explain and test for a pack
/// with errors) grows with its diagnostics, not with their square.
@Suite struct LintReportScalingTests {
    /// Thousands of diagnostics on one long line (a flow list of bad entries): each excerpt
    /// made the whole line's scalars again (10,000 entries: 9 s; 20,000: 35 s).
    @Test func manyDiagnosticsOnOneLongLineAreReportedInLinearTime() {
        func pack(_ entries: Int) -> String {
            "lists:\n  x:\n    kind: domains\n    entries: [" + Array(repeating: "a", count: entries).joined(separator: ",") + "]\n"
        }
        let small = pack(3_000)
        #expect(Linter.lint(org: [SourceFile(path: "r.yaml", text: small)]).diagnostics.count >= 3_000)
        let ratio = Scaling.ratio(small: small, large: pack(6_000)) { text in
            _ = LintReport.text(Linter.lint(org: [SourceFile(path: "r.yaml", text: text)]))
        }
        #expect(ratio < Scaling.limit, "doubling the entries multiplied the time by \(ratio)")
    }
}
