@testable import MailRules
import Testing

/// `expr-budget`: lint names an expression whose loops over lists written in it take more
/// steps than a message's budget whatever the message. Its count (`ExprNode.minimumSteps`)
/// must be a lower bound of what the evaluator takes, on any facts, or lint would refuse a
/// pack that runs.
@Suite struct ExprBudgetTests {
    static func facts(participants: Int) throws -> FactObject {
        var builder = FactsBuilder()
        builder.participants = (0..<participants).map { FactsBuilder.person("p\($0)@fabrikam.com", contact: $0 % 2 == 0 ? "0035e00000Aaa\($0 % 10)\($0 % 10)" : nil) }
        return try builder.build()
    }

    static let expressions = [
        "true", "message.subject == \"Quote\"", "message.subject != \"\" and size(participants) > 2",
        "size(participants) > 99 or message.subject == \"x\"", "not (1 > 2)",
        "[1, 2, 3].all(a, a > 0)", "[1, 2, 3].any(a, a > 5)", "[1, 2, 3].map(a, a + 1) == [2, 3, 4]",
        "size([1, 2, 3, 4].filter(a, a > message.attachment_count)) >= 0", "[1, 2, 3].count(a, a > 1) == 2",
        "participants.all(p, [1, 2, 3].map(n, n) == [1, 2, 3])", "participants.map(p, p.address).all(a, a != \"\")",
        "[message.subject, \"x\"].all(s, size(s) > 0)", "size([\"a\", \"b\"].map(s, [1, 2, 3, 4, 5].map(n, message.subject))) == 2",
        "lower(message.subject) == \"quote\" and starts_with(message.subject, \"Q\")",
        "[1, 2, 3].any(a, [4, 5, 6].all(b, a + b > 100))", "message.subject in [\"Quote\", \"Order\"]",
        "participants.any(p, has(p.contact)) and [10, 20].map(x, x + message.attachment_count) != []",
    ]

    @Test(arguments: expressions)
    func theCountIsALowerBoundOfTheStepsTaken(text: String) throws {
        let (compiled, diagnostics) = compile(text)
        #expect(diagnostics.isEmpty, "\(diagnostics.map(\.message))")
        let node = try #require(compiled.node)
        for participants in [0, 1, 7] {
            var evaluator = Evaluator(facts: try Self.facts(participants: participants), slots: compiled.slots)
            _ = try evaluator.evaluate(node)
            #expect(evaluator.steps >= node.minimumSteps, "\(text) with \(participants) participants: \(evaluator.steps) steps, counted \(node.minimumSteps)")
        }
    }

    /// Exactly: what every operand, loop and stop counts.
    @Test func whatIsCounted() throws {
        func steps(_ text: String) throws -> Int { try #require(compile(text, expecting: .error).0.node).minimumSteps }
        #expect(try steps("message.subject == \"x\"") == 4) // ==, the field, its object, the constant
        #expect(try steps("size(participants) > 0 and message.subject == \"x\"") == 4) // `and`, then `>` of size(participants) only
        #expect(try steps("[1, 2, 3].map(a, message.subject)") == 2 + 3 * 2) // the macro, the folded list, three bodies
        #expect(try steps("[1, 2, 3].all(a, message.subject == \"\")") == 2 + 4) // `all` may stop after one
        #expect(try steps("participants.map(p, [1, 2, 3].map(n, n))") == 2) // a loop over facts may run no body
        #expect(try steps("[message.subject, \"x\"].map(s, s)") == 1 + (1 + 2 + 1) + 2)
    }

    /// Lint's error and the run's agree: a flagged condition fails at run time on a message
    /// that brings nothing to loop over; one just under the count does not get flagged.
    @Test func aFlaggedConditionFailsOnAnEmptyMessage() throws {
        let items = "[" + (1...101).map(String.init).joined(separator: ", ") + "]"
        let text = "size(\(items).map(a, \(items).map(b, \(items).map(c, message.subject)))) > 0"
        let node = try #require(compile(text).0.node)
        #expect(node.minimumSteps > Evaluator.defaultStepLimit)
        var evaluator = Evaluator(facts: try Self.facts(participants: 0), slots: 4)
        #expect(throws: EvaluationError.self) { _ = try evaluator.evaluate(node) }
        let lighter = try #require(compile("size(\(items).map(a, \(items).map(b, message.subject))) > 0").0.node)
        #expect(lighter.minimumSteps < Evaluator.defaultStepLimit)
        var again = Evaluator(facts: try Self.facts(participants: 0), slots: 4)
        #expect(try again.evaluate(lighter) == .bool(true))
    }
}
