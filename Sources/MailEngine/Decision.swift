import MailMessage
import MailRules

/// What mailsave decided for one message: the verdict, how to save and link it, why, and
/// the Salesforce record the mapping produced.
public struct Decision: Sendable {
    public var messageID: String?
    public var verdict: Verdict
    public var saveAs: String?
    public var who: [String]
    public var what: String?
    /// The rules that decided: the deciding rule first, then the rules that chose how.
    public var reasons: [(rule: String, message: String)]
    public var observations: [String]
    public var category: String?
    public var record: (object: String, fields: [(name: String, value: Value)])?
    /// Records to create for unknown addresses (forced and flexible modes).
    public var toCreate: [RecordToCreate]
    /// Records the body and signature name, with how each was found, for the Save dialog.
    public var candidates: [Candidate] = []

    /// The addresses records are created for.
    public var createFor: [String] { toCreate.map(\.address) }
}

/// A Contact (when the address's domain matches an Account) or a Lead, for an unknown address.
public struct RecordToCreate: Sendable, Equatable {
    public var address: String
    /// `Contact` or `Lead`.
    public var object: String
    /// The Account a Contact is created under.
    public var accountID: String?
    /// The address is free mail: a Lead's Company is the signature's company, else
    /// `[not provided]`, never the mail domain.
    public var freeMail: Bool

    public init(address: String, object: String, accountID: String?, freeMail: Bool = false) {
        self.address = address
        self.object = object
        self.accountID = accountID
        self.freeMail = freeMail
    }

    /// The new record's fields as the message names it, the same in every backend: the
    /// display name (`Lee, Kim` and `Kim Lee` both give FirstName Kim, LastName Lee), else the
    /// sender's signature, else the address's local part; the sender's title and phone; a
    /// Contact's Account, or a Lead's Company (the signature's; for free mail, which says
    /// nothing about the company, Salesforce's `[not provided]`; else the domain). The
    /// backend adds what is its own (OwnerId, a Lead's Status).
    public func fields(from message: Message) -> [String: String] {
        let participant = message.participants.first { $0.normalized == address }
        let signature = message.from.first?.normalized == address ? message.signature : nil
        let local = String(address.split(separator: "@").first ?? "")
        var name = participant?.name ?? ""
        if name.isEmpty, let signed = signature?.name { name = signed }
        if name.isEmpty { name = local }
        var first = "", last = name
        if let comma = name.firstIndex(of: ",") {
            last = name[..<comma].trimmingHorizontalSpace()
            first = name[name.index(after: comma)...].trimmingHorizontalSpace()
        } else if let space = name.lastIndex(of: " ") {
            first = String(name[..<space])
            last = String(name[name.index(after: space)...])
        }
        if last.isEmpty { last = local.isEmpty ? "unknown" : local }
        // The Email as the message spells it (`GapS05@x.example`, not `gaps05@x.example`): the
        // org matches emails without case. Lower-cased only where case changes its length.
        let spelled = participant.map { $0.local + "@" + $0.domain } ?? address
        let email = spelled.utf16.count == address.utf16.count ? spelled : address
        var fields = ["FirstName": first, "LastName": last, "Email": email, "Title": signature?.title ?? "",
                      "Phone": signature?.phones.first ?? "", "LeadSource": "Email"]
        if object == "Contact" {
            fields["AccountId"] = accountID ?? ""
        } else {
            let domain = String(address.split(separator: "@").last ?? "")
            fields["Company"] = signature?.company ?? (freeMail ? "[not provided]" : domain)
        }
        // A display name may carry control characters (an encoded word can hold a NUL): the
        // CRM's text cannot (`SalesforceField.storable`).
        return fields.mapValues { SalesforceField.storable($0).text }
    }

    /// How the decision names the record before it exists, in `links.who` and the record's
    /// WhoId: `new:Lead:sam@unknown.example`. `--apply` replaces it by the real id.
    public var placeholder: String { "new:\(object):\(address)" }

    /// Whether an id is a placeholder for a record to create.
    public static func isPlaceholder(_ id: String) -> Bool { id.hasPrefix("new:") }
}

/// What one decision found and concluded (`Engine.run`).
public struct DecisionRun: Sendable {
    public var decision: Decision
    public var facts: EngineFacts
    public var outcome: RuleOutcome
    public var traces: [RuleTrace]
    /// The records were searched: false when the ledger alone decided.
    public var searchedCRM: Bool
}

/// The processor: facts, the pack, the decision.
public struct Engine {
    public let pack: RulePack
    public let directory: CRMDirectory

    public init(pack: RulePack, directory: CRMDirectory) {
        self.pack = pack
        self.directory = directory
    }

    /// The facts: the look-up plan, the backend's one answer to it, the facts assembled from it.
    /// Throws `CRMError` when the CRM cannot answer, `SelectionError` for a refused selection.
    public func facts(_ message: Message, context: ProcessContext) throws -> EngineFacts {
        var builder = FactsBuilder(pack: pack)
        builder.reading = builder.read(message, context: context)
        builder.answers = try directory.resolve(builder.plan(message, context: context))
        try followUp(&builder, message)
        return try builder.build(message, context: context)
    }

    /// Checks the Save dialog's selection (`SelectionError` when an id is refused); `facts` and
    /// `decide` check it too, this is for callers that want to refuse before reading messages.
    public func validateSelection(_ context: ProcessContext) throws {
        // Nothing to check costs no look-up (for Salesforce, no API call).
        guard !context.effectiveSelection.isEmpty else { return }
        var builder = FactsBuilder(pack: pack)
        var plan = LookupPlan()
        for (_, id) in context.effectiveSelection { plan.ask(id, in: .recordIDs) }
        builder.answers = try directory.resolve(plan)
        try builder.validateSelection(context)
    }

    public func decide(_ message: Message, context: ProcessContext) throws -> (Decision, EngineFacts, [RuleTrace]) {
        try decide(message, context: context, trace: false)
    }

    public func decide(_ message: Message, context: ProcessContext, trace: Bool) throws -> (Decision, EngineFacts, [RuleTrace]) {
        let run = try self.run(message, context: context, trace: trace)
        return (run.decision, run.facts, run.traces)
    }

    /// One decision, analysing the body and searching the CRM only when it must. First the
    /// ledger alone: when no rule that runs reads a fact that costs more (`CompiledRule.cost`)
    /// and the verdict is not save (a save's links and record need the records), that is the
    /// decision, the one the complete facts give, with no `candidates` (they come from the
    /// search). Otherwise, the body analysis and the whole plan. A service email, internal
    /// mail, an excluded folder or a message saved already costs one ledger look-up instead of
    /// a dozen and no body analysis (on Salesforce: see `CRMDirectory.searchesInSteps`).
    /// Always everything when a selection is to be checked against the CRM, or for a trace
    /// (`explain` shows every fact).
    public func run(_ message: Message, context: ProcessContext, trace: Bool = false) throws -> DecisionRun {
        var builder = FactsBuilder(pack: pack)
        let reading = builder.read(message, context: context, scanningThread: false)
        builder.reading = reading
        var ledger: CRMAnswers?
        if !trace, directory.searchesInSteps, context.effectiveSelection.isEmpty, pack.rules.first?.cost.isEmpty == true {
            var plan = LookupPlan()
            plan.ledgerKey = reading.ledgerKey
            builder.answers = try directory.resolve(plan)
            let facts = try builder.build(message, context: context, known: [])
            if let outcome = try pack.evaluate(facts.object, within: []), outcome.verdict != .save {
                return DecisionRun(decision: try decision(message, context: context, facts: facts, outcome: outcome), facts: facts,
                                   outcome: outcome, traces: [], searchedCRM: false)
            }
            ledger = builder.answers
        }
        builder.reading?.scanThread(message)
        var plan = builder.plan(message, context: context)
        if ledger != nil { plan.ledgerKey = "" }
        builder.answers = try directory.resolve(plan)
        if let ledger { builder.answers.savedRecord = ledger.savedRecord }
        try followUp(&builder, message)
        let facts = try builder.build(message, context: context)
        let (outcome, traces) = try pack.evaluate(facts.object, trace: trace)
        return DecisionRun(decision: try decision(message, context: context, facts: facts, outcome: outcome), facts: facts,
                           outcome: outcome, traces: traces, searchedCRM: true)
    }

    /// The thread's records the answers lack (`FactsBuilder.threadFollowUps`), asked in a
    /// second look-up only when the thread names a Case or an anchor.
    func followUp(_ builder: inout FactsBuilder, _ message: Message) throws {
        let missing = builder.threadFollowUps(message)
        guard !missing.isEmpty else { return }
        var plan = LookupPlan()
        for id in missing { plan.ask(id, in: .recordIDs) }
        for record in try directory.resolve(plan).records.values { builder.answers.remember(record) }
    }

    func decision(_ message: Message, context: ProcessContext, facts: EngineFacts, outcome: RuleOutcome) throws(EvaluationError) -> Decision {
        var reasons: [(rule: String, message: String)] = []
        if let rule = outcome.deciding {
            reasons.append((rule.id, rule.definition.message ?? rule.definition.description))
        }
        for rule in outcome.applied where !rule.decides && (rule.definition.link != nil || rule.definition.saveAs != nil
            || rule.definition.createRecords != nil) {
            reasons.append((rule.id, rule.definition.message ?? rule.definition.description))
        }
        let verdict = outcome.verdict ?? .skip
        if outcome.deciding == nil { reasons.append(("(none)", "No rule decided; not saved")) }
        var observations = outcome.observations
        var decision = Decision(messageID: message.messageID, verdict: verdict, saveAs: nil, who: [], what: nil, reasons: reasons,
                                observations: [], category: nil, record: nil, toCreate: [], candidates: facts.related.candidates)
        guard verdict == .save else {
            decision.observations = observations
            return decision
        }
        let settings = pack.settings(for: context.mailbox)
        var saveAs = outcome.saveAs ?? (settings["save_as"].flatMap { if case .string(let s) = $0 { return s } else { return nil } } ?? "Task")
        if outcome.link == .caseAndContact { saveAs = "Task" }
        var (who, what) = links(facts: facts, context: context, link: outcome.link, saveAs: saveAs)
        // A person the message names by two of her addresses (Email and a second email field)
        // is one link: twice, she got two identical EmailMessage relations.
        var linked = Set<String>()
        who = who.filter { linked.insert($0).inserted }
        // Another customer's Case the thread names is not linked (FactsBuilder.isForeign): said
        // on a saved decision whose links could have held it (not with `link: none`, `people`
        // or `magic_anchor`), unless the user chose it (ids in either length).
        if let foreign = facts.foreignCase, outcome.link == .bestMatch || outcome.link == .caseAndContact,
           what.map(SalesforceID.canonical) != SalesforceID.canonical(foreign) {
            observations.append("Case \(foreign) named in the email is not linked: it is another customer's (its Contact and Account are none of the message's Contacts')")
        }
        // A Task on a Contact and a Case at once needs Email-to-Case and Email Drafts for Cases,
        // whichever rule chose the links: without both, the Contact is linked, the Case named.
        if saveAs == "Task", let caseID = what, SalesforceID.object(of: caseID) == "Case",
           who.contains(where: { SalesforceID.object(of: $0) == "Contact" }), !Self.casesWithContacts(settings) {
            // A record the user chose is never swapped for another; the search's next best is.
            let chosen = context.effectiveSelection.contains { $0.id == caseID }
            what = chosen ? nil : Self.bestBusiness(facts.related, excludingCases: true)
            observations.append("Case \(caseID) is not linked: a Task on a Contact and a Case needs the Email-to-Case and Email Drafts for Cases capabilities")
        }
        decision.saveAs = saveAs
        decision.who = who
        decision.what = what
        if case .string(let category)? = settings["category"], !category.isEmpty { decision.category = category }
        if outcome.createRecords && context.trigger == "auto" {
            // A Contact under the Account its domain matches (never for free mail), else a Lead.
            let machines = pack.list(setting: "no_record_local_parts")
            for participant in facts.participants where participant.lacksRecord {
                if let problem = Self.noRecord(for: participant, machines: machines) {
                    observations.append("No record is created for \(participant.address.normalized): \(problem)")
                    continue
                }
                let account = participant.freeMail ? nil : FactsBuilder.account(domain: participant.address.domain, answers: facts.answers)
                decision.toCreate.append(RecordToCreate(address: participant.address.normalized, object: account == nil ? "Lead" : "Contact",
                                                        accountID: account, freeMail: participant.freeMail))
            }
            for record in decision.toCreate {
                observations.append("A \(record.object) will be created for \(record.address)" + (record.accountID.map { " (Account \($0))" } ?? ""))
            }
            // Linking a Business record (flexible mode, link best_match): the one found, else the new Contact's Account.
            // Link `people` (forced mode) links People records only. A Lead linked excludes it
            // (a Task with a Lead's WhoId and a WhatId is refused by the org).
            if what == nil, let account = decision.toCreate.compactMap(\.accountID).first, outcome.link == .bestMatch,
               !who.contains(where: { SalesforceID.object(of: $0) == "Lead" }) {
                what = account
            }
            // The created records are linked like found ones, named by placeholder: a Task's WhoId
            // when no known person is linked, every one on an EmailMessage. A Lead has no Account,
            // so a Business record found wins over a new Lead (created, not linked).
            for created in decision.toCreate where saveAs == "EmailMessage" || who.isEmpty {
                if created.object == "Lead", let what {
                    observations.append("The new Lead for \(created.address) is not linked: a Lead excludes the Business record \(what)")
                    continue
                }
                who.append(created.placeholder)
            }
            decision.who = who
            decision.what = what
        }
        decision.record = try record(saveAs: saveAs, facts: facts, who: who, what: decision.what, message: message,
                                     neverSaveBody: settings["never_save_body"] == .bool(true), observations: &observations)
        decision.observations = observations
        return decision
    }

    /// Both capabilities a Task on a Contact and a Case needs (DESIGN.md point 11).
    static func casesWithContacts(_ settings: FactObject) -> Bool {
        guard case .object(let capabilities)? = settings["capabilities"] else { return false }
        return capabilities["email_to_case"] == .bool(true) && capabilities["email_drafts_for_cases"] == .bool(true)
    }

    /// The most specific Business record the search found (the lists are ranked): an
    /// Opportunity, a Case, then an Account.
    static func bestBusiness(_ related: RelatedRecords, excludingCases: Bool = false) -> String? {
        related.opportunities.first ?? (excludingCases ? nil : related.cases.first) ?? related.accounts.first
    }

    /// Who and What, by the link mode the rules chose. Blocklisted participants are never linked.
    func links(facts: EngineFacts, context: ProcessContext, link: LinkMode, saveAs: String) -> ([String], String?) {
        let selectedWho = context.effectiveSelection.filter { ["contact", "lead", "user"].contains($0.kind) }.map(\.id)
        let selectedWhat = context.effectiveSelection.last { ["account", "opportunity", "case"].contains($0.kind) }?.id
        let people = facts.participants.filter { !$0.blocked }
        let leads = people.compactMap { $0.lead?.id }
        let contacts = people.compactMap { $0.contact?.id }
        let related = facts.related
        switch link {
        case .none:
            return ([], nil)
        case .magicAnchor:
            return (facts.anchorWho.map { [$0] } ?? [], nil)
        case .caseAndContact:
            let contact = selectedWho.first { $0.hasPrefix("003") } ?? contacts.first
            return (contact.map { [$0] } ?? [], selectedWhat ?? facts.threadCase ?? related.cases.first)
        case .people:
            if !leads.isEmpty { return (saveAs == "Task" ? [leads[0]] : leads, nil) }
            return (saveAs == "Task" ? Array(contacts.prefix(1)) : contacts + people.compactMap { $0.user?.id }, nil)
        case .bestMatch:
            if !selectedWho.isEmpty || selectedWhat != nil {
                // A Task's WhoId is a Contact or a Lead; Users are linked on EmailMessages only.
                let people = selectedWho.filter { SalesforceID.object(of: $0) != "User" }
                return (saveAs == "Task" ? Array(people.prefix(1)) : selectedWho, selectedWhat)
            }
            if !leads.isEmpty {
                // A Lead has no Account: on an EmailMessage it excludes every other link.
                return (saveAs == "Task" ? [leads[0]] : leads, nil)
            }
            // The most specific Business record: a Case the thread names, an open or recent
            // Opportunity, a recent open Case, then the Account.
            let what = facts.threadCase ?? Self.bestBusiness(related)
            let who = saveAs == "Task" ? Array(contacts.prefix(1)) : contacts + people.compactMap { $0.user?.id }
            return (who, what)
        }
    }

    /// The fields holding a list of addresses, cut only between two of them.
    static let addressFields: Set<String> = ["ToAddress", "CcAddress", "BccAddress"]

    /// Why no record is created for a participant without one (`lacksRecord`), or nil: a machine's
    /// address (the pack's `no_record_local_parts`), or one Salesforce would refuse or cut (a
    /// cut Email made a new duplicate Lead with every message). The one test, for the
    /// records a decision creates and for the fact `related.creatable`.
    static func noRecord(for participant: ParticipantFacts, machines: CompiledList?) -> String? {
        let local = participant.address.local.split(separator: "+", maxSplits: 1).first.map(String.init) ?? participant.address.local
        if let machines, machines.contains(local) { return "a machine's address (no_record_local_parts)" }
        return uncreatable(participant.address)
    }

    /// Why no Lead or Contact can hold `address` as its Email, or nil: longer than the field
    /// (80, counted in UTF-16 units as Salesforce counts), or not an address Salesforce takes
    /// (no dot in the domain, an IP literal, an empty label, spaces or quotes in the local part).
    static func uncreatable(_ address: Address) -> String? {
        let email = address.normalized
        let limit = SalesforceSchema.personFieldLimits["Email"] ?? 80
        if email.utf16.count > limit { return "longer than the \(limit) characters of a Lead's or Contact's Email" }
        let domain = address.domain
        if address.local.isEmpty || domain.isEmpty || domain.hasPrefix("[") || !domain.contains(".") || domain.contains("..")
            || domain.hasPrefix(".") || domain.hasSuffix(".") || address.local.contains(where: { $0 == " " || $0 == "\"" }) {
            return "not an address a Lead's or Contact's Email can hold"
        }
        // Any space (a no-break or em space, a line or paragraph separator, NEL) or control
        // character: no mailbox has one, and no search can find the record again (every
        // message made another Lead).
        // ASCII (nearly every address) by its bytes; other text by its scalars' properties.
        let spaced = email.utf8.allSatisfy({ $0 < 0x80 })
            ? email.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F })
            : email.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.properties.generalCategory == .control })
        if spaced {
            return "not an address a Lead's or Contact's Email can hold (a space or control character)"
        }
        return nil
    }

    /// The record's fields: the pack's mapping, then the links and ids mailsave owns, each cut
    /// to Salesforce's limit (and the cut reported). A mapping that goes over an evaluation
    /// budget fails the decision, as a rule does (exit 5, naming `mapping Object.Field` and
    /// its place): the fields it and the ones after it would have filled were left out, and
    /// the save went through without them, never to be made again.
    func record(saveAs: String, facts: EngineFacts, who: [String], what: String?, message: Message, neverSaveBody: Bool,
                observations: inout [String]) throws(EvaluationError) -> (object: String, fields: [(name: String, value: Value)]) {
        var fields: [(name: String, value: Value)] = []
        // `never_save_body`: the body fields are left out, and no other field of the mapping
        // can carry the body either (an org's mapping of `message.subject + message.body` into
        // the Subject saved it all the same): the mapping sees an empty body.
        var mapped = facts.object
        if neverSaveBody, case .object(let messageFacts)? = facts.object["message"] {
            mapped = facts.object.replacing(["message": .object(messageFacts.replacing(["body": .string(""), "html": .string("")]))])
        }
        var evaluator = Evaluator(facts: mapped, slots: pack.slots)
        // An EmailMessage's body fields hold nothing else; a Task's Description holds the
        // addresses too (DESIGN point 14), which it keeps, its body part empty.
        let bodyFields: Set<String> = ["TextBody", "HtmlBody"]
        for (field, expression) in pack.mapping[saveAs] ?? [] {
            guard let node = expression.node else { continue }
            var value: Value
            do {
                value = try evaluator.evaluate(node)
            } catch {
                var located = error
                located.rule = "mapping \(saveAs).\(field.name)"
                located.location = expression.source.location(error.offset ?? 0)
                throw located
            }
            if neverSaveBody && bodyFields.contains(field.name) { value = .absent }
            if case .string(let text) = value, !field.accepts(text) {
                // Salesforce refuses the whole save for a date it cannot read: left blank, said
                // (an empty one, a message without a date, silently).
                if !text.isEmpty {
                    observations.append("\(saveAs).\(field.name): '\(text.prefix(40))' is not a \(field.format == .date ? "date (YYYY-MM-DD)" : "date and time (ISO 8601)"); left blank")
                }
                value = .absent
            }
            if case .string(let text) = value {
                let storable = SalesforceField.storable(text)
                if storable.removed > 0 {
                    value = .string(storable.text)
                    observations.append("\(saveAs).\(field.name): \(storable.removed) control character\(storable.removed == 1 ? "" : "s") removed (a CRM's text cannot hold them)")
                }
            }
            if case .string(let text) = value, let limit = field.maxLength, var cut = SalesforceField.truncated(text, toUTF16: limit) {
                // An address list is cut after its last whole address (`; ` joins them), not
                // in the middle of one (`person170@fab`, an address that is no one's).
                if Self.addressFields.contains(field.name), let separator = cut.lastIndex(of: ";") {
                    cut = String(cut[..<separator])
                }
                value = .string(cut)
                observations.append("\(saveAs).\(field.name) was truncated to \(limit) characters (from \(text.utf16.count); Salesforce counts UTF-16 units)")
            }
            fields.append((field.name, value))
        }
        func set(_ name: String, _ value: Value) {
            if let index = fields.firstIndex(where: { $0.name == name }) { fields[index].value = value } else { fields.append((name, value)) }
        }
        if saveAs == "Task" {
            set("WhoId", who.first.map(Value.string) ?? .absent)
            set("WhatId", what.map(Value.string) ?? .absent)
            if let id = message.messageID, !fields.contains(where: { $0.name == SalesforceSchema.taskMessageIdentifierField }) {
                set(SalesforceSchema.taskMessageIdentifierField, .string(MessageIDKey.fieldValue(id)))
            }
        } else {
            set("RelatedToId", what.map(Value.string) ?? .absent)
            if let id = message.messageID { set("MessageIdentifier", .string(MessageIDKey.fieldValue(id))) }
            if let reply = message.inReplyTo.first ?? message.references.last { set("ThreadIdentifier", .string(MessageIDKey.fieldValue(reply))) }
            if let date = message.date { set("MessageDate", .string(date.iso8601)) }
        }
        return (saveAs, fields)
    }
}
