import Yams

/// A YAML scalar with where it was written and how it was quoted (to map expression columns).
public struct YScalar: Sendable {
    public enum Style: Sendable { case plain, singleQuoted, doubleQuoted, literal, folded }
    public var value: String
    public var location: SourceLocation
    public var style: Style

    public init(value: String, location: SourceLocation, style: Style) {
        self.value = value
        self.location = location
        self.style = style
    }

    /// A plain scalar that YAML's core schema reads as a number, bool or null, not a string
    /// (so `description: 42` is refused where JSON Schema would refuse it).
    public var isPlainNonString: Bool {
        guard style == .plain else { return false }
        if isNull || ["true", "True", "TRUE", "false", "False", "FALSE", ".inf", ".Inf", "-.inf", ".nan", ".NaN"].contains(value) {
            return true
        }
        var text = Substring(value)
        if text.hasPrefix("-") || text.hasPrefix("+") { text = text.dropFirst() }
        if text.hasPrefix("0x") || text.hasPrefix("0o") { return text.count > 2 && text.dropFirst(2).allSatisfy(\.isHexDigit) }
        var digits = 0, dots = 0, exponent = false
        for character in text {
            if character.isASCII && character.isNumber { digits += 1 } else if character == "." { dots += 1 }
            else if character == "e" || character == "E" { exponent = true } else if character != "-" && character != "+" { return false }
        }
        return digits > 0 && dots <= 1 && (!exponent || digits > 0)
    }

    /// A plain `~`, `null` or empty scalar.
    public var isNull: Bool { style == .plain && (value.isEmpty || value == "~" || value == "null" || value == "Null" || value == "NULL") }
}

/// A YAML node with source positions, in the few shapes rule files use.
public indirect enum YNode: Sendable {
    case scalar(YScalar)
    case mapping([(key: YScalar, value: YNode)], SourceLocation)
    case sequence([YNode], SourceLocation)

    public var location: SourceLocation {
        switch self {
        case .scalar(let scalar): return scalar.location
        case .mapping(_, let location), .sequence(_, let location): return location
        }
    }

    /// What the node is, for "expected a list, found a mapping".
    public var kindName: String {
        switch self {
        case .scalar(let scalar): return scalar.isNull ? "null" : "a scalar"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        }
    }
}

/// Reads YAML through Yams (libyaml) into `YNode`, refusing what rule files must not have:
/// anchors and aliases (an alias bomb of a few hundred bytes expands exponentially), more
/// than one document, and sizes past the limits below.
public enum YAMLLoader {
    public struct Limits: Sendable {
        public var maxBytes = 32 << 20
        public var maxDepth = 32
        public var maxNodes = 2_000_000
        public init() {}
    }

    public static func load(_ file: SourceFile, limits: Limits = Limits()) -> (YNode?, [Diagnostic]) {
        let path = file.path
        func at(_ mark: Mark?) -> SourceLocation {
            SourceLocation(path: path, line: mark?.line ?? 1, column: mark?.column ?? 1)
        }
        if file.text.utf8.count > limits.maxBytes {
            return (nil, [Diagnostic(.yamlLimit, at: at(nil), "file is \(file.text.utf8.count) bytes, over the limit of \(limits.maxBytes)")])
        }
        let parser: Parser
        let root: Node?
        do {
            parser = try Parser(yaml: file.text)
            root = try parser.singleRoot()
        } catch let error as YamlError {
            return (nil, [diagnostic(for: error, file: file)])
        } catch {
            return (nil, [Diagnostic(.yamlSyntax, at: at(nil), "cannot read YAML: \(error)")])
        }
        guard let root else { return (nil, []) }
        // Anchors are weak references owned by the parser: convert while it is alive.
        return withExtendedLifetime(parser) {
            var nodes = 0
            var diagnostics: [Diagnostic] = []
            let tree = convert(root, path: path, depth: 0, nodes: &nodes, limits: limits, diagnostics: &diagnostics)
            return (diagnostics.isEmpty ? tree : nil, diagnostics)
        }
    }

    struct Stop: Error {}

    private static func convert(_ node: Node, path: String, depth: Int, nodes: inout Int, limits: Limits,
                                diagnostics: inout [Diagnostic]) -> YNode? {
        let location = SourceLocation(path: path, line: node.mark?.line ?? 1, column: node.mark?.column ?? 1)
        if node.anchor != nil {
            diagnostics.append(Diagnostic(.yamlAlias, at: location, "anchors and aliases (&name, *name) are not allowed in rule files; write the value out"))
            return nil
        }
        nodes += 1
        if nodes > limits.maxNodes {
            diagnostics.append(Diagnostic(.yamlLimit, at: location, "more than \(limits.maxNodes) YAML nodes"))
            return nil
        }
        if depth > limits.maxDepth {
            diagnostics.append(Diagnostic(.yamlLimit, at: location, "nested deeper than \(limits.maxDepth) levels"))
            return nil
        }
        // A tag (`!!int`, `!custom`) says how to read a value; rule files are read one way only,
        // and a tag was ignored in silence (`kind: !!int domains` passed lint).
        let tag: String
        switch node {
        case .scalar(let scalar):
            // A quoted or block scalar comes tagged a string by the parser itself.
            let own = scalar.tag.description
            tag = own == "tag:yaml.org,2002:str" && scalar.style != .plain && scalar.style != .any ? "" : own
        case .mapping(let mapping): tag = mapping.tag.description
        case .sequence(let sequence): tag = sequence.tag.description
        case .alias: tag = ""
        }
        if !tag.isEmpty {
            let shown = tag.hasPrefix("tag:yaml.org,2002:") ? "!!" + tag.dropFirst("tag:yaml.org,2002:".count) : tag
            diagnostics.append(Diagnostic(.schemaType, at: location, "YAML tags are not used in rule files: remove '\(shown)'"))
            return nil
        }
        switch node {
        case .scalar(let scalar):
            return .scalar(YScalar(value: scalar.string, location: location, style: style(scalar.style)))
        case .mapping(let mapping):
            var entries: [(key: YScalar, value: YNode)] = []
            entries.reserveCapacity(mapping.count)
            for (key, value) in mapping {
                guard case .scalar(let keyScalar) = key, key.anchor == nil else {
                    let keyLocation = SourceLocation(path: path, line: key.mark?.line ?? 1, column: key.mark?.column ?? 1)
                    if key.anchor != nil {
                        diagnostics.append(Diagnostic(.yamlAlias, at: keyLocation, "anchors and aliases (&name, *name) are not allowed in rule files; write the value out"))
                    } else {
                        diagnostics.append(Diagnostic(.schemaType, at: keyLocation, "a mapping key must be a plain string"))
                    }
                    return nil
                }
                let keyLocation = SourceLocation(path: path, line: key.mark?.line ?? 1, column: key.mark?.column ?? 1)
                guard let converted = convert(value, path: path, depth: depth + 1, nodes: &nodes, limits: limits, diagnostics: &diagnostics) else {
                    return nil
                }
                entries.append((YScalar(value: keyScalar.string, location: keyLocation, style: style(keyScalar.style)), converted))
            }
            return .mapping(entries, location)
        case .sequence(let sequence):
            var items: [YNode] = []
            items.reserveCapacity(sequence.count)
            for item in sequence {
                guard let converted = convert(item, path: path, depth: depth + 1, nodes: &nodes, limits: limits, diagnostics: &diagnostics) else {
                    return nil
                }
                items.append(converted)
            }
            return .sequence(items, location)
        case .alias(let alias):
            let aliasLocation = SourceLocation(path: path, line: alias.mark?.line ?? 1, column: alias.mark?.column ?? 1)
            diagnostics.append(Diagnostic(.yamlAlias, at: aliasLocation, "anchors and aliases (&name, *name) are not allowed in rule files; write the value out"))
            return nil
        }
    }

    private static func style(_ style: Node.Scalar.Style) -> YScalar.Style {
        switch style {
        case .singleQuoted: return .singleQuoted
        case .doubleQuoted: return .doubleQuoted
        case .literal: return .literal
        case .folded: return .folded
        default: return .plain
        }
    }

    /// libyaml reports a duplicate key at its first occurrence; point at the repeat, and name the first.
    static func repeatedKey(_ key: String, first mark: Mark, in file: SourceFile) -> Diagnostic? {
        let firstLine = file.line(mark.line)
        let indent = firstLine.prefix(while: { $0 == " " }).count
        guard indent == mark.column - 1 else { return nil }
        var line = mark.line + 1
        while line <= file.lines.count {
            let text = file.line(line)
            let lineIndent = text.prefix(while: { $0 == " " }).count
            let content = text.dropFirst(lineIndent)
            if !content.isEmpty && !content.hasPrefix("#") && lineIndent < indent { return nil }
            if lineIndent == indent && (content.hasPrefix(key + ":") || content.hasPrefix("\"\(key)\":")) {
                return Diagnostic(.yamlDuplicateKey, at: SourceLocation(path: file.path, line: line, column: indent + 1),
                                  length: key.count, "duplicate key '\(key)'",
                                  related: (SourceLocation(path: file.path, line: mark.line, column: mark.column), "first given here"))
            }
            line += 1
        }
        return nil
    }

    static func diagnostic(for error: YamlError, file: SourceFile) -> Diagnostic {
        let path = file.path
        func at(_ mark: Mark) -> SourceLocation {
            // The end of a file that ends with a line feed is a line past its last: the error is
            // placed after the last line's text, where an editor can show it.
            let last = max(1, file.lines.count)
            if mark.line > last { return SourceLocation(path: path, line: last, column: file.line(last).unicodeScalars.count + 1) }
            return SourceLocation(path: path, line: max(1, mark.line), column: max(1, mark.column))
        }
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _):
            let detail = context.map { " \($0.text)" } ?? ""
            if problem.contains("Maximum nesting level") {
                return Diagnostic(.yamlLimit, at: at(mark), "nested deeper than YAML's parser takes (1,000 levels); rule files nest a few levels")
            }
            // `- *.example.com` reads as an alias in YAML: say how to write a wildcard domain.
            let line = file.line(mark.line)
            if (problem + detail).contains("alias"), line.contains("*.") {
                return Diagnostic(.yamlSyntax, at: at(mark), "invalid YAML: a value starting with '*' is an alias; quote a wildcard domain: \"*.example.com\"")
            }
            return Diagnostic(.yamlSyntax, at: at(mark), "invalid YAML: \(problem)\(detail)")
        case .composer(_, let problem, let mark, _):
            if problem.contains("undefined alias") {
                return Diagnostic(.yamlAlias, at: at(mark), "anchors and aliases (&name, *name) are not allowed in rule files; write the value out")
            }
            return Diagnostic(.yamlSyntax, at: at(mark), "invalid YAML: \(problem)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            if duplicates.count == 1, let first = duplicates.first, let found = repeatedKey(first, first: context.mark, in: file) {
                return found
            }
            return Diagnostic(.yamlDuplicateKey, at: at(context.mark), "duplicate key '\(duplicates.joined(separator: "', '"))' in a mapping")
        case .reader(let problem, let offset, let value, _):
            // libyaml places a reader error by its byte offset: the line and column of that byte.
            var line = 1, column = 1, bytes = 0
            for scalar in file.text.unicodeScalars {
                if bytes >= offset ?? 0 { break }
                bytes += UTF8.width(scalar)
                if scalar == "\n" { line += 1; column = 1 } else { column += 1 }
            }
            let hex = String(value, radix: 16, uppercase: true)
            let what = problem.contains("control characters") && value >= 0 ? " (U+\(String(repeating: "0", count: max(0, 4 - hex.count)) + hex))" : ""
            return Diagnostic(.yamlSyntax, at: SourceLocation(path: path, line: line, column: column), "cannot read the file: \(problem)\(what)")
        default:
            return Diagnostic(.yamlSyntax, at: SourceLocation(path: path, line: 1, column: 1), "invalid YAML: \(error)")
        }
    }
}
