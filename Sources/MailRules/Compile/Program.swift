/// Built-in functions. Each is total: given values of its declared types it returns a value.
public enum Builtin: String, Sendable, CaseIterable {
    case lower, upper, startsWith = "starts_with", endsWith = "ends_with", contains, matches, size, join, has
}

/// Collection macros: bounded loops over a list in the facts, with one bound variable.
public enum Macro: String, Sendable, CaseIterable {
    case any, all, count, filter, map
}

/// One node of a compiled expression. Names are resolved to indexes, named lists to hash
/// sets, constants folded; `span` keeps the place in the source for `explain`.
public final class ExprNode: Sendable {
    public enum Op: Sendable {
        case constant(Value)
        case root(Int)
        case variable(Int)
        case field(Int)
        case not, and, or
        case equal, notEqual, less, lessEqual, greater, greaterEqual
        case add, subtract, negate, concat
        case inList, notInList, inNamed, notInNamed
        case call(Builtin)
        case macro(Macro, slot: Int)
        case list
    }

    public let op: Op
    public let children: [ExprNode]
    /// The first two children, unretained (`children` keeps them alive), so the evaluator
    /// visits them without retaining and releasing each: through the array or a strong field,
    /// those two atomic operations per node visited were most of evaluation's time.
    let first: Unmanaged<ExprNode>?
    let second: Unmanaged<ExprNode>?
    public let span: Range<Int>
    public let type: FactType
    /// Reads no fact and no variable: its value is known at compile time. Computed once, from
    /// the children's, so asking it at every level of a long chain stays linear.
    let isConstant: Bool
    /// What the facts it reads cost (`FactField.cost`), here or below: field accesses, and
    /// objects used whole (compared, listed) rather than through their fields. Computed once,
    /// from the children's, like `isConstant`.
    public let cost: FactCost
    /// Steps the evaluator takes here and below whatever the facts: a lower bound, for lint
    /// (`expr-budget`). Loops over lists written in the expression count every item (`any`
    /// and `all` one, as they may stop at the first), loops over facts none; `and`, `or` and
    /// anything that stops at an operand of the wrong kind count their first operand only.
    /// Computed once from the children's, like `isConstant`; saturates at `Int.max`.
    let minimumSteps: Int

    init(_ op: Op, _ children: [ExprNode] = [], span: Range<Int>, type: FactType) {
        self.op = op
        self.children = children
        first = children.first.map { Unmanaged.passUnretained($0) }
        second = children.count > 1 ? Unmanaged.passUnretained(children[1]) : nil
        self.span = span
        self.type = type
        switch op {
        case .constant: isConstant = true
        case .root, .variable: isConstant = false
        default: isConstant = children.allSatisfy(\.isConstant)
        }
        cost = Self.cost(op, children)
        minimumSteps = Self.minimumSteps(op, children)
    }

    private static func minimumSteps(_ op: Op, _ children: [ExprNode]) -> Int {
        func add(_ a: Int, _ b: Int) -> Int { let (sum, overflow) = a.addingReportingOverflow(b); return overflow ? .max : sum }
        let below: Int
        switch op {
        case .constant, .root, .variable:
            below = 0
        case .equal, .notEqual, .inList, .notInList, .list:
            // Every operand is evaluated.
            below = children.reduce(0) { add($0, $1.minimumSteps) }
        case .macro(let macro, _):
            let list = children.first
            let items: Int
            switch list?.op {
            case .constant(.list(let values))?: items = values.count
            case .list?: items = list?.children.count ?? 0
            default: items = 0
            }
            let runs = macro == .any || macro == .all ? min(items, 1) : items
            let body = children.count > 1 ? children[1].minimumSteps : 0
            let (loop, overflow) = runs.multipliedReportingOverflow(by: body)
            below = add(list?.minimumSteps ?? 0, overflow ? .max : loop)
        default:
            // The first operand; the others may be skipped (`and`, `or`, an operand of the
            // wrong kind, a function's absent argument).
            below = children.first?.minimumSteps ?? 0
        }
        return add(1, below)
    }

    private static func cost(_ op: Op, _ children: [ExprNode]) -> FactCost {
        var cost = children.reduce(into: FactCost()) { $0.formUnion($1.cost) }
        switch op {
        case .root(let index):
            cost.formUnion(FactsSchema.root.fields[index].cost)
        case .field(let index):
            // The checker gives a field access an object-typed base, and an index inside it.
            if case .object(let object)? = children.first?.type, object.fields.indices.contains(index) {
                cost.formUnion(object.fields[index].cost)
            } else {
                cost = .all
            }
        case .macro, .call(.size):
            // A macro reads its list element by element (its body's field accesses say which
            // facts); size() reads only the count.
            break
        default:
            for child in children { if let object = child.type.objectType { cost.formUnion(object.cost) } }
        }
        return cost
    }

    var constantValue: Value? {
        if case .constant(let value) = op { return value }
        return nil
    }
}

/// Evaluation ran past one of its budgets: steps (it cannot loop, but facts can be large) or
/// the bytes of the values it builds. Carries the rule and the place when the pack knows them.
public struct EvaluationError: Error, Sendable, CustomStringConvertible {
    public enum Budget: Sendable { case steps, bytes }
    public var budget: Budget
    public var message: String
    /// The offset, in the expression's text, of the sub-expression that went over.
    public var offset: Int?
    /// The rule (or `mapping Object.Field`) being evaluated, and where its expression is.
    public var rule: String?
    public var location: SourceLocation?

    public init(budget: Budget, message: String, offset: Int? = nil) {
        self.budget = budget
        self.message = message
        self.offset = offset
    }

    public var description: String {
        var text = ""
        if let location { text += location.description + ": " }
        if let rule { text += "rule '\(rule)': " }
        return text + message
    }
}

/// One evaluation: the facts, the macro variables, the step counter, and, for `explain`,
/// the value of every node evaluated.
///
/// Two budgets bound it whatever the facts: steps (each node evaluated is one, and whatever
/// reads text, a function's arguments, a membership test's elements, a comparison of two
/// strings, a glob's worst case, costs one more per KiB it reads), and bytes: every string
/// or list the evaluation builds (concatenation, join, lower, upper, map, filter, a list
/// literal) is charged its size before it is allocated, so `join(participants.map(p,
/// message.body), "")` over 1,000 recipients fails at once instead of allocating gigabytes.
/// Both are errors of the rule being evaluated.
public struct Evaluator {
    public static let defaultStepLimit = 1_000_000
    /// What one evaluation of a pack over a message may build, in bytes.
    public static let defaultByteLimit = 128 << 20
    /// A list element's size, as charged to the byte budget.
    static let elementBytes = MemoryLayout<Value>.stride

    let root: FactObject
    var slots: [Value]
    public private(set) var steps = 0
    let stepLimit: Int
    /// Bytes of values built so far.
    public private(set) var bytes = 0
    let byteLimit: Int
    /// When set, every evaluated node and its value, in evaluation order.
    public var trace: [(node: ExprNode, value: Value)]?

    public init(facts: FactObject, slots: Int = 8, stepLimit: Int = Evaluator.defaultStepLimit,
                byteLimit: Int = Evaluator.defaultByteLimit, tracing: Bool = false) {
        self.root = facts
        self.slots = [Value](repeating: .absent, count: max(slots, 1))
        self.stepLimit = stepLimit
        self.byteLimit = byteLimit
        self.trace = tracing ? [] : nil
    }

    public mutating func evaluate(_ node: ExprNode) throws(EvaluationError) -> Value {
        steps += 1
        if steps > stepLimit { throw stepError(node) }
        let value = try compute(node)
        if trace != nil { trace?.append((node, value)) }
        return value
    }

    func stepError(_ node: ExprNode) -> EvaluationError {
        EvaluationError(budget: .steps, message: "evaluation took more than \(stepLimit) steps on this message", offset: node.span.lowerBound)
    }

    /// Charges `count` bytes about to be allocated for a value built by `node`.
    mutating func charge(_ count: Int, _ node: ExprNode) throws(EvaluationError) {
        let (total, overflow) = bytes.addingReportingOverflow(max(count, 0))
        if overflow || total > byteLimit {
            throw EvaluationError(budget: .bytes, message: "evaluation would build more than \(Self.describe(byteLimit)) of values on this message",
                                  offset: node.span.lowerBound)
        }
        bytes = total
    }

    /// Charges a scan of `count` bytes of text to the step budget: one step per KiB. With the
    /// default budget an evaluation reads at most about a gigabyte, well under a second; a
    /// string scanned inside a loop over a thousand items is charged each time (a rule that
    /// lint passes took 93 s of CPU before every argument was charged).
    mutating func scan(_ count: Int, _ node: ExprNode) throws(EvaluationError) {
        let (total, overflow) = steps.addingReportingOverflow(max(count, 0) >> 10)
        steps = overflow ? Int.max : total
        if steps > stepLimit { throw stepError(node) }
    }

    /// The text a value holds, in bytes, as a comparison or a membership test reads it.
    static func textBytes(_ value: Value) -> Int {
        switch value {
        case .string(let text): return text.utf8.count
        case .list(let values): return values.reduce(values.count * elementBytes) { $0 &+ textBytes($1) }
        default: return elementBytes
        }
    }

    static func describe(_ bytes: Int) -> String {
        bytes % (1 << 20) == 0 ? "\(bytes >> 20) MiB" : "\(bytes) bytes"
    }

    mutating func bool(_ node: ExprNode) throws(EvaluationError) -> Bool { Self.holds(try evaluate(node)) }

    /// Whether a condition's value holds: `true` does; `false`, absent and any other value do not.
    static func holds(_ value: Value) -> Bool {
        if case .bool(let held) = value { return held }
        return false
    }

    /// A child the compiler guarantees; a damaged node without it reads as an absent constant.
    func child(_ children: [ExprNode], _ index: Int) -> ExprNode {
        children.indices.contains(index) ? children[index] : Self.missing
    }

    static let missing = ExprNode(.constant(.absent), span: 0..<0, type: .error)

    // A node's first and second children, read from their own fields: through `??` or the
    // children array each read retained and released the child, most of evaluation's time.
    // A damaged node without the child reads it as absent.
    @inline(__always) private mutating func first(_ node: ExprNode) throws(EvaluationError) -> Value {
        guard let child = node.first else { return .absent }
        return try evaluate(unretained: child)
    }

    @inline(__always) private mutating func second(_ node: ExprNode) throws(EvaluationError) -> Value {
        guard let child = node.second else { return .absent }
        return try evaluate(unretained: child)
    }

    /// Evaluates a node held unretained, borrowing it for the call (the value and the error
    /// are moved out of the closure, which cannot throw a typed error itself).
    @inline(__always) mutating func evaluate(unretained child: Unmanaged<ExprNode>) throws(EvaluationError) -> Value {
        var value = Value.absent
        var failure: EvaluationError?
        child._withUnsafeGuaranteedRef { node in
            do throws(EvaluationError) { value = try evaluate(node) } catch { failure = error }
        }
        if let failure { throw failure }
        return value
    }

    @inline(__always) private mutating func firstHolds(_ node: ExprNode) throws(EvaluationError) -> Bool { Self.holds(try first(node)) }

    @inline(__always) private mutating func secondHolds(_ node: ExprNode) throws(EvaluationError) -> Bool { Self.holds(try second(node)) }

    private mutating func compute(_ node: ExprNode) throws(EvaluationError) -> Value {
        switch node.op {
        case .constant(let value): return value
        case .root(let index): return root.fields.indices.contains(index) ? root.fields[index] : .absent
        case .variable(let slot): return slots.indices.contains(slot) ? slots[slot] : .absent
        case .field(let index):
            if case .object(let object) = try first(node), object.fields.indices.contains(index) {
                return object.fields[index]
            }
            return .absent
        case .not: return .bool(!(try firstHolds(node)))
        case .and: return .bool(try firstHolds(node) ? try secondHolds(node) : false)
        case .or: return .bool(try firstHolds(node) ? true : try secondHolds(node))
        case .equal, .notEqual:
            let left = try first(node), right = try second(node)
            try scan(min(Self.textBytes(left), Self.textBytes(right)), node)
            if case .equal = node.op { return .bool(left == right) }
            return .bool(left != right)
        case .less, .lessEqual, .greater, .greaterEqual:
            guard case .int(let left) = try first(node), case .int(let right) = try second(node) else {
                return .bool(false)
            }
            switch node.op {
            case .less: return .bool(left < right)
            case .lessEqual: return .bool(left <= right)
            case .greater: return .bool(left > right)
            default: return .bool(left >= right)
            }
        case .add, .subtract:
            guard case .int(let left) = try first(node), case .int(let right) = try second(node) else { return .absent }
            let (result, overflow) = node.op.isAdd ? left.addingReportingOverflow(right) : left.subtractingReportingOverflow(right)
            return overflow ? .absent : .int(result)
        case .negate:
            guard case .int(let value) = try first(node), value != Int.min else { return .absent }
            return .int(-value)
        case .concat:
            guard case .string(let left) = try first(node), case .string(let right) = try second(node) else {
                return .absent
            }
            try charge(left.utf8.count + right.utf8.count, node)
            return .string(left + right)
        case .inList, .notInList:
            let needle = try first(node)
            guard case .list(let values) = try second(node) else { return .bool(false) }
            try scan(Self.textBytes(.list(values)) &+ Self.textBytes(needle), node)
            var found = false
            if case .string(let text) = needle {
                // Strings compare case-insensitively in membership, as addresses and domains do.
                let lower = text.lowercased()
                found = values.contains { if case .string(let other) = $0 { return other.lowercased() == lower } else { return false } }
            } else {
                found = values.contains(needle)
            }
            if case .notInList = node.op { found.toggle() }
            return .bool(found)
        case .inNamed, .notInNamed:
            guard case .string(let text) = try first(node), case .namedList(let list) = try second(node) else {
                return .bool(false)
            }
            var found = list.contains(text)
            if case .notInNamed = node.op { found.toggle() }
            return .bool(found)
        case .call(let builtin): return try call(builtin, node.children, node)
        case .macro(let macro, let slot): return try runMacro(macro, slot: slot, node)
        case .list:
            let children = node.children
            try charge(children.count * Self.elementBytes, node)
            var values: [Value] = []
            values.reserveCapacity(children.count)
            for child in children { values.append(try evaluate(child)) }
            return .list(values)
        }
    }

    private mutating func call(_ builtin: Builtin, _ arguments: [ExprNode], _ node: ExprNode) throws(EvaluationError) -> Value {
        if builtin == .has {
            return .bool(try evaluate(child(arguments, 0)) != .absent)
        }
        var values: [Value] = []
        values.reserveCapacity(arguments.count)
        for argument in arguments {
            let value = try evaluate(argument)
            if value == .absent { return .absent }
            values.append(value)
        }
        switch (builtin, values.first, values.count > 1 ? values[1] : nil) {
        case (.lower, .string(let text)?, _):
            try charge(text.utf8.count, node)
            try scan(text.utf8.count, node)
            return .string(text.lowercased())
        case (.upper, .string(let text)?, _):
            try charge(text.utf8.count, node)
            try scan(text.utf8.count, node)
            return .string(text.uppercased())
        case (.startsWith, .string(let text)?, .string(let prefix)?):
            try scan(text.utf8.count &+ prefix.utf8.count, node)
            return .bool(text.lowercased().hasPrefix(prefix.lowercased()))
        case (.endsWith, .string(let text)?, .string(let suffix)?):
            try scan(text.utf8.count &+ suffix.utf8.count, node)
            return .bool(text.lowercased().hasSuffix(suffix.lowercased()))
        case (.contains, .string(let text)?, .string(let part)?):
            try scan(text.utf8.count &+ part.utf8.count, node)
            return .bool(part.isEmpty || text.lowercased().contains(part.lowercased()))
        case (.contains, .list(let list)?, let needle?):
            try scan(Self.textBytes(.list(list)) &+ Self.textBytes(needle), node)
            return .bool(list.contains(needle))
        case (.matches, .string(let text)?, .string(let pattern)?):
            // The glob reads the text once, and again from each place a `*` had to be
            // retried: at worst the text's length times the pattern's.
            let (worst, overflow) = text.utf8.count.multipliedReportingOverflow(by: max(1, pattern.utf8.count))
            try scan(overflow ? Int.max : worst &+ pattern.utf8.count, node)
            return .bool(Glob.matches(text.lowercased(), pattern.lowercased()))
        case (.size, .string(let text)?, _):
            try scan(text.utf8.count, node)
            return .int(text.count)
        case (.size, .list(let list)?, _): return .int(list.count)
        case (.join, .list(let list)?, .string(let separator)?):
            // The result's size is known before anything is built: charge it first.
            var total = 0
            var strings = 0
            for item in list {
                if case .string(let text) = item {
                    total = total.addingReportingOverflow(text.utf8.count).partialValue
                    strings += 1
                }
            }
            let separators = max(strings - 1, 0).multipliedReportingOverflow(by: separator.utf8.count)
            try charge(separators.overflow ? Int.max : total.addingReportingOverflow(separators.partialValue).partialValue, node)
            return .string(list.compactMap { if case .string(let text) = $0 { return text } else { return nil } }.joined(between: separator))
        default: return .absent
        }
    }

    private mutating func runMacro(_ macro: Macro, slot: Int, _ node: ExprNode) throws(EvaluationError) -> Value {
        guard case .list(let items) = try first(node), let body = node.second?.takeUnretainedValue(), slots.indices.contains(slot) else { return .absent }
        let saved = slots[slot]
        defer { slots[slot] = saved }
        switch macro {
        case .any:
            for item in items {
                slots[slot] = item
                if try bool(body) { return .bool(true) }
            }
            return .bool(false)
        case .all:
            for item in items {
                slots[slot] = item
                if !(try bool(body)) { return .bool(false) }
            }
            return .bool(true)
        case .count:
            var count = 0
            for item in items {
                slots[slot] = item
                if try bool(body) { count += 1 }
            }
            return .int(count)
        case .filter:
            try charge(items.count * Self.elementBytes, node)
            var kept: [Value] = []
            for item in items {
                slots[slot] = item
                if try bool(body) { kept.append(item) }
            }
            return .list(kept)
        case .map:
            try charge(items.count * Self.elementBytes, node)
            var mapped: [Value] = []
            mapped.reserveCapacity(items.count)
            for item in items {
                slots[slot] = item
                mapped.append(try evaluate(body))
            }
            return .list(mapped)
        }
    }
}

extension ExprNode.Op {
    var isAdd: Bool { if case .add = self { return true } else { return false } }
}

/// Glob matching (`*` any run, `?` one character) in linear time: the two-pointer algorithm
/// with one backtrack point, never the exponential backtracking of a regex engine.
public enum Glob {
    public static func matches(_ text: String, _ pattern: String) -> Bool {
        let t = Array(text.unicodeScalars)
        let p = Array(pattern.unicodeScalars)
        var ti = 0, pi = 0
        var star = -1, mark = 0
        while ti < t.count {
            if pi < p.count && (p[pi] == "?" || p[pi] == t[ti]) {
                ti += 1
                pi += 1
            } else if pi < p.count && p[pi] == "*" {
                star = pi
                mark = ti
                pi += 1
            } else if star >= 0 {
                pi = star + 1
                mark += 1
                ti = mark
            } else {
                return false
            }
        }
        while pi < p.count && p[pi] == "*" { pi += 1 }
        return pi == p.count
    }
}
