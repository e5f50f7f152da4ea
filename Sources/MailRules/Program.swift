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
    public let span: Range<Int>
    public let type: FactType

    init(_ op: Op, _ children: [ExprNode] = [], span: Range<Int>, type: FactType) {
        self.op = op
        self.children = children
        self.span = span
        self.type = type
    }

    /// Reads no fact and no variable: its value is known at compile time.
    var isConstant: Bool {
        switch op {
        case .constant: return true
        case .root, .variable: return false
        default: return children.allSatisfy(\.isConstant)
        }
    }

    var constantValue: Value? {
        if case .constant(let value) = op { return value }
        return nil
    }
}

/// Evaluation ran past its step budget (it cannot loop, but facts can be large).
public struct EvaluationError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// One evaluation: the facts, the macro variables, the step counter, and, for `explain`,
/// the value of every node evaluated.
public struct Evaluator {
    public static let defaultStepLimit = 1_000_000

    let root: FactObject
    var slots: [Value]
    public private(set) var steps = 0
    let stepLimit: Int
    /// When set, every evaluated node and its value, in evaluation order.
    public var trace: [(node: ExprNode, value: Value)]?

    public init(facts: FactObject, slots: Int = 8, stepLimit: Int = Evaluator.defaultStepLimit, tracing: Bool = false) {
        self.root = facts
        self.slots = [Value](repeating: .absent, count: max(slots, 1))
        self.stepLimit = stepLimit
        self.trace = tracing ? [] : nil
    }

    public mutating func evaluate(_ node: ExprNode) throws(EvaluationError) -> Value {
        steps += 1
        if steps > stepLimit { throw EvaluationError(message: "evaluation took more than \(stepLimit) steps") }
        let value = try compute(node)
        if trace != nil { trace?.append((node, value)) }
        return value
    }

    mutating func bool(_ node: ExprNode) throws(EvaluationError) -> Bool {
        if case .bool(let value) = try evaluate(node) { return value }
        return false
    }

    private mutating func compute(_ node: ExprNode) throws(EvaluationError) -> Value {
        let children = node.children
        switch node.op {
        case .constant(let value): return value
        case .root(let index): return root.fields[index]
        case .variable(let slot): return slots[slot]
        case .field(let index):
            if case .object(let object) = try evaluate(children[0]) { return object.fields[index] }
            return .absent
        case .not: return .bool(!(try bool(children[0])))
        case .and: return .bool(try bool(children[0]) ? try bool(children[1]) : false)
        case .or: return .bool(try bool(children[0]) ? true : try bool(children[1]))
        case .equal: return .bool(try evaluate(children[0]) == (try evaluate(children[1])))
        case .notEqual: return .bool(try evaluate(children[0]) != (try evaluate(children[1])))
        case .less, .lessEqual, .greater, .greaterEqual:
            guard case .int(let left) = try evaluate(children[0]), case .int(let right) = try evaluate(children[1]) else {
                return .bool(false)
            }
            switch node.op {
            case .less: return .bool(left < right)
            case .lessEqual: return .bool(left <= right)
            case .greater: return .bool(left > right)
            default: return .bool(left >= right)
            }
        case .add, .subtract:
            guard case .int(let left) = try evaluate(children[0]), case .int(let right) = try evaluate(children[1]) else { return .absent }
            let (result, overflow) = node.op.isAdd ? left.addingReportingOverflow(right) : left.subtractingReportingOverflow(right)
            return overflow ? .absent : .int(result)
        case .negate:
            guard case .int(let value) = try evaluate(children[0]), value != Int.min else { return .absent }
            return .int(-value)
        case .concat:
            guard case .string(let left) = try evaluate(children[0]), case .string(let right) = try evaluate(children[1]) else { return .absent }
            return .string(left + right)
        case .inList, .notInList:
            let needle = try evaluate(children[0])
            guard case .list(let values) = try evaluate(children[1]) else { return .bool(false) }
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
            guard case .string(let text) = try evaluate(children[0]), case .namedList(let list) = try evaluate(children[1]) else {
                return .bool(false)
            }
            var found = list.contains(text)
            if case .notInNamed = node.op { found.toggle() }
            return .bool(found)
        case .call(let builtin): return try call(builtin, children)
        case .macro(let macro, let slot): return try runMacro(macro, slot: slot, children)
        case .list:
            var values: [Value] = []
            values.reserveCapacity(children.count)
            for child in children { values.append(try evaluate(child)) }
            return .list(values)
        }
    }

    private mutating func call(_ builtin: Builtin, _ arguments: [ExprNode]) throws(EvaluationError) -> Value {
        if builtin == .has {
            return .bool(try evaluate(arguments[0]) != .absent)
        }
        var values: [Value] = []
        values.reserveCapacity(arguments.count)
        for argument in arguments {
            let value = try evaluate(argument)
            if value == .absent { return .absent }
            values.append(value)
        }
        switch (builtin, values.first, values.count > 1 ? values[1] : nil) {
        case (.lower, .string(let text)?, _): return .string(text.lowercased())
        case (.upper, .string(let text)?, _): return .string(text.uppercased())
        case (.startsWith, .string(let text)?, .string(let prefix)?): return .bool(text.lowercased().hasPrefix(prefix.lowercased()))
        case (.endsWith, .string(let text)?, .string(let suffix)?): return .bool(text.lowercased().hasSuffix(suffix.lowercased()))
        case (.contains, .string(let text)?, .string(let part)?):
            return .bool(part.isEmpty || text.lowercased().contains(part.lowercased()))
        case (.contains, .list(let list)?, let needle?): return .bool(list.contains(needle))
        case (.matches, .string(let text)?, .string(let pattern)?): return .bool(Glob.matches(text.lowercased(), pattern.lowercased()))
        case (.size, .string(let text)?, _): return .int(text.count)
        case (.size, .list(let list)?, _): return .int(list.count)
        case (.join, .list(let list)?, .string(let separator)?):
            return .string(list.compactMap { if case .string(let text) = $0 { return text } else { return nil } }.joined(separator: separator))
        default: return .absent
        }
    }

    private mutating func runMacro(_ macro: Macro, slot: Int, _ children: [ExprNode]) throws(EvaluationError) -> Value {
        guard case .list(let items) = try evaluate(children[0]) else { return .absent }
        let body = children[1]
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
            var kept: [Value] = []
            for item in items {
                slots[slot] = item
                if try bool(body) { kept.append(item) }
            }
            return .list(kept)
        case .map:
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
