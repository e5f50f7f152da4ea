@testable import MailRules
import Testing
import SeededRandom

/// Broken rule files never trap or hang: mutated copies of the shipped pack and random
/// expressions all come back as a pack or as diagnostics.
@Suite struct RuleFuzzTests {

    static let pieces = [":", "-", " ", "\n", "'", "\"", "&", "*", "[", "]", "{", "}", "#", "(", ")", "and", "not", "==", ".", ",",
                         "has(", "participants", "lists.", "\t", "|", ">", "!", "\u{0}", "é", "when: ", "then: ", "- id: x\n"]

    /// A few messages' facts that reach different rules of the shipped pack.
    static func samples(_ pack: RulePack) throws -> [FactObject] {
        let settings = pack.settings(for: "ann@contoso.com")
        var customer = FactsBuilder(settings: settings)
        customer.participants = [FactsBuilder.person("lena@fabrikam.com", contact: "0035e00000LenaAAA"),
                                 FactsBuilder.person("news@spam.example", blocked: true)]
        customer.related = ["people": .int(1), "contacts": .list([.string("0035e00000LenaAAA")])]
        var internalOnly = FactsBuilder(settings: settings)
        internalOnly.participants = [FactsBuilder.person("dan@contoso.com", isInternal: true)]
        var service = FactsBuilder(settings: settings)
        service.message["service_kind"] = .string("delivery_failure")
        var button = FactsBuilder(settings: settings)
        button.trigger = "button"
        button.mailbox["folder"] = .string("Archive")
        button.participants = [FactsBuilder.person("who@unknown.example")]
        return try [customer.build(), internalOnly.build(), service.build(), button.build()]
    }

    /// Every diagnostic points inside the file it names.
    static func positionsAreInside(_ diagnostics: [Diagnostic], _ files: [SourceFile]) -> [String] {
        var wrong: [String] = []
        for diagnostic in diagnostics {
            let location = diagnostic.location
            guard let file = files.first(where: { $0.path == location.path }) else {
                wrong.append("\(location): no such file")
                continue
            }
            let lineLength = file.line(location.line).unicodeScalars.count
            if location.line < 1 || location.line > file.lines.count || location.column < 1 || location.column > lineLength + 2 {
                wrong.append("\(location) (\(file.lines.count) lines, this one \(lineLength) long): \(diagnostic.message)")
            }
        }
        return wrong
    }

    /// Mutated copies of each shipped rule file, in the pack with the other files intact: each
    /// either gets diagnostics that all point inside the files, or compiles to a pack that
    /// decides the sample messages (or reports a rule's evaluation error with its place).
    @Test func mutatedShippedFilesNeverTrap() throws {
        var random = SplitMix(state: 7)
        var outcomes = (clean: 0, diagnosed: 0, decisions: 0, changedDecisions: 0)
        let names = ["policy.yaml", "org.yaml", "lists.yaml"]
        let originals = try names.map { try PackLoader.read(Paths.rules + "/" + $0) }
        let user = try PackLoader.read(Paths.rules + "/users/ann@contoso.com.yaml")
        let shipped = try Linter.load(Paths.rules).get()
        let facts = try Self.samples(shipped)
        let expected = try facts.map { try shipped.evaluate($0).0.deciding?.id }
        for (index, name) in names.enumerated() {
            let original = originals[index].text
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
                var files = originals
                files[index] = SourceFile(path: originals[index].path, text: String(String.UnicodeScalarView(scalars)))
                let (pack, diagnostics, _) = Linter.check(org: files, users: [user], strict: true)
                let wrong = Self.positionsAreInside(diagnostics, files + [user])
                #expect(wrong.isEmpty, "\(name): \(wrong)")
                guard !diagnostics.contains(where: { $0.severity == .error }) else {
                    outcomes.diagnosed += 1
                    continue
                }
                if diagnostics.isEmpty { outcomes.clean += 1 } else { outcomes.diagnosed += 1 }
                for (sample, wanted) in zip(facts, expected) {
                    do {
                        let outcome = try pack.evaluate(sample).0
                        outcomes.decisions += 1
                        if let deciding = outcome.deciding {
                            #expect(pack.rules.contains { $0 === deciding })
                            #expect(deciding.decides)
                        }
                        if outcome.deciding?.id != wanted { outcomes.changedDecisions += 1 }
                    } catch {
                        // An evaluation error is a rule's, with its place.
                        #expect(error.rule != nil && error.location != nil, "\(error)")
                    }
                }
            }
        }
        // The mutations are not all rejected: packs that compile are run on every sample.
        #expect(outcomes.diagnosed > 100)
        #expect(outcomes.decisions > 100)
    }

    @Test func randomExpressionsNeverTrap() throws {
        var random = SplitMix(state: 11)
        let words = ["participants", "p", "p.internal", "message.subject", "lists.x", "trigger", "\"auto\"", "1", "true", "has(",
                     "thread.case", "(", ")", "and", "or", "not", "in", "==", "<", "+", "-", ",", ".any(p,", ".count(q,", "lower(",
                     "size(", "[", "]", "'", "settings.outbound_only", "mailbox.folder", "settings.synchronized_folders",
                     ".map(p,", "join(", "\",\"", "message.body"]
        let facts = try Self.samples(try Linter.load(Paths.rules).get())
        var evaluated = 0
        for _ in 0..<2_000 {
            let text = (0..<random.below(14)).map { _ in words[random.below(words.count)] }.joined(separator: " ")
            let (compiled, diagnostics) = compile(text)
            #expect(Self.positionsAreInside(diagnostics, [SourceFile(path: "test.yaml", text: "when: " + text)]).isEmpty, "\(text)")
            // Whatever checks cleanly runs, and gives a bool (the expected type) on every sample.
            guard let node = compiled.node else { continue }
            for sample in facts {
                var evaluator = Evaluator(facts: sample, slots: compiled.slots)
                guard let value = try? evaluator.evaluate(node) else { continue }
                evaluated += 1
                if case .bool = value {} else { Issue.record("\(text) gave \(value)") }
            }
        }
        #expect(evaluated > 0)
    }

    /// Random well-typed conditions, built from the grammar: every one checks cleanly and
    /// evaluates to a bool on every sample, never trapping.
    @Test func randomWellTypedConditionsEvaluate() throws {
        var random = SplitMix(state: 13)
        let atoms = ["message.subject == \"Quote\"", "trigger == \"auto\"", "participants.any(p, p.internal)", "size(message.body) > 3",
                     "has(thread.case)", "\"x@y.example\" in participants.map(p, p.address)", "lower(message.subject) == \"quote\"",
                     "size(join(participants.map(p, p.address), \",\")) > 0", "participants.count(p, p.blocked) > 1",
                     "mailbox.folder in settings.synchronized_folders", "participants.all(q, contains(q.address, \"@\"))",
                     "size(participants.filter(p, not p.owner)) >= 1", "starts_with(message.subject + \"!\", \"q\")", "related.people - 1 < 0"]
        func condition(_ depth: Int) -> String {
            if depth == 0 { return atoms[random.below(atoms.count)] }
            switch random.below(5) {
            case 0: return "not (" + condition(depth - 1) + ")"
            case 1: return "(" + condition(depth - 1) + " and " + condition(depth - 1) + ")"
            case 2: return "(" + condition(depth - 1) + " or " + condition(depth - 1) + ")"
            case 3: return "participants.any(p, " + condition(depth - 1) + ")"
            default: return atoms[random.below(atoms.count)]
            }
        }
        let facts = try Self.samples(try Linter.load(Paths.rules).get())
        var results = Set<Bool>()
        for _ in 0..<300 {
            let text = condition(random.below(4))
            let (compiled, diagnostics) = compile(text)
            #expect(diagnostics.isEmpty, "\(text): \(diagnostics.map(\.message))")
            let node = try #require(compiled.node)
            for sample in facts {
                var evaluator = Evaluator(facts: sample, slots: compiled.slots)
                let value = try evaluator.evaluate(node)
                guard case .bool(let flag) = value else { Issue.record("\(text) gave \(value)"); continue }
                results.insert(flag)
            }
        }
        #expect(results == [true, false])
    }
}
