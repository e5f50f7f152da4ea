import Foundation
@testable import MailRules
import Testing

enum Paths {
    static let testsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    static let packageRoot = testsDirectory.deletingLastPathComponent().deletingLastPathComponent()
    static let rules = packageRoot.appendingPathComponent("rules").path
    static let examples = packageRoot.appendingPathComponent("Tests/LintExamples")
}

/// Checks and compiles one expression against a small pack's lists.
func compile(_ text: String, expecting: FactType = .bool, lists: [String: CompiledList] = [:]) -> (CompiledExpression, [Diagnostic]) {
    let file = SourceFile(path: "test.yaml", text: "when: " + text)
    let scalar = YScalar(value: text, location: MailRules.SourceLocation(path: "test.yaml", line: 1, column: 7), style: .plain)
    return ExprChecker.compile(ExprSource(text: text, scalar: scalar, file: file), expecting: expecting, lists: lists)
}

/// Evaluates an expression that must check cleanly.
func evaluate(_ text: String, facts: FactObject = FactObject(defaultsOf: FactsSchema.root),
              lists: [String: CompiledList] = [:], sourceLocation: Testing.SourceLocation = #_sourceLocation) throws -> Value {
    let (compiled, diagnostics) = compile(text, expecting: .error, lists: lists)
    #expect(diagnostics.isEmpty, "\(diagnostics.map(\.message))", sourceLocation: sourceLocation)
    let node = try #require(compiled.node, sourceLocation: sourceLocation)
    var evaluator = Evaluator(facts: facts, slots: compiled.slots)
    return try evaluator.evaluate(node)
}

/// Facts built field by field, for tests and the benchmark.
struct FactsBuilder {
    var message: [String: Value] = ["subject": .string("Quote"), "service_kind": .string("none")]
    var participants: [[String: Value]] = []
    var mailbox: [String: Value] = ["address": .string("ann@contoso.com"), "folder": .string("Inbox")]
    var trigger = "auto"
    var direction = "inbound"
    var related: [String: Value] = [:]
    var thread: [String: Value] = [:]
    var ledger: [String: Value] = [:]
    var settings: FactObject = FactObject(defaultsOf: FactsSchema.settings)

    func build() throws -> FactObject {
        try FactObject(FactsSchema.root, [
            "message": .object(try FactObject(FactsSchema.message, message)),
            "participants": .list(try participants.map { .object(try FactObject(FactsSchema.participant, $0)) }),
            "mailbox": .object(try FactObject(FactsSchema.mailbox, mailbox)),
            "trigger": .string(trigger),
            "direction": .string(direction),
            "related": .object(try FactObject(FactsSchema.related, related)),
            "thread": .object(try FactObject(FactsSchema.thread, thread)),
            "ledger": .object(try FactObject(FactsSchema.ledger, ledger)),
            "selection": .object(FactObject(defaultsOf: FactsSchema.selection)),
            "settings": .object(settings),
        ])
    }

    static func person(_ address: String, isInternal: Bool = false, blocked: Bool? = nil, contact: String? = nil, owner: Bool = false) -> [String: Value] {
        var fields: [String: Value] = [
            "address": .string(address), "domain": .string(String(address.split(separator: "@").last ?? "")),
            "role": .string("to"), "internal": .bool(isInternal), "blocked": .bool(blocked ?? isInternal), "owner": .bool(owner),
        ]
        if isInternal { fields["blocked_by"] = .string("internal") }
        if let contact { fields["contact"] = .string(contact) }
        return fields
    }
}
