import Foundation
import GRDB
import MailEngine
import MailMessage
import MailRules

extension CRMStore: ActivityWriter {
    /// Saves into the store (`save(_:message:mailbox:)`), its errors as `CRMError`.
    public func write(_ decision: Decision, message: Message, mailbox: String) throws(CRMError) -> SaveResult? {
        do {
            return try save(decision, message: message, mailbox: mailbox)
        } catch let error as StoreError {
            throw error.crmError
        } catch {
            throw CRMError(.permanent, "\(path): cannot save: \(error)")
        }
    }

    /// The ledger key of a message: the engine's (`MessageIDKey.ledgerKey`), so the ledger
    /// fact and the ledger row always agree.
    public static func ledgerKey(_ message: Message) -> String { MessageIDKey.ledgerKey(message) }

    /// Saves a decision exactly once. In one IMMEDIATE transaction: the ledger is consulted and
    /// the message claimed, created Leads, the activity and its relations are written, and the
    /// ledger row completed. Concurrent runs queue on SQLite's write lock and find the row; a
    /// run killed anywhere leaves the transaction rolled back, so a retry finishes the job.
    public func save(_ decision: Decision, message: Message, mailbox: String) throws -> SaveResult? {
        guard decision.verdict == .save, decision.record != nil else { return nil }
        return try guarded("cannot save") { try database.writeWithoutTransaction { db in
            var result: SaveResult?
            try db.inTransaction(.immediate) {
                result = try Self.saveRows(decision, message: message, mailbox: mailbox, db)
                return .commit
            }
            guard let result else { throw StoreError(.failed, message: "\(path): the save transaction ended without a result") }
            return result
        } }
    }

    /// The rows of one save, in the caller's write transaction (`save`'s own, or a
    /// `SaveSession`'s group): the ledger consulted and the message claimed, created Leads,
    /// the activity and its relations, the ledger row completed. nil for a decision that saves nothing.
    static func saveRows(_ decision: Decision, message: Message, mailbox: String, _ db: Database) throws -> SaveResult? {
        guard decision.verdict == .save, let record = decision.record else { return nil }
        let key = ledgerKey(message)
        let mailboxKey = CRMDirectoryKeys.address(mailbox)
        if let existing = try String.fetchOne(db.cachedStatement(sql: "SELECT record_id FROM ledger WHERE message_key = ?"), arguments: [key]) {
            if try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM record WHERE id = ?"), arguments: [existing]) == true {
                return SaveResult(id: existing, created: false)
            }
            // The record was deleted in the CRM: the message may be saved again.
            try db.cachedStatement(sql: "DELETE FROM ledger WHERE message_key = ?").execute(arguments: [key])
        }
        let now = MailDate(secondsSinceEpoch: Int64(Date().timeIntervalSince1970), offsetMinutes: 0).iso8601
        // Claim first: the claim and the record commit together or not at all.
        try db.cachedStatement(sql: "INSERT INTO ledger (message_key, record_id, object, mailbox, saved_at) VALUES (?, '', ?, ?, ?)")
            .execute(arguments: [key, record.object, mailboxKey, now])
        // Cached: preparing this join cost more than running it (about 70 µs a save).
        let owner = try String.fetchOne(db.cachedStatement(sql: """
            SELECT lookup.id FROM lookup CROSS JOIN record ON record.id = lookup.id
            WHERE kind = 'email' AND key = ? AND record.object = 'User' LIMIT 1
            """), arguments: [mailboxKey])

        // The decision names created records by placeholder (new:Lead:address): the real ids
        // replace them. The decision was made on a snapshot: a run that saved another message
        // of the same person since (mail comes in bursts, one process per message) created
        // that Lead or Contact, which is used, not made again: a record of the kind the
        // decision meant to make, else (for a Lead) a Contact of the address. Never a Lead for
        // a Contact: the new Contact's Account may be the activity's WhatId, which a Lead excludes.
        var created: [String: String] = [:]
        var reused: Set<String> = []
        for target in decision.toCreate {
            // A converted Lead is no one to link (the decision's own look-up leaves it out).
            let people = try Self.allRecords(db.cachedStatement(sql: """
                SELECT record.id, record.object, record.fields FROM lookup CROSS JOIN record ON record.id = lookup.id
                WHERE kind = 'email' AND key = ? AND record.object IN ('Contact', ?)
                ORDER BY record.object = ? DESC, lookup.id
                """), arguments: [CRMDirectoryKeys.address(target.address), target.object, target.object])
            if let existing = people.first(where: { !$0.flag("IsConverted") }) {
                created[target.placeholder] = existing.id
                reused.insert(target.placeholder)
                continue
            }
            let person = try newPerson(target, message: message, owner: owner, db)
            try insert(person, db)
            created[target.placeholder] = person.id
        }
        let who = decision.who.map { created[$0] ?? $0 }
        var fields: [String: String] = ["OwnerId": owner ?? ""]
        for field in record.fields {
            switch field.value {
            case .string(let text): fields[field.name] = created[text] ?? text
            case .bool(let flag): fields[field.name] = flag ? "true" : "false"
            case .int(let number): fields[field.name] = String(number)
            default: fields[field.name] = ""
            }
        }
        if record.object == "Task" {
            fields["WhoId"] = who.first ?? ""
            if fields[SalesforceSchema.taskMessageIdentifierField]?.isEmpty ?? true, let id = message.messageID { fields[SalesforceSchema.taskMessageIdentifierField] = MessageIDKey.fieldValue(id) }
        }
        let id = try nextID(object: record.object, db)
        try insert(CRMRecord(object: record.object, id: id, fields: fields), db)
        if record.object == "EmailMessage" {
            let roles: [(String, [Address])] = [("FromAddress", message.from), ("ToAddress", message.to),
                                                ("CcAddress", message.cc), ("BccAddress", message.bcc)]
            for relation in who {
                // The relation's type is where the person's address stands in the message: of
                // a person's email addresses (Email and the extra email fields), the one the
                // message names (the first in key order was another of hers: OtherAddress).
                let emails = try emailKeys(of: relation, db)
                var role = "OtherAddress", email = emails.first
                search: for (type, addresses) in roles {
                    for address in addresses where emails.contains(address.normalized) {
                        role = type
                        email = address.normalized
                        break search
                    }
                }
                let relationID = try nextID(object: "EmailMessageRelation", db)
                try insert(CRMRecord(object: "EmailMessageRelation", id: relationID, fields: [
                    "EmailMessageId": id, "RelationId": relation, "RelationType": role, "RelationAddress": email ?? "",
                ]), db)
            }
        }
        try db.cachedStatement(sql: "UPDATE ledger SET record_id = ? WHERE message_key = ?").execute(arguments: [id, key])
        return SaveResult(id: id, created: true,
                          createdRecords: decision.toCreate.compactMap { target in
                              reused.contains(target.placeholder) ? nil : created[target.placeholder].map { (target.placeholder, $0) } },
                          linkedRecords: decision.toCreate.compactMap { target in
                              reused.contains(target.placeholder) ? created[target.placeholder].map { (target.placeholder, $0) } : nil })
    }

    /// A person's email addresses (Email and the extra email fields), normalised, in key order.
    static func emailKeys(of id: String, _ db: Database) throws -> [String] {
        try String.fetchAll(db.cachedStatement(sql: "SELECT key FROM lookup WHERE kind = 'email' AND id = ? ORDER BY key"), arguments: [id])
    }

    /// A Contact (under the matched Account) or a Lead for an unknown address (forced and
    /// flexible modes), named from the display name and the signature.
    static func newPerson(_ target: RecordToCreate, message: Message, owner: String?, _ db: Database) throws -> CRMRecord {
        var fields = target.fields(from: message)
        fields["OwnerId"] = owner ?? ""
        if target.object == "Contact" { return CRMRecord(object: "Contact", id: try nextID(object: "Contact", db), fields: fields) }
        fields["Status"] = "Open - Not Contacted"
        return CRMRecord(object: "Lead", id: try nextID(object: "Lead", db), fields: fields)
    }

    /// A new 18-character id with the object's key prefix: numbers 1, 2, 3... per prefix, the
    /// row holding the next one. (An upsert with RETURNING is one statement but fills a
    /// temporary table each time: slower than these two.) Never an id a record holds (in its
    /// 15- or 18-character form): records imported from an export of this or another store
    /// hold ids of the same sequence, and the save that took one replaced that record.
    /// After such an id the sequence moves past the highest id of the prefix, once.
    static func nextID(object: String, _ db: Database) throws -> String {
        let prefix = SalesforceID.prefix(of: object) ?? "a00"
        let id = try takeNumber(prefix: prefix, db)
        guard try idTaken(id, db) else { return id }
        // The highest id of the form `make` gives (ten base-62 digits after prefix and "5e");
        // an imported id of another form (any characters after "5e") is not counted.
        let lowest = prefix + "5e", highest = prefix + "5f"
        let form = lowest + String(repeating: "[0-9A-Za-z]", count: 10) + "*"
        let top = try String.fetchOne(db.cachedStatement(sql: """
            SELECT max(substr(id, 1, 15)) FROM record WHERE id >= ? AND id < ? AND id GLOB ? AND length(id) IN (15, 18)
            """), arguments: [lowest, highest, form]) ?? ""
        let past = (SalesforceID.number(ofMade: top) ?? 0) + 1
        try db.cachedStatement(sql: "UPDATE sequence SET next = max(next, ?) WHERE prefix = ?").execute(arguments: [past, prefix])
        // Ids past the highest are free unless one is not of the made form; look on.
        for _ in 0..<1_000 {
            let next = try takeNumber(prefix: prefix, db)
            if try !idTaken(next, db) { return next }
        }
        throw StoreError(.failed, message: "no free \(prefix) id after 1,000 tries: the store's records hold the ids of its own sequence")
    }

    /// The sequence's next number for `prefix`, taken.
    static func takeNumber(prefix: String, _ db: Database) throws -> String {
        try db.cachedStatement(sql: "UPDATE sequence SET next = next + 1 WHERE prefix = ?").execute(arguments: [prefix])
        guard db.changesCount > 0 else {
            try db.cachedStatement(sql: "INSERT INTO sequence (prefix, next) VALUES (?, 2)").execute(arguments: [prefix])
            return SalesforceID.make(prefix: prefix, number: 1)
        }
        guard let number = try Int.fetchOne(db.cachedStatement(sql: "SELECT next - 1 FROM sequence WHERE prefix = ?"), arguments: [prefix]) else {
            throw StoreError(.failed, message: "the id sequence of \(prefix) has no row")
        }
        return SalesforceID.make(prefix: prefix, number: number)
    }

    static func idTaken(_ id: String, _ db: Database) throws -> Bool {
        try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM record WHERE id IN (?, ?)"), arguments: [id, String(id.prefix(15))]) == true
    }

    // MARK: Ledger

    /// Ledger rows whose record no longer exists (deleted in the CRM): the messages that may be
    /// saved again. With `remove`, the rows are deleted.
    public func reconcile(remove: Bool) throws -> [(messageKey: String, recordID: String)] {
        let sql = """
            SELECT message_key, record_id FROM ledger WHERE record_id = '' OR NOT EXISTS (SELECT 1 FROM record WHERE record.id = ledger.record_id)
            ORDER BY message_key
            """
        func rows(_ db: Database) throws -> [(messageKey: String, recordID: String)] {
            try Row.fetchAll(db, sql: sql).map { row in
                guard let key = String.fromDatabaseValue(row[0] as DatabaseValue), let id = String.fromDatabaseValue(row[1] as DatabaseValue) else {
                    throw StoreError(.damaged, message: "\(path): a ledger row is not text; the store is damaged")
                }
                return (key, id)
            }
        }
        return try guarded("cannot read the ledger") {
            // Listing only reads (a read-only store can be reconciled without --remove).
            guard remove else { return try database.read(rows) }
            return try database.writeWithoutTransaction { db in
                var gone: [(messageKey: String, recordID: String)] = []
                try db.inTransaction(.immediate) {
                    gone = try rows(db)
                    for row in gone { try db.execute(sql: "DELETE FROM ledger WHERE message_key = ?", arguments: [row.messageKey]) }
                    return .commit
                }
                return gone
            }
        }
    }

    public func ledgerCount() throws -> Int {
        try guarded("cannot read the ledger") { try database.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM ledger") ?? 0 } }
    }

    public func delete(id: String) throws {
        try guarded("cannot delete") {
            try database.writeWithoutTransaction { db in
                try db.inTransaction(.immediate) {
                    try Self.delete(id, db)
                    return .commit
                }
            }
        }
    }

    // MARK: Editing a saved EmailMessage

    public struct EditRefusal: Error, Sendable, CustomStringConvertible {
        /// Why: each has its own exit code in `mailsave edit`.
        public enum Kind: Sendable {
            /// No saved EmailMessage has the Message-ID, or no User has the id.
            case notFound
            /// The User does not own the EmailMessage, or may not delete EmailMessages.
            case permission
            /// A field other than Subject, TextBody, HtmlBody or the links.
            case notEditable
            /// A link the save rules forbid: no such record, the wrong kind, blocklisted, or a Lead with RelatedToId.
            case link
        }
        public var kind: Kind
        public var message: String
        public var description: String { message }

        public init(_ kind: Kind, message: String) {
            self.kind = kind
            self.message = message
        }
    }

    /// Salesforce updates only Draft EmailMessages, so an edit deletes the saved one and creates
    /// it again with the changes, in one transaction; only its owner, with permission to delete
    /// EmailMessages, may do it. Returns the new id.
    public func editEmailMessage(messageID: String, as userID: String, set changes: [String: String], who givenWho: [String]?, what givenWhat: String?) throws -> String {
        let key = MessageIDKey.normalize(messageID)
        return try guarded("cannot edit") { try database.writeWithoutTransaction { db in
            var newID = ""
            try db.inTransaction(.immediate) {
                let sql = "SELECT lookup.id FROM lookup CROSS JOIN record ON record.id = lookup.id WHERE kind = 'message_identifier' AND key = ? AND record.object = 'EmailMessage'"
                guard let id = try String.fetchOne(db, sql: sql, arguments: [key]),
                      let email = try Self.firstRecord(db.makeStatement(sql: "SELECT id, object, fields FROM record WHERE id = ?"), arguments: [id]) else {
                    throw EditRefusal(.notFound, message: "no saved EmailMessage has the Message-ID \(messageID)")
                }
                guard let user = try Self.record(id: userID, in: db), user.object == "User" else {
                    throw EditRefusal(.notFound, message: "no User \(userID)")
                }
                // Ids as the store holds them, given in either form (15 or 18 characters).
                let who = try givenWho.map { ids in try ids.map { try Self.record(id: $0, in: db)?.id ?? $0 } }
                let what = try givenWhat.map { $0.isEmpty ? $0 : try Self.record(id: $0, in: db)?.id ?? $0 }
                guard email["OwnerId"] == user.id else {
                    throw EditRefusal(.permission, message: "User \(userID) does not own EmailMessage \(email.id) (its owner is \(email["OwnerId"] ?? "nobody")); nothing changed")
                }
                guard user.flag("PermissionsDeleteEmailMessage") else {
                    throw EditRefusal(.permission, message: "User \(userID) may not delete EmailMessages (PermissionsDeleteEmailMessage); nothing changed")
                }
                let allowed: Set<String> = ["Subject", "TextBody", "HtmlBody", "RelatedToId"]
                for field in changes.keys where !allowed.contains(field) {
                    let named = allowed.first { $0.lowercased() == field.lowercased() }.map { " (did you mean '\($0)'?)" } ?? ""
                    throw EditRefusal(.notEditable, message: "field '\(field)' cannot be edited\(named); edit Subject, TextBody, HtmlBody or the links")
                }
                var fields = email.fields
                for (field, value) in changes { fields[field] = value }
                if let what { fields["RelatedToId"] = what }
                // The save rules hold for an edit too: linked ids exist and are of a kind that
                // links there, and a Lead excludes RelatedToId (DESIGN.md point 14).
                for id in (who ?? []) + [what].compactMap({ $0 }).filter({ !$0.isEmpty }) {
                    let kinds = who?.contains(id) == true ? ["Contact", "Lead", "User"] : ["Account", "Opportunity", "Case"]
                    guard let object = try String.fetchOne(db, sql: "SELECT object FROM record WHERE id = ?", arguments: [id]) else {
                        throw EditRefusal(.link, message: "cannot link \(id): no such record in the CRM; nothing changed")
                    }
                    guard kinds.contains(object) else {
                        throw EditRefusal(.link, message: "cannot link \(id): it is a \(object), and \(who?.contains(id) == true ? "who= takes a Contact, Lead or User" : "what= takes an Account, Opportunity or Case"); nothing changed")
                    }
                }
                let relations = try Self.allRecords(db.makeStatement(sql: """
                    SELECT record.id, record.object, record.fields FROM lookup CROSS JOIN record ON record.id = lookup.id
                    WHERE kind = 'relation' AND key = ? AND record.object = 'EmailMessageRelation'
                    """), arguments: [email.id])
                let targets = who ?? relations.compactMap { $0["RelationId"] }
                if let lead = targets.first(where: { SalesforceID.object(of: $0) == "Lead" }), let related = fields["RelatedToId"], !related.isEmpty {
                    throw EditRefusal(.link, message: "cannot relate Lead \(lead) and link RelatedToId \(related): on an EmailMessage a Lead excludes every other link (give --link what= to clear RelatedToId); nothing changed")
                }
                // Nothing different: the record stays as it is, under its id (re-creating it gave
                // it a new id for no change at all).
                let sameLinks = who.map { Set($0.map(SalesforceID.canonical)) == Set(relations.compactMap { $0["RelationId"] }.map(SalesforceID.canonical)) } ?? true
                // An empty value and no value are one (the store keeps no empty field).
                if fields.filter({ !$0.value.isEmpty }) == email.fields.filter({ !$0.value.isEmpty }) && sameLinks {
                    newID = email.id
                    return .commit
                }
                for relation in relations { try Self.delete(relation.id, db) }
                try Self.delete(email.id, db)
                newID = try Self.nextID(object: "EmailMessage", db)
                try Self.insert(CRMRecord(object: "EmailMessage", id: newID, fields: fields), db)
                for target in targets {
                    // A person linked before keeps the place of their address in the message
                    // (FromAddress, ToAddress...); one linked now stands nowhere in it.
                    var fields = ["EmailMessageId": newID, "RelationId": target, "RelationType": "OtherAddress"]
                    if let before = relations.first(where: { $0["RelationId"] == target }) {
                        fields["RelationType"] = before["RelationType"] ?? "OtherAddress"
                        fields["RelationAddress"] = before["RelationAddress"]
                    } else {
                        // Where one of the person's addresses stands in the EmailMessage's own
                        // address fields, as a save places them; else nowhere (OtherAddress).
                        let emails = try Self.emailKeys(of: target, db)
                        fields["RelationAddress"] = emails.first
                        for role in ["FromAddress", "ToAddress", "CcAddress", "BccAddress"] {
                            // The field's addresses (a list as the pack maps it, "; " or ","
                            // between them), not its words: a display name is no address.
                            let list = Array((email[role] ?? "").replacingOccurrences(of: ";", with: ",").utf8)
                            let addresses = Set(AddressParser.parse(list).addresses.map(\.normalized))
                            if let found = emails.first(where: addresses.contains) {
                                fields["RelationType"] = role
                                fields["RelationAddress"] = found
                                break
                            }
                        }
                    }
                    try Self.insert(CRMRecord(object: "EmailMessageRelation", id: try Self.nextID(object: "EmailMessageRelation", db), fields: fields), db)
                }
                try db.execute(sql: "UPDATE ledger SET record_id = ? WHERE record_id = ?", arguments: [newID, email.id])
                return .commit
            }
            return newID
        } }
    }
}
