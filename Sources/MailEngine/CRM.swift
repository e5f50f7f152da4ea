import Crypto
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

let personEmailFields = SalesforceSchema.personEmailFields

/// A CRM held in memory, built from Data Export CSVs: the directory `process` uses with
/// `--crm DIR` and rule tests use inline, until the embedded store takes over.
public final class InMemoryDirectory: RecordLookups, @unchecked Sendable {
    public private(set) var records: [String: [CRMRecord]] = [:]
    private var byID: [String: CRMRecord] = [:]
    private var byEmail: [String: [CRMRecord]] = [:]
    /// Canonical AccountIds of the Contacts at each email domain, each once, in the order
    /// first seen (only whether there are one or several is read).
    private var accountsByEmailDomain: [String: [String]] = [:]

    public init(records: [CRMRecord] = []) {
        for record in records { add(record) }
    }

    public func add(_ record: CRMRecord) {
        // A row Data Loader's "Export All" marks deleted (in the recycle bin) is no record:
        // an activity deleted in the CRM may be saved again (DESIGN point 4), and a deleted
        // EmailMessage anchors no reply.
        guard !record.flag("IsDeleted") else { return }
        records[record.object, default: []].append(record)
        byID[record.id] = record
        // Found by its 15-character form too, as the store finds it (a Contact's AccountId may
        // be written in the other form than the Account's Id).
        if record.id.count == 18 { byID[SalesforceID.canonical(record.id)] = record }
        if record.object == "Contact" || record.object == "Lead" || record.object == "User" {
            for field in personEmailFields {
                if let email = record[field] { byEmail[CRMDirectoryKeys.address(email), default: []].append(record) }
            }
        }
        if record.object == "Contact", let account = record["AccountId"] {
            let key = SalesforceID.canonical(account)
            for domain in CRMDirectoryKeys.emailDomains(of: record) where !accountsByEmailDomain[domain, default: []].contains(key) {
                accountsByEmailDomain[domain, default: []].append(key)
            }
        }
    }

    public struct CSVProblem: Error, Sendable, CustomStringConvertible {
        public var line: Int
        public var reason: String
        public var description: String { "line \(line): \(reason)" }

        public init(line: Int, reason: String) {
            self.line = line
            self.reason = reason
        }

        /// A cell's value quoted in a reason: the first 60 characters of a long one (a 1 MB
        /// Id was echoed whole).
        public static func shown(_ value: String) -> String {
            value.count <= 60 ? value : String(value.prefix(60)) + "… (\(value.utf8.count) bytes)"
        }
    }

    /// Parses a Salesforce data export (header row of API field names, RFC 4180 quoting, UTF-8
    /// with or without BOM; `DataExportCSV`). A row whose field count differs from the header,
    /// an empty Id or an Id given twice (also as its 15- and 18-character forms) is an error
    /// naming its line; nothing of the file is added then.
    public static func parseCSV(_ text: String, object: String) throws(CSVProblem) -> [CRMRecord] {
        try parseCSV(bytes: Array(text.utf8), object: object)
    }

    /// The same from the file's bytes: bytes that are not UTF-8 and NUL bytes are errors
    /// naming their line.
    public static func parseCSV(bytes: [UInt8], object: String) throws(CSVProblem) -> [CRMRecord] {
        try parseCSVRows(bytes: bytes, object: object).map(\.record)
    }

    /// The records with the line each starts on.
    public static func parseCSVRows(bytes: [UInt8], object: String) throws(CSVProblem) -> [(line: Int, record: CRMRecord)] {
        var result: [(line: Int, record: CRMRecord)] = []
        try forEachCSVRecord(bytes: bytes, object: object) { line, record throws(CSVProblem) in result.append((line, record)) }
        return result
    }

    /// Each record of a Data Export CSV with the line it starts on, one at a time (a row
    /// whose field count is not the header's, an empty Id, an Id given twice: an error naming
    /// the line). Only the Ids seen are kept, to find one given twice.
    public static func forEachCSVRecord(bytes: [UInt8], object: String,
                                        _ body: (Int, CRMRecord) throws(CSVProblem) -> Void) throws(CSVProblem) {
        var header: [String] = []
        var idColumn = 0
        var lineOfID: [String: Int] = [:]
        try DataExportCSV.forEachRow(bytes, header: { names throws(CSVProblem) in
            guard let column = names.firstIndex(where: { $0.lowercased() == "id" }) else {
                throw CSVProblem(line: 1, reason: "the header row has no Id column")
            }
            header = names
            idColumn = column
        }, row: { line, row throws(CSVProblem) in
            guard row.count == header.count else {
                throw CSVProblem(line: line, reason: "\(row.count) fields where the header has \(header.count)")
            }
            var fields: [String: String] = [:]
            for (name, value) in zip(header, row) where !name.isEmpty {
                if value.utf8.count > SalesforceSchema.longestText && value.count > SalesforceSchema.longestText {
                    throw CSVProblem(line: line, reason: "the \(CSVProblem.shown(name)) cell holds \(value.count) characters, more than any Salesforce field (\(SalesforceSchema.longestText))")
                }
                if SalesforceSchema.referenceFields.contains(name) && !value.isEmpty && !SalesforceID.isWellFormed(value) {
                    throw CSVProblem(line: line, reason: "\(name) '\(CSVProblem.shown(value))' is not a Salesforce id (15 or 18 letters and digits)")
                }
                fields[name] = value
            }
            let id = row[idColumn]
            guard !id.isEmpty else { throw CSVProblem(line: line, reason: "empty Id") }
            guard SalesforceID.isWellFormed(id) else {
                throw CSVProblem(line: line, reason: "Id '\(CSVProblem.shown(id))' is not a Salesforce id (15 or 18 letters and digits)")
            }
            if let earlier = lineOfID.updateValue(line, forKey: SalesforceID.canonical(id)) {
                throw CSVProblem(line: line, reason: "the Id \(CSVProblem.shown(id)) is already on line \(earlier) (one row per record)")
            }
            try body(line, CRMRecord(object: object, id: id, fields: fields))
        })
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

    public func account(contactDomain domain: String) -> DomainAccount? {
        guard let accounts = accountsByEmailDomain[domain], let first = accounts.first else { return nil }
        return accounts.count > 1 ? .several : .one(record(id: first)?.id ?? first)
    }

    public func accounts(name: String) -> [CRMRecord] {
        let key = CRMDirectoryKeys.companyName(name)
        guard !key.isEmpty else { return [] }
        return records["Account", default: []].filter { CRMDirectoryKeys.companyName($0["Name"] ?? "") == key }
    }

    public func people(phone: String) -> [CRMRecord] {
        (records["Contact", default: []] + records["Lead", default: []]).filter { person in
            SalesforceSchema.personPhoneFields.contains { field in person[field].map(CRMDirectoryKeys.phoneDigits) == CRMDirectoryKeys.phoneDigits(phone) }
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
                let identifier = record[SalesforceSchema.emailMessageIdentifierField] ?? record[SalesforceSchema.taskMessageIdentifierField] ?? ""
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
        CompiledList.normalize(address.trimmingHorizontalSpace(), kind: .addresses)
    }

    /// The domain of a normalised address (`CRMDirectoryKeys.address`): what follows its last
    /// `@`, already lower-cased and IDNA-encoded; nil when there is none.
    public static func domain(ofAddress address: String) -> String? {
        guard let at = address.lastIndex(of: "@") else { return nil }
        let domain = address[address.index(after: at)...]
        return domain.contains(".") ? String(domain) : nil
    }

    /// The domains of a Contact's email fields, each once: what the Account-by-Contact-domain
    /// look-up indexes (every backend the same fields: `SalesforceSchema.personEmailFields`).
    public static func emailDomains(of record: CRMRecord) -> [String] {
        var domains: [String] = []
        for field in SalesforceSchema.personEmailFields {
            if let email = record[field], let domain = domain(ofAddress: address(email)), !domains.contains(domain) { domains.append(domain) }
        }
        return domains
    }

    /// `https://www.Fabrikam.com/about` -> `fabrikam.com`.
    public static func domain(ofWebsite website: String) -> String? {
        var text = website.trimmingHorizontalSpace().lowercased()
        // The standard library's search, not Foundation's range(of:) (NSString's, which
        // costs a per-message run its first use).
        if let scheme = text.firstRange(of: "://") { text = String(text[scheme.upperBound...]) }
        text = String(text.prefix { $0 != "/" && $0 != "?" && $0 != "#" && $0 != ":" })
        if text.hasPrefix("www.") { text.removeFirst(4) }
        guard text.utf8.contains(UInt8(ascii: ".")) else { return nil }
        let domain = IDNA.normalize(text)
        // A Website of `co.uk` (dirty data) would be every British company's.
        return isPublicSuffix(domain) ? nil : domain
    }

    /// The second-level labels registries sell names under (`co.uk`, `com.au`, `ne.jp`).
    static let registryLabels: Set<String> = ["co", "com", "net", "org", "gov", "edu", "ac", "ne", "or", "go", "gob", "gv", "nic", "mil",
                                              "ltd", "plc", "nom", "sch", "biz", "info", "int", "ad", "ed", "lg", "gr"]

    /// Whether `domain` names no organisation but a registry: a single label, or a country's
    /// second level (`co.uk`, `com.br`). A short list in place of the Public Suffix List: an
    /// Account whose Website is one of these, or a parent domain tried for one, matches no one.
    public static func isPublicSuffix(_ domain: String) -> Bool {
        let labels = domain.split(separator: ".", omittingEmptySubsequences: true)
        if labels.count <= 1 { return true }
        return labels.count == 2 && labels[1].utf8.count == 2 && registryLabels.contains(String(labels[0]))
    }

    static let legalForms: Set<String> = ["inc", "incorporated", "ltd", "limited", "llc", "llp", "plc", "corp", "corporation", "co", "company",
                                          "gmbh", "ag", "kg", "sa", "sas", "sarl", "srl", "spa", "bv", "nv", "ab", "as", "oy", "pty", "kk"]

    /// A company name for comparison: lower-cased, words of letters and digits, without a
    /// trailing legal form.
    public static func companyName(_ name: String) -> String {
        var words = name.lowercased().split { !($0.isLetter || $0.isNumber) }.map(String.init)
        while words.count > 1, let last = words.last, legalForms.contains(last) { words.removeLast() }
        return words.joined(between: " ")
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
            + "\u{0}" + message.textBody.prefix(characters: 4096)
        var hash = FNV1a()
        hash.add(identity)
        return "no-message-id:" + String(hash.value, radix: 16)
    }

    /// The key of a Message-ID: without control characters (no Message-ID has them; the
    /// parser keeps a header's raw bytes, NUL and DEL included), without the space and angle
    /// brackets around it, its domain part in lower case, in Unicode's composed form, and
    /// short enough for Salesforce's fields (`shortened`). A key's key is itself, so a key may be normalised again anywhere
    /// (before, `<<a@b>` and an id in spaces gave keys whose keys differed).
    public static func normalize(_ id: String) -> String { shortened(composed(base(withoutControls(id)))) }

    /// Unicode's canonical composition (NFC): SQLite compares keys by their bytes, Swift by
    /// canonical equivalence, so `café` written precomposed or decomposed was one message in
    /// `process --thread` and two in the ledger. An ASCII key is composed already.
    static func composed(_ key: String) -> String {
        key.utf8.allSatisfy({ $0 < 0x80 }) ? key : key.precomposedStringWithCanonicalMapping
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool { scalar.value < 0x20 || scalar.value == 0x7F }

    static func withoutControls(_ id: String) -> String {
        guard id.unicodeScalars.contains(where: isControl) else { return id }
        return String(String.UnicodeScalarView(id.unicodeScalars.filter { !isControl($0) }))
    }

    /// Without the space and brackets around it, the domain part (after the last "@") in
    /// lower case.
    static func base(_ id: String) -> String {
        var scalars = Substring(id).unicodeScalars
        while let first = scalars.first, first == "<" || String.isHorizontalSpace(first) { scalars.removeFirst() }
        while let last = scalars.last, last == ">" || String.isHorizontalSpace(last) { scalars.removeLast() }
        let text = String(scalars)
        // By Characters, as ever: ledgers hold keys made this way (an "@" with a combining
        // mark is not a separator). An ASCII id has no combining mark: its bytes say the same,
        // at a tenth of the cost.
        if text.isASCII {
            guard let at = text.utf8.lastIndex(of: 0x40) else { return text }
            let domain = text.utf8[text.utf8.index(after: at)...]
            guard domain.contains(where: { $0 >= 0x41 && $0 <= 0x5A }) else { return text }
            return String(text[..<at]) + "@" + String(decoding: domain.map(\.asciiLowercased), as: UTF8.self)
        }
        guard let at = text.lastIndex(of: "@") else { return text }
        return String(text[..<at]) + "@" + text[text.index(after: at)...].lowercased()
    }

    /// The longest key kept as it is, in UTF-16 units: Salesforce's `MessageIdentifier`,
    /// `ThreadIdentifier` and the Task's Message-ID field hold 255, angle brackets included.
    public static let longestKept = 253

    /// A key longer than `longestKept`, shortened to the start of its local part (letters,
    /// digits, `.`, `-`, `_`; at most 100) and the SHA-256 of the whole key:
    /// `start.<64 hex digits>@long-id.mailsave.invalid`. Such an id is legal (RFC 5322 sets
    /// no length) and was saved as it was, which Salesforce refuses; the same id always
    /// gives the same key, and two ids one key only if their digests collide.
    static func shortened(_ key: String) -> String {
        guard key.utf16.count > longestKept else { return key }
        let start = key.unicodeScalars.prefix { $0 != "@" }.filter {
            ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") || $0 == "." || $0 == "-" || $0 == "_"
        }.prefix(100)
        let digest = Hexadecimal.lowercase(SHA256.hash(data: Array(key.utf8)))
        return String(String.UnicodeScalarView(start)) + "." + digest + "@long-id.mailsave.invalid"
    }

    /// A Message-ID as mailsave writes it into a Salesforce field (`MessageIdentifier`,
    /// `ThreadIdentifier`, the Task's Message-ID field): its key in angle brackets. It fits
    /// (at most 255 UTF-16 units), `normalize` reads it back to the key, and two ids of one
    /// key are one value, which a Unique field then refuses twice.
    public static func fieldValue(_ id: String) -> String { "<" + normalize(id) + ">" }
}
