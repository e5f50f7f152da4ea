/// One mailbox from an address header.
public struct Address: Sendable, Equatable, Hashable {
    /// Display name, RFC 2047-decoded; empty when there is none.
    public var name: String
    /// The address as written (`local@Domain`), quotes kept where the local part needs them.
    public var address: String
    /// The local part, unquoted.
    public var local: String
    /// The domain lower-cased and IDNA-encoded (`xn--`), for comparison; empty when missing.
    public var domain: String

    public init(name: String, address: String, local: String, domain: String) {
        self.name = name
        self.address = address
        self.local = local
        self.domain = domain
    }

    /// `local@domain` with the normalised domain: the form to compare and look up.
    public var normalized: String { domain.isEmpty ? local.lowercased() : local.lowercased() + "@" + domain }
}

/// RFC 5322 3.4 address lists, with the obsolete syntax (routes, CFWS in odd places) and the
/// broken forms real mail has: missing angle brackets, a missing comma between two mailboxes,
/// unbalanced quotes or brackets, trailing or doubled commas, names in comments.
public enum AddressParser {
    public struct Result: Sendable {
        public var addresses: [Address]
        public var problems: [String]
    }

    enum Token: Equatable {
        case word([UInt8])      // atom text, dots included
        case quoted([UInt8])    // quoted-string content, unescaped
        case comment([UInt8])
        case literal([UInt8])   // [domain literal], brackets kept
        case special(UInt8)     // < > , : ; @
    }

    struct Item { var token: Token; var spaceBefore: Bool }

    public static func parse(_ raw: [UInt8]) -> Result {
        var problems: [String] = []
        let items = tokenize(raw, problems: &problems)
        var addresses: [Address] = []
        var entry: [Item] = []
        var inGroup = false
        var angleDepth = 0

        func finish() {
            if !entry.isEmpty { addresses.append(contentsOf: parseEntry(entry, problems: &problems)) }
            entry.removeAll()
        }

        for item in items {
            switch item.token {
            case .special(0x3C): angleDepth += 1; entry.append(item)
            case .special(0x3E): angleDepth = max(0, angleDepth - 1); entry.append(item)
            case .special(0x2C) where angleDepth == 0:
                finish()
            case .special(0x3A) where angleDepth == 0:
                // `group-name:` — what came before is the group's name, not an address.
                if inGroup { problems.append("nested group") }
                inGroup = true
                entry.removeAll()
            case .special(0x3B) where angleDepth == 0:
                finish()
                if !inGroup { problems.append("';' outside a group") }
                inGroup = false
            default:
                entry.append(item)
            }
        }
        finish()
        if inGroup { problems.append("group is not closed with ';'") }
        return Result(addresses: addresses, problems: problems)
    }

    /// One comma-separated entry; may yield several mailboxes when commas were left out.
    /// Loops over the entry, never recursion, and looks at each token a bounded number of
    /// times: a list of thousands of mailboxes without commas costs its length, not its
    /// square, and no stack.
    static func parseEntry(_ items: [Item], problems: inout [String]) -> [Address] {
        var results: [Address] = []
        var remaining = items[...]
        // Mailboxes in angle brackets, one after the other.
        while remaining.contains(where: { $0.token == .special(0x3C) }) {
            guard let rest = parseAngleMailbox(remaining, into: &results, problems: &problems) else { return results }
            remaining = rest
        }
        // No angle brackets left: addr-specs, perhaps with names before them (missing
        // brackets) or in a comment after the first.
        let content = remaining.filter { if case .comment = $0.token { return false } else { return true } }
        var position = 0
        var first = true
        while position < content.count {
            guard let at = content[position...].firstIndex(where: { $0.token == .special(0x40) }) else {
                // No '@' at all: a bare local part, e.g. `To: undisclosed recipients` without the group syntax.
                let local = content[position...].map(text(of:)).joined(between: " ")
                problems.append("address without a domain: \(local)")
                results.append(Address(name: "", address: local, local: local, domain: ""))
                return results
            }
            var start = at
            // Whitespace before the '@' is CFWS inside the addr-spec (`noreply @example.com`,
            // as Python reads it), not the end of a display name: the word before it is the
            // local part. (Read as a name, the address was `@example.com`, and a blocklist
            // entry for `noreply@example.com` never matched.)
            if start > position && content[start].spaceBefore && isAddrSpecToken(content[start - 1].token) && content[start - 1].token != .special(0x40) {
                start -= 1
            }
            while start > position && !content[start].spaceBefore && isAddrSpecToken(content[start - 1].token) { start -= 1 }
            var end = at + 1
            // The domain's words, and across white space only at a dot (`fabrikam . com`, the
            // obsolete spacing RFC 5322 4.4 allows, as Python reads it).
            func joinsAcrossSpace(_ index: Int) -> Bool {
                // Never a word an '@' follows: that is the next address's local part
                // (`a@x.example. b@y.example` is two addresses).
                guard index > at + 1, content[index].token != .special(0x40),
                      index + 1 >= content.count || content[index + 1].token != .special(0x40) else { return false }
                return text(of: content[index - 1]).hasSuffix(".") || text(of: content[index]).hasPrefix(".")
            }
            while end < content.count && isAddrSpecToken(content[end].token) && (end == at + 1 || !content[end].spaceBefore || joinsAcrossSpace(end)) {
                end += 1
            }
            var name = displayName(Array(content[position..<start]))
            if !name.isEmpty { problems.append("address without angle brackets after a display name") }
            if name.isEmpty && first, let comment = firstComment(remaining) { name = comment }
            if let mailbox = mailbox(from: Array(content[start..<end]), name: name) { results.append(mailbox) }
            if end < content.count {
                problems.append("text after an address: missing comma?")
                if results.count >= maxMailboxesPerEntry {
                    problems.append("more than \(maxMailboxesPerEntry) mailboxes without commas; the rest is ignored")
                    return results
                }
            }
            position = end
            first = false
        }
        return results
    }

    /// Most mailboxes read from one comma-less run of text.
    static let maxMailboxesPerEntry = 10_000

    /// Reads the first `<...>` mailbox of `items` (with the phrase before it) into `results`;
    /// returns what follows it when that looks like another mailbox with its comma left out.
    private static func parseAngleMailbox(_ items: ArraySlice<Item>, into results: inout [Address],
                                          problems: inout [String]) -> ArraySlice<Item>? {
        guard let open = items.firstIndex(where: { $0.token == .special(0x3C) }) else { return nil }
        let phrase = Array(items[..<open])
        let close = items[open...].firstIndex(where: { $0.token == .special(0x3E) })
        if close == nil { problems.append("'<' without '>'") }
        let end = close ?? items.endIndex
        var inner = Array(items[(open + 1)..<end])
        // Obsolete route: <@a.example,@b.example:user@c.example>
        if let colon = inner.lastIndex(where: { $0.token == .special(0x3A) }) {
            inner = Array(inner[(colon + 1)...])
        }
        inner.removeAll { if case .comment = $0.token { return true } else { return false } }
        var name = displayName(phrase)
        let after = items[(close.map { $0 + 1 } ?? items.endIndex)...]
        if name.isEmpty, let comment = firstComment(after.prefix { $0.token != .special(0x3C) }) {
            name = comment
        }
        if let mailbox = mailbox(from: inner, name: name) {
            results.append(mailbox)
        } else if inner.isEmpty && !phrase.isEmpty {
            problems.append("empty angle brackets")
        }
        guard close != nil else { return nil }
        let rest = after.drop { if case .comment = $0.token { return true } else { return false } }
        if rest.isEmpty { return nil }
        problems.append("missing comma between addresses")
        if results.count >= maxMailboxesPerEntry {
            problems.append("more than \(maxMailboxesPerEntry) mailboxes without commas; the rest is ignored")
            return nil
        }
        return rest
    }

    static func isAddrSpecToken(_ token: Token) -> Bool {
        switch token {
        case .word, .quoted, .literal, .special(0x40): return true
        default: return false
        }
    }

    static func mailbox(from items: [Item], name: String) -> Address? {
        guard !items.isEmpty else { return nil }
        guard let at = items.lastIndex(where: { $0.token == .special(0x40) }) else {
            let local = items.reduce(into: "") { $0 += text(of: $1) }
            return Address(name: name, address: local, local: local, domain: "")
        }
        let localItems = items[..<at]
        var local = ""
        var needsQuotes = false
        for item in localItems {
            switch item.token {
            case .quoted(let bytes):
                local += EncodedWords.plain(bytes[...])
                needsQuotes = true
            default:
                local += text(of: item)
            }
        }
        let domainWritten = items[(at + 1)...].reduce(into: "") { $0 += text(of: $1) }
        let written = (needsQuotes ? quote(local) : local) + "@" + domainWritten
        return Address(name: name, address: written, local: local, domain: IDNA.normalize(domainWritten))
    }

    static func quote(_ local: String) -> String {
        let plain = local.unicodeScalars.allSatisfy { scalar in
            scalar.value > 0x7F || (scalar.value > 0x20 && !"()<>[]:;@\\,\"".unicodeScalars.contains(scalar))
        }
        if plain && !local.isEmpty && !local.hasPrefix(".") && !local.hasSuffix(".") && !local.contains("..") { return local }
        return "\"" + local.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"") + "\""
    }

    static func text(of item: Item) -> String {
        switch item.token {
        case .word(let bytes), .quoted(let bytes), .literal(let bytes), .comment(let bytes):
            return EncodedWords.plain(bytes[...])
        case .special(let byte):
            return String(UnicodeScalar(byte))
        }
    }

    /// A phrase: words joined with single spaces, then RFC 2047-decoded as a whole so that
    /// adjacent encoded words join and whitespace between them disappears.
    static func displayName(_ items: [Item]) -> String {
        var bytes: [UInt8] = []
        for item in items {
            let piece: [UInt8]
            switch item.token {
            case .word(let value), .quoted(let value): piece = value
            case .special(let byte) where byte == 0x40 || byte == 0x2E: piece = [byte]
            default: continue
            }
            if !bytes.isEmpty && item.spaceBefore { bytes.append(0x20) }
            bytes.append(contentsOf: piece)
        }
        return collapseSpaces(EncodedWords.decode(bytes[...]))
    }

    static func firstComment(_ items: ArraySlice<Item>) -> String? {
        for item in items {
            if case .comment(let bytes) = item.token {
                let text = collapseSpaces(EncodedWords.decode(bytes[...]))
                if !text.isEmpty { return text }
            }
        }
        return nil
    }

    static func collapseSpaces(_ text: String) -> String {
        var output = ""
        var lastSpace = true
        for character in text {
            if character.isWhitespace {
                if !lastSpace { output.append(" ") }
                lastSpace = true
            } else {
                output.append(character)
                lastSpace = false
            }
        }
        if output.last == " " { output.removeLast() }
        return output
    }

    static func tokenize(_ raw: [UInt8], problems: inout [String]) -> [Item] {
        var items: [Item] = []
        var index = 0
        var space = false
        // Once a quote has run to the end unclosed, every later quote would too (its search
        // covers a subset of the same bytes): they are dropped at once, keeping this linear.
        var unclosedQuoteSeen = false
        while index < raw.count {
            let byte = raw[index]
            switch byte {
            case 0x22 where unclosedQuoteSeen:
                index += 1
                continue
            case 0x20, 0x09, 0x0D, 0x0A:
                space = true
                index += 1
                continue
            case 0x22:
                let quoteStart = index
                var value: [UInt8] = []
                index += 1
                var closed = false
                while index < raw.count {
                    let inner = raw[index]
                    if inner == 0x5C, index + 1 < raw.count { value.append(raw[index + 1]); index += 2; continue }
                    if inner == 0x22 { closed = true; index += 1; break }
                    if inner != 0x0D && inner != 0x0A { value.append(inner) }
                    index += 1
                }
                if !closed {
                    // Drop the stray quote and read on, so the mailbox after it is not swallowed.
                    problems.append("unbalanced quote in an address; the quote is ignored")
                    unclosedQuoteSeen = true
                    index = quoteStart + 1
                    continue
                }
                items.append(Item(token: .quoted(value), spaceBefore: space))
            case 0x28:
                var value: [UInt8] = []
                var depth = 1
                index += 1
                while index < raw.count {
                    let inner = raw[index]
                    if inner == 0x5C, index + 1 < raw.count { value.append(raw[index + 1]); index += 2; continue }
                    if inner == 0x28 { depth += 1 }
                    if inner == 0x29 { depth -= 1; if depth == 0 { index += 1; break } }
                    value.append(inner)
                    index += 1
                }
                if depth > 0 { problems.append("unbalanced parenthesis in an address") }
                items.append(Item(token: .comment(value), spaceBefore: space))
            case 0x5B:
                var value: [UInt8] = [byte]
                index += 1
                while index < raw.count, raw[index] != 0x5D { value.append(raw[index]); index += 1 }
                if index < raw.count { value.append(0x5D); index += 1 } else { problems.append("unclosed domain literal") }
                items.append(Item(token: .literal(value), spaceBefore: space))
            case 0x3C, 0x3E, 0x2C, 0x3A, 0x3B, 0x40:
                items.append(Item(token: .special(byte), spaceBefore: space))
                index += 1
            case 0x29:
                problems.append("')' without '('")
                index += 1
            default:
                var value: [UInt8] = []
                while index < raw.count {
                    let inner = raw[index]
                    if inner <= 0x20 || inner == 0x22 || inner == 0x28 || inner == 0x29 || inner == 0x5B
                        || inner == 0x3C || inner == 0x3E || inner == 0x2C || inner == 0x3A || inner == 0x3B || inner == 0x40 {
                        // An encoded word may contain '?', '=' and, in Q form, other specials except these.
                        break
                    }
                    value.append(inner)
                    index += 1
                }
                if value.isEmpty {
                    // A control character: not part of any token.
                    problems.append("control character in an address ignored")
                    index += 1
                    continue
                }
                items.append(Item(token: .word(value), spaceBefore: space))
            }
            space = false
        }
        return items
    }
}

