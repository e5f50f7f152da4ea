import CSV
import Foundation
import MailMessage
import MailRules

/// A Salesforce record as the engine sees it: object, id, and API field values as text
/// (as a Data Export writes them).
public struct CRMRecord: Sendable, Equatable {
    public var object: String
    public var id: String
    public var fields: [String: String]

    public init(object: String, id: String, fields: [String: String]) {
        self.object = object
        self.id = id
        self.fields = fields
    }

    public subscript(_ field: String) -> String? {
        guard let value = fields[field], !value.isEmpty else { return nil }
        return value
    }

    /// Salesforce's checkbox text: `true`/`1` is true.
    public func flag(_ field: String) -> Bool {
        guard let value = self[field]?.lowercased() else { return false }
        return value == "true" || value == "1"
    }
}

/// The CRM look-ups the engine needs, narrow enough for the embedded store, Salesforce REST
/// and an in-memory directory to implement alike. Addresses and domains come normalised.
public protocol CRMDirectory: Sendable {
    /// Contacts whose Email (or other email field) is `address`.
    func contacts(email address: String) throws -> [CRMRecord]
    /// Non-converted Leads whose Email is `address`.
    func leads(email address: String) throws -> [CRMRecord]
    func users(email address: String) throws -> [CRMRecord]
    /// Accounts whose Website's domain is `domain` or a parent of it.
    func accounts(websiteDomain domain: String) throws -> [CRMRecord]
    /// Accounts whose Name is `name`, compared without case, punctuation or a legal form
    /// (`Fabrikam, Inc.` = `fabrikam inc` = `Fabrikam`).
    func accounts(name: String) throws -> [CRMRecord]
    /// Contacts and Leads with this phone number (E.164).
    func people(phone: String) throws -> [CRMRecord]
    func opportunities(accountID: String) throws -> [CRMRecord]
    func cases(contactID: String) throws -> [CRMRecord]
    func caseRecord(number: String) throws -> CRMRecord?
    /// Any record by id (for record links found in a body).
    func record(id: String) throws -> CRMRecord?
    /// The EmailMessage with this MessageIdentifier, and the Contact, Lead and User ids it is related to.
    func emailMessage(messageIdentifier: String) throws -> (record: CRMRecord, relations: [String])?
    /// The record a message was saved as, if the save-once ledger holds it and the record still exists.
    func savedRecord(messageID: String) throws -> String?
    /// Runs the look-ups of one decision against one consistent view of the CRM.
    func snapshot<T>(_ body: () throws -> T) throws -> T
}

extension CRMDirectory {
    public func snapshot<T>(_ body: () throws -> T) throws -> T { try body() }

    /// A directory that cannot search Accounts by name finds none (the store and Salesforce
    /// REST implement it with an index on the normalised name).
    public func accounts(name: String) throws -> [CRMRecord] { [] }
}

/// Salesforce's email fields on Contact and Lead that the related-record search reads.
let personEmailFields = ["Email", "npe01__HomeEmail__c", "npe01__WorkEmail__c", "npe01__AlternateEmail__c", "Secondary_Email__c"]

/// A CRM held in memory, built from Data Export CSVs: the directory `process` uses with
/// `--crm DIR` and rule tests use inline, until the embedded store takes over.
public final class InMemoryDirectory: CRMDirectory, @unchecked Sendable {
    public private(set) var records: [String: [CRMRecord]] = [:]
    private var byID: [String: CRMRecord] = [:]
    private var byEmail: [String: [CRMRecord]] = [:]

    public init(records: [CRMRecord] = []) {
        for record in records { add(record) }
    }

    public func add(_ record: CRMRecord) {
        records[record.object, default: []].append(record)
        byID[record.id] = record
        if record.object == "Contact" || record.object == "Lead" || record.object == "User" {
            for field in personEmailFields {
                if let email = record[field] { byEmail[CRMDirectoryKeys.address(email), default: []].append(record) }
            }
        }
    }

    public struct CSVProblem: Error, Sendable, CustomStringConvertible {
        public var line: Int
        public var reason: String
        public var description: String { "line \(line): \(reason)" }
    }

    /// Parses a Salesforce data export (header row of API field names, RFC 4180 quoting, UTF-8
    /// with or without BOM). A row whose field count differs from the header is an error
    /// naming its line; nothing of the file is added then.
    public static func parseCSV(_ text: String, object: String) throws(CSVProblem) -> [CRMRecord] {
        let body = text.hasPrefix("\u{FEFF}") ? String(text.dropFirst()) : text
        let reader: CSVReader
        do {
            reader = try CSVReader(string: body, hasHeaderRow: true)
        } catch {
            throw CSVProblem(line: 1, reason: "no header row")
        }
        guard let header = reader.headerRow, let idColumn = header.firstIndex(where: { $0.lowercased() == "id" }) else {
            throw CSVProblem(line: 1, reason: "the header row has no Id column")
        }
        var result: [CRMRecord] = []
        var line = 1
        while let row = reader.next() {
            line += 1 + row.reduce(0) { $0 + $1.filter { $0 == "\n" }.count }
            if row.count == 1 && row[0].isEmpty { continue }
            guard row.count == header.count else {
                throw CSVProblem(line: line, reason: "\(row.count) fields where the header has \(header.count)")
            }
            var fields: [String: String] = [:]
            for (name, value) in zip(header, row) { fields[name] = value }
            let id = row[idColumn]
            guard !id.isEmpty else { throw CSVProblem(line: line, reason: "empty Id") }
            result.append(CRMRecord(object: object, id: id, fields: fields))
        }
        if let error = reader.error { throw CSVProblem(line: line, reason: "\(error)") }
        return result
    }

    public func contacts(email address: String) -> [CRMRecord] { byEmail[address, default: []].filter { $0.object == "Contact" } }
    public func leads(email address: String) -> [CRMRecord] {
        byEmail[address, default: []].filter { $0.object == "Lead" && !$0.flag("IsConverted") }
    }
    public func users(email address: String) -> [CRMRecord] { byEmail[address, default: []].filter { $0.object == "User" } }

    public func accounts(websiteDomain domain: String) -> [CRMRecord] {
        records["Account", default: []].filter { account in
            guard let website = account["Website"], let host = CRMDirectoryKeys.domain(ofWebsite: website) else { return false }
            return host == domain || domain.hasSuffix("." + host)
        }
    }

    public func accounts(name: String) -> [CRMRecord] {
        let key = CRMDirectoryKeys.companyName(name)
        guard !key.isEmpty else { return [] }
        return records["Account", default: []].filter { CRMDirectoryKeys.companyName($0["Name"] ?? "") == key }
    }

    public func people(phone: String) -> [CRMRecord] {
        (records["Contact", default: []] + records["Lead", default: []]).filter { person in
            ["Phone", "MobilePhone"].contains { field in person[field].map(CRMDirectoryKeys.phoneDigits) == CRMDirectoryKeys.phoneDigits(phone) }
        }
    }

    public func opportunities(accountID: String) -> [CRMRecord] { records["Opportunity", default: []].filter { $0["AccountId"] == accountID } }
    public func cases(contactID: String) -> [CRMRecord] { records["Case", default: []].filter { $0["ContactId"] == contactID } }
    public func caseRecord(number: String) -> CRMRecord? {
        records["Case", default: []].first { CRMDirectoryKeys.caseNumber($0["CaseNumber"] ?? "") == CRMDirectoryKeys.caseNumber(number) }
    }
    public func record(id: String) -> CRMRecord? { byID[id] ?? byID[SalesforceID.canonical(id)] }

    public func emailMessage(messageIdentifier: String) -> (record: CRMRecord, relations: [String])? {
        guard let email = records["EmailMessage", default: []].first(where: {
            MessageIDKey.normalize($0["MessageIdentifier"] ?? "") == MessageIDKey.normalize(messageIdentifier)
        }) else { return nil }
        let relations = records["EmailMessageRelation", default: []].filter { $0["EmailMessageId"] == email.id }.compactMap { $0["RelationId"] }
        return (email, relations)
    }

    public func savedRecord(messageID: String) -> String? {
        let key = MessageIDKey.normalize(messageID)
        for object in ["EmailMessage", "Task"] {
            for record in records[object, default: []] {
                let identifier = record["MessageIdentifier"] ?? record["Email_Message_ID__c"] ?? ""
                if !identifier.isEmpty && MessageIDKey.normalize(identifier) == key { return record.id }
            }
        }
        return nil
    }
}

/// How look-up keys are normalised, shared by every directory implementation.
public enum CRMDirectoryKeys {
    /// The same normalisation the rule language's address lists use.
    public static func address(_ address: String) -> String {
        CompiledList.normalize(address.trimmingCharacters(in: .whitespaces), kind: .addresses)
    }

    /// `https://www.Fabrikam.com/about` -> `fabrikam.com`.
    public static func domain(ofWebsite website: String) -> String? {
        var text = website.trimmingCharacters(in: .whitespaces).lowercased()
        if let scheme = text.range(of: "://") { text = String(text[scheme.upperBound...]) }
        text = String(text.prefix { $0 != "/" && $0 != "?" && $0 != "#" && $0 != ":" })
        if text.hasPrefix("www.") { text.removeFirst(4) }
        return text.contains(".") ? IDNA.normalize(text) : nil
    }

    static let legalForms: Set<String> = ["inc", "incorporated", "ltd", "limited", "llc", "llp", "plc", "corp", "corporation", "co", "company",
                                          "gmbh", "ag", "kg", "sa", "sas", "sarl", "srl", "spa", "bv", "nv", "ab", "as", "oy", "pty", "kk"]

    /// A company name for comparison: lower-cased, words of letters and digits, without a
    /// trailing legal form.
    public static func companyName(_ name: String) -> String {
        var words = name.lowercased().split { !($0.isLetter || $0.isNumber) }.map(String.init)
        while words.count > 1, let last = words.last, legalForms.contains(last) { words.removeLast() }
        return words.joined(separator: " ")
    }

    public static func phoneDigits(_ phone: String) -> String { phone.filter { $0.isASCII && $0.isNumber } }

    /// Case numbers compare without leading zeros (`00001042` = `1042`).
    public static func caseNumber(_ number: String) -> String {
        let digits = number.drop { $0 == "0" }
        return digits.isEmpty ? "0" : String(digits)
    }
}

/// Message-IDs compare without angle brackets and case-insensitively in the domain part.
public enum MessageIDKey {
    /// The save-once key of a message: its normalised Message-ID, or, for a message without
    /// one, a stable fingerprint of what identifies it (sender, date, subject, the start of the
    /// body): `no-message-id:<hex>`. The same message gives the same key on every run, so
    /// the ledger finds it (the store keys its ledger rows the same way).
    public static func ledgerKey(_ message: Message) -> String {
        if let id = message.messageID { return normalize(id) }
        let identity = (message.from.first?.normalized ?? "") + "\u{0}" + (message.date?.iso8601 ?? "") + "\u{0}" + (message.subject ?? "")
            + "\u{0}" + message.textBody.prefix(4096)
        var hash = FNV1a()
        hash.add(identity.utf8)
        return "no-message-id:" + String(hash.value, radix: 16)
    }

    public static func normalize(_ id: String) -> String {
        var text = id.trimmingCharacters(in: .whitespaces)
        if text.hasPrefix("<") { text.removeFirst() }
        if text.hasSuffix(">") { text.removeLast() }
        guard let at = text.lastIndex(of: "@") else { return text }
        return String(text[..<at]) + "@" + text[text.index(after: at)...].lowercased()
    }
}

/// Salesforce ids: 15 characters case-sensitive, or 18 with a case-safe suffix.
public enum SalesforceID {
    /// The 15-character form.
    public static func canonical(_ id: String) -> String { id.count == 18 ? String(id.prefix(15)) : id }

    /// The object an id's key prefix names.
    public static func object(of id: String) -> String? {
        switch id.prefix(3) {
        case "003": return "Contact"
        case "00Q": return "Lead"
        case "001": return "Account"
        case "006": return "Opportunity"
        case "500": return "Case"
        case "005": return "User"
        case "00T": return "Task"
        case "02s": return "EmailMessage"
        default: return nil
        }
    }

    public static func isID(_ text: Substring) -> Bool {
        (text.count == 15 || text.count == 18) && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) }
            && object(of: String(text)) != nil
    }
}
