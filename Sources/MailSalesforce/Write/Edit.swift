import MailEngine
import MailRules

/// Why an edit of a saved EmailMessage was refused; the CLI gives each its exit code, as for
/// the embedded store's `EditRefusal` (8 not found, 9 not editable, 10 link refused).
public struct SalesforceEditRefusal: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable { case notFound, notEditable, link }
    public var kind: Kind
    public var message: String
    public var description: String { message }

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }
}

extension SalesforceBackend {
    /// The EmailMessage fields an edit carries over to the re-created record.
    static let copiedEmailFields = ["Subject", "TextBody", "HtmlBody", "FromAddress", "FromName", "ToAddress", "CcAddress", "BccAddress",
                                    "Headers", "MessageDate", "MessageIdentifier", "ThreadIdentifier", "Incoming", "Status", "RelatedToId"]

    /// Salesforce updates only Draft EmailMessages, so an edit deletes the saved one and creates
    /// it again with the changes, in one `allOrNone` composite call (the same path as a save):
    /// either both happen or neither. The rules are the embedded store's: only Subject,
    /// TextBody, HtmlBody and the links change; linked ids are of the right kind; a Lead
    /// excludes RelatedToId. Salesforce itself refuses a user who may not delete
    /// EmailMessages. Returns the new id.
    public func editEmailMessage(messageID: String, set changes: [String: String], who: [String]?, what: String?) throws -> String {
        let allowed: Set<String> = ["Subject", "TextBody", "HtmlBody", "RelatedToId"]
        if let field = changes.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw SalesforceEditRefusal(.notEditable, "field '\(field)' cannot be edited; edit Subject, TextBody, HtmlBody or the links")
        }
        for id in who ?? [] where !["Contact", "Lead", "User"].contains(SalesforceID.object(of: id) ?? "") {
            throw SalesforceEditRefusal(.link, "cannot link \(id): who= takes a Contact, Lead or User; nothing changed")
        }
        if let what, !what.isEmpty, !["Account", "Opportunity", "Case"].contains(SalesforceID.object(of: what) ?? "") {
            throw SalesforceEditRefusal(.link, "cannot link \(what): what= takes an Account, Opportunity or Case; nothing changed")
        }
        let key = MessageIDKey.normalize(messageID)
        guard let old = try savedEmail(key) else {
            throw SalesforceEditRefusal(.notFound, "no saved EmailMessage has the Message-ID \(messageID)")
        }
        var fields: [String: JSON] = [:]
        for name in Self.copiedEmailFields {
            guard let value = old.record[name] else { continue }
            fields[name] = name == "Incoming" ? .bool(value == "true") : .string(value)
        }
        for (name, value) in changes { fields[name] = value.isEmpty ? nil : .string(value) }
        if let what { fields["RelatedToId"] = what.isEmpty ? nil : .string(what) }
        let relations = (old.children["EmailMessageRelations"] ?? []).filter { $0["RelationType"] != "FromAddress" }
        let targets = who ?? relations.compactMap { $0["RelationId"] }
        if let lead = targets.first(where: { SalesforceID.object(of: $0) == "Lead" }), let related = fields["RelatedToId"]?.string {
            throw SalesforceEditRefusal(.link, "cannot relate Lead \(lead) and link RelatedToId \(related): on an EmailMessage a Lead excludes every other link (give --link what= to clear RelatedToId); nothing changed")
        }
        // Each person keeps the role they had; a new one is a recipient.
        var lists: [String: [JSON]] = [:]
        for id in targets {
            let type = relations.first { SalesforceID.canonical($0["RelationId"] ?? "") == SalesforceID.canonical(id) }?["RelationType"] ?? "ToAddress"
            let list = ["CcAddress": "CcIds", "BccAddress": "BccIds"][type] ?? "ToIds"
            lists[list, default: []].append(.string(id))
        }
        for (name, ids) in lists { fields[name] = .array(ids) }
        let base = connection.dataPath + "/sobjects/EmailMessage"
        let body = JSON.object(["allOrNone": .bool(true), "compositeRequest": .array([
            .object(["method": .string("DELETE"), "url": .string(base + "/" + old.record.id), "referenceId": .string("old")]),
            .object(["method": .string("POST"), "url": .string(base), "referenceId": .string("activity"), "body": .object(fields)]),
        ])])
        var attempt = 0
        while true {
            attempt += 1
            do {
                let response = try connection.call("POST", path: connection.dataPath + "/composite", body: body, kind: "edit", write: true,
                                                     inspect: SalesforceAPIError.subrequestErrors)
                let request = SaveRequest(body: body, references: [("old", "EmailMessage", nil), ("activity", "EmailMessage", nil)])
                return try savedResult(response, request: request, key: key, taskField: nil).id
            } catch let failure as CallFailure {
                guard failure.outcomeUnknown else { throw failure.error }
                // Done if the old record is gone and a new one holds the Message-ID.
                if let now = try savedEmail(key), SalesforceID.canonical(now.record.id) != SalesforceID.canonical(old.record.id) { return now.record.id }
                guard attempt < configuration.attempts else { throw failure.error }
                connection.backOff(after: attempt)
            }
        }
    }

    /// The saved EmailMessage with this (normalised) Message-ID, every field an edit copies, and its relations.
    func savedEmail(_ key: String) throws(CRMError) -> Row? {
        let statement = SOQL.Statement(head: "SELECT Id, " + Self.copiedEmailFields.joined(separator: ", ")
                                           + ", (SELECT Id, RelationId, RelationType FROM EmailMessageRelations) FROM EmailMessage",
                                       groups: [.init(.within(fields: ["MessageIdentifier"], and: nil), LookupQueries.messageIdentifierLiterals(key))])
        do {
            let rows = try CompositeQueryRunner(connection: connection).run(
                statement.split(limit: queries.limit).map { LookupQueries.Query(kind: .emailMessages, soql: $0) }, kind: "edit-lookup")
            return rows[.emailMessages]?.first { MessageIDKey.normalize($0.record["MessageIdentifier"] ?? "") == key }
        } catch {
            throw error.error
        }
    }

    /// Deletes one record by id (`allOrNone` composite, so it is checked like every other write).
    public func delete(id: String) throws(CRMError) {
        guard SalesforceID.isWellFormed(id), let object = SalesforceID.object(of: id) else {
            throw CRMError(.permanent, "Salesforce: '\(id.prefix(40))' is not the id of a record mailsave knows")
        }
        let path = connection.dataPath + "/sobjects/\(object)/\(id)"
        do {
            // Sent again after a lost answer, a delete finds the record gone: the outcome wanted,
            // so it is retried like a read.
            _ = try connection.call("DELETE", path: path, body: nil, kind: "delete", write: false)
        } catch {
            if error.error.message.contains("ENTITY_IS_DELETED") { return }
            throw error.error
        }
    }
}
