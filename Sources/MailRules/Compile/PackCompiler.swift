import MailMessage

/// A rule ready to run. A class: evaluation passes rules around by reference, never copying
/// their source text and positions.
public final class CompiledRule: Sendable {
    public let definition: RuleDefinition
    /// Nil when the rule has no `when`: it always applies.
    public let condition: CompiledExpression?
    public let observe: CompiledExpression?
    /// The compiled nodes, kept apart so the hot loop touches nothing else.
    public let conditionNode: ExprNode?
    public let observeNode: ExprNode?
    /// `conditionNode` unretained, for the evaluator's loop (see `ExprNode.first`).
    let conditionRoot: Unmanaged<ExprNode>?
    public let decides: Bool
    /// What the facts its condition and observation read cost: the engine analyses the body
    /// or searches the CRM before running it (`RulePack.evaluate(_:within:)`).
    public let cost: FactCost

    init(definition: RuleDefinition, condition: CompiledExpression?, observe: CompiledExpression?) {
        self.definition = definition
        self.condition = condition
        self.observe = observe
        self.conditionNode = condition?.node
        self.observeNode = observe?.node
        self.conditionRoot = conditionNode.map { Unmanaged.passUnretained($0) }
        self.decides = definition.then != nil
        // An expression without a compiled node (never in a pack that checked) costs everything.
        self.cost = [condition, observe].reduce(into: FactCost()) { cost, expression in
            if let expression { cost.formUnion(expression.node?.cost ?? .all) }
        }
    }

    public var id: String { definition.id }
}

/// The individual layer of one mailbox, compiled.
public struct UserLayer: Sendable {
    public let mailbox: String
    /// The user's own blocklist entries.
    public let blocklist: CompiledList
    /// Org blocklist entries the user removed (normalised), where the org allows it.
    public let removed: Set<String>
    /// Personal settings, already checked against what the org allows.
    public let settings: [String: Value]
}

/// A checked, compiled rule pack: what the engine runs.
public final class RulePack: Sendable {
    public let rules: [CompiledRule]
    /// `rules` unretained, for the evaluator's loop: reading a rule from the array retained
    /// and released it, a tenth of an evaluation.
    let unretainedRules: [Unmanaged<CompiledRule>]
    public let lists: [String: CompiledList]
    /// Org settings with defaults filled in, by name.
    public let orgSettings: [String: Value]
    public let mapping: [String: [(field: SalesforceField, expression: CompiledExpression)]]
    public let users: [String: UserLayer]
    /// Macro variable slots the largest expression needs.
    public let slots: Int
    /// The settings a user file may choose (`settings.personal`): kept so that user files
    /// can be compiled against a pack read back from a cache (`compilingUsers`).
    public let personalSettings: Set<String>
    /// Mailboxes whose user file has errors (or cannot be read), by normalised address, with
    /// one line per problem: no decision is made for them (see `userFileProblems(for:)`), while
    /// every other mailbox is decided normally.
    public let brokenUsers: [String: [String]]
    /// `settings(for:)` by mailbox: a decision asks twice and a batch asks for one mailbox
    /// thousands of times (it was a twentieth of a decision). At most `settingsKept` kept.
    private let settingsByMailbox = Locked<[String: FactObject]>([:])
    private static let settingsKept = 256

    init(rules: [CompiledRule], lists: [String: CompiledList], orgSettings: [String: Value],
         mapping: [String: [(field: SalesforceField, expression: CompiledExpression)]], users: [String: UserLayer], slots: Int,
         personalSettings: Set<String>, brokenUsers: [String: [String]] = [:]) {
        self.rules = rules
        self.personalSettings = personalSettings
        self.unretainedRules = rules.map { Unmanaged.passUnretained($0) }
        self.lists = lists
        self.orgSettings = orgSettings
        self.mapping = mapping
        self.users = users
        self.slots = slots
        self.brokenUsers = brokenUsers
    }

    /// The same pack with the user layers of `broken` mailboxes taken out and their problems kept.
    func quarantining(_ broken: [String: [String]]) -> RulePack {
        withUsers(users.filter { broken[$0.key] == nil }, brokenUsers: brokenUsers.merging(broken) { $0 + $1 })
    }

    /// The same org layer with these user layers (and problems) instead of its own.
    func withUsers(_ users: [String: UserLayer], brokenUsers: [String: [String]] = [:]) -> RulePack {
        RulePack(rules: rules, lists: lists, orgSettings: orgSettings, mapping: mapping, users: users, slots: slots,
                 personalSettings: personalSettings, brokenUsers: brokenUsers)
    }

    /// The org layer alone: what a cache keeps under the org files (user files are kept apart,
    /// so that `process` reads only the file of the mailbox it decides for).
    public var orgLayer: RulePack { users.isEmpty && brokenUsers.isEmpty ? self : withUsers([:]) }

    /// This org layer with `files` as its user files, loaded and compiled exactly as
    /// `Linter.check` does with the org files beside them (a user file's checks read only the
    /// org's lists and settings): the pack, and the user files' diagnostics.
    func compilingUsers(_ files: [SourceFile]) -> (RulePack, [Diagnostic]) {
        var loader = PackLoader()
        for file in files { loader.loadUserFile(file) }
        var compiler = PackCompiler()
        let users = compiler.compileUsers(loader.definition.users, lists: lists, settings: orgSettings, personal: personalSettings)
        return (withUsers(users), loader.diagnostics + compiler.diagnostics)
    }

    /// The problems of the user file of `mailbox`, or nil when it has none (or no file). A
    /// mailbox whose file is broken gets no decision: its file may add to its blocklist or
    /// exclude folders, so deciding with the org layer alone could save mail the user kept out.
    public func userFileProblems(for mailbox: String) -> [String]? {
        brokenUsers[CompiledList.normalize(mailbox, kind: .addresses)]
    }

    /// A named list setting (`corporate_domains`, `org_blocklist`, `free_mail_domains`).
    public func list(setting name: String) -> CompiledList? {
        if case .namedList(let list)? = orgSettings[name] { return list }
        return nil
    }

    /// Whether `address` (a mailbox) is in the org's corporate domains; nil when the pack
    /// names none (so it cannot tell).
    public func isCorporate(_ address: String) -> Bool? {
        guard let corporate = list(setting: "corporate_domains"), corporate.count > 0 else { return nil }
        return corporate.contains(String(address.split(separator: "@").last ?? "").lowercased())
    }

    /// The same pack with some org settings replaced (rule tests try every mode on one pack).
    /// Values are checked like the settings file; problems come back as diagnostics.
    public func overriding(_ settings: [(key: YScalar, value: YNode)], file: SourceFile) -> (RulePack, [Diagnostic]) {
        var loader = PackLoader()
        var compiler = PackCompiler()
        var values = orgSettings
        for (key, node) in settings {
            guard let spec = SettingSpec.named(key.value) else {
                loader.report(.schemaUnknownKey, key.location, length: key.value.count,
                              "unknown setting '\(key.value)'\(Suggestion.hint(for: key.value, in: SettingSpec.all.map(\.name)))")
                continue
            }
            loader.validateSetting(spec, key: key, value: node, file: file, personal: false)
            var used = Set<String>()
            values[spec.name] = compiler.settingValue(spec, node, lists: lists, usedLists: &used)
        }
        let pack = RulePack(rules: rules, lists: lists, orgSettings: values, mapping: mapping, users: users, slots: slots,
                            personalSettings: personalSettings, brokenUsers: brokenUsers)
        return (pack, loader.diagnostics + compiler.diagnostics)
    }

    public func user(_ mailbox: String) -> UserLayer? { users[CompiledList.normalize(mailbox, kind: .addresses)] }

    /// The effective `settings` object for a mailbox: the org's, with the user's personal choices.
    public func settings(for mailbox: String) -> FactObject {
        if let kept = settingsByMailbox.withLock({ $0[mailbox] }) { return kept }
        let settings = makeSettings(for: mailbox)
        settingsByMailbox.withLock { kept in
            if kept.count < Self.settingsKept { kept[mailbox] = settings }
        }
        return settings
    }

    private func makeSettings(for mailbox: String) -> FactObject {
        var values = orgSettings
        if let user = user(mailbox) {
            for (name, value) in user.settings { values[name] = value }
        }
        let fields = FactsSchema.settings.fields.map(\.name)
        var named: [String: Value] = [:]
        for name in fields { named[name] = values[name] }
        // Every name comes from the schema itself, so this cannot fail.
        return (try? FactObject(FactsSchema.settings, named)) ?? FactObject(defaultsOf: FactsSchema.settings)
    }
}

/// Turns a `PackDefinition` into a `RulePack`, type-checking every expression and running the
/// pack-level checks (duplicates, list entries, shadowing, capabilities, the individual layer).
public struct PackCompiler {
    public private(set) var diagnostics: [Diagnostic] = []
    let strict: Bool

    public init(strict: Bool = false) { self.strict = strict }

    mutating func report(_ check: LintCheck, _ location: SourceLocation, length: Int = 1, _ message: String,
                         related: (location: SourceLocation, message: String)? = nil) {
        if check.strictOnly && !strict { return }
        diagnostics.append(Diagnostic(check, at: location, length: length, message, related: related))
    }

    /// Settings the engine reads itself; the others are only read by rules (for `unused-setting`).
    static let engineSettings: Set<String> = [
        "corporate_domains", "org_blocklist", "free_mail_domains", "blocklist_free_mail", "users_may_remove_org_entries", "no_record_local_parts",
        "save_as", "category", "never_save_body", "personal", "mapping", "capabilities",
        "inbox_folders", "sent_folders", "salesforce_folders", "link_foreign_cases",
    ]

    public mutating func compile(_ definition: PackDefinition) -> RulePack {
        // Lists
        var lists: [String: CompiledList] = [:]
        var listLocations: [String: SourceLocation] = [:]
        for list in definition.lists {
            if let earlier = listLocations[list.name] {
                report(.duplicateList, list.nameLocation, length: list.name.count, "list '\(list.name)' is defined twice",
                       related: (earlier, "first defined here"))
                continue
            }
            listLocations[list.name] = list.nameLocation
            var entries: [String] = []
            entries.reserveCapacity(list.entries.count)
            for entry in list.entries {
                let normalized = CompiledList.normalize(entry.value, kind: list.kind)
                if validate(entry, normalized: normalized, kind: list.kind) { entries.append(normalized) }
            }
            lists[list.name] = CompiledList(name: list.name, kind: list.kind, entries: entries)
        }

        // Settings
        if definition.settings.count > 1, let first = definition.settings.first {
            for extra in definition.settings.dropFirst() {
                report(.duplicateSettings, extra.location, length: "settings".count, "'settings' is set in more than one file",
                       related: (first.location, "first set here"))
            }
        }
        let settingsDefinition = definition.settings.first
        var usedLists = Set<String>()
        var orgSettings: [String: Value] = [:]
        var personal = Set<String>()
        for spec in SettingSpec.all {
            let written = settingsDefinition?.value(spec.name)
            orgSettings[spec.name] = settingValue(spec, written?.value, lists: lists, usedLists: &usedLists)
            if spec.name == "personal", case .sequence(let items, _)? = written?.value {
                for case .scalar(let item) in items { personal.insert(item.value) }
            }
        }
        checkCorporateBlocklisted(definition, lists: lists, settings: orgSettings)

        // Rules
        var rules: [CompiledRule] = []
        var ruleLocations: [String: SourceLocation] = [:]
        var usedSettings = Set<String>()
        var slots = 1
        for rule in definition.rules {
            if let earlier = ruleLocations[rule.id] {
                report(.duplicateRule, rule.idLocation, length: rule.id.count, "rule id '\(rule.id)' is used twice",
                       related: (earlier, "first used here"))
            } else {
                ruleLocations[rule.id] = rule.idLocation
            }
            var condition: CompiledExpression?
            if let when = rule.when {
                let (compiled, found) = ExprChecker.compile(when, expecting: .bool, lists: lists)
                diagnostics.append(contentsOf: found)
                condition = compiled
            }
            var observe: CompiledExpression?
            if let source = rule.observe {
                let (compiled, found) = ExprChecker.compile(source, expecting: .string, lists: lists)
                diagnostics.append(contentsOf: found)
                observe = compiled
            }
            if let condition { checkBudget(condition, "the condition of rule '\(rule.id)'", fails: "every message that reaches the rule") }
            if let observe { checkBudget(observe, "the observation of rule '\(rule.id)'", fails: "every message on which the rule holds") }
            for compiled in [condition, observe].compactMap({ $0 }) {
                usedLists.formUnion(compiled.usedLists)
                usedSettings.formUnion(compiled.usedSettings)
                slots = max(slots, compiled.slots)
            }
            if rule.link == .caseAndContact {
                checkCaseCapabilities(rule, settings: orgSettings, settingsLocation: settingsDefinition?.value("capabilities")?.key.location)
            }
            rules.append(CompiledRule(definition: rule, condition: condition, observe: observe))
        }
        checkReachability(rules)

        // Mapping
        var mapping: [String: [(field: SalesforceField, expression: CompiledExpression)]] = [:]
        for (object, fields) in definition.mapping {
            let catalog = SalesforceField.fields(for: object.value) ?? []
            for (key, source) in fields {
                guard let field = catalog.first(where: { $0.name == key.value }) else { continue }
                let (compiled, found) = ExprChecker.compile(source, expecting: field.isBool ? .bool : .string, lists: lists)
                diagnostics.append(contentsOf: found)
                checkBudget(compiled, "the mapping of \(object.value).\(field.name)", fails: "every message saved as \(object.value)")
                usedLists.formUnion(compiled.usedLists)
                usedSettings.formUnion(compiled.usedSettings)
                slots = max(slots, compiled.slots)
                mapping[object.value, default: []].append((field, compiled))
            }
        }

        let users = compileUsers(definition.users, lists: lists, settings: orgSettings, personal: personal)

        if strict {
            for list in definition.lists where !usedLists.contains(list.name) && listLocations[list.name] == list.nameLocation {
                report(.unusedList, list.nameLocation, length: list.name.count, "list '\(list.name)' is never used")
            }
            for (key, _) in settingsDefinition?.values ?? [] where !Self.engineSettings.contains(key.value) && !usedSettings.contains(key.value) {
                report(.unusedSetting, key.location, length: key.value.count, "setting '\(key.value)' is set but no rule reads settings.\(key.value)")
            }
        }
        return RulePack(rules: rules, lists: lists, orgSettings: orgSettings, mapping: mapping, users: users, slots: slots,
                        personalSettings: personal)
    }

    // MARK: Values

    mutating func settingValue(_ spec: SettingSpec, _ node: YNode?, lists: [String: CompiledList], usedLists: inout Set<String>) -> Value {
        switch spec.shape {
        case .bool(let fallback):
            if case .scalar(let scalar)? = node { return .bool(["true", "True", "TRUE"].contains(scalar.value)) }
            return .bool(fallback)
        case .string(let fallback):
            if case .scalar(let scalar)? = node, !scalar.isNull { return .string(scalar.value) }
            return .string(fallback)
        case .choice(let values, let fallback):
            if case .scalar(let scalar)? = node, values.contains(scalar.value) { return .string(scalar.value) }
            return .string(fallback)
        case .folders(let fallback):
            var entries = fallback
            if case .sequence(let items, _)? = node { entries = items.compactMap { if case .scalar(let s) = $0 { return s.value } else { return nil } } }
            return .namedList(CompiledList(name: spec.name, kind: .folders, entries: entries.map { CompiledList.normalize($0, kind: .folders) }))
        case .listName(let kinds):
            guard case .scalar(let scalar)? = node, !scalar.isNull else {
                return .namedList(CompiledList(name: spec.name, kind: kinds.first ?? .domains, entries: []))
            }
            guard let list = lists[scalar.value] else {
                let hint = Suggestion.hint(for: scalar.value, in: lists.keys.sorted())
                report(.listReference, scalar.location, length: scalar.value.count, "no list named '\(scalar.value)'\(hint)")
                return .namedList(CompiledList(name: spec.name, kind: kinds.first ?? .domains, entries: []))
            }
            usedLists.insert(scalar.value)
            if !kinds.contains(list.kind) {
                report(.listReference, scalar.location, length: scalar.value.count,
                       "'\(spec.name)' needs a list of \(kinds.map(\.rawValue).joined(separator: " or ")); '\(scalar.value)' is a list of \(list.kind.rawValue)")
            }
            return .namedList(list)
        case .capabilities:
            var values: [String: Value] = ["email_to_case": .bool(false), "email_drafts_for_cases": .bool(false)]
            if case .mapping(let entries, _)? = node {
                for (key, value) in entries where PackLoader.capabilityKeys.contains(key.value) {
                    if case .scalar(let scalar) = value { values[key.value] = .bool(scalar.value == "true") }
                }
            }
            return (try? FactObject(FactsSchema.capabilities, values)).map(Value.object) ?? .absent
        case .settingNames, .mapping:
            return .absent
        }
    }

    // MARK: Entries

    /// `*.example.com` (subdomains only) is valid when `example.com` is.
    static func withoutWildcard(_ domain: String) -> String { domain.hasPrefix("*.") ? String(domain.dropFirst(2)) : domain }

    /// Letters, digits and hyphens in 2 or more labels of 1 to 63 bytes, not all-numeric at the end:
    /// checked on the normalised (lower-case, IDNA) bytes.
    static func isValidNormalizedDomain(_ bytes: Substring.UTF8View) -> Bool {
        guard !bytes.isEmpty, bytes.count <= 253 else { return false }
        var labels = 0
        var length = 0
        var previous: UInt8 = 0x2E
        var lastLabelHasLetter = false
        for byte in bytes {
            if byte == 0x2E {
                if length == 0 || previous == 0x2D { return false }
                labels += 1
                length = 0
                lastLabelHasLetter = false
            } else {
                let letter = byte >= 0x61 && byte <= 0x7A
                guard letter || (byte >= 0x30 && byte <= 0x39) || byte == 0x2D else { return false }
                if byte == 0x2D && length == 0 { return false }
                length += 1
                if length > 63 { return false }
                if letter || byte == 0x2D { lastLabelHasLetter = true }
            }
            previous = byte
        }
        guard length > 0, previous != 0x2D else { return false }
        return labels + 1 >= 2 && lastLabelHasLetter
    }

    static func isValidAddress(_ text: String) -> Bool {
        isValidNormalizedAddress(CompiledList.normalize(text, kind: .addresses))
    }

    static func isValidNormalizedAddress(_ text: String) -> Bool {
        let utf8 = text.utf8
        guard let at = utf8.lastIndex(of: 0x40) else { return false }
        let local = utf8[..<at]
        guard !local.isEmpty, local.count <= 64, !local.contains(0x20), local.first != 0x2E, local.last != 0x2E else { return false }
        var previous: UInt8 = 0
        for byte in local {
            if byte == 0x2E && previous == 0x2E { return false }
            previous = byte
        }
        return isValidNormalizedDomain(Substring(text)[...].utf8[utf8.index(after: at)...])
    }

    /// Reports an entry that cannot match anything; returns whether it is valid.
    mutating func validate(_ entry: YScalar, kind: ListKind) -> Bool {
        validate(entry, normalized: CompiledList.normalize(entry.value, kind: kind), kind: kind)
    }

    mutating func validate(_ entry: YScalar, normalized: String, kind: ListKind) -> Bool {
        let value = entry.value
        switch kind {
        case .domains:
            if value.utf8.contains(0x40) {
                report(.invalidDomain, entry.location, length: value.count, "'\(value)' is an address, not a domain; use a list of kind addresses_and_domains")
                return false
            }
            if value.utf8.contains(0x20) || !Self.isValidNormalizedDomain(Self.withoutWildcard(normalized)[...].utf8) {
                report(.invalidDomain, entry.location, length: value.count, "'\(value)' is not a valid domain name")
                return false
            }
        case .addresses:
            if !Self.isValidNormalizedAddress(normalized) {
                report(.invalidAddress, entry.location, length: value.count, "'\(value)' is not a valid email address")
                return false
            }
        case .addressesAndDomains:
            if value.utf8.contains(0x40) {
                if !Self.isValidNormalizedAddress(normalized) {
                    report(.invalidAddress, entry.location, length: value.count, "'\(value)' is not a valid email address")
                    return false
                }
            } else if value.utf8.contains(0x20) || !Self.isValidNormalizedDomain(Self.withoutWildcard(normalized)[...].utf8) {
                report(.invalidDomain, entry.location, length: value.count, "'\(value)' is neither a valid address nor a valid domain")
                return false
            }
        case .folders, .strings:
            if value.trimmingSpaces().isEmpty {
                report(.schemaValue, entry.location, "an empty entry matches nothing")
                return false
            }
        }
        return true
    }

    mutating func checkCorporateBlocklisted(_ definition: PackDefinition, lists: [String: CompiledList], settings: [String: Value]) {
        guard case .namedList(let corporate)? = settings["corporate_domains"], corporate.count > 0,
              case .namedList(let blocklist)? = settings["org_blocklist"], blocklist.count > 0,
              let written = definition.lists.first(where: { $0.name == blocklist.name }) else { return }
        for entry in written.entries {
            let domain = entry.value.split(separator: "@").last.map(String.init) ?? entry.value
            guard !entry.value.contains("@"), let matched = corporate.match(domain) else { continue }
            report(.corporateBlocklisted, entry.location, length: entry.value.count,
                   "'\(entry.value)' is corporate (\(matched) in list '\(corporate.name)') and on the org blocklist; internal domains are always blocked, so this entry is redundant")
        }
    }

    mutating func checkCaseCapabilities(_ rule: RuleDefinition, settings: [String: Value], settingsLocation: SourceLocation?) {
        var missing: [String] = []
        if case .object(let capabilities)? = settings["capabilities"] {
            for name in PackLoader.capabilityKeys where capabilities[name] != .bool(true) { missing.append(name) }
        } else {
            missing = PackLoader.capabilityKeys
        }
        guard !missing.isEmpty else { return }
        report(.caseCapabilities, rule.linkLocation ?? rule.location, length: LinkMode.caseAndContact.rawValue.count,
               "rule '\(rule.id)' links Cases, which needs settings.capabilities \(missing.map { "\($0): true" }.joined(separator: " and "))",
               related: settingsLocation.map { ($0, "capabilities are declared here") })
    }

    // MARK: Reachability

    /// The top-level `and` terms of a condition, printed canonically.
    static func conjuncts(_ expr: Expr) -> Set<String> {
        if case .binary("and", let left, let right) = expr.kind { return conjuncts(left).union(conjuncts(right)) }
        return [ExprPrinter.print(expr)]
    }

    /// An expression whose loops over lists written in it take more steps than a message's
    /// evaluation budget (`Evaluator.defaultStepLimit`) each time it runs, whatever the
    /// message: every message it runs on (`fails`) would fail (exit 5). Named at the
    /// outermost loop that alone goes over (`ExprNode.minimumSteps`).
    mutating func checkBudget(_ compiled: CompiledExpression, _ what: String, fails: String) {
        let limit = Evaluator.defaultStepLimit
        guard var culprit = compiled.node, culprit.minimumSteps > limit else { return }
        let steps = culprit.minimumSteps
        while let child = culprit.children.first(where: { $0.minimumSteps > limit }) { culprit = child }
        let source = compiled.source
        let length = max(1, min(culprit.span.count, source.text.count - culprit.span.lowerBound))
        report(.exprBudget, source.location(culprit.span.lowerBound), length: length,
               "\(what) takes at least \(steps == .max ? "more than \(Int.max)" : String(steps)) evaluation steps each time it runs, "
               + "whatever the message: more than a message's budget of \(limit); \(fails) would fail (exit 5)")
    }

    /// Constant conditions, and deciding rules an earlier one always beats: a rule is shadowed
    /// by an earlier one whose `and` terms are all among its own (the earliest is named).
    mutating func checkReachability(_ rules: [CompiledRule]) {
        // Only an earlier rule filed under one of a rule's terms can shadow it, so each is filed
        // under its term with the fewest rules so far: the candidates stay few, where comparing
        // every pair was quadratic (10,000 rules took 10 s).
        var deciding: [(rule: CompiledRule, conjuncts: Set<String>)] = []
        var byConjunct: [String: [Int]] = [:]
        var firstForEveryMessage: Int?
        for rule in rules {
            var alwaysTrue = rule.condition == nil
            if let condition = rule.condition, let node = condition.node, let constant = node.constantValue {
                let literal = condition.syntax.map { if case .bool = $0.kind { return true } else { return false } } ?? false
                if constant == .bool(false) {
                    report(.constantCondition, condition.source.location(0), length: condition.source.text.count,
                           "the condition of rule '\(rule.id)' is always false; the rule never applies")
                } else if constant == .bool(true) {
                    alwaysTrue = true
                    if !literal {
                        report(.constantCondition, condition.source.location(0), length: condition.source.text.count,
                               "the condition of rule '\(rule.id)' is always true")
                    }
                }
            }
            guard rule.decides else { continue }
            if rule.condition != nil && rule.condition?.node == nil { continue } // had errors: no verdict on it
            guard let mine = alwaysTrue ? Set<String>() : rule.condition?.syntax.map(Self.conjuncts) else { continue }
            var earliest = firstForEveryMessage
            for term in mine {
                // Each list is in rule order: its first subset is its earliest.
                for index in byConjunct[term] ?? [] {
                    if let found = earliest, index >= found { break }
                    if deciding[index].conjuncts.isSubset(of: mine) {
                        earliest = index
                        break
                    }
                }
            }
            if let earliest {
                let earlier = deciding[earliest]
                report(.shadowedRule, rule.definition.idLocation, length: rule.id.count,
                       "rule '\(rule.id)' can never decide: rule '\(earlier.rule.id)' always decides first "
                       + (earlier.conjuncts.isEmpty ? "(it applies to every message)" : "(its condition holds whenever this one does)"),
                       related: (earlier.rule.definition.idLocation, "'\(earlier.rule.id)' is here"))
            }
            let index = deciding.count
            deciding.append((rule, mine))
            if let term = mine.min(by: { (byConjunct[$0]?.count ?? 0, $0) < (byConjunct[$1]?.count ?? 0, $1) }) {
                byConjunct[term, default: []].append(index)
            } else if firstForEveryMessage == nil {
                firstForEveryMessage = index
            }
        }
    }

    // MARK: Individual layer

    mutating func compileUsers(_ users: [UserDefinition], lists: [String: CompiledList], settings: [String: Value],
                               personal: Set<String>) -> [String: UserLayer] {
        var result: [String: UserLayer] = [:]
        let mayRemove = settings["users_may_remove_org_entries"] == .bool(true)
        var corporate: CompiledList?
        if case .namedList(let list)? = settings["corporate_domains"] { corporate = list }
        var orgBlocklist: CompiledList?
        if case .namedList(let list)? = settings["org_blocklist"] { orgBlocklist = list }
        var files: [String: SourceLocation] = [:]
        for user in users {
            guard Self.isValidAddress(user.mailbox.value) else {
                report(.invalidAddress, user.mailbox.location, length: user.mailbox.value.count, "'\(user.mailbox.value)' is not a valid email address")
                continue
            }
            // A user file speaks only for the mailbox it is named after, and a mailbox has one file.
            // Its content is still checked; it just never applies to anyone.
            let name = user.file.path.split(separator: "/").last.map(String.init) ?? user.file.path
            var applies = true
            let owner = PackLoader.mailbox(ofUserFile: user.file.path)
            if let owner {
                if CompiledList.normalize(user.mailbox.value, kind: .addresses) != owner {
                    report(.userOverstep, user.mailbox.location, length: user.mailbox.value.count,
                           "'\(name)' speaks only for \(owner), not for '\(user.mailbox.value)'; a user file applies to the mailbox it is named after")
                    applies = false
                } else if let first = files[owner] {
                    report(.userOverstep, user.mailbox.location, length: user.mailbox.value.count,
                           "a second user file for \(owner); a mailbox has one user file, and neither applies until one is removed",
                           related: (first, "the first file for \(owner)"))
                    result[owner] = nil
                    applies = false
                } else {
                    files[owner] = user.mailbox.location
                }
            } else {
                report(.userOverstep, user.mailbox.location, length: user.mailbox.value.count,
                       "a user file is named after its mailbox (users/\(user.mailbox.value).yaml); '\(name)' is not an email address, so this file applies to no mailbox")
                applies = false
            }
            var added: [String] = []
            for entry in user.add where validate(entry, kind: .addressesAndDomains) {
                added.append(CompiledList.normalize(entry.value, kind: .addressesAndDomains))
            }
            var removed = Set<String>()
            for entry in user.remove {
                guard validate(entry, kind: .addressesAndDomains) else { continue }
                let normalized = CompiledList.normalize(entry.value, kind: .addressesAndDomains)
                let domain = normalized.split(separator: "@").last.map(String.init) ?? normalized
                if let matched = corporate?.match(domain) {
                    report(.userOverstep, entry.location, length: entry.value.count,
                           "'\(entry.value)' is internal (\(matched)); internal domains can never be removed from the blocklist")
                } else if !mayRemove {
                    report(.userOverstep, entry.location, length: entry.value.count,
                           "the org does not let users remove org blocklist entries (settings.users_may_remove_org_entries is false)")
                } else if let matched = orgBlocklist?.match(normalized), matched != CompiledList.composed(normalized) {
                    // The org blocks it by a broader entry (`fabrikam.com` for bob@fabrikam.com or
                    // mail.fabrikam.com): a removal takes away an entry, and this one is not one.
                    report(.userOverstep, entry.location, length: entry.value.count,
                           "'\(entry.value)' is blocked by the org entry '\(matched)', which this does not remove; remove '\(matched)' (it unblocks all it covers), or ask the org to narrow it")
                } else if orgBlocklist?.match(normalized) == nil {
                    report(.userOverstep, entry.location, length: entry.value.count, "'\(entry.value)' is not on the org blocklist; there is nothing to remove")
                } else {
                    removed.insert(normalized)
                }
            }
            var values: [String: Value] = [:]
            for (key, node) in user.settings {
                guard personal.contains(key.value), let spec = SettingSpec.named(key.value) else {
                    let allowed = personal.sorted()
                    report(.userOverstep, key.location, length: key.value.count,
                           "the org does not let users choose '\(key.value)'"
                           + (allowed.isEmpty ? "; settings.personal allows none" : "; settings.personal allows \(allowed.joined(separator: ", "))"))
                    continue
                }
                var unused = Set<String>()
                values[key.value] = settingValue(spec, node, lists: lists, usedLists: &unused)
            }
            guard applies, let mailbox = owner else { continue }
            result[mailbox] = UserLayer(mailbox: mailbox, blocklist: CompiledList(name: "individual", kind: .addressesAndDomains, entries: added),
                                        removed: removed, settings: values)
        }
        return result
    }
}

/// Prints an expression canonically (one space around operators, double-quoted strings), for
/// comparing conditions and for `explain`.
public enum ExprPrinter {
    public static func print(_ expr: Expr) -> String {
        switch expr.kind {
        case .bool(let value): return value ? "true" : "false"
        case .int(let value): return String(value)
        case .string(let value): return Value.string(value).description
        case .name(let name): return name
        case .member(let base, let field): return print(base) + "." + field
        case .call(let name, let arguments, _): return name + "(" + arguments.map(print).joined(separator: ", ") + ")"
        case .unary(let op, let operand): return op == "not" ? "not " + print(operand) : "-" + print(operand)
        case .binary(let op, let left, let right): return "(" + print(left) + " " + op + " " + print(right) + ")"
        case .list(let items): return "[" + items.map(print).joined(separator: ", ") + "]"
        }
    }
}
