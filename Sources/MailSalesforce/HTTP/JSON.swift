import Foundation

/// A JSON value: Salesforce's bodies are dynamic (records with any fields, error arrays,
/// composite envelopes), so they are read as values, not into fixed Codable types.
public enum JSON: Sendable, Equatable, Codable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSON])
    case object([String: JSON])

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let flag = try? container.decode(Bool.self) { self = .bool(flag) }
        else if let number = try? container.decode(Double.self) { self = .number(number) }
        else if let text = try? container.decode(String.self) { self = .string(text) }
        else if let items = try? container.decode([JSON].self) { self = .array(items) }
        else { self = .object(try container.decode([String: JSON].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let flag): try container.encode(flag)
        case .number(let number):
            if number.rounded() == number, abs(number) < 9e15 { try container.encode(Int64(number)) } else { try container.encode(number) }
        case .string(let text): try container.encode(text)
        case .array(let items): try container.encode(items)
        case .object(let members): try container.encode(members)
        }
    }

    /// Parses a body; nil when it is not JSON.
    public static func parse(_ bytes: [UInt8]) -> JSON? {
        guard !bytes.isEmpty else { return nil }
        return try? JSONDecoder().decode(JSON.self, from: Data(bytes))
    }

    /// The bytes of this value (keys sorted, so the same request gives the same bytes).
    public func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? Array(encoder.encode(self))) ?? Array("null".utf8)
    }

    public subscript(_ key: String) -> JSON? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    public var string: String? { if case .string(let text) = self { return text }; return nil }
    public var array: [JSON]? { if case .array(let items) = self { return items }; return nil }
    public var object: [String: JSON]? { if case .object(let members) = self { return members }; return nil }
    public var bool: Bool? { if case .bool(let flag) = self { return flag }; return nil }
    public var number: Double? { if case .number(let number) = self { return number }; return nil }

    /// A composite subresult's `httpStatusCode`, or 0 when it is missing or no HTTP status
    /// (`1e300`, `200.5`): a server's number is never converted with a trap. (0 is under 300:
    /// a subresult without a status carries no errors to read; its missing id or body is
    /// what the callers act on.)
    public var httpStatus: Int {
        guard let number = self["httpStatusCode"]?.number, let status = Int(exactly: number), (0...999).contains(status) else { return 0 }
        return status
    }

    /// A field value as `CRMRecord` text (as a Data Export writes it): nil for null and for
    /// nested objects (relationships), `true`/`false`, integers without a decimal point.
    public var fieldText: String? {
        switch self {
        case .null, .object, .array: return nil
        case .bool(let flag): return flag ? "true" : "false"
        case .number(let number):
            if number.rounded() == number, abs(number) < 9e15 { return String(Int64(number)) }
            return String(number)
        case .string(let text): return text
        }
    }
}
