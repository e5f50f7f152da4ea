@testable import MailRules
import Testing

@Suite struct ExpressionParserTests {
    @Test(arguments: [
        ("a or b and not c", "(a or (b and not c))"),
        ("not a == b", "not (a == b)"),
        ("x in lists.y and z", "((x in lists.y) and z)"),
        ("a not in b", "(a not in b)"),
        ("1 + 2 - 3 == 0", "(((1 + 2) - 3) == 0)"),
        ("p.f(x, 'y')", "f(p, x, \"y\")"),
        ("participants.any(p, p.internal)", "any(participants, p, p.internal)"),
        ("-(1)", "-1"),
        ("[1, 2]", "[1, 2]"),
    ])
    func precedence(text: String, printed: String) throws {
        let expr = try ExprParser.parse(text).get()
        #expect(ExprPrinter.print(expr) == printed)
    }

    @Test(arguments: [
        ("a && b", "unexpected character '&&'; write 'and'"),
        ("!a", "unexpected character '!'; write 'not'"),
        ("a = b", "unexpected character '='; write '==' to compare"),
        ("a == b == c", "comparisons do not chain; join them with 'and'"),
        ("f(a", "expected ')' to close the arguments, found end of expression"),
        ("'open", "string is not closed: add '"),
        ("a.", "expected a field name after '.', found end of expression"),
        ("", "empty expression"),
        ("a b", "unexpected name 'b' after the end of the expression"),
    ])
    func syntaxErrors(text: String, message: String) {
        guard case .failure(let error) = ExprParser.parse(text) else {
            Issue.record("\(text) parsed")
            return
        }
        #expect(error.message == message)
    }

    @Test func nestingIsBounded() {
        let deep = String(repeating: "(", count: 200) + "a" + String(repeating: ")", count: 200)
        guard case .failure(let error) = ExprParser.parse(deep) else {
            Issue.record("parsed")
            return
        }
        #expect(error.message.contains("nested deeper"))
    }
}

@Suite struct ExpressionTypeTests {
    func messages(_ text: String, expecting: FactType = .bool) -> [String] { compile(text, expecting: expecting).1.map(\.message) }

    @Test func wellTypedExpressionsCheckCleanly() {
        for text in [
            "trigger == \"auto\" and direction == \"outbound\"",
            "participants.all(p, p.internal or p.blocked)",
            "has(thread.case) and lower(thread.case) == \"x\"",
            "not has(thread.case) or starts_with(thread.case, \"500\")",
            "participants.count(p, has(p.contact)) > 1",
            "message.subject + \"!\" == \"Hi!\"",
            "size(participants.filter(p, p.free_mail)) == 0",
            "mailbox.folder in settings.synchronized_folders",
            "settings.capabilities.email_to_case",
            "\"x\" in message.references",
        ] {
            #expect(messages(text).isEmpty, "\(text): \(messages(text))")
        }
    }

    @Test func oneMistakeGivesOneDiagnostic() {
        #expect(messages("message.subjct == \"a\" and lower(message.subjct) == \"b\"").count == 2) // two uses, two reports
        #expect(messages("lower(message.nope) == \"x\" and true").count == 1)
        #expect(messages("unknown.field.deeper == 1").count == 1)
    }

    @Test func optionalFactsNeedAGuard() {
        #expect(messages("thread.case == \"1\"").isEmpty) // equality takes an absent value
        #expect(messages("lower(thread.case) == \"1\"") == ["'thread.case' may be absent; guard it: has(thread.case) and …"])
        #expect(messages("has(message.subject)") == ["'message.subject' is never absent (string); has() is always true"])
        #expect(messages("participants.any(p, has(p.contact) and starts_with(p.contact, \"003\"))").isEmpty)
    }

    @Test func typesOfOperandsAndResults() {
        #expect(messages("message.subject") == ["expected bool, found string"])
        #expect(messages("message.size > \"3\"") == ["'>' compares ints, found string"])
        #expect(messages("1 in lists.nope") == ["unknown list 'nope'"])
        #expect(messages("participants.any(message, true)") == ["'message' is a fact; name the variable something else"])
        #expect(messages("join(participants, \",\") == \"\"") == ["join() needs a list of strings, found list<Participant>"])
        #expect(messages("message.subject", expecting: .string).isEmpty)
    }
}

@Suite struct EvaluationTests {
    @Test func arithmetic() throws {
        #expect(try evaluate("1 + 2 == 3") == .bool(true))
        #expect(try evaluate("\"a\" + \"b\"") == .string("ab"))
        #expect(try evaluate("-5 + 2") == .int(-3))
    }

    /// `and` and `or` skip their right operand at run time. The right operand here would go
    /// over the evaluator's byte budget if it ran (the language has no division by zero), and
    /// the expressions read facts, so nothing is folded away at compile time.
    @Test func shortCircuitIsRunNotFolded() throws {
        var builder = FactsBuilder()
        builder.message["body"] = .string(String(repeating: "x", count: 1_000))
        builder.participants = (0..<50).map { FactsBuilder.person("r\($0)@example.com") }
        let facts = try builder.build()
        let bomb = "size(join(participants.map(p, message.body), \"\")) > 0"
        func run(_ text: String) throws -> (ExprNode, Result<Value, EvaluationError>) {
            let (compiled, diagnostics) = compile(text)
            #expect(diagnostics.isEmpty, "\(text): \(diagnostics.map(\.message))")
            let node = try #require(compiled.node)
            var evaluator = Evaluator(facts: facts, slots: compiled.slots, byteLimit: 10_000)
            return (node, Result { () throws(EvaluationError) in try evaluator.evaluate(node) })
        }
        // The bomb alone goes over.
        #expect(throws: EvaluationError.self) { try run(bomb).1.get() }
        for (text, expected) in [("false and \(bomb)", false), ("true or \(bomb)", true),
                                 ("message.subject == \"nope\" and \(bomb)", false), ("message.subject == \"Quote\" or \(bomb)", true),
                                 ("not (true or \(bomb))", false)] {
            let (node, result) = try run(text)
            #expect(node.constantValue == nil, "\(text) was folded")
            #expect(try result.get() == .bool(expected), "\(text)")
        }
        // With the left operand the other way round, the right one runs and goes over.
        for text in ["true and \(bomb)", "false or \(bomb)", "message.subject == \"Quote\" and \(bomb)"] {
            #expect(throws: EvaluationError.self, "\(text)") { try run(text).1.get() }
        }
    }

    /// A constant expression with nested loops folds to what it evaluates to: the folding
    /// evaluator had one variable slot, the inner loop's variable read as absent, and
    /// `not [1].any(a, [2].any(b, true))` became true (lint: "always true"; every message
    /// decided by it).
    @Test func nestedLoopsFoldToTheirValue() throws {
        for (text, expected) in [("not [1].any(a, [2].any(b, true))", false), ("[1].any(a, [2].any(b, b == 2))", true),
                                 ("[1, 2].all(a, [3].all(b, a < b))", true), ("[[1]].any(a, a.any(b, b == 1))", true)] {
            let (compiled, diagnostics) = compile(text)
            #expect(!diagnostics.contains { $0.severity == .error }, "\(text): \(diagnostics.map(\.message))")
            let node = try #require(compiled.node)
            // Folded or not (a loop whose body reads its variable is not constant), the value is right.
            if let folded = node.constantValue { #expect(folded == .bool(expected), "\(text) folded to \(folded)") }
            #expect(try evaluate(text) == .bool(expected), "\(text)")
        }
        #expect(compile("not [1].any(a, [2].any(b, true))").0.node?.constantValue == .bool(false), "the constant one is folded")
    }

    /// Every byte of text an expression reads is charged to the step budget, one step a KiB:
    /// the second argument of a string function (`starts_with("x", message.body)` read the
    /// body free, and in two nested loops of 1,000 took 93 s), a membership test's elements,
    /// a comparison of two strings, a glob's worst case (the text times the pattern).
    @Test func everyTextReadIsCharged() throws {
        var builder = FactsBuilder()
        builder.message["body"] = .string(String(repeating: "a", count: 1 << 20))
        let facts = try builder.build()
        func steps(_ text: String) throws -> Int {
            let (compiled, diagnostics) = compile(text)
            #expect(!diagnostics.contains { $0.severity == .error }, "\(text): \(diagnostics.map(\.message))")
            var evaluator = Evaluator(facts: facts, slots: compiled.slots)
            _ = try evaluator.evaluate(try #require(compiled.node))
            return evaluator.steps
        }
        for text in ["starts_with(\"x\", message.body)", "ends_with(\"x\", message.body)", "contains(\"x\", message.body)",
                     "\"x\" in [message.body]", "message.body == message.subject + message.body", "contains([message.body], \"x\")"] {
            let charged = try steps(text)
            #expect(charged >= 1_024, "\(text): \(charged) steps")
        }
        #expect(try steps("matches(message.body, \"*aaab\")") >= 4 * 1_024)
        // A loop over 1,000 items reading the body each time stops at the budget, at once.
        let loop = "[" + Array(repeating: "0", count: 1_000).joined(separator: ", ") + "].any(a, starts_with(\"x\", message.body))"
        #expect(throws: EvaluationError.self) { try steps(loop) }
    }

    /// Constant arithmetic past Int's range is an error where it is written (it was absent
    /// at run time, and lint said only "always false").
    @Test func constantOverflowIsAnError() {
        for text in ["9223372036854775807 + 1 > 0", "0 - 9223372036854775807 - 2 < 0"] {
            let (_, diagnostics) = compile(text)
            #expect(diagnostics.contains { $0.check == "expr-type" && $0.message.contains("past the integers' range") }, "\(text): \(diagnostics.map(\.message))")
        }
        #expect(compile("9223372036854775806 + 1 > 0").1.isEmpty)
    }

    @Test func stringFunctionsAreCaseInsensitiveWhereAdminsExpect() throws {
        #expect(try evaluate("starts_with(\"Undeliverable: x\", \"undeliverable\")") == .bool(true))
        #expect(try evaluate("matches(\"Invoice 2026-11.pdf\", \"invoice*.pdf\")") == .bool(true))
        #expect(try evaluate("matches(\"report.pdf\", \"*.doc?\")") == .bool(false))
        #expect(try evaluate("contains(\"Hello World\", \"o w\")") == .bool(true))
        #expect(try evaluate("size(\"héllo\")") == .int(5))
    }

    @Test func globIsLinear() {
        let text = String(repeating: "a", count: 5_000)
        let pattern = String(repeating: "*a", count: 2_000) + "b"
        #expect(!Glob.matches(text, pattern)) // exponential in a backtracking matcher
    }

    @Test func namedListsMatchSubdomainsAndSubfolders() throws {
        let domains = CompiledList(name: "corp", kind: .domains, entries: ["contoso.com", "xn--bcher-kva.example"])
        let folders = CompiledList(name: "sync", kind: .folders, entries: ["inbox", "salesforce emails"])
        let mixed = CompiledList(name: "block", kind: .addressesAndDomains, entries: ["spam.example", "ceo@fabrikam.com"])
        let lists = ["corp": domains, "sync": folders, "block": mixed]
        #expect(try evaluate("\"eu.mail.contoso.com\" in lists.corp", lists: lists) == .bool(true))
        #expect(try evaluate("\"notcontoso.com\" in lists.corp", lists: lists) == .bool(false))
        #expect(try evaluate("\"BÜCHER.example\" in lists.corp", lists: lists) == .bool(true))
        #expect(try evaluate("\"Inbox/Deals/2026\" in lists.sync", lists: lists) == .bool(true))
        #expect(try evaluate("\"Inboxes\" in lists.sync", lists: lists) == .bool(false))
        #expect(try evaluate("\"CEO@Fabrikam.com\" in lists.block", lists: lists) == .bool(true))
        #expect(try evaluate("\"cfo@fabrikam.com\" not in lists.block", lists: lists) == .bool(true))
        #expect(try evaluate("\"x@news.spam.example\" in lists.block", lists: lists) == .bool(true))
        #expect(mixed.match("x@news.spam.example") == "spam.example")
        // A wildcard entry matches subdomains only.
        let wildcard = CompiledList(name: "w", kind: .domains, entries: ["*.partner.example", "exact.example"])
        #expect(wildcard.match("eu.partner.example") == "*.partner.example")
        #expect(wildcard.match("partner.example") == nil)
        #expect(wildcard.match("mail.exact.example") == "exact.example")
    }

    /// Entries are compared by their bytes in composed form (NFC): "é" written as one character
    /// or as "e" and a combining accent is the same entry, as Swift holds the two strings equal,
    /// in an address, a folder and a string, whichever form the entry or the value is in.
    @Test func composedAndDecomposedTextMatchAlike() {
        let composed = "Priv\u{E9}", decomposed = "Prive\u{301}"
        #expect(composed == decomposed)
        for (entryForm, valueForm) in [(composed, decomposed), (decomposed, composed)] {
            let folders = CompiledList(name: "f", kind: .folders, entries: [CompiledList.normalize(entryForm, kind: .folders)])
            #expect(folders.match("Inbox") == nil)
            #expect(folders.match(valueForm + "/2026") != nil)
            let addresses = CompiledList(name: "a", kind: .addresses, entries: [CompiledList.normalize(entryForm + "@x.example", kind: .addresses)])
            #expect(addresses.match(valueForm + "@X.example") != nil)
            let strings = CompiledList(name: "s", kind: .strings, entries: [CompiledList.normalize(entryForm, kind: .strings)])
            #expect(strings.match(valueForm.uppercased()) != nil)
            // Through the compiled-pack cache's encoding and back.
            var writer = BinaryWriter()
            writer.string("f")
            writer.string(ListKind.folders.rawValue)
            writer.strings(folders.allEntries())
            var decoder = PackDecoder(reader: BinaryReader(bytes: writer.bytes, position: 0))
            #expect(decoder.list()?.match(valueForm + "/2026") != nil)
        }
        // The store's look-up keys are not composed: they compare as written, as before.
        #expect(CompiledList.normalize(decomposed + "@x.example", kind: .addresses) == "prive\u{301}@x.example")
        #expect(Array(CompiledList.normalize(decomposed + "@x.example", kind: .addresses).utf8) != Array("priv\u{E9}@x.example".utf8))
    }

    /// A folder name is normalised the same on its fast path (plain ASCII) and its slow one:
    /// doubled slashes, `.` segments, surrounding slashes and spaces go; a name that only
    /// starts with a dot stays.
    @Test func folderNamesNormaliseAlike() {
        let cases: [(String, String)] = [
            ("Inbox/Private", "inbox/private"), ("/Inbox/Private/", "inbox/private"), ("Inbox//Private", "inbox/private"),
            ("Inbox/./Private", "inbox/private"), ("./Inbox", "inbox"), ("Inbox/.Private", "inbox/.private"),
            (".Hidden", ".hidden"), (" Inbox / Private ", "inbox/private"), ("Inbox\t/Deals", "inbox/deals"),
            ("Boîte/Privé", "boîte/privé"), ("//", ""), ("Inbox/.", "inbox"),
        ]
        for (name, expected) in cases {
            #expect(CompiledList.normalize(name, kind: .folders) == expected, "\(name)")
        }
    }

    @Test func macrosOverParticipants() throws {
        var builder = FactsBuilder()
        builder.participants = [
            FactsBuilder.person("ann@contoso.com", isInternal: true, owner: true),
            FactsBuilder.person("bob@fabrikam.com", contact: "003000000000001"),
            FactsBuilder.person("spam@spam.example", blocked: true),
        ]
        let facts = try builder.build()
        #expect(try evaluate("participants.any(p, has(p.contact))", facts: facts) == .bool(true))
        #expect(try evaluate("participants.all(p, p.blocked)", facts: facts) == .bool(false))
        #expect(try evaluate("participants.count(p, p.blocked)", facts: facts) == .int(2))
        #expect(try evaluate("join(participants.filter(p, p.blocked and not p.owner).map(q, q.address), \", \")", facts: facts)
                == .string("spam@spam.example"))
        #expect(try evaluate("participants.any(p, participants.all(q, q.address == p.address))", facts: facts) == .bool(false))
    }

    @Test func absentIsNotFalseOrEmpty() throws {
        var builder = FactsBuilder()
        builder.thread = ["case": .string("")]
        let withEmpty = try builder.build()
        #expect(try evaluate("has(thread.case)", facts: withEmpty) == .bool(true))
        #expect(try evaluate("has(thread.case)") == .bool(false))
        #expect(try evaluate("thread.case == \"\"") == .bool(false))
    }

    @Test func stepLimitStopsRunawayEvaluation() throws {
        var builder = FactsBuilder()
        builder.participants = Array(repeating: FactsBuilder.person("a@b.example"), count: 300)
        let facts = try builder.build()
        let (compiled, _) = compile("participants.all(p, participants.all(q, participants.all(r, true)))")
        let node = try #require(compiled.node)
        var evaluator = Evaluator(facts: facts, slots: compiled.slots, stepLimit: 10_000)
        #expect(throws: EvaluationError.self) { try evaluator.evaluate(node) }
    }
}

@Suite struct DiagnosticPositionTests {
    /// Diagnostics point at the token, whatever the YAML style of the expression.
    @Test(arguments: [
        ("    when: trigger == \"auto\" and message.sizee > 1\n", 1, 33),
        ("    when: 'trigger == \"auto\" and message.sizee > 1'\n", 1, 34),
        ("    when: trigger == \"auto\"\n      and message.sizee > 1\n", 2, 11),
        ("    when: >-\n      trigger == \"auto\"\n      and message.sizee > 1\n", 3, 11),
        ("    when: |\n      trigger == \"auto\"\n        and message.sizee > 1\n", 3, 13),
    ])
    func pointsAtTheToken(when: String, line: Int, column: Int) {
        let text = "rules:\n  - id: r\n    description: d\n" + when + "    then: skip\n"
        var loader = PackLoader()
        loader.loadOrgFile(SourceFile(path: "p.yaml", text: text))
        var compiler = PackCompiler()
        _ = compiler.compile(loader.definition)
        #expect(loader.diagnostics.isEmpty)
        let diagnostic = compiler.diagnostics.first
        #expect(diagnostic?.message == "Message has no field 'sizee' (did you mean 'size'?)")
        #expect(diagnostic?.location.line == line + 3)
        #expect(diagnostic?.location.column == column)
    }
}

/// A decision builds its facts from literal pairs: the same object as from a dictionary, and
/// the same refusal of a name its type does not have.
@Suite struct FactObjectTests {
    @Test func pairsBuildWhatADictionaryBuilds() throws {
        let values: [String: Value] = ["address": .string("bob@fabrikam.com"), "role": .string("from"), "blocked": .bool(true), "contact": .string("003")]
        let fromPairs = try FactObject(FactsSchema.participant, fields: ["address": .string("bob@fabrikam.com"), "role": .string("from"),
                                                                           "blocked": .bool(true), "contact": .string("003")])
        #expect(fromPairs == (try FactObject(FactsSchema.participant, values)))
        #expect(fromPairs["lead"] == .absent && fromPairs["owner"] == .bool(false) && fromPairs["name"] == .string(""))
        #expect(throws: FactError.self) { try FactObject(FactsSchema.participant, fields: ["adress": .string("x")]) }
    }
}

/// What the facts an expression reads cost (`ExprNode.cost`): the engine analyses the body or
/// searches the CRM before a rule that reads such facts.
@Suite struct FactCostTests {
    static let none: FactCost = []
    @Test(arguments: [
        ("ledger.saved", none),
        ("message.service_kind != \"none\"", none),
        ("size(participants) > 0 and participants.all(p, p.blocked)", none),
        ("participants.any(p, p.blocked and not p.owner)", none),
        ("join(participants.filter(p, p.blocked).map(q, q.address), \", \") != \"\"", none),
        ("thread.whole and mailbox.folder_role != \"inbox\"", none),
        ("mailbox.folder in settings.excluded_folders", none),
        ("settings.auto_save_mode == \"forced\"", none),
        ("related.people > 0", .crmSearch),
        ("has(thread.anchor_who)", .crmSearch),
        ("has(thread.case) or thread.whole", .crmSearch),
        ("has(mailbox.user)", .crmSearch),
        ("participants.any(p, has(p.contact))", .crmSearch),
        ("participants.count(p, p.blocked or has(p.lead)) > 1", .crmSearch),
        ("size(related.candidates) > 0", .crmSearch),
        ("participants.filter(p, p.blocked) == participants.filter(q, q.owner)", .crmSearch),
        ("size(message.body_emails) > 0", .bodyAnalysis),
        ("\"x\" in message.body_links or related.people > 0", [.bodyAnalysis, .crmSearch]),
    ] as [(String, FactCost)])
    func cost(text: String, cost: FactCost) throws {
        let (compiled, diagnostics) = compile(text)
        #expect(diagnostics.isEmpty, "\(diagnostics.map(\.message))")
        let node = try #require(compiled.node)
        #expect(node.cost == cost, "\(text)")
    }
}
