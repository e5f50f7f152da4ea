/// The kinds of named list a pack can declare; each compiles to its own look-up structure.
public enum ListKind: String, Sendable, CaseIterable {
    /// Domain names; a domain matches its subdomains (`contoso.com` matches `eu.contoso.com`).
    case domains
    /// Full email addresses, compared case-insensitively.
    case addresses
    /// Either, per entry: an address matches by address, or by its domain as in `domains`.
    case addressesAndDomains = "addresses_and_domains"
    /// Mail folders; a folder matches its subfolders (`Inbox` matches `Inbox/Deals`).
    case folders
    /// Plain strings, compared case-insensitively.
    case strings
}

/// The type of a fact, of an expression, or of a setting.
public indirect enum FactType: Sendable, Equatable, CustomStringConvertible {
    case bool
    case int
    case string
    /// A string with a closed set of values; comparing it with another literal is an error.
    case enumeration(String, [String])
    case list(FactType)
    case object(ObjectType)
    /// May be absent: reading it needs a `has()` guard.
    case optional(FactType)
    case namedList(ListKind)
    /// The type of an expression that already failed to check: compatible with everything,
    /// so one mistake gives one diagnostic.
    case error

    public var description: String {
        switch self {
        case .bool: return "bool"
        case .int: return "int"
        case .string: return "string"
        case .enumeration(let name, _): return name
        case .list(let element): return "list<\(element)>"
        case .object(let object): return object.name
        case .optional(let wrapped): return "\(wrapped)?"
        case .namedList(let kind): return "list of \(kind.rawValue)"
        case .error: return "<error>"
        }
    }

    /// Strings and enumerations are both strings at run time.
    var isStringLike: Bool {
        switch self {
        case .string, .enumeration, .error: return true
        default: return false
        }
    }

    /// The object type of an object, an optional one, or a list of them (nested to any depth).
    public var objectType: ObjectType? {
        switch self {
        case .object(let object): return object
        case .optional(let wrapped), .list(let wrapped): return wrapped.objectType
        default: return nil
        }
    }

    var unwrapped: FactType {
        if case .optional(let wrapped) = self { return wrapped }
        return self
    }

    public static func == (left: FactType, right: FactType) -> Bool {
        switch (left, right) {
        case (.bool, .bool), (.int, .int), (.string, .string), (.error, .error): return true
        case (.enumeration(let a, _), .enumeration(let b, _)): return a == b
        case (.list(let a), .list(let b)): return a == b
        case (.object(let a), .object(let b)): return a === b
        case (.optional(let a), .optional(let b)): return a == b
        case (.namedList(let a), .namedList(let b)): return a == b
        default: return false
        }
    }
}

/// One field of a fact object: its name, type and the sentence the docs and `explain` show.
public struct FactField: Sendable {
    public let name: String
    public let type: FactType
    public let doc: String
    /// What knowing it takes beyond reading the message: a decision analyses the body or
    /// searches the CRM only when a rule it runs reads such a fact, or when it saves (a service
    /// email or internal mail costs neither). See `CompiledRule.cost`.
    public let cost: FactCost

    public init(_ name: String, _ type: FactType, _ doc: String, cost: FactCost = []) {
        self.name = name
        self.type = type
        self.doc = doc
        self.cost = cost
    }
}

/// The work a fact costs beyond reading the message's headers and bodies.
public struct FactCost: OptionSet, Sendable, Hashable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    /// The body's signature block, addresses and links (`BodyAnalyzer`).
    public static let bodyAnalysis = FactCost(rawValue: 1)
    /// The CRM's answers to the look-up plan: a read transaction, or Salesforce queries.
    public static let crmSearch = FactCost(rawValue: 2)
    /// Every cost: what a fact or an expression whose cost cannot be known is counted as.
    public static let all: FactCost = [.bodyAnalysis, .crmSearch]
}

/// A record type of the facts (Message, Participant...). Fields are resolved to indexes at
/// compile time, so evaluation never looks a name up.
public final class ObjectType: Sendable {
    public let name: String
    public let doc: String
    public let fields: [FactField]
    private let indexes: [String: Int]
    /// Each field's empty value (`FactObject.empty`), in order: an object starts as a copy.
    let emptyValues: [Value]

    public init(_ name: String, _ doc: String, _ fields: [FactField]) {
        self.name = name
        self.doc = doc
        self.fields = fields
        var indexes: [String: Int] = [:]
        for (index, field) in fields.enumerated() { indexes[field.name] = index }
        self.indexes = indexes
        self.emptyValues = fields.map { FactObject.empty($0.type) }
    }

    public func index(of field: String) -> Int? { indexes[field] }
    /// What its fields cost, and those of the objects nested in them: using the whole object
    /// (not one of its fields) reads them all.
    public var cost: FactCost {
        fields.reduce(into: FactCost()) { cost, field in
            cost.formUnion(field.cost)
            if let nested = field.type.objectType { cost.formUnion(nested.cost) }
        }
    }
    public func field(_ name: String) -> FactField? { indexes[name].map { fields[$0] } }
}
