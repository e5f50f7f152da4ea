/// Everything mailsave knows about Salesforce's data model, in one place: the objects it reads
/// and writes, their id key prefixes, the email fields people are found by, the fields a
/// pack's mapping may fill with their length limits, and the fields that carry a Message-ID.
/// The rule checker, the engine, the embedded store, the CSV directory and the REST backend
/// all read it from here, so a field added or a limit corrected changes every backend alike.
public enum SalesforceSchema {
    /// Objects by id key prefix (the first three characters of every id).
    public static let keyPrefixes: [(object: String, prefix: String)] = [
        ("Account", "001"), ("Contact", "003"), ("User", "005"), ("Opportunity", "006"), ("Lead", "00Q"), ("Task", "00T"),
        ("EmailMessage", "02s"), ("EmailMessageRelation", "0Rb"), ("Case", "500"),
    ]

    /// The objects a record link, a selection or a relation can name.
    public static let linkableObjects: Set<String> = ["Contact", "Lead", "User", "Account", "Opportunity", "Case"]

    /// The fields of a Data Export that name another record and that mailsave follows (a
    /// Contact's Account, a Case's Contact, a relation's EmailMessage and person, an
    /// EmailMessage's RelatedToId): each is an id when it is not empty.
    public static let referenceFields: Set<String> = ["AccountId", "ContactId", "EmailMessageId", "RelationId", "RelatedToId", "WhoId", "WhatId",
                                                      "OwnerId"]

    /// The most characters any text field holds (a long text area, an EmailMessage's
    /// HtmlBody): a longer cell is no Data Export's.
    public static let longestText = 131_072

    /// The email fields a Contact, Lead or User is found by: the standard `Email`, then the
    /// Nonprofit Success Pack's and a common custom secondary field. A backend that queries a
    /// real org asks only for the fields the org has (`standardPersonEmailFields` by default).
    public static let personEmailFields = ["Email", "npe01__HomeEmail__c", "npe01__WorkEmail__c", "npe01__AlternateEmail__c", "Secondary_Email__c"]
    /// The email field every org has.
    public static let standardPersonEmailFields = ["Email"]

    /// The phone fields a Contact or Lead is found by (a signature's phone number).
    public static let personPhoneFields = ["Phone", "MobilePhone"]

    /// The field of an activity that holds the Message-ID it was saved from: EmailMessage's
    /// standard `MessageIdentifier`; on a Task the custom field the shipped pack maps.
    public static let emailMessageIdentifierField = "MessageIdentifier"
    public static let taskMessageIdentifierField = "Email_Message_ID__c"

    /// The Message-ID field of a saved activity of `object`.
    public static func messageIdentifierField(of object: String) -> String? {
        switch object {
        case "EmailMessage": return emailMessageIdentifierField
        case "Task": return taskMessageIdentifierField
        default: return nil
        }
    }
}

/// The Salesforce fields a pack's mapping may fill, with their types and length limits:
/// mappings are checked against this, and the engine truncates to these limits.
public struct SalesforceField: Sendable {
    public let name: String
    /// Bool fields take a bool expression; every other field a string expression.
    public let isBool: Bool
    /// Maximum length in Salesforce's characters (UTF-16 code units: an emoji counts two), or
    /// nil when the field has none that matters here.
    public let maxLength: Int?
    /// The form Salesforce takes a date or date-time field's value in; it refuses the whole
    /// save for any other text.
    public let format: Format?

    public enum Format: Sendable {
        /// `YYYY-MM-DD`.
        case date
        /// ISO 8601: `YYYY-MM-DDTHH:MM:SS`, optional fraction, then `Z` or `±HH:MM`.
        case dateTime
    }

    init(_ name: String, bool: Bool = false, max: Int? = nil, format: Format? = nil) {
        self.name = name
        self.isBool = bool
        self.maxLength = max
        self.format = format
    }

    /// Whether `text` is in the field's format (always, for a field without one): a real
    /// calendar day, a time of day, a zone.
    public func accepts(_ text: String) -> Bool {
        guard let format else { return true }
        let bytes = Array(text.utf8)
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= bytes.count, range.allSatisfy({ bytes[$0] >= 0x30 && bytes[$0] <= 0x39 }) else { return nil }
            return range.reduce(0) { $0 * 10 + Int(bytes[$1] - 0x30) }
        }
        guard bytes.count >= 10, bytes[4] == 0x2D, bytes[7] == 0x2D, let year = number(0..<4), let month = number(5..<7),
              let day = number(8..<10), year >= 1, (1...12).contains(month) else { return false }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        guard (1...days).contains(day) else { return false }
        if format == .date { return bytes.count == 10 }
        guard bytes.count >= 20, bytes[10] == 0x54, bytes[13] == 0x3A, bytes[16] == 0x3A, let hour = number(11..<13),
              let minute = number(14..<16), let second = number(17..<19), hour < 24, minute < 60, second < 61 else { return false }
        var index = 19
        if bytes[index] == 0x2E {
            index += 1
            let start = index
            while index < bytes.count && bytes[index] >= 0x30 && bytes[index] <= 0x39 { index += 1 }
            guard index > start else { return false }
        }
        if index == bytes.count - 1 { return bytes[index] == 0x5A }
        guard index + 6 == bytes.count, bytes[index] == 0x2B || bytes[index] == 0x2D, bytes[index + 3] == 0x3A,
              let zoneHours = number((index + 1)..<(index + 3)), let zoneMinutes = number((index + 4)..<(index + 6)) else { return false }
        return zoneHours < 24 && zoneMinutes < 60
    }

    public static let task: [SalesforceField] = [
        SalesforceField("Subject", max: 255), SalesforceField("Description", max: 32_000), SalesforceField("ActivityDate", format: .date),
        SalesforceField("Status", max: 40), SalesforceField("Priority", max: 40), SalesforceField("TaskSubtype", max: 40),
        SalesforceField("Type", max: 40), SalesforceField(SalesforceSchema.taskMessageIdentifierField, max: 255),
    ]

    public static let emailMessage: [SalesforceField] = [
        SalesforceField("Subject", max: 3_000), SalesforceField("TextBody", max: 32_000), SalesforceField("HtmlBody", max: SalesforceSchema.longestText),
        SalesforceField("FromAddress", max: 1_000), SalesforceField("FromName", max: 1_000), SalesforceField("ToAddress", max: 4_000),
        SalesforceField("CcAddress", max: 4_000), SalesforceField("BccAddress", max: 4_000), SalesforceField("Headers", max: 32_000),
        SalesforceField("MessageDate", format: .dateTime), SalesforceField(SalesforceSchema.emailMessageIdentifierField, max: 255),
        SalesforceField("ThreadIdentifier", max: 255), SalesforceField("Incoming", bool: true), SalesforceField("Status", max: 40),
    ]

    /// `text` cut to `limit` UTF-16 code units, as Salesforce counts a field's length (it refused
    /// a Subject of 130 emoji cut to 255 Swift characters: 267 units), at the last whole
    /// character that fits; a character longer than the limit alone (a letter with thousands
    /// of combining marks) is cut between its scalars. Nil when it fits.
    public static func truncated(_ text: String, toUTF16 limit: Int) -> String? {
        guard text.utf16.count > limit else { return nil }
        var units = 0
        var end = text.startIndex
        for character in text {
            let size = character.utf16.count
            if units + size > limit { break }
            units += size
            end = text.index(after: end)
        }
        guard end == text.startIndex else { return String(text[..<end]) }
        // Not even the first character fits whole: as many of its scalars as do.
        var result = ""
        for scalar in text.unicodeScalars {
            let size = scalar.utf16.count
            if units + size > limit { break }
            units += size
            result.unicodeScalars.append(scalar)
        }
        return result
    }

    /// `text` without the characters XML 1.0 cannot hold (C0 controls but tab, line feed and
    /// carriage return; U+FFFE and U+FFFF), which Salesforce's text fields cannot hold either
    /// (its SOAP API, reports and exports are XML), and the number removed. A NUL from a
    /// message's Subject saved as it was also made an export that cannot be imported again.
    public static func storable(_ text: String) -> (text: String, removed: Int) {
        func allowed(_ scalar: Unicode.Scalar) -> Bool {
            scalar.value >= 0x20 ? scalar.value != 0xFFFE && scalar.value != 0xFFFF : scalar == "\t" || scalar == "\n" || scalar == "\r"
        }
        guard !text.unicodeScalars.allSatisfy(allowed) else { return (text, 0) }
        var kept = String.UnicodeScalarView()
        var removed = 0
        for scalar in text.unicodeScalars {
            if allowed(scalar) { kept.append(scalar) } else { removed += 1 }
        }
        return (String(kept), removed)
    }

    public static func fields(for object: String) -> [SalesforceField]? {
        switch object {
        case "Task": return task
        case "EmailMessage": return emailMessage
        default: return nil
        }
    }
}

/// Salesforce ids: 15 characters case-sensitive, or 18 with a case-safe suffix.
public enum SalesforceID {
    /// The 15-character form.
    public static func canonical(_ id: String) -> String { id.count == 18 ? String(id.prefix(15)) : id }

    /// The object an id's key prefix names.
    public static func object(of id: String) -> String? {
        let prefix = id.prefix(3)
        return SalesforceSchema.keyPrefixes.first { $0.prefix == prefix }?.object
    }

    /// The key prefix of an object's ids.
    public static func prefix(of object: String) -> String? {
        SalesforceSchema.keyPrefixes.first { $0.object == object }?.prefix
    }

    /// A 15- or 18-character id of an object mailsave knows.
    public static func isID(_ text: Substring) -> Bool {
        isWellFormed(text) && object(of: String(text)) != nil
    }

    /// 15 or 18 ASCII letters and digits: the form of every Salesforce id, whatever its object.
    public static func isWellFormed(_ text: some StringProtocol) -> Bool {
        let bytes = text.utf8
        return (bytes.count == 15 || bytes.count == 18) && bytes.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
        }
    }

    static let base62 = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
    static let suffixAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ012345")

    /// `prefix` + instance `5e` + zero-padded base-62 number (15), plus the case-safe suffix
    /// (18): the ids the embedded store and the test server assign.
    public static func make(prefix: String, number: Int) -> String {
        var digits: [Character] = []
        var remaining = max(0, number)
        repeat {
            digits.append(base62[remaining % 62])
            remaining /= 62
        } while remaining > 0
        let body = String(digits.reversed())
        let fifteen = prefix + "5e" + String(repeating: "0", count: max(0, 10 - body.count)) + body
        return fifteen + caseSafeSuffix(fifteen)
    }

    /// The number `make` made `id` from (its 15 or 18 characters), nil for an id of another
    /// form. Capped at 62^8: far past any store's sequence, and no overflow.
    public static func number(ofMade id: String) -> Int? {
        let characters = Array(id.prefix(15))
        guard characters.count == 15, String(characters[3..<5]) == "5e" else { return nil }
        var number = 0
        for character in characters[5..<15] {
            guard let digit = base62.firstIndex(of: character) else { return nil }
            number = number * 62 + digit
            if number > 218_340_105_584_896 { return 218_340_105_584_896 }
        }
        return number
    }

    /// Salesforce's 3-character suffix: one bit per upper-case letter in each 5-character chunk.
    public static func caseSafeSuffix(_ id: String) -> String {
        let characters = Array(id.prefix(15))
        var suffix = ""
        for chunk in 0..<3 {
            var bits = 0
            for position in 0..<5 {
                let index = chunk * 5 + position
                if index < characters.count, characters[index].isASCII, characters[index].isUppercase { bits |= 1 << position }
            }
            suffix.append(suffixAlphabet[bits])
        }
        return suffix
    }
}

/// What the REST backend asks a real org for: the standard fields each object is read with
/// (enough for every fact and link; custom fields only where configured), and the
/// relationship names SOQL follows.
extension SalesforceSchema {
    /// The fields each object is queried with, `Id` first. A record found through a
    /// relationship (`Account.Name` of a Contact) is read with the same list, so it is the same
    /// record however it was found.
    public static let queryFields: [String: [String]] = [
        "Contact": ["Id", "FirstName", "LastName", "Email", "Phone", "MobilePhone", "AccountId", "Title"],
        "Lead": ["Id", "FirstName", "LastName", "Company", "Email", "Phone", "MobilePhone", "IsConverted", "Status"],
        "User": ["Id", "Username", "Email", "IsActive"],
        "Account": ["Id", "Name", "Website"],
        "Opportunity": ["Id", "Name", "AccountId", "StageName", "CloseDate", "IsClosed", "IsWon"],
        "Case": ["Id", "CaseNumber", "Subject", "ContactId", "AccountId", "Status", "IsClosed", "CreatedDate"],
        "EmailMessage": ["Id", "Subject", "MessageIdentifier", "FromAddress", "ToAddress", "Incoming", "Status", "MessageDate", "RelatedToId"],
        "Task": ["Id", "Subject", "WhoId", "WhatId", "Status", "TaskSubtype"],
    ]

    /// Lookup field -> the relationship SOQL reads the parent through (`AccountId` -> `Account.Name`).
    public static let parentRelationships: [(field: String, relationship: String, object: String)] = [
        ("AccountId", "Account", "Account"), ("ContactId", "Contact", "Contact"),
    ]

    /// Child relationships the look-ups read in the parent's query: a Contact's Cases, an
    /// Account's Opportunities, an EmailMessage's relations.
    public static let childRelationships: [String: (relationship: String, object: String)] = [
        "Contact": ("Cases", "Case"), "Account": ("Opportunities", "Opportunity"),
        "EmailMessage": ("EmailMessageRelations", "EmailMessageRelation"),
    ]

    /// `EmailMessageRelation.RelationType` by where an address stands in the message.
    public static let relationTypes = ["from": "FromAddress", "to": "ToAddress", "cc": "CcAddress", "bcc": "BccAddress"]

    /// Fields of Salesforce's own string lengths the REST backend checks before sending
    /// (values it builds itself, such as a created Lead's names).
    public static let personFieldLimits = ["FirstName": 40, "LastName": 80, "Company": 255, "Email": 80, "Title": 128, "Phone": 40]
}
