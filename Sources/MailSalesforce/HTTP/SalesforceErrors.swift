import Foundation

/// One entry of a Salesforce error array: `[{"errorCode": ..., "message": ..., "fields": [...]}]`
/// from the REST API, `statusCode` instead of `errorCode` inside sObject Collections and
/// composite graph results, `{"error", "error_description"}` from the OAuth endpoint.
public struct SalesforceAPIError: Sendable, Equatable {
    public var code: String
    public var message: String
    public var fields: [String]

    public init(code: String, message: String, fields: [String] = []) {
        self.code = code
        self.message = message
        self.fields = fields
    }

    /// The errors of a composite answer's refused subrequests (status 300 or more), in order:
    /// what `SalesforceConnection.call` inspects in an answer that succeeded as a whole.
    public static func subrequestErrors(_ composite: JSON) -> [SalesforceAPIError] {
        (composite["compositeResponse"]?.array ?? []).flatMap { sub in sub.httpStatus >= 300 ? parse(sub["body"]) : [] }
    }

    /// The errors a body holds, in order; empty when it holds none.
    public static func parse(_ body: JSON?) -> [SalesforceAPIError] {
        guard let body else { return [] }
        if let items = body.array { return items.flatMap { parse($0) } }
        if let code = body["errorCode"]?.string ?? body["statusCode"]?.string {
            let fields = body["fields"]?.array?.compactMap(\.string) ?? []
            return [SalesforceAPIError(code: code, message: body["message"]?.string ?? "", fields: fields)]
        }
        if let code = body["error"]?.string {
            return [SalesforceAPIError(code: code, message: body["error_description"]?.string ?? "")]
        }
        // sObject Collections and graph results nest theirs.
        if let errors = body["errors"]?.array { return errors.flatMap { parse($0) } }
        return []
    }

    /// For a `DUPLICATE_VALUE` on `field` (a Unique field refused a second record with the same
    /// value): the record that holds the value, as the message names it ("duplicate value
    /// found: FIELD duplicates value on record with id: ID"), or "" when it does not (a user
    /// who cannot see that record gets `<unknown>`). nil for any other error, or a duplicate on
    /// another field. Salesforce sends `fields` empty here, so the message names the field.
    public func duplicateRecord(on field: String) -> String? {
        guard code == "DUPLICATE_VALUE" else { return nil }
        let lowered = message.lowercased()
        let named = fields.contains { $0.lowercased() == field.lowercased() }
            || lowered.contains("found: " + field.lowercased() + " duplicates")
        guard named else { return nil }
        guard let range = lowered.range(of: "on record with id: ") else { return "" }
        let id = message[range.upperBound...].prefix { $0.isASCII && ($0.isLetter || $0.isNumber) }
        return id.count == 15 || id.count == 18 ? String(id) : ""
    }

    /// Errors Salesforce itself says are worth another try (nothing was written).
    static let transientCodes: Set<String> = ["UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE"]

    /// One line: `STRING_TOO_LONG on Subject: data value too large (max length=255)`.
    public var summary: String {
        let text = message.count > 300 ? String(message.prefix(300)) + "…" : message
        let on = fields.isEmpty ? "" : " on " + fields.joined(separator: ", ")
        return code + on + (text.isEmpty ? "" : ": " + text)
    }

    /// The errors that say why, without the `PROCESSING_HALTED` of the subrequests that were
    /// only rolled back with them (`allOrNone`).
    static func causes(_ errors: [SalesforceAPIError]) -> [SalesforceAPIError] {
        let real = errors.filter { $0.code != "PROCESSING_HALTED" }
        return real.isEmpty ? errors : real
    }
}

/// `Sforce-Limit-Info: api-usage=USED/MAX` (other entries, such as `per-app-api-usage`, ignored).
public struct APIUsage: Sendable, Equatable {
    public var used: Int
    public var max: Int

    public init(used: Int, max: Int) {
        self.used = used
        self.max = max
    }

    public static func parse(_ header: String?) -> APIUsage? {
        guard let header else { return nil }
        for entry in header.split(separator: ",") {
            let item = entry.trimmingCharacters(in: .whitespaces)
            guard item.hasPrefix("api-usage=") else { continue }
            let numbers = item.dropFirst("api-usage=".count).split(separator: "/")
            guard numbers.count == 2, let used = Int(numbers[0].trimmingCharacters(in: .whitespaces)),
                  let max = Int(numbers[1].trimmingCharacters(in: .whitespaces)), max > 0, used >= 0 else { return nil }
            return APIUsage(used: used, max: max)
        }
        return nil
    }

    public var share: Double { Double(used) / Double(max) }

    /// The share as a whole percentage for messages, capped: a server may claim any usage
    /// (`api-usage=100000000000000000/1` trapped in the conversion).
    public var percent: Int { share.isFinite ? Int(Swift.min(share * 100, 1_000_000).rounded(.down)) : 1_000_000 }
}

