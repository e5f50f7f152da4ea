import Foundation
#if canImport(Glibc)
import Glibc
#endif
import GRDB
import MailEngine
import MailMessage
import MailRules

/// Something the store could not do, said once, with the path.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// The embedded CRM: records shaped like Salesforce's, indexed for the related-record search,
/// and the save-once ledger, in one SQLite file (WAL) through GRDB. Every look-up of the
/// engine is one indexed query, whatever the number of records.
public final class CRMStore: CRMDirectory, @unchecked Sendable {
    let pool: DatabasePool
    public let path: String

    /// Opens (creating if needed) the store at `path`.
    public init(path: String) throws(StoreError) {
        self.path = path
        var configuration = Configuration()
        // Concurrent `process --apply` runs wait for each other's write, up to 30 s.
        configuration.busyMode = .timeout(30)
        // WAL with synchronous NORMAL: a commit survives a killed process (kill -9), and is
        // not fsynced one by one; only a power cut can lose the last commits.
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
        do {
            let directory = (path as NSString).deletingLastPathComponent
            if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
            pool = try DatabasePool(path: path, configuration: configuration)
            try Self.migrator.migrate(pool)
        } catch {
            throw StoreError(message: "\(path): cannot open the store: \(Self.describe(error))")
        }
    }

    static func describe(_ error: Error) -> String {
        if let database = error as? DatabaseError { return database.message ?? "\(database.resultCode)" }
        return "\(error)"
    }

    /// The default store: `$XDG_DATA_HOME/mailsave/crm.sqlite`, else `~/.local/share/mailsave/crm.sqlite`.
    public static func defaultPath() -> String {
        let environment = ProcessInfo.processInfo.environment
        if let data = environment["XDG_DATA_HOME"], !data.isEmpty { return data + "/mailsave/crm.sqlite" }
        return (environment["HOME"] ?? ".") + "/.local/share/mailsave/crm.sqlite"
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE record (id TEXT PRIMARY KEY NOT NULL, object TEXT NOT NULL, fields TEXT NOT NULL) WITHOUT ROWID;
                CREATE INDEX record_object ON record(object);
                CREATE TABLE lookup (kind TEXT NOT NULL, key TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (kind, key, id)) WITHOUT ROWID;
                CREATE INDEX lookup_id ON lookup(id);
                CREATE TABLE ledger (
                    message_key TEXT PRIMARY KEY NOT NULL,
                    record_id TEXT NOT NULL,
                    object TEXT NOT NULL,
                    mailbox TEXT NOT NULL,
                    saved_at TEXT NOT NULL
                ) WITHOUT ROWID;
                CREATE TABLE sequence (prefix TEXT PRIMARY KEY NOT NULL, next INTEGER NOT NULL) WITHOUT ROWID;
                """)
        }
        return migrator
    }

    // MARK: Records

    /// Field values as one blob: `name \u{1F} value \u{1E}` repeated (faster to read than JSON).
    static func encode(_ fields: [String: String]) -> String {
        var text = ""
        for (name, value) in fields.sorted(by: { $0.key < $1.key }) where !value.isEmpty {
            text += name + "\u{1F}" + value + "\u{1E}"
        }
        return text
    }

    static func decode(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in text.split(separator: "\u{1E}") {
            let parts = pair.split(separator: "\u{1F}", maxSplits: 1, omittingEmptySubsequences: false)
            if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
        }
        return fields
    }

    /// The look-up keys a record is found by.
    static func keys(of record: CRMRecord) -> [(kind: String, key: String)] {
        var keys: [(String, String)] = []
        switch record.object {
        case "Contact", "Lead", "User":
            for field in ["Email", "npe01__HomeEmail__c", "npe01__WorkEmail__c", "npe01__AlternateEmail__c", "Secondary_Email__c"] {
                if let email = record[field] { keys.append(("email", CRMDirectoryKeys.address(email))) }
            }
            for field in ["Phone", "MobilePhone"] {
                if let phone = record[field] { keys.append(("phone", CRMDirectoryKeys.phoneDigits(phone))) }
            }
        case "Account":
            if let website = record["Website"], let domain = CRMDirectoryKeys.domain(ofWebsite: website) { keys.append(("website", domain)) }
        case "Opportunity":
            if let account = record["AccountId"] { keys.append(("account", account)) }
        case "Case":
            if let contact = record["ContactId"] { keys.append(("case_contact", contact)) }
            if let number = record["CaseNumber"] { keys.append(("case_number", CRMDirectoryKeys.caseNumber(number))) }
        case "EmailMessage":
            if let identifier = record["MessageIdentifier"] { keys.append(("message_identifier", MessageIDKey.normalize(identifier))) }
        case "Task":
            if let identifier = record["Email_Message_ID__c"] { keys.append(("message_identifier", MessageIDKey.normalize(identifier))) }
        case "EmailMessageRelation":
            if let email = record["EmailMessageId"] { keys.append(("relation", email)) }
        default:
            break
        }
        if record.id.count == 18 { keys.append(("id15", String(record.id.prefix(15)))) }
        return keys
    }

    static func insert(_ record: CRMRecord, _ db: Database) throws {
        try db.cachedStatement(sql: "INSERT OR REPLACE INTO record (id, object, fields) VALUES (?, ?, ?)")
            .execute(arguments: [record.id, record.object, encode(record.fields)])
        try db.cachedStatement(sql: "DELETE FROM lookup WHERE id = ?").execute(arguments: [record.id])
        let statement = try db.cachedStatement(sql: "INSERT OR IGNORE INTO lookup (kind, key, id) VALUES (?, ?, ?)")
        for (kind, key) in keys(of: record) where !key.isEmpty { try statement.execute(arguments: [kind, key, record.id]) }
    }

    static func delete(_ id: String, _ db: Database) throws {
        try db.cachedStatement(sql: "DELETE FROM record WHERE id = ?").execute(arguments: [id])
        try db.cachedStatement(sql: "DELETE FROM lookup WHERE id = ?").execute(arguments: [id])
    }

    public struct ImportProblem: Error, Sendable, CustomStringConvertible {
        public var line: Int
        public var reason: String
        public var description: String { "line \(line): \(reason)" }
    }

    /// Imports a Data Export CSV of one object in a single transaction: a bad row leaves
    /// nothing of the file behind.
    public func importCSV(_ text: String, object: String) throws -> Int {
        let records: [CRMRecord]
        do {
            records = try InMemoryDirectory.parseCSV(text, object: object)
        } catch {
            throw ImportProblem(line: error.line, reason: error.reason)
        }
        for (index, record) in records.enumerated() {
            if let expected = SalesforceID.prefix(of: object), !record.id.hasPrefix(expected) || !(record.id.count == 15 || record.id.count == 18) {
                throw ImportProblem(line: index + 2, reason: "Id '\(record.id)' is not a \(object) id (15 or 18 characters starting with \(expected))")
            }
        }
        try pool.write { db in
            for record in records { try Self.insert(record, db) }
        }
        return records.count
    }

    public func add(_ records: [CRMRecord]) throws {
        try pool.write { db in for record in records { try Self.insert(record, db) } }
    }

    public func records(object: String) throws -> [CRMRecord] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT id, object, fields FROM record WHERE object = ? ORDER BY id", arguments: [object]).map(Self.record)
        }
    }

    static func record(_ row: Row) -> CRMRecord {
        CRMRecord(object: row["object"], id: row["id"], fields: decode(row["fields"]))
    }

    /// The read transaction of the `snapshot` running on this thread, if any.
    private let snapshotLock = NSLock()
    nonisolated(unsafe) private var snapshotDatabase: (thread: pthread_t, db: Database)?

    /// Runs `body` with every look-up in one read transaction: one consistent view of the CRM
    /// for a whole decision, and no per-query locking (the engine's look-ups cost half).
    public func snapshot<T>(_ body: () throws -> T) throws -> T {
        try pool.read { db in
            snapshotLock.withLock { snapshotDatabase = (pthread_self(), db) }
            defer { snapshotLock.withLock { snapshotDatabase = nil } }
            return try body()
        }
    }

    /// Runs a read on the current snapshot when this thread has one, else on its own.
    func reading<T>(_ body: (Database) throws -> T) throws -> T {
        let current = snapshotLock.withLock { snapshotDatabase }
        if let current, pthread_equal(current.thread, pthread_self()) != 0 { return try body(current.db) }
        return try pool.unsafeReentrantRead(body)
    }

    /// One indexed query. Single statements read a consistent snapshot on their own, so no
    /// explicit transaction is opened (it would double the cost of a look-up).
    func lookup(_ kind: String, _ key: String, object: String? = nil) throws -> [CRMRecord] {
        try reading { db in
            let sql = "SELECT record.id, record.object, record.fields FROM lookup CROSS JOIN record ON record.id = lookup.id "
                + "WHERE lookup.kind = ? AND lookup.key = ?" + (object == nil ? "" : " AND record.object = ?") + " ORDER BY record.id"
            let arguments: StatementArguments = object.map { [kind, key, $0] } ?? [kind, key]
            // A cursor reuses one row buffer: no Row copies on the hot path.
            let cursor = try Row.fetchCursor(db.cachedStatement(sql: sql), arguments: arguments)
            var records: [CRMRecord] = []
            while let row = try cursor.next() {
                records.append(CRMRecord(object: row[1], id: row[0], fields: Self.decode(row[2])))
            }
            return records
        }
    }

    // MARK: CRMDirectory

    public func contacts(email address: String) throws -> [CRMRecord] { try lookup("email", address, object: "Contact") }
    public func leads(email address: String) throws -> [CRMRecord] { try lookup("email", address, object: "Lead").filter { !$0.flag("IsConverted") } }
    public func users(email address: String) throws -> [CRMRecord] { try lookup("email", address, object: "User") }

    public func accounts(websiteDomain domain: String) throws -> [CRMRecord] {
        // The domain and each parent: mail.fabrikam.com finds fabrikam.com.
        var results: [CRMRecord] = []
        var candidate = Substring(domain)
        while candidate.contains(".") {
            results += try lookup("website", String(candidate), object: "Account")
            guard let dot = candidate.firstIndex(of: ".") else { break }
            candidate = candidate[candidate.index(after: dot)...]
        }
        return results
    }

    public func people(phone: String) throws -> [CRMRecord] {
        try lookup("phone", CRMDirectoryKeys.phoneDigits(phone)).filter { $0.object == "Contact" || $0.object == "Lead" }
    }

    public func opportunities(accountID: String) throws -> [CRMRecord] { try lookup("account", accountID, object: "Opportunity") }
    public func cases(contactID: String) throws -> [CRMRecord] { try lookup("case_contact", contactID, object: "Case") }
    public func caseRecord(number: String) throws -> CRMRecord? { try lookup("case_number", CRMDirectoryKeys.caseNumber(number), object: "Case").first }

    public func record(id: String) throws -> CRMRecord? {
        try reading { db in
            if let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT id, object, fields FROM record WHERE id = ?"), arguments: [id]) {
                return Self.record(row)
            }
            let short = String(id.prefix(15))
            let sql = "SELECT record.id, record.object, record.fields FROM lookup CROSS JOIN record ON record.id = lookup.id WHERE kind = 'id15' AND key = ?"
            return try Row.fetchOne(db.cachedStatement(sql: sql), arguments: [short]).map(Self.record)
        }
    }

    public func emailMessage(messageIdentifier: String) throws -> (record: CRMRecord, relations: [String])? {
        guard let email = try lookup("message_identifier", MessageIDKey.normalize(messageIdentifier), object: "EmailMessage").first else {
            return nil
        }
        let relations = try lookup("relation", email.id, object: "EmailMessageRelation").compactMap { $0["RelationId"] }
        return (email, relations)
    }

    public func savedRecord(messageID: String) throws -> String? {
        let key = MessageIDKey.normalize(messageID)
        return try reading { db in
            if let id = try String.fetchOne(db.cachedStatement(sql: "SELECT record_id FROM ledger WHERE message_key = ?"), arguments: [key]),
               try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM record WHERE id = ?"), arguments: [id]) == true {
                return id
            }
            // Saved before mailsave, or from another client: an activity with this Message-ID.
            let sql = "SELECT lookup.id FROM lookup CROSS JOIN record ON record.id = lookup.id WHERE kind = 'message_identifier' AND key = ? LIMIT 1"
            return try String.fetchOne(db.cachedStatement(sql: sql), arguments: [key])
        }
    }
}

extension SalesforceID {
    /// The key prefix of an object's ids.
    static func prefix(of object: String) -> String? {
        switch object {
        case "Contact": return "003"
        case "Lead": return "00Q"
        case "Account": return "001"
        case "Opportunity": return "006"
        case "Case": return "500"
        case "User": return "005"
        case "Task": return "00T"
        case "EmailMessage": return "02s"
        case "EmailMessageRelation": return "0Rb"
        default: return nil
        }
    }
}
