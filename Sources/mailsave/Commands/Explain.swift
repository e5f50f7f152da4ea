import ArgumentParser
import MailEngine
import MailMessage
import MailRules
import MailStore

struct Explain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Show why a message is (not) saved: every rule, its value, and the facts it read.",
        discussion: """
        Takes the same arguments as process. Prints the facts (participants with their \
        blocklist layer and CRM matches, direction, thread, ledger), then every rule in order: \
        whether its condition held, the value of each fact and sub-expression it read, and \
        which rule decided. Rules after the deciding one are listed as not reached.

        Examples:
          mailsave explain --mailbox ann@contoso.com --crm examples/crm examples/messages/02-internal-only.eml
          mailsave explain --failing-only --mailbox ann@contoso.com --crm examples/crm examples/messages/08-gmail-prospect.eml
          mailsave explain --format json --mailbox ann@contoso.com --crm examples/crm msg.eml | jq '.rules[] | select(.held)'
        """
    )

    @OptionGroup var options: DecisionOptions

    @Flag(help: "Only the rules whose condition did not hold.")
    var failingOnly = false

    @Option(help: "text (people) or json (support tools): the decision, the facts, and every rule with the values it read.")
    var format: OutputFormat = .text

    @Argument(help: "The message file, or - for standard input.")
    var file: String

    func run() throws {
        let pack = try options.loadPack()
        let directory = try options.loadDirectory()
        try options.checkMailbox(pack: pack, directory: directory)
        let engine = Engine(pack: pack, directory: directory)
        try options.checkSelection(engine)
        let message = try readMessage(file)
        let decision: Decision, facts: EngineFacts, traces: [RuleTrace]
        do {
            (decision, facts, traces) = try engine.decide(message, context: options.context, trace: true)
        } catch let error as EvaluationError {
            throw DecisionOptions.evaluationFailure(error, file: file)
        } catch let error as StoreError {
            throw CommandFailure(error)
        } catch let error as CRMError {
            throw CommandFailure(error)
        }
        switch format {
        case .text:
            Terminal.out(ExplainText.render(decision: decision, facts: facts, traces: traces, context: options.context, failingOnly: failingOnly))
        case .json:
            Terminal.out(ExplainText.json(decision: decision, facts: facts, traces: traces, failingOnly: failingOnly).serialized(pretty: true))
        }
    }
}

enum ExplainText {
    static func render(decision: Decision, facts: EngineFacts, traces: [RuleTrace], context: ProcessContext, failingOnly: Bool) -> String {
        var lines: [String] = []
        lines.append("message   \(decision.messageID ?? "(no Message-ID)")")
        let role: String = { if case .object(let mailbox)? = facts.object["mailbox"], case .string(let role)? = mailbox["folder_role"] { return role } else { return "other" } }()
        lines.append("context   mailbox \(context.mailbox), folder \(context.folder) (\(role)), trigger \(context.trigger), direction \(facts.direction)")
        let decidedBy = decision.reasons.first.map { "\($0.rule): \($0.message)" } ?? "no rule"
        lines.append("decision  \(decision.verdict.rawValue)\(decision.saveAs.map { " as \($0)" } ?? "") (\(decidedBy))")
        lines.append("")
        lines.append("participants")
        for participant in facts.participants {
            var notes: [String] = []
            if participant.owner { notes.append("mailbox owner") }
            if let layer = participant.blockedBy { notes.append("blocked: \(layer) (\(participant.blockedEntry ?? ""))") }
            if participant.freeMail { notes.append("free mail") }
            if let lead = participant.lead { notes.append("Lead \(lead.id)") }
            if let contact = participant.contact { notes.append("Contact \(contact.id)") }
            if let account = participant.account {
                let how = participant.accountByContactDomain.map { " (the Account of the Contacts at \($0))" }
                    ?? participant.accountByWebsite.map { " (by website domain \($0))" } ?? ""
                notes.append("Account \(account)" + how)
            }
            if let user = participant.user { notes.append("User \(user.id)") }
            lines.append("  \(participant.role.padding(5))\(participant.address.normalized.padding(34))\(notes.isEmpty ? "no CRM match" : notes.joined(separator: ", "))")
        }
        let related = facts.related
        lines.append("related   contacts \(related.contacts), leads \(related.leads), accounts \(related.accounts), "
                     + "opportunities \(related.opportunities), cases \(related.cases), body references \(related.bodyReferences)")
        lines.append("thread    case \(facts.threadCase ?? "-")\(facts.foreignCase.map { ", another customer's case \($0) (not linked)" } ?? ""), "
                     + "anchor email \(facts.anchorEmail ?? "-"), anchor who \(facts.anchorWho ?? "-")")
        lines.append("ledger    \(facts.savedRecord.map { "saved as \($0)" } ?? "not saved")\(decision.messageID == nil ? " (key \(facts.ledgerKey))" : "")")
        lines.append("")
        lines.append("rules")
        let decidingID = decision.reasons.first?.rule
        // The rule column fits the longest id, so every row lines up.
        let idWidth = max(26, (traces.map { $0.rule.id.count }.max() ?? 0) + 1)
        for (index, trace) in traces.enumerated() {
            let rule = trace.rule
            let condition = rule.condition?.source.text ?? "(always)"
            let state: String
            switch trace.held {
            case nil: state = "not reached"
            case true?: state = rule.id == decidingID && rule.decides ? "HELD, decided" : "held"
            case false?: state = "false"
            }
            if failingOnly && trace.held != false { continue }
            let verdict = rule.definition.then.map { " -> \($0.rawValue)" } ?? ""
            let number = String(index + 1)
            lines.append(String(repeating: " ", count: max(0, 3 - number.count)) + number + " " + "\(rule.id.padding(idWidth))\(state.padding(13))\(condition)\(verdict)")
            guard trace.held != nil, let conditionNode = rule.conditionNode, let source = rule.condition?.source else { continue }
            for (text, values) in steps(trace.steps, within: conditionNode, source: source.text) {
                lines.append("       \(text) = \(values)")
            }
        }
        if !decision.observations.isEmpty {
            lines.append("")
            for observation in decision.observations { lines.append("observation  \(observation)") }
        }
        return lines.map(visible).joined(separator: "\n")
    }

    static func json(decision: Decision, facts: EngineFacts, traces: [RuleTrace], failingOnly: Bool) -> JSON {
        let participants: [JSON] = facts.participants.map { participant in
            .object([
                ("address", .string(participant.address.normalized)), ("name", .string(participant.address.name)),
                ("domain", .string(participant.address.domain)), ("role", .string(participant.role)),
                ("internal", .bool(participant.isInternal)), ("blocked", .bool(participant.blocked)),
                ("owner", .bool(participant.owner)), ("blocked_by", .optional(participant.blockedBy)),
                ("blocked_entry", .optional(participant.blockedEntry)), ("free_mail", .bool(participant.freeMail)),
                ("contact", .optional(participant.contact?.id)), ("lead", .optional(participant.lead?.id)),
                ("account", .optional(participant.account)), ("account_by_website", .optional(participant.accountByWebsite)),
                ("account_by_contact_domain", .optional(participant.accountByContactDomain)),
                ("user", .optional(participant.user?.id)),
            ])
        }
        let related = facts.related
        let rules: [JSON] = traces.compactMap { trace in
            if failingOnly && trace.held != false { return nil }
            var reads: [JSON] = []
            if trace.held != nil, let node = trace.rule.conditionNode, let source = trace.rule.condition?.source {
                reads = steps(trace.steps, within: node, source: source.text).map { .object([("expression", .string($0.0)), ("value", .string($0.1))]) }
            }
            return .object([
                ("rule", .string(trace.rule.id)), ("description", .string(trace.rule.definition.description)),
                ("condition", .optional(trace.rule.condition?.source.text)), ("then", .optional(trace.rule.definition.then?.rawValue)),
                ("held", trace.held.map(JSON.bool) ?? .null), ("reads", .array(reads)),
            ])
        }
        return .object([
            ("decision", DecisionJSON.encode(decision)),
            ("facts", .object([
                ("direction", .string(facts.direction)), ("participants", .array(participants)),
                ("related", .object([("contacts", .strings(related.contacts)), ("leads", .strings(related.leads)),
                                     ("accounts", .strings(related.accounts)), ("opportunities", .strings(related.opportunities)),
                                     ("cases", .strings(related.cases)), ("body_references", .strings(related.bodyReferences)),
                                     ("candidates", .strings(related.bodyReferences)),
                                     ("people", .int(related.contacts.count + related.leads.count)),
                                     ("business", .int(related.accounts.count + related.opportunities.count + related.cases.count)),
                                     ("creatable", .int({ if case .object(let found)? = facts.object["related"], case .int(let count)? = found["creatable"] { return count } else { return 0 } }()))])),
                ("thread", .object([("case", .optional(facts.threadCase)), ("foreign_case", .optional(facts.foreignCase)),
                                    ("anchor_email", .optional(facts.anchorEmail)),
                                    ("anchor_who", .optional(facts.anchorWho)),
                                    ("whole", facts.object["thread"].flatMap { if case .object(let thread) = $0 { return thread["whole"] } else { return nil } } == .bool(true) ? .bool(true) : .bool(false))])),
                ("ledger", .object([("saved", .bool(facts.savedRecord != nil)), ("record", .optional(facts.savedRecord)),
                                    ("saved_record", .optional(facts.savedRecord)), ("key", .string(facts.ledgerKey))])),
                ("candidates", .array(related.candidates.map { .object([("id", .string($0.id)), ("object", .string($0.object)), ("via", .string($0.via))]) })),
            ] + ruleFacts(facts.object, except: ["direction", "participants", "related", "thread", "ledger"]))),
            ("rules", .array(rules)),
        ])
    }

    /// The facts the rules read by those names (message, mailbox, trigger, selection,
    /// settings...), each as the rules see it, but for the ones `except` names.
    static func ruleFacts(_ root: FactObject, except: Set<String>) -> [(String, JSON)] {
        zip(root.type.fields, root.fields).filter { !except.contains($0.0.name) }.map { ($0.0.name, factJSON($0.1)) }
    }

    /// A fact value as JSON: objects by field name, named lists by name and size.
    static func factJSON(_ value: Value) -> JSON {
        switch value {
        case .absent: return .null
        case .bool(let flag): return .bool(flag)
        case .int(let number): return .int(number)
        case .string(let text): return .string(text)
        case .list(let values): return .array(values.map(factJSON))
        case .object(let object): return .object(zip(object.type.fields, object.fields).map { ($0.name, factJSON($1)) })
        case .namedList(let list): return .object([("list", .string(list.name)), ("kind", .string(list.kind.rawValue)), ("entries", .int(list.count))])
        }
    }

    /// The facts and calls a condition read, each with the values it had (several inside a macro).
    static func steps(_ steps: [(node: ExprNode, value: Value)], within root: ExprNode, source: String) -> [(String, String)] {
        var members = Set<ObjectIdentifier>()
        var stack = [root]
        while let node = stack.popLast() {
            members.insert(ObjectIdentifier(node))
            stack.append(contentsOf: node.children)
        }
        let scalars = Array(source.unicodeScalars)
        var order: [Range<Int>] = []
        var values: [Range<Int>: [Value]] = [:]
        for (node, value) in steps where members.contains(ObjectIdentifier(node)) {
            switch node.op {
            case .root, .field, .call, .macro: break
            default: continue
            }
            // Objects and lists of objects are the path to a fact, not a fact: show the leaves.
            if case .object = value { continue }
            if case .list(let items) = value, case .object? = items.first { continue }
            if values[node.span] == nil { order.append(node.span) }
            values[node.span, default: []].append(value)
        }
        return order.sorted { ($0.lowerBound, -$0.count) < ($1.lowerBound, -$1.count) }.compactMap { span in
            guard span.upperBound <= scalars.count, let seen = values[span] else { return nil }
            let text = String(String.UnicodeScalarView(scalars[span]))
            let shown = seen.count == 1 ? seen[0].description
                : seen.prefix(6).map(\.description).joined(separator: ", ") + (seen.count > 6 ? ", … (\(seen.count) values)" : "")
            return (text, shown)
        }
    }
}
