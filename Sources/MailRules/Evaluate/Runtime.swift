import MailMessage

/// A value at run time. Facts are built from these; expressions produce them.
public enum Value: Sendable, Equatable, CustomStringConvertible {
    /// An optional fact that is not there (distinct from false, 0 and "").
    case absent
    case bool(Bool)
    case int(Int)
    case string(String)
    case list([Value])
    case object(FactObject)
    case namedList(CompiledList)

    public static func == (left: Value, right: Value) -> Bool {
        switch (left, right) {
        case (.absent, .absent): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.int(let a), .int(let b)): return a == b
        case (.string(let a), .string(let b)): return a == b
        case (.list(let a), .list(let b)): return a == b
        case (.object(let a), .object(let b)): return a === b || a.fields == b.fields
        case (.namedList(let a), .namedList(let b)): return a === b
        default: return false
        }
    }

    /// As `explain` prints it: JSON-like, lists of objects abbreviated.
    public var description: String {
        switch self {
        case .absent: return "absent"
        case .bool(let value): return value ? "true" : "false"
        case .int(let value): return String(value)
        case .string(let value): return "\"" + value.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"") + "\""
        case .list(let values):
            if values.count > 8 { return "[" + values.prefix(8).map(\.description).joined(separator: ", ") + ", … (\(values.count))]" }
            return "[" + values.map(\.description).joined(separator: ", ") + "]"
        case .object(let object): return object.summary
        case .namedList(let list): return "lists.\(list.name) (\(list.count) entries)"
        }
    }
}

/// A record of facts (a Message, a Participant...): field values in the order of its type.
public final class FactObject: Sendable, Equatable {
    public let type: ObjectType
    public let fields: [Value]

    /// Builds an object from named values; fields not given get their type's empty value
    /// (absent, false, 0, "" or []). An unknown name or a value of the wrong shape is a
    /// programming error in the caller, reported rather than trapped.
    public init(_ type: ObjectType, _ values: [String: Value] = [:]) throws(FactError) {
        self.type = type
        self.fields = try Self.fields(of: type, values)
    }

    /// The same from literal pairs, as a decision builds its facts: no dictionary is built
    /// (that was a tenth of building the facts).
    public init(_ type: ObjectType, fields pairs: KeyValuePairs<String, Value>) throws(FactError) {
        self.type = type
        self.fields = try Self.fields(of: type, pairs)
    }

    /// The values in the type's field order. A name is first compared with the field after
    /// the previous one (the engine writes its literals in the schema's order), and looked up
    /// by hash only when it is not that one (hashing each name was a tenth of building facts).
    private static func fields<Entries: Sequence>(of type: ObjectType, _ entries: Entries) throws(FactError) -> [Value]
        where Entries.Element == (key: String, value: Value) {
        var values = type.emptyValues
        var next = 0
        for (name, value) in entries {
            let index: Int
            if next < type.fields.count, type.fields[next].name == name {
                index = next
            } else if let found = type.index(of: name) {
                index = found
            } else {
                throw FactError(message: "\(type.name) has no field '\(name)'")
            }
            values[index] = value
            next = index + 1
        }
        return values
    }

    private init(type: ObjectType, fields: [Value]) {
        self.type = type
        self.fields = fields
    }

    /// The same object with the fields named given new values (names the type lacks are
    /// ignored): a decision that must not save the body maps a message whose body is empty.
    public func replacing(_ values: [String: Value]) -> FactObject {
        var fields = self.fields
        for (name, value) in values { if let index = type.index(of: name) { fields[index] = value } }
        return FactObject(type: type, fields: fields)
    }

    /// Every field at its type's empty value.
    public init(defaultsOf type: ObjectType) {
        self.type = type
        self.fields = type.emptyValues
    }

    static func empty(_ type: FactType) -> Value {
        switch type {
        case .bool: return .bool(false)
        case .int: return .int(0)
        case .string, .enumeration: return .string("")
        case .list: return .list([])
        case .optional, .error, .object, .namedList: return .absent
        }
    }

    public subscript(_ name: String) -> Value? { type.index(of: name).map { fields[$0] } }

    var summary: String {
        let shown = zip(type.fields, fields).prefix(3).map { "\($0.name): \($1)" }.joined(separator: ", ")
        return "\(type.name){\(shown)\(type.fields.count > 3 ? ", …" : "")}"
    }

    public static func == (left: FactObject, right: FactObject) -> Bool { left === right || left.fields == right.fields }
}

public struct FactError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// A named list compiled for look-up by binary search over its sorted entries (addresses,
/// strings; once a label or folder level for domains and folders): 17 comparisons for
/// 100,000 entries.
public final class CompiledList: Sendable {
    public let name: String
    public let kind: ListKind
    private let exact: SortedEntries
    private let domains: SortedEntries
    /// `*.example.com` entries: subdomains only, not the domain itself.
    private let subdomainsOnly: SortedEntries
    public var count: Int { exact.count + domains.count + subdomainsOnly.count }

    /// Entries must already be normalised with `normalize(_:kind:)`; they are composed here
    /// (`composed`: one pass over an ASCII entry's bytes).
    public convenience init(name: String, kind: ListKind, entries: [String]) {
        var exact: [String] = [], domains: [String] = [], subdomainsOnly: [String] = []
        for entry in entries.map(Self.composed) {
            switch Self.part(of: entry.utf8, kind: kind) {
            case .exact: exact.append(entry)
            case .domain: domains.append(entry)
            case .subdomains: subdomainsOnly.append(String(entry.dropFirst(2)))
            }
        }
        self.init(name: name, kind: kind, exact: SortedEntries(exact), domains: SortedEntries(domains), subdomainsOnly: SortedEntries(subdomainsOnly))
    }

    init(name: String, kind: ListKind, exact: SortedEntries, domains: SortedEntries, subdomainsOnly: SortedEntries) {
        self.name = name
        self.kind = kind
        self.exact = exact
        self.domains = domains
        self.subdomainsOnly = subdomainsOnly
    }

    enum Part { case exact, domain, subdomains }

    /// Where an entry goes: an address is matched whole; a domain also matches its
    /// subdomains; `*.example.com` matches only the subdomains (kept without the `*.`).
    static func part<Bytes: Collection>(of entry: Bytes, kind: ListKind) -> Part where Bytes.Element == UInt8 {
        switch kind {
        case .domains, .addressesAndDomains:
            if entry.contains(UInt8(ascii: "@")) { return .exact }
            if entry.starts(with: [UInt8(ascii: "*"), UInt8(ascii: ".")]) { return .subdomains }
            return .domain
        case .addresses, .folders, .strings: return .exact
        }
    }

    /// The canonical form of an entry or a looked-up value: lower-cased, domains IDNA-encoded,
    /// folders as their names between slashes (no empty or `.` segment, no surrounding spaces).
    public static func normalize(_ value: String, kind: ListKind) -> String {
        // Fast path for the common case, ASCII: lower-casing the bytes is the whole normalisation
        // of an address or a domain (IDNA leaves ASCII labels as they are).
        if kind != .folders, let lowered = IDNA.asciiLowered(value) { return lowered }
        switch kind {
        case .domains: return IDNA.normalize(value)
        case .addresses, .addressesAndDomains:
            guard let at = value.lastIndex(of: "@") else { return IDNA.normalize(value) }
            return value[..<at].lowercased() + "@" + IDNA.normalize(String(value[value.index(after: at)...]))
        case .folders:
            // Fast path, ASCII names with no space, no doubled slash and no `.` segment: only
            // the surrounding slashes go.
            // One pass over the bytes (String.contains(String) went through Foundation's search).
            let bytes = value.utf8
            var plain = bytes.first != 0x2E
            var previous: UInt8 = 0
            for byte in bytes {
                if byte >= 0x80 || byte == 0x20 || byte == 0x09 || (previous == 0x2F && (byte == 0x2F || byte == 0x2E)) {
                    plain = false
                    break
                }
                previous = byte
            }
            if plain {
                var trimmed = bytes.map(\.asciiLowercased)[...]
                while trimmed.first == 0x2F { trimmed = trimmed.dropFirst() }
                while trimmed.last == 0x2F { trimmed = trimmed.dropLast() }
                return String(decoding: trimmed, as: UTF8.self)
            }
            let lowered = bytes.allSatisfy({ $0 < 0x80 }) ? String(decoding: bytes.map(\.asciiLowercased), as: UTF8.self) : value.lowercased()
            // Empty and `.` segments and the spaces around a name are no folder: a caller that
            // joins paths loosely (`Inbox//Private`, `Inbox/./Private`, `Inbox/Private `) names
            // the excluded `Inbox/Private` all the same.
            return lowered.split(separator: "/", omittingEmptySubsequences: true)
                .map { String($0).trimmingSpaces() }
                .filter { !$0.isEmpty && $0 != "." }
                .joined(between: "/")
        case .strings: return value.lowercased()
        }
    }

    /// Text in Unicode's composed form (NFC). A list compares its entries by their bytes, so
    /// both its entries (`init`) and the values it is asked about (`match`) are composed: a
    /// name written with "e" and a combining accent reads as the one written with "é", as the
    /// two strings Swift holds equal. Not part of `normalize`, whose results are also the
    /// store's look-up keys (compared as written, as they always were).
    static func composed(_ text: String) -> String {
        text.utf8.allSatisfy({ $0 < 0x80 }) ? text : String(decoding: text._nfcCodeUnits, as: UTF8.self)
    }

    public func contains(_ value: String) -> Bool { match(value) != nil }

    /// The normalised entries, as given to `init` (for the compiled-pack cache).
    /// Sorted by their bytes, the order `CompiledPackFormat` keeps them in.
    public func allEntries() -> [String] {
        (exact.entries + domains.entries + subdomainsOnly.entries.map { "*." + $0 }).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    /// The entry that matches `value`, if one does.
    public func match(_ value: String) -> String? {
        let key = Self.composed(Self.normalize(value, kind: kind))
        switch kind {
        case .strings, .addresses:
            return exact.contains(key) ? key : nil
        case .domains:
            return matchDomain(Substring(key))
        case .addressesAndDomains:
            if exact.contains(key) { return key }
            // "@", "/" and "." are ASCII: searching the bytes finds what a Character search
            // finds (unless a combining mark follows one, as no address, domain or folder
            // name has), at a fraction of the cost.
            if let at = key.utf8.lastIndex(of: 0x40) { return matchDomain(key[key.utf8.index(after: at)...]) }
            return matchDomain(Substring(key))
        case .folders:
            var candidate = Substring(key)
            while true {
                if exact.contains(String(candidate)) { return String(candidate) }
                guard let slash = candidate.utf8.lastIndex(of: 0x2F) else { return nil }
                candidate = candidate[..<slash]
            }
        }
    }

    /// `a.b.example.com` is looked up as itself, `b.example.com`, `example.com`, `com`.
    private func matchDomain(_ domain: Substring) -> String? {
        if domains.isEmpty && subdomainsOnly.isEmpty { return nil }
        var candidate = domain
        var isParent = false
        while !candidate.isEmpty {
            let key = String(candidate)
            if domains.contains(key) { return key }
            if isParent && subdomainsOnly.contains(key) { return "*." + key }
            isParent = true
            guard let dot = candidate.utf8.firstIndex(of: 0x2E) else { return nil }
            candidate = candidate[candidate.utf8.index(after: dot)...]
        }
        return nil
    }
}
