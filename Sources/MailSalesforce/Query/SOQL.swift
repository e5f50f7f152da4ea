/// SOQL text: literals escaped so no value from a message can change a statement, and
/// `IN (...)` lists split so each statement stays under Salesforce's length limit.
public enum SOQL {
    /// A string literal, quoted: `\` and `'` (and `"`, newline, return, tab, backspace, form
    /// feed) escaped. Nil for a value with any other control character: it cannot be a value
    /// Salesforce holds, and SOQL has no escape for it, so it is never sent.
    public static func literal(_ value: String) -> String? {
        guard let escaped = escape(value, like: false) else { return nil }
        return "'" + escaped + "'"
    }

    /// A LIKE pattern literal: the value escaped as for `literal`, and `%` and `_` escaped
    /// too, so only the wildcards mailsave adds are wildcards.
    public static func likeLiteral(prefix value: String) -> String? {
        guard let escaped = escape(value, like: true) else { return nil }
        return "'" + escaped + "%'"
    }

    /// A LIKE pattern literal for values ending with `value` (a leading wildcard: no index
    /// serves it, Salesforce reads every row the rest of the filter leaves).
    public static func likeLiteral(suffix value: String) -> String? {
        guard let escaped = escape(value, like: true) else { return nil }
        return "'%" + escaped + "'"
    }

    static func escape(_ value: String, like: Bool) -> String? {
        var out = ""
        out.reserveCapacity(value.utf8.count + 2)
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "'": out += "\\'"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case "%" where like: out += "\\%"
            case "_" where like: out += "\\_"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F || (0x80...0x9F).contains(scalar.value) { return nil }
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// A statement's OR-ed conditions, each a group of values (`Email IN (...)`,
    /// `Website LIKE ... OR ...`), split into as few statements as fit in `limit` characters.
    /// Every value lands in exactly one statement; a value that cannot fit alone under
    /// Salesforce's ceiling is dropped (no record can hold it).
    public struct Statement: Sendable {
        public var head: String
        public var tail: String
        public var groups: [Group]

        public init(head: String, groups: [Group], tail: String = "") {
            self.head = head
            self.groups = groups
            self.tail = tail
        }

        /// One condition over a list of literals (already quoted).
        public struct Group: Sendable {
            public enum Form: Sendable {
                /// `(F1 IN (a, b) OR F2 IN (a, b))`, with `extra` ANDed in: `(IsConverted = false AND Email IN (a, b))`.
                case within(fields: [String], and: String?)
                /// `F LIKE a OR F LIKE b`.
                case like(field: String)
            }
            public var form: Form
            public var literals: [String]

            public init(_ form: Form, _ literals: [String]) {
                self.form = form
                self.literals = literals
            }

            func render(_ values: ArraySlice<String>) -> String {
                switch form {
                case .within(let fields, let extra):
                    let list = "(" + values.joined(separator: ", ") + ")"
                    let condition = fields.map { "\($0) IN \(list)" }.joined(separator: " OR ")
                    if let extra { return "(\(extra) AND (\(condition)))" }
                    return fields.count > 1 ? "(\(condition))" : condition
                case .like(let field):
                    return values.map { "\(field) LIKE \($0)" }.joined(separator: " OR ")
                }
            }

            /// Characters one value adds, at most.
            func cost(_ literal: String) -> Int {
                switch form {
                case .within(let fields, _): return fields.count * (literal.count + 2)
                case .like(let field): return field.count + literal.count + 10
                }
            }

            /// Characters the group adds with no value, at most.
            var overhead: Int {
                switch form {
                case .within(let fields, let extra): return fields.reduce(0) { $0 + $1.count + 10 } + (extra.map { $0.count + 12 } ?? 2) + 4
                case .like: return 4
                }
            }
        }

        /// Salesforce's own ceiling on a statement's length: no statement can be longer.
        public static let ceiling = 100_000

        /// The statements, each at most `limit` characters; a value that fits alone only past
        /// `limit` (a long address with several e-mail fields) gets a statement of its own up to
        /// the `ceiling`, rather than being dropped: a short limit never hides a record.
        public func split(limit: Int) -> [String] {
            let fixed = head.count + tail.count + 7
            var statements: [String] = []
            var current: [(group: Int, values: [String])] = []
            var length = fixed

            func flush() {
                let parts = current.filter { !$0.values.isEmpty }.map { groups[$0.group].render($0.values[...]) }
                if !parts.isEmpty { statements.append(head + " WHERE " + parts.joined(separator: " OR ") + tail) }
                current = []
                length = fixed
            }

            for (index, group) in groups.enumerated() {
                for literal in group.literals {
                    let opening = current.last?.group == index ? 0 : group.overhead + 4
                    let cost = group.cost(literal) + opening
                    let alone = fixed + group.overhead + 4 + group.cost(literal)
                    if alone > Swift.max(limit, Self.ceiling) { continue } // no statement can hold it
                    if alone > limit {
                        // Its own statement; the one being filled goes on filling.
                        statements.append(head + " WHERE " + group.render([literal][...]) + tail)
                        continue
                    }
                    if length + cost > limit { flush() }
                    if current.last?.group == index { current[current.count - 1].values.append(literal) } else {
                        current.append((index, [literal]))
                        length += group.overhead + 4
                    }
                    length += group.cost(literal)
                }
            }
            flush()
            return statements
        }
    }
}
