/// The result of checking and compiling one expression.
public struct CompiledExpression: Sendable {
    public let source: ExprSource
    /// Nil when the expression had errors.
    public let node: ExprNode?
    /// Macro variable slots the evaluator needs.
    public let slots: Int
    public let usedLists: Set<String>
    public let usedSettings: Set<String>
    /// The AST, for structural checks (shadowing) and printing.
    public let syntax: Expr?
}

/// Type-checks an expression against `FactsSchema` and compiles it in the same pass.
///
/// Every problem is reported once: a sub-expression that failed gets the type `error`, which
/// every later check accepts silently, so one typo never cascades into five diagnostics.
/// Optional facts (`T?`) must be guarded by `has()` before use: `has(x) and x == ...`,
/// `not has(x) or ...`; only `==`, `!=` and `has()` take them unguarded.
struct ExprChecker {
    let source: ExprSource
    let lists: [String: CompiledList]
    var diagnostics: [Diagnostic] = []
    var usedLists: Set<String> = []
    var usedSettings: Set<String> = []
    var variables: [(name: String, type: FactType)] = []
    var maxSlots = 0
    var narrowed: Set<String> = []

    static let rootNames = FactsSchema.root.fields.map(\.name) + ["lists"]

    static func compile(_ source: ExprSource, expecting: FactType, lists: [String: CompiledList]) -> (CompiledExpression, [Diagnostic]) {
        var checker = ExprChecker(source: source, lists: lists)
        switch ExprParser.parse(source.text) {
        case .failure(let error):
            checker.report(.exprSyntax, error.offset..<(error.offset + error.length), error.message)
            return (CompiledExpression(source: source, node: nil, slots: 0, usedLists: [], usedSettings: [], syntax: nil), checker.diagnostics)
        case .success(let expr):
            var node = checker.check(expr)
            node = checker.unwrap(node, expr)
            if node.type != .error && !checker.compatible(node.type, expecting) {
                checker.report(.exprType, expr.span, "expected \(expecting), found \(node.type)")
            }
            let ok = checker.diagnostics.isEmpty
            return (CompiledExpression(source: source, node: ok ? node : nil, slots: checker.maxSlots, usedLists: checker.usedLists,
                                       usedSettings: checker.usedSettings, syntax: expr), checker.diagnostics)
        }
    }

    mutating func report(_ check: LintCheck, _ span: Range<Int>, _ message: String) {
        diagnostics.append(Diagnostic(check, at: source.location(span.lowerBound), length: span.count, message))
    }

    func failed(_ span: Range<Int>) -> ExprNode { ExprNode(.constant(.absent), span: span, type: .error) }

    func compatible(_ actual: FactType, _ expected: FactType) -> Bool {
        if actual == .error || expected == .error { return true }
        if actual.isStringLike && expected.isStringLike { return true }
        if case .list(let a) = actual, case .list(let b) = expected { return compatible(a, b) }
        return actual == expected
    }

    /// The dotted path of a member chain (`p.contact`), the key of `has()` narrowing.
    static func path(_ expr: Expr) -> String? {
        switch expr.kind {
        case .name(let name): return name
        case .member(let base, let field): return path(base).map { $0 + "." + field }
        default: return nil
        }
    }

    /// Uses an optional value where its content is needed: fine when `has()` guards it.
    mutating func unwrap(_ node: ExprNode, _ expr: Expr) -> ExprNode {
        guard case .optional(let wrapped) = node.type else { return node }
        if let path = Self.path(expr), narrowed.contains(path) {
            return ExprNode(node.op, node.children, span: node.span, type: wrapped)
        }
        let name = Self.path(expr) ?? "this value"
        report(.exprAbsent, expr.span, "'\(name)' may be absent; guard it: has(\(name)) and …")
        return failed(expr.span)
    }

    /// Checks and unwraps: for operands that need a present value.
    mutating func value(_ expr: Expr) -> ExprNode { unwrap(check(expr), expr) }

    mutating func folded(_ node: ExprNode) -> ExprNode {
        guard node.isConstant, node.constantValue == nil, node.type != .error else { return node }
        // As many slots as the node's loops use: an inner loop's variable in a slot the
        // evaluator does not have read as absent, and `not [1].any(a, [2].any(b, true))` was
        // folded to true.
        var evaluator = Evaluator(facts: FactObject(defaultsOf: FactsSchema.root), slots: Self.slotsUsed(by: node))
        guard let value = try? evaluator.evaluate(node) else { return node }
        // Constant arithmetic past Int's range is absent at run time (never a trap): said here,
        // where `9223372036854775807 + 1 > 0` would otherwise be only "always false".
        switch node.op {
        case .add, .subtract, .negate:
            if value == .absent, node.children.allSatisfy({ if case .constant(.int) = $0.op { return true } else { return false } }) {
                report(.exprType, node.span, "this arithmetic goes past the integers' range (±9223372036854775807); it has no value")
            }
        default: break
        }
        return ExprNode(.constant(value), span: node.span, type: node.type)
    }

    /// One more than the highest variable slot `node` reads or a macro of it binds (at least 1).
    static func slotsUsed(by node: ExprNode) -> Int {
        var highest = 0
        var pending = [node]
        while let next = pending.popLast() {
            switch next.op {
            case .variable(let slot), .macro(_, let slot): highest = max(highest, slot + 1)
            default: break
            }
            pending.append(contentsOf: next.children)
        }
        return max(1, highest)
    }

    mutating func check(_ expr: Expr) -> ExprNode {
        let span = expr.span
        switch expr.kind {
        case .bool(let value): return ExprNode(.constant(.bool(value)), span: span, type: .bool)
        case .int(let value): return ExprNode(.constant(.int(value)), span: span, type: .int)
        case .string(let value): return ExprNode(.constant(.string(value)), span: span, type: .string)
        case .name(let name):
            if let slot = variables.lastIndex(where: { $0.name == name }) {
                return ExprNode(.variable(slot), span: span, type: variables[slot].type)
            }
            if let index = FactsSchema.root.index(of: name) {
                return ExprNode(.root(index), span: span, type: FactsSchema.root.fields[index].type)
            }
            if name == "lists" {
                report(.exprUnknownName, span, "'lists' needs a list name: lists.<name>")
                return failed(span)
            }
            let candidates = Self.rootNames + variables.map(\.name)
            report(.exprUnknownName, span, "unknown name '\(name)'\(Suggestion.hint(for: name, in: candidates))")
            return failed(span)
        case .member(let base, let field):
            if case .name("lists") = base.kind, !variables.contains(where: { $0.name == "lists" }) {
                guard let list = lists[field] else {
                    let hint = Suggestion.hint(for: field, in: lists.keys.sorted())
                    report(.exprUnknownName, span, "unknown list '\(field)'\(hint)")
                    return failed(span)
                }
                usedLists.insert(field)
                return ExprNode(.constant(.namedList(list)), span: span, type: .namedList(list.kind))
            }
            let baseNode = value(base)
            if baseNode.type == .error { return failed(span) }
            guard case .object(let object) = baseNode.type else {
                report(.exprType, span, "'\(Self.path(base) ?? "this value")' is \(baseNode.type), which has no fields")
                return failed(span)
            }
            guard let index = object.index(of: field) else {
                let hint = Suggestion.hint(for: field, in: object.fields.map(\.name))
                report(.exprUnknownName, span, "\(object.name) has no field '\(field)'\(hint)")
                return failed(span)
            }
            if object === FactsSchema.settings { usedSettings.insert(field) }
            return ExprNode(.field(index), [baseNode], span: span, type: object.fields[index].type)
        case .list(let items):
            var nodes: [ExprNode] = []
            var element: FactType?
            for item in items {
                let node = value(item)
                if let known = element, node.type != .error, known != .error, !compatible(node.type, known) {
                    report(.exprType, item.span, "list items must have one type: \(known) and \(node.type)")
                }
                if element == nil || element == .error { element = node.type }
                nodes.append(node)
            }
            return folded(ExprNode(.list, nodes, span: span, type: .list(element ?? .error)))
        case .unary(let op, let operand):
            let node = value(operand)
            if op == "not" {
                expectType(node, .bool, operand, "'not' needs a bool")
                return folded(ExprNode(.not, [node], span: span, type: .bool))
            }
            expectType(node, .int, operand, "'-' needs an int")
            return folded(ExprNode(.negate, [node], span: span, type: .int))
        case .binary(let op, let left, let right):
            return binary(op, left, right, span)
        case .call(let name, let arguments, let nameSpan):
            return call(name, arguments, nameSpan: nameSpan, span: span)
        }
    }

    mutating func expectType(_ node: ExprNode, _ type: FactType, _ expr: Expr, _ message: String) {
        if node.type != .error && !compatible(node.type, type) {
            report(.exprType, expr.span, "\(message), found \(node.type)")
        }
    }

    static func hasGuards(_ expr: Expr) -> [String] {
        switch expr.kind {
        case .call("has", let arguments, _) where arguments.count == 1: return path(arguments[0]).map { [$0] } ?? []
        case .binary("and", let left, let right): return hasGuards(left) + hasGuards(right)
        default: return []
        }
    }

    static func notHasGuards(_ expr: Expr) -> [String] {
        switch expr.kind {
        case .unary("not", let inner): return hasGuards(inner)
        case .binary("or", let left, let right): return notHasGuards(left) + notHasGuards(right)
        default: return []
        }
    }

    mutating func binary(_ op: String, _ left: Expr, _ right: Expr, _ span: Range<Int>) -> ExprNode {
        switch op {
        case "and", "or":
            // A chain `a or b or c` (left-associative) is checked operand by operand, left to
            // right, the has() guards of the operands before each one accumulated as it goes:
            // linear in the chain's length (walking the left side's guards again at every
            // level was quadratic).
            var operands: [Expr] = [right]
            var spans: [Range<Int>] = [span]
            var first = left
            while case .binary(let innerOp, let innerLeft, let innerRight) = first.kind, innerOp == op {
                operands.append(innerRight)
                spans.append(first.span)
                first = innerLeft
            }
            operands.append(first)
            operands.reverse()
            spans.reverse() // spans[i] is the chain node ending with operands[i + 1]
            let saved = narrowed
            var node = value(first)
            expectType(node, .bool, first, "'\(op)' needs bool operands")
            for (index, operand) in operands.enumerated().dropFirst() {
                narrowed.formUnion(op == "and" ? Self.hasGuards(operands[index - 1]) : Self.notHasGuards(operands[index - 1]))
                let operandNode = value(operand)
                expectType(operandNode, .bool, operand, "'\(op)' needs bool operands")
                node = folded(ExprNode(op == "and" ? .and : .or, [node, operandNode], span: spans[index - 1], type: .bool))
            }
            narrowed = saved
            return node
        case "==", "!=":
            let leftNode = check(left)
            let rightNode = check(right)
            let a = leftNode.type.unwrapped, b = rightNode.type.unwrapped
            if a != .error && b != .error && !compatible(a, b) {
                report(.exprType, span, "cannot compare \(a) with \(b)")
            } else {
                checkEnumLiteral(a, right)
                checkEnumLiteral(b, left)
            }
            return folded(ExprNode(op == "==" ? .equal : .notEqual, [leftNode, rightNode], span: span, type: .bool))
        case "<", "<=", ">", ">=":
            let leftNode = value(left)
            let rightNode = value(right)
            expectType(leftNode, .int, left, "'\(op)' compares ints")
            expectType(rightNode, .int, right, "'\(op)' compares ints")
            let code: ExprNode.Op = op == "<" ? .less : op == "<=" ? .lessEqual : op == ">" ? .greater : .greaterEqual
            return folded(ExprNode(code, [leftNode, rightNode], span: span, type: .bool))
        case "+", "-":
            let leftNode = value(left)
            let rightNode = value(right)
            let a = leftNode.type, b = rightNode.type
            if a == .error || b == .error { return failed(span) }
            if op == "+" && a.isStringLike && b.isStringLike {
                return folded(ExprNode(.concat, [leftNode, rightNode], span: span, type: .string))
            }
            guard a == .int && b == .int else {
                report(.exprType, span, op == "+" ? "'+' adds two ints or joins two strings, found \(a) and \(b)" : "'-' needs two ints, found \(a) and \(b)")
                return failed(span)
            }
            return folded(ExprNode(op == "+" ? .add : .subtract, [leftNode, rightNode], span: span, type: .int))
        default: // in, not in
            let leftNode = value(left)
            let rightNode = value(right)
            let negated = op == "not in"
            switch rightNode.type {
            case .namedList(let kind):
                expectType(leftNode, .string, left, "'\(op) lists.…' looks up a string")
                _ = kind
                return ExprNode(negated ? .notInNamed : .inNamed, [leftNode, rightNode], span: span, type: .bool)
            case .list(let element):
                if leftNode.type != .error && element != .error && !compatible(leftNode.type, element) {
                    report(.exprType, span, "cannot look for \(leftNode.type) in list<\(element)>")
                }
                if case .enumeration = leftNode.type, case .list(let items) = right.kind {
                    for item in items { checkEnumLiteral(leftNode.type, item) }
                }
                return folded(ExprNode(negated ? .notInList : .inList, [leftNode, rightNode], span: span, type: .bool))
            case .error:
                return failed(span)
            default:
                report(.exprType, right.span, "'\(op)' needs a list or lists.<name> on the right, found \(rightNode.type)")
                return failed(span)
            }
        }
    }

    /// `trigger == "atuo"`: a literal that an enumerated fact can never equal.
    mutating func checkEnumLiteral(_ type: FactType, _ expr: Expr) {
        guard case .enumeration(let name, let values) = type, case .string(let literal) = expr.kind else { return }
        guard !values.contains(literal) else { return }
        let hint = Suggestion.hint(for: literal, in: values)
        report(.exprUnknownValue, expr.span, "\(name) is never \"\(literal)\"; it is one of \(values.joined(separator: ", "))\(hint)")
    }

    static let functionNames = Builtin.allCases.map(\.rawValue) + Macro.allCases.map(\.rawValue)

    mutating func call(_ name: String, _ arguments: [Expr], nameSpan: Range<Int>, span: Range<Int>) -> ExprNode {
        if let macro = Macro(rawValue: name) { return self.macro(macro, arguments, nameSpan: nameSpan, span: span) }
        guard let builtin = Builtin(rawValue: name) else {
            report(.exprUnknownFunction, nameSpan, "unknown function '\(name)'\(Suggestion.hint(for: name, in: Self.functionNames))")
            for argument in arguments { _ = check(argument) }
            return failed(span)
        }
        let arity: Int
        switch builtin {
        case .lower, .upper, .size, .has: arity = 1
        default: arity = 2
        }
        guard arguments.count == arity else {
            report(.exprArity, nameSpan, "\(name)() takes \(arity) argument\(arity == 1 ? "" : "s"), got \(arguments.count)")
            return failed(span)
        }
        if builtin == .has {
            let node = check(arguments[0])
            guard Self.path(arguments[0]) != nil else {
                report(.exprType, arguments[0].span, "has() takes a fact, such as has(thread.case)")
                return failed(span)
            }
            if node.type != .error, case .optional = node.type {} else if node.type != .error {
                report(.exprType, arguments[0].span, "'\(Self.path(arguments[0]) ?? "")' is never absent (\(node.type)); has() is always true")
            }
            return ExprNode(.call(.has), [node], span: span, type: .bool)
        }
        let nodes = arguments.map { value($0) }
        let types = nodes.map(\.type)
        var result: FactType = .error
        func need(_ index: Int, _ type: FactType, _ what: String) {
            if types[index] != .error && !compatible(types[index], type) {
                report(.exprType, arguments[index].span, "\(name)() needs \(what), found \(types[index])")
            }
        }
        switch builtin {
        case .lower, .upper:
            need(0, .string, "a string"); result = .string
        case .startsWith, .endsWith, .matches:
            need(0, .string, "a string"); need(1, .string, "a string"); result = .bool
        case .contains:
            if case .list(let element) = types[0] {
                if types[1] != .error && element != .error && !compatible(types[1], element) {
                    report(.exprType, arguments[1].span, "contains() looks for \(element) in this list, found \(types[1])")
                }
            } else {
                need(0, .string, "a string or a list"); need(1, .string, "a string")
            }
            result = .bool
        case .size:
            if case .list = types[0] {} else { need(0, .string, "a string or a list") }
            result = .int
        case .join:
            need(0, .list(.string), "a list of strings"); need(1, .string, "a separator string"); result = .string
        case .has:
            result = .bool
        }
        return folded(ExprNode(.call(builtin), nodes, span: span, type: result))
    }

    mutating func macro(_ macro: Macro, _ arguments: [Expr], nameSpan: Range<Int>, span: Range<Int>) -> ExprNode {
        guard arguments.count == 3 else {
            report(.exprArity, nameSpan, "\(macro.rawValue)() takes a list, a variable name and an expression: "
                   + "participants.\(macro.rawValue)(p, …); got \(max(0, arguments.count - 1)) argument\(arguments.count == 2 ? "" : "s") after the list")
            return failed(span)
        }
        let listNode = value(arguments[0])
        var element: FactType = .error
        if case .list(let type) = listNode.type {
            element = type
        } else if listNode.type != .error {
            report(.exprType, arguments[0].span, "\(macro.rawValue)() iterates over a list, found \(listNode.type)")
        }
        guard case .name(let variable) = arguments[1].kind else {
            report(.exprType, arguments[1].span, "\(macro.rawValue)() needs a variable name here, such as p")
            return failed(span)
        }
        if Self.rootNames.contains(variable) {
            report(.exprType, arguments[1].span, "'\(variable)' is a fact; name the variable something else")
            return failed(span)
        }
        variables.append((variable, element))
        maxSlots = max(maxSlots, variables.count)
        let slot = variables.count - 1
        let body = macro == .map ? value(arguments[2]) : value(arguments[2])
        variables.removeLast()
        if macro != .map { expectType(body, .bool, arguments[2], "\(macro.rawValue)() needs a bool condition") }
        let type: FactType
        switch macro {
        case .any, .all: type = .bool
        case .count: type = .int
        case .filter: type = .list(element)
        case .map: type = .list(body.type)
        }
        return ExprNode(.macro(macro, slot: slot), [listNode, body], span: span, type: type)
    }
}
