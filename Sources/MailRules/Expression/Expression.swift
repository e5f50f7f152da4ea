/// An expression as written: a tree of nodes, each with its span (scalar offsets in the
/// expression text) so diagnostics and `explain` point at the exact token.
public indirect enum ExprKind: Sendable {
    case bool(Bool)
    case int(Int)
    case string(String)
    case name(String)
    case member(Expr, String)
    /// `f(args)`, and `x.f(args)` written as a method, which is `f(x, args)`.
    case call(String, [Expr], nameSpan: Range<Int>)
    case unary(String, Expr)
    case binary(String, Expr, Expr)
    case list([Expr])
}

public struct Expr: Sendable {
    public var kind: ExprKind
    public var span: Range<Int>
}

/// Where an expression came from, to turn spans into file positions.
public struct ExprSource: Sendable {
    public var text: String
    public var scalar: YScalar
    public var file: SourceFile

    /// The file position of the scalar offset `offset` in the expression.
    public func location(_ offset: Int) -> SourceLocation {
        let start = scalar.location
        switch scalar.style {
        case .plain, .singleQuoted, .doubleQuoted:
            let positions = flowPositions()
            guard !positions.isEmpty else { return SourceLocation(path: start.path, line: start.line, column: start.column + offset) }
            let (line, column) = positions[min(max(offset, 0), positions.count - 1)]
            return SourceLocation(path: start.path, line: line, column: column)
        case .literal, .folded:
            // Content starts on the line after the indicator; each source line is one segment.
            var line = start.line + 1
            var remaining = offset
            // The block's indentation is its first content line's; deeper lines keep the rest.
            // With an indentation indicator (`>2`, `|-4`), it is the parent's plus that number,
            // and the first line's further spaces are the value's.
            var blockIndent = 0
            if let explicit = explicitIndentation() {
                blockIndent = explicit
            } else {
                var probe = line
                while probe <= file.lines.count {
                    if !file.line(probe).allSatisfy({ $0 == " " }) { blockIndent = indentation(of: probe); break }
                    probe += 1
                }
            }
            while line <= file.lines.count {
                let content = file.line(line)
                let indent = min(blockIndent, indentation(of: line))
                let length = max(0, content.unicodeScalars.count - indent)
                if content.allSatisfy({ $0 == " " }) && length == 0 {
                    // A blank line is a line feed of the value, in a literal and a folded block
                    // alike (in a folded one it stands where the space would have been).
                    line += 1
                    remaining -= 1
                    if remaining < 0 { return SourceLocation(path: start.path, line: line - 1, column: 1) }
                    continue
                }
                if remaining <= length { return SourceLocation(path: start.path, line: line, column: indent + remaining + 1) }
                remaining -= length + 1
                line += 1
                // A folded block's line break before a blank line is no character of its own.
                if scalar.style == .folded, line <= file.lines.count, file.line(line).allSatisfy({ $0 == " " }) { remaining += 1 }
            }
            return SourceLocation(path: start.path, line: start.line, column: start.column)
        }
    }

    /// A block scalar's content indentation when its header gives one (`>2`, `|-4`, `>+1`):
    /// the parent node's indentation (the indicator line's, or past its `- ` for a mapping
    /// that begins on a sequence entry's line) plus the digit; nil without an indicator.
    func explicitIndentation() -> Int? {
        let start = scalar.location
        let header = Array(file.line(start.line).unicodeScalars)
        var index = start.column - 1
        guard index >= 0, index < header.count, header[index] == "|" || header[index] == ">" else { return nil }
        index += 1
        var digit: Int?
        while index < header.count, index <= start.column + 1 {
            let character = header[index]
            if let value = Int(String(character)), (1...9).contains(value) { digit = value } else if character != "-" && character != "+" { break }
            index += 1
        }
        guard let digit else { return nil }
        var parent = 0
        while parent < header.count && header[parent] == " " { parent += 1 }
        // `  - when: >2`: the mapping begins after the sequence entry's dash.
        while parent + 1 < header.count && header[parent] == "-" && header[parent + 1] == " " {
            parent += 2
            while parent < header.count && header[parent] == " " { parent += 1 }
        }
        return parent + digit
    }

    /// For a plain, single- or double-quoted scalar, the source (line, column) of each
    /// character of its value, and one past the last: YAML's reading of it replayed, so that
    /// `''`, an escape (`\"`, `\t`, `\x41`, `\u00e9`), an escaped line break, a line break
    /// folded into a space and a blank line read as a line feed each map back to the source.
    func flowPositions() -> [(line: Int, column: Int)] {
        let start = scalar.location
        let quote: Unicode.Scalar? = scalar.style == .singleQuoted ? "'" : scalar.style == .doubleQuoted ? "\"" : nil
        let wanted = scalar.value.unicodeScalars.count
        var out: [(line: Int, column: Int)] = []
        out.reserveCapacity(wanted + 1)
        var line = start.line
        var chars = Array(file.line(line).unicodeScalars)
        var column = start.column - 1 + (quote == nil ? 0 : 1)
        func isBlank(_ scalar: Unicode.Scalar) -> Bool { scalar == " " || scalar == "\t" }
        /// Moves to the next line's first non-blank character; false at the end of the file.
        func nextLine() -> Bool {
            guard line < file.lines.count else { return false }
            line += 1
            chars = Array(file.line(line).unicodeScalars)
            column = 0
            while column < chars.count && isBlank(chars[column]) { column += 1 }
            return true
        }
        while out.count < wanted {
            // The rest of the line blank (trailing spaces are not the value's): a line break.
            var rest = column
            while rest < chars.count && isBlank(chars[rest]) { rest += 1 }
            if rest >= chars.count {
                let breakAt = (line, column + 1)
                var blankLines = 0
                var ended = false
                while true {
                    guard nextLine() else { ended = true; break }
                    if column < chars.count { break }
                    blankLines += 1
                    out.append((line, 1)) // a blank line is a line feed of the value
                    if out.count >= wanted { break }
                }
                if ended || out.count >= wanted { break }
                if blankLines == 0 { out.append(breakAt) } // folded into one space
                continue
            }
            let character = chars[column]
            if let quote, character == quote {
                if quote == "'", column + 1 < chars.count, chars[column + 1] == "'" {
                    out.append((line, column + 1))
                    column += 2
                    continue
                }
                break // the closing quote
            }
            if quote == "\"", character == "\\" {
                guard column + 1 < chars.count else {
                    // An escaped line break: no space, the next line's indentation skipped.
                    guard nextLine() else { break }
                    continue
                }
                out.append((line, column + 1))
                switch chars[column + 1] {
                case "x": column += 4
                case "u": column += 6
                case "U": column += 10
                default: column += 2
                }
                continue
            }
            out.append((line, column + 1))
            column += 1
        }
        out.append((line, column + 1))
        return out
    }

    private func indentation(of line: Int) -> Int {
        file.line(line).unicodeScalars.prefix(while: { $0 == " " }).count
    }
}

public struct ExprSyntaxError: Error, Sendable {
    public var offset: Int
    public var length: Int
    public var message: String
}

/// Tokens and a Pratt parser for the rule expression language.
///
///     or:      and ("or" and)*
///     and:     not ("and" not)*
///     not:     "not" not | compare
///     compare: sum (("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not in") sum)?
///     sum:     unary (("+" | "-") unary)*
///     unary:   "-" unary | postfix
///     postfix: primary ("." name ("(" args ")")?)*
///     primary: literal | name | name "(" args ")" | "(" or ")" | "[" args "]"
public struct ExprParser {
    enum TokenKind: Equatable {
        case name(String), int(Int), string(String), symbol(String), end
    }

    struct Token {
        var kind: TokenKind
        var span: Range<Int>
    }

    static let keywords: Set<String> = ["and", "or", "not", "in", "true", "false"]
    /// The longest expression accepted, in characters: evaluation cost is bounded by it.
    public static let maxLength = 4_096
    static let maxDepth = 64

    var tokens: [Token] = []
    var position = 0
    var depth = 0

    public static func parse(_ text: String) -> Result<Expr, ExprSyntaxError> {
        do {
            guard text.unicodeScalars.count <= maxLength else {
                throw ExprSyntaxError(offset: 0, length: 1, message: "expression is longer than \(maxLength) characters")
            }
            var parser = ExprParser()
            parser.tokens = try tokenize(text)
            if parser.tokens.first?.kind == .end {
                throw ExprSyntaxError(offset: 0, length: 1, message: "empty expression")
            }
            let expr = try parser.parseOr()
            let next = parser.tokens[parser.position]
            if next.kind != .end {
                throw ExprSyntaxError(offset: next.span.lowerBound, length: max(1, next.span.count),
                                      message: "unexpected \(describe(next.kind)) after the end of the expression")
            }
            return .success(expr)
        } catch let error as ExprSyntaxError {
            return .failure(error)
        } catch {
            return .failure(ExprSyntaxError(offset: 0, length: 1, message: "\(error)"))
        }
    }

    static func describe(_ kind: TokenKind) -> String {
        switch kind {
        case .name(let name): return keywords.contains(name) ? "'\(name)'" : "name '\(name)'"
        case .int(let value): return "number \(value)"
        case .string: return "string"
        case .symbol(let symbol): return "'\(symbol)'"
        case .end: return "end of expression"
        }
    }

    static func tokenize(_ text: String) throws -> [Token] {
        let scalars = Array(text.unicodeScalars)
        var tokens: [Token] = []
        var index = 0
        func isNameStart(_ s: Unicode.Scalar) -> Bool { s == "_" || (s.value < 128 && s.properties.isAlphabetic) }
        func isNamePart(_ s: Unicode.Scalar) -> Bool { isNameStart(s) || ("0"..."9").contains(s) }
        while index < scalars.count {
            let scalar = scalars[index]
            if scalar == " " || scalar == "\t" || scalar == "\n" || scalar == "\r" { index += 1; continue }
            let start = index
            if isNameStart(scalar) {
                while index < scalars.count && isNamePart(scalars[index]) { index += 1 }
                tokens.append(Token(kind: .name(String(String.UnicodeScalarView(scalars[start..<index]))), span: start..<index))
                continue
            }
            if ("0"..."9").contains(scalar) {
                while index < scalars.count && ("0"..."9").contains(scalars[index]) { index += 1 }
                let digits = String(String.UnicodeScalarView(scalars[start..<index]))
                guard let value = Int(digits) else {
                    throw ExprSyntaxError(offset: start, length: index - start, message: "number \(digits) is too large")
                }
                tokens.append(Token(kind: .int(value), span: start..<index))
                continue
            }
            if scalar == "\"" || scalar == "'" {
                index += 1
                var value = String.UnicodeScalarView()
                var closed = false
                while index < scalars.count {
                    let inner = scalars[index]
                    if inner == "\\" && index + 1 < scalars.count {
                        let escaped = scalars[index + 1]
                        switch escaped {
                        case "n": value.append("\n")
                        case "t": value.append("\t")
                        case "\\", "\"", "'": value.append(escaped)
                        default:
                            throw ExprSyntaxError(offset: index, length: 2, message: "unknown escape '\\\(escaped)' in a string")
                        }
                        index += 2
                        continue
                    }
                    if inner == scalar { closed = true; index += 1; break }
                    value.append(inner)
                    index += 1
                }
                guard closed else {
                    throw ExprSyntaxError(offset: start, length: index - start, message: "string is not closed: add \(scalar)")
                }
                tokens.append(Token(kind: .string(String(value)), span: start..<index))
                continue
            }
            let next = index + 1 < scalars.count ? scalars[index + 1] : " "
            let two = String(scalar) + String(next)
            if ["==", "!=", "<=", ">="].contains(two) {
                tokens.append(Token(kind: .symbol(two), span: start..<start + 2))
                index += 2
                continue
            }
            switch scalar {
            case "(", ")", "[", "]", ",", ".", "<", ">", "+", "-":
                tokens.append(Token(kind: .symbol(String(scalar)), span: start..<start + 1))
                index += 1
                continue
            default:
                break
            }
            let hint: String
            switch two {
            case "&&": hint = "; write 'and'"
            case "||": hint = "; write 'or'"
            default:
                switch scalar {
                case "!": hint = "; write 'not'"
                case "=": hint = "; write '==' to compare"
                case "&": hint = "; write 'and'"
                case "|": hint = "; write 'or'"
                default: hint = ""
                }
            }
            let length = (two == "&&" || two == "||") ? 2 : 1
            throw ExprSyntaxError(offset: start, length: length, message: "unexpected character '\(two == "&&" || two == "||" ? two : String(scalar))'\(hint)")
        }
        tokens.append(Token(kind: .end, span: scalars.count..<scalars.count + 1))
        return tokens
    }

    var current: Token { tokens[position] }

    mutating func advance() -> Token {
        let token = tokens[position]
        if position < tokens.count - 1 { position += 1 }
        return token
    }

    func isKeyword(_ word: String) -> Bool { current.kind == .name(word) }
    func isSymbol(_ symbol: String) -> Bool { current.kind == .symbol(symbol) }

    mutating func expect(_ symbol: String, _ context: String) throws {
        guard isSymbol(symbol) else {
            throw ExprSyntaxError(offset: current.span.lowerBound, length: max(1, current.span.count),
                                  message: "expected '\(symbol)' \(context), found \(Self.describe(current.kind))")
        }
        _ = advance()
    }

    mutating func nest() throws {
        depth += 1
        if depth > Self.maxDepth {
            throw ExprSyntaxError(offset: current.span.lowerBound, length: 1, message: "expression nested deeper than \(Self.maxDepth) levels")
        }
    }

    mutating func parseOr() throws -> Expr {
        try nest()
        defer { depth -= 1 }
        var left = try parseAnd()
        while isKeyword("or") {
            _ = advance()
            let right = try parseAnd()
            left = Expr(kind: .binary("or", left, right), span: left.span.lowerBound..<right.span.upperBound)
        }
        return left
    }

    mutating func parseAnd() throws -> Expr {
        var left = try parseNot()
        while isKeyword("and") {
            _ = advance()
            let right = try parseNot()
            left = Expr(kind: .binary("and", left, right), span: left.span.lowerBound..<right.span.upperBound)
        }
        return left
    }

    mutating func parseNot() throws -> Expr {
        if isKeyword("not") {
            let token = advance()
            try nest()
            defer { depth -= 1 }
            let operand = try parseNot()
            return Expr(kind: .unary("not", operand), span: token.span.lowerBound..<operand.span.upperBound)
        }
        return try parseCompare()
    }

    mutating func parseCompare() throws -> Expr {
        let left = try parseSum()
        var op: String?
        if case .symbol(let symbol) = current.kind, ["==", "!=", "<", "<=", ">", ">="].contains(symbol) {
            op = symbol
            _ = advance()
        } else if isKeyword("in") {
            op = "in"
            _ = advance()
        } else if isKeyword("not"), position + 1 < tokens.count, tokens[position + 1].kind == .name("in") {
            op = "not in"
            _ = advance()
            _ = advance()
        }
        guard let op else { return left }
        let right = try parseSum()
        if case .symbol(let symbol) = current.kind, ["==", "!=", "<", "<=", ">", ">="].contains(symbol) {
            throw ExprSyntaxError(offset: current.span.lowerBound, length: current.span.count,
                                  message: "comparisons do not chain; join them with 'and'")
        }
        return Expr(kind: .binary(op, left, right), span: left.span.lowerBound..<right.span.upperBound)
    }

    mutating func parseSum() throws -> Expr {
        var left = try parseUnary()
        while isSymbol("+") || isSymbol("-") {
            let op = advance()
            let right = try parseUnary()
            guard case .symbol(let symbol) = op.kind else { break }
            left = Expr(kind: .binary(symbol, left, right), span: left.span.lowerBound..<right.span.upperBound)
        }
        return left
    }

    mutating func parseUnary() throws -> Expr {
        if isSymbol("-") {
            let token = advance()
            try nest()
            defer { depth -= 1 }
            let operand = try parseUnary()
            return Expr(kind: .unary("-", operand), span: token.span.lowerBound..<operand.span.upperBound)
        }
        return try parsePostfix()
    }

    mutating func parsePostfix() throws -> Expr {
        var expr = try parsePrimary()
        while isSymbol(".") {
            _ = advance()
            let nameToken = advance()
            guard case .name(let name) = nameToken.kind, !Self.keywords.contains(name) else {
                throw ExprSyntaxError(offset: nameToken.span.lowerBound, length: max(1, nameToken.span.count),
                                      message: "expected a field name after '.', found \(Self.describe(nameToken.kind))")
            }
            if isSymbol("(") {
                let arguments = try parseArguments(closing: ")")
                expr = Expr(kind: .call(name, [expr] + arguments.list, nameSpan: nameToken.span),
                            span: expr.span.lowerBound..<arguments.end)
            } else {
                expr = Expr(kind: .member(expr, name), span: expr.span.lowerBound..<nameToken.span.upperBound)
            }
        }
        return expr
    }

    mutating func parseArguments(closing: String) throws -> (list: [Expr], end: Int) {
        _ = advance() // ( or [
        try nest()
        defer { depth -= 1 }
        var list: [Expr] = []
        if isSymbol(closing) {
            return (list, advance().span.upperBound)
        }
        while true {
            list.append(try parseOr())
            if isSymbol(",") { _ = advance(); continue }
            let end = current.span.upperBound
            try expect(closing, "to close the \(closing == ")" ? "arguments" : "list")")
            return (list, end)
        }
    }

    mutating func parsePrimary() throws -> Expr {
        let token = current
        switch token.kind {
        case .int(let value):
            _ = advance()
            return Expr(kind: .int(value), span: token.span)
        case .string(let value):
            _ = advance()
            return Expr(kind: .string(value), span: token.span)
        case .name("true"):
            _ = advance()
            return Expr(kind: .bool(true), span: token.span)
        case .name("false"):
            _ = advance()
            return Expr(kind: .bool(false), span: token.span)
        case .name(let name) where !Self.keywords.contains(name):
            _ = advance()
            if isSymbol("(") {
                let arguments = try parseArguments(closing: ")")
                return Expr(kind: .call(name, arguments.list, nameSpan: token.span), span: token.span.lowerBound..<arguments.end)
            }
            return Expr(kind: .name(name), span: token.span)
        case .symbol("("):
            _ = advance()
            let inner = try parseOr()
            try expect(")", "to close '('")
            return inner
        case .symbol("["):
            let arguments = try parseArguments(closing: "]")
            return Expr(kind: .list(arguments.list), span: token.span.lowerBound..<arguments.end)
        default:
            throw ExprSyntaxError(offset: token.span.lowerBound, length: max(1, token.span.count),
                                  message: "expected a value, found \(Self.describe(token.kind))")
        }
    }
}
