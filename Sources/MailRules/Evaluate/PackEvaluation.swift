/// What the rules concluded for one message: the deciding rule and its verdict, the
/// modifiers of the rules that applied, and the observations.
public struct RuleOutcome: Sendable {
    /// The first rule with a verdict whose condition held; nil when none did.
    public var deciding: CompiledRule?
    public var verdict: Verdict? { deciding?.definition.then }
    /// Every rule whose condition held, in order (deciding and not).
    public var applied: [CompiledRule] = []
    public var link: LinkMode = .bestMatch
    public var saveAs: String?
    public var createRecords = false
    public var observations: [String] = []
}

/// Per rule, for `explain`: whether it was evaluated, what its condition gave, and the value
/// of every sub-expression.
public struct RuleTrace: Sendable {
    public var rule: CompiledRule
    /// Nil when the rule was not reached (a verdict came first).
    public var held: Bool?
    public var steps: [(node: ExprNode, value: Value)]
}

extension RulePack {
    /// Runs the rules over `facts`. Rules with a verdict are tried in order until one holds;
    /// rules without one (observations, link choices) run whenever they hold, before or after.
    public func evaluate(_ facts: FactObject, trace: Bool = false) throws(EvaluationError) -> (RuleOutcome, [RuleTrace]) {
        var traces: [RuleTrace]? = trace ? [] : nil
        // With the CRM's facts at hand the run never stops early.
        let outcome = try run(facts, traces: &traces, within: nil) ?? RuleOutcome()
        return (outcome, traces ?? [])
    }

    /// Runs the rules as `evaluate` does over facts that hold only what `budget` pays for, as
    /// long as every rule it runs costs no more (`CompiledRule.cost`): the outcome, the same
    /// `evaluate` gives over the complete facts, or nil at the first rule that costs more.
    public func evaluate(_ facts: FactObject, within budget: FactCost) throws(EvaluationError) -> RuleOutcome? {
        var traces: [RuleTrace]?
        return try run(facts, traces: &traces, within: budget)
    }

    /// A rule that is run reads the facts its condition reads, and its observation's when it
    /// holds; a rule with a verdict after the deciding one is not run.
    private func run(_ facts: FactObject, traces: inout [RuleTrace]?, within budget: FactCost?) throws(EvaluationError) -> RuleOutcome? {
        var outcome = RuleOutcome()
        var evaluator = Evaluator(facts: facts, slots: slots, tracing: traces != nil)
        var failure: EvaluationError?
        for unretained in unretainedRules {
            var goOn = true
            // The rule borrowed, not retained (`rules` keeps it alive).
            unretained._withUnsafeGuaranteedRef { rule in
                do throws(EvaluationError) {
                    goOn = try Self.run(rule, &evaluator, &outcome, traces: &traces, within: budget)
                } catch {
                    failure = error
                }
            }
            if let failure { throw failure }
            if !goOn { return nil }
        }
        return outcome
    }

    /// One rule of `run`: false when the budget does not pay for it (the run stops there).
    private static func run(_ rule: CompiledRule, _ evaluator: inout Evaluator, _ outcome: inout RuleOutcome,
                            traces: inout [RuleTrace]?, within budget: FactCost?) throws(EvaluationError) -> Bool {
        if rule.decides && outcome.deciding != nil {
            traces?.append(RuleTrace(rule: rule, held: nil, steps: []))
            return true
        }
        if let budget, !budget.isSuperset(of: rule.cost) { return false }
        evaluator.trace = traces != nil ? [] : nil
        var held = true
        if let node = rule.conditionRoot {
            do { held = Evaluator.holds(try evaluator.evaluate(unretained: node)) } catch { throw Self.located(error, rule: rule, in: rule.condition) }
        }
        if held {
            outcome.applied.append(rule)
            if let link = rule.definition.link { outcome.link = link }
            if let saveAs = rule.definition.saveAs { outcome.saveAs = saveAs }
            if let create = rule.definition.createRecords { outcome.createRecords = create }
            if let node = rule.observeNode {
                let value: Value
                do { value = try evaluator.evaluate(node) } catch { throw Self.located(error, rule: rule, in: rule.observe) }
                if case .string(let text) = value, !text.isEmpty { outcome.observations.append(text) }
            }
            if rule.decides { outcome.deciding = rule }
        }
        traces?.append(RuleTrace(rule: rule, held: held, steps: evaluator.trace ?? []))
        return true
    }

    /// The error with the rule's id and the file position of the sub-expression that went over.
    static func located(_ error: EvaluationError, rule: CompiledRule, in expression: CompiledExpression?) -> EvaluationError {
        var error = error
        error.rule = rule.id
        error.location = expression.map { $0.source.location(error.offset ?? 0) } ?? rule.definition.location
        return error
    }
}
