import Foundation
#if canImport(Glibc)
import Glibc
/// write(2): CRMStore has a `write` of its own.
private let systemWrite = Glibc.write
#elseif canImport(Darwin)
import Darwin
private let systemWrite = Darwin.write
#endif
import GRDB
import GRDBSQLite
import MailEngine
import MailMessage
import MailRules

/// Something the store could not do, said once, with the path, and of which kind: the command
/// line maps kinds to exit statuses (temporary: retry later; the others: could not run).
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// Disk full, or the store locked by another process past the busy timeout: retry later.
        case temporary
        /// The file fails SQLite's checks (`quick_check`, a corrupt page).
        case damaged
        /// Not a mailsave store: not SQLite, another application's database, or tables we do not know.
        case foreign
        /// A store written by a newer mailsave (its format version is above ours).
        case newer
        /// The folder the store should be in does not exist (never created implicitly).
        case missingFolder
        /// No store at the path, for a command that only reads.
        case missing
        /// Anything else: permissions, I/O errors.
        case failed
    }

    public var kind: Kind
    public var message: String
    public var description: String { message }

    public init(_ kind: Kind = .failed, message: String) {
        self.kind = kind
        self.message = message
    }
}

extension StoreError: CRMErrorConvertible {
    /// A busy or full store is worth retrying; the rest is not.
    public var crmError: CRMError { CRMError(kind == .temporary ? .retryable : .permanent, message) }
}

/// The embedded CRM: records shaped like Salesforce's, indexed for the related-record search,
/// and the save-once ledger, in one SQLite file (WAL) through GRDB. Every look-up of the
/// engine is one indexed query, whatever the number of records.
///
/// A store is identified by `PRAGMA application_id` (`CRMStore.applicationID`, ASCII "MSav")
/// and its format by `PRAGMA user_version` (`CRMStore.formatVersion`). Opening checks both,
/// and runs `PRAGMA quick_check` when the store is small enough for it to be cheap (or always,
/// when asked); a foreign, newer or damaged file is refused and never written to.
public final class CRMStore: RecordLookups, @unchecked Sendable {
    /// A pool (concurrent readers beside the writer) when writable; one read-only connection
    /// otherwise (with `concurrentReads`, `threadReaders` add one for each thread).
    let database: any DatabaseWriter
    /// With `concurrentReads`: a read-only connection for each thread that decides.
    let threadReaders: ThreadReaders?
    public let path: String
    /// How long a write (and the lock on making people) waits for another process's.
    public let busyTimeout: Double
    /// Whether the store was opened without write access (`process` without `--apply`,
    /// `crm export`): nothing is written, no WAL file is created where it cannot be.
    public let readOnly: Bool

    /// ASCII "MSav": what `PRAGMA application_id` holds in every mailsave store.
    public static let applicationID: Int32 = 0x4D53_6176
    /// The store format `PRAGMA user_version` holds. 1 was mailsave 0.2's (record fields in
    /// one string with 0x1E/0x1F separators, no application_id); 2 stores them as JSON; 3 adds
    /// the retry outbox (`outbox`); 4 indexes each Contact's email domains with its Account
    /// (`domain_account` rows of `lookup`: the Account by the Contacts of a domain is an index
    /// seek); 5 keys Message-IDs as `MessageIDKey.normalize` does now (over-long ids
    /// shortened for Salesforce's 255-character fields, no control characters). Older stores are
    /// upgraded in place when opened (`migrate`).
    public static let formatVersion = 5
    /// Stores up to this size get `PRAGMA quick_check` at every open: it reads every page, 3 to
    /// 8 ms a MiB here (2 MiB: 2-8 ms; a 349 MiB store of 1,000,000 Contacts: 1.8-2.8 s).
    public static let quickCheckLimit: Int64 = 2 << 20

    public enum Access: Sendable { case readOnly, readWrite }

    public enum IntegrityCheck: Sendable {
        /// `quick_check` when the file is at most `quickCheckLimit` bytes.
        case ifSmall
        /// `quick_check` whatever the size (bulk commands: export, import, reconcile).
        case always
    }

    /// Opens the store at `path`, creating it (with `.readWrite`) when the file does not exist.
    /// Its folder must exist unless `createFolder` (only for the default store, whose folder
    /// is mailsave's own). `busyTimeout` is how long a write waits for another process's.
    /// `concurrentReads` (read-only, for `batch --jobs N`): a connection for each thread that
    /// reads (`ThreadReaders`), so decisions on several threads read at once instead of taking
    /// turns on one connection (which held two-core decisions to 1.74x one core) or on a pool's
    /// locks (1.33x); one connection for a store read as immutable (in a folder this user may
    /// not write).
    public init(path: String, access: Access = .readWrite, createFolder: Bool = false, check: IntegrityCheck = .ifSmall,
                busyTimeout: Double = 30, concurrentReads: Bool = false) throws(StoreError) {
        self.path = path
        self.busyTimeout = busyTimeout
        do {
            let (database, readOnly, threadReaders) = try Self.open(path: path, access: access, createFolder: createFolder, check: check,
                                                                    busyTimeout: busyTimeout, concurrentReads: concurrentReads)
            self.database = database
            self.readOnly = readOnly
            self.threadReaders = threadReaders
        } catch {
            throw Self.classify(error, path: path, doing: "cannot open the store")
        }
    }

    /// The default store: `$XDG_DATA_HOME/mailsave/crm.sqlite`, else `~/.local/share/mailsave/crm.sqlite`.
    public static func defaultPath() -> String {
        let environment = ProcessInfo.processInfo.environment
        if let data = environment["XDG_DATA_HOME"], !data.isEmpty { return data + "/mailsave/crm.sqlite" }
        return (environment["HOME"] ?? ".") + "/.local/share/mailsave/crm.sqlite"
    }

    // MARK: Opening

    static func open(path: String, access: Access, createFolder: Bool, check: IntegrityCheck,
                     busyTimeout: Double, concurrentReads: Bool = false) throws -> (any DatabaseWriter, Bool, ThreadReaders?) {
        // stat, not FileManager: `process` opens the store once per message.
        let kind = fileKind(path)
        let exists = kind != nil
        if kind == S_IFDIR { throw StoreError(.failed, message: "\(path): is a folder, not a store") }
        // A FIFO would block the open forever (a per-message hook hung on every delivery), a
        // device is no store: refused before anything opens them.
        if let kind, kind != S_IFREG {
            throw StoreError(.failed, message: "\(path): is \(kind == S_IFIFO ? "a FIFO" : kind == S_IFSOCK ? "a socket" : "a device or special file"), not a regular file; a store is a regular file")
        }
        if path.hasSuffix("/") { throw StoreError(.failed, message: "\(path): a store is a file; give its file name, not a folder") }
        if !exists {
            let manager = FileManager.default
            var isDirectory: ObjCBool = false
            let folder = PathNames.folder(of: path)
            if !folder.isEmpty && !manager.fileExists(atPath: folder, isDirectory: &isDirectory) {
                guard createFolder else {
                    throw StoreError(.missingFolder, message: "\(path): the folder \(folder) does not exist; create it first (mailsave does not create a store's folders)")
                }
                // A store that is only read is not created, and neither is its folder (a
                // read-only command that failed left an empty $XDG_DATA_HOME/mailsave).
                if access == .readOnly {
                    throw StoreError(.missing, message: "\(path): no store there (`mailsave crm import --store \(path) ...` creates one)")
                }
                do {
                    try manager.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                } catch {
                    throw StoreError(.failed, message: "\(path): cannot create the folder \(folder): \(error.localizedDescription)")
                }
            } else if !folder.isEmpty && !isDirectory.boolValue {
                throw StoreError(.missingFolder, message: "\(path): \(folder) is not a folder")
            }
            if access == .readOnly {
                throw StoreError(.missing, message: "\(path): no store there (`mailsave crm import --store \(path) ...` creates one)")
            }
            try checkFolder(of: path)
            // A new store is its owner's alone: it holds the CRM's people and, in its outbox,
            // whole messages (SQLite gives its -wal and -shm files the same mode). Created here,
            // never through a link; a file that appeared meanwhile is checked as any other.
            if createPrivateFile(path) == EEXIST {
                try checkOwnership(path, access: access)
                try checkHeader(path)
            }
        } else {
            try checkOwnership(path, access: access)
            try checkHeader(path)
        }
        // A path beginning with "file:" would be read as a URI by SQLite.
        let sqlitePath = path.hasPrefix("file:") ? "./" + path : path

        var configuration = Configuration()
        // SQLite takes milliseconds in an Int32: a longer wait (or no number) would trap.
        configuration.busyMode = .timeout(busyTimeout.isFinite ? min(max(busyTimeout, 0), 86_400) : 30)
        configuration.label = "mailsave.store"
        // No table has a foreign key: no PRAGMA at every open.
        configuration.foreignKeysEnabled = false
        if access == .readOnly {
            configuration.readonly = true
            // Without GRDB's statement authorizer. GRDB has SQLite call it back for every table
            // and column a statement names while the statement is compiled, to learn what the
            // statement reads (for database observation), whether it changes the schema, and
            // whether it ends a transaction (for suspended apps): nothing a read-only
            // connection that never observes (no ValueObservation, no query interface), never
            // changes the schema and is never suspended or cancelled (no async reads) uses. The callbacks were 5% of a per-message `process`'s instructions (330,000:
            // each builds Swift strings and sets of the names), 0.04 ms of its 2.9 (500
            // interleaved runs, 2026-11-30, this machine). Removed as the connection is set
            // up, before GRDB's first statement; the connection is opened read-only
            // (`SQLITE_OPEN_READONLY`): nothing here decides whether a statement may write.
            configuration.prepareDatabase { db in _ = sqlite3_set_authorizer(db.sqliteConnection, nil, nil) }
            var database: DatabaseQueue
            var immutable = false
            // One read transaction identifies the store and checks it (`process` opens it
            // once a message: each transaction is a round of locks on the -shm index).
            func identifyAndCheck(_ database: DatabaseQueue) throws -> Int {
                try database.unsafeRead { db in
                    try Self.inReadTransaction(db) {
                        let version = try identify(db, path: path)
                        if version == formatVersion { try quickCheck(db, path: path, check: check) }
                        return version
                    }
                }
            }
            let version: Int
            do {
                database = try DatabaseQueue(path: sqlitePath, configuration: configuration)
                version = try identifyAndCheck(database)
            } catch let error as DatabaseError where error.resultCode == .SQLITE_READONLY || error.resultCode == .SQLITE_CANTOPEN {
                // A WAL store in a folder we may not write: SQLite cannot create its -shm
                // index. When no -wal file holds commits, the main file is the whole store and
                // nobody can be writing it (the folder is not writable), so it is read as
                // immutable; otherwise the error stands.
                let wal = fileSize(path + "-wal")
                guard wal == 0 else { throw error }
                database = try DatabaseQueue(path: immutableURI(path), configuration: configuration)
                immutable = true
                version = try identifyAndCheck(database)
            }
            if version == 0 {
                throw StoreError(.missing, message: "\(path): the file is empty, no store was created there yet")
            }
            if version < formatVersion {
                // Format 1 encodes fields differently, and formats 2 and 3 lack the index of
                // Contacts by email domain (read as they are, they would answer "no Account" for
                // every domain): upgrade it when we may write it, then read it.
                do {
                    _ = try open(path: path, access: .readWrite, createFolder: false, check: .ifSmall, busyTimeout: busyTimeout)
                } catch {
                    let reason = (error as? StoreError)?.message ?? classify(error, path: path, doing: "cannot upgrade the store").message
                    throw StoreError(.failed, message: "\(path): the store has format \(version) and must be upgraded once to format \(formatVersion) "
                                     + "before it can be read, which needs write access to it and its folder (\(reason))")
                }
                return try open(path: path, access: .readOnly, createFolder: false, check: check, busyTimeout: busyTimeout,
                                concurrentReads: concurrentReads)
            }
            if concurrentReads && !immutable {
                let readerConfiguration = configuration
                return (database, true, ThreadReaders { try DatabaseQueue(path: sqlitePath, configuration: readerConfiguration) })
            }
            return (database, true, nil)
        }

        // WAL with synchronous NORMAL: a commit survives a killed process (kill -9), and is
        // not fsynced one by one; only a power cut can lose the last commits.
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
        let database = try DatabaseQueue(path: sqlitePath, configuration: configuration)
        // Switching a new store to WAL needs every other connection gone, and SQLite answers
        // "busy" at once rather than waiting: processes racing to create one store retry
        // the whole check for as long as the busy timeout allows.
        let deadline = Date().addingTimeInterval(busyTimeout)
        while true {
            do {
                try prepare(database, path: path, check: check)
                // Checked, created or upgraded, and in WAL mode: now the pool (opening it on a
                // file not yet known to be ours would have switched a foreign database to WAL).
                let pool = try DatabasePool(path: sqlitePath, configuration: configuration)
                try database.close()
                return (pool, false, nil)
            } catch let error as DatabaseError where (error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED) && Date() < deadline {
                usleep(UInt32.random(in: 5_000...40_000))
            }
        }
    }

    /// Identifies, creates or upgrades the store and puts it in WAL mode.
    static func prepare(_ database: DatabaseQueue, path: String, check: IntegrityCheck) throws {
        try database.writeWithoutTransaction { db in
            // Fast path: an up-to-date store needs no lock. Otherwise the check is made again
            // under the write lock (BEGIN IMMEDIATE), so that of processes racing to create or
            // upgrade a store exactly one does it and the others find it done.
            // (One read transaction: the stamp and the tables seen at one moment.)
            var version = 0
            try db.inTransaction(.deferred) {
                version = try identify(db, path: path)
                return .commit
            }
            if version != formatVersion {
                try db.inTransaction(.immediate) {
                    let version = try identify(db, path: path)
                    // Checked before it is upgraded: a damaged store is not written to.
                    if version != 0 { try quickCheck(db, path: path, check: check) }
                    if version == 0 {
                        try createSchema(db)
                    } else if version < formatVersion {
                        try migrate(db, from: version)
                    }
                    return .commit
                }
            } else {
                try quickCheck(db, path: path, check: check)
            }
            if try String.fetchOne(db, sql: "PRAGMA journal_mode")?.lowercased() != "wal" {
                _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
            }
        }
    }

    /// `file:` URI of `path` opened immutable (no locks, no WAL index).
    static func immutableURI(_ path: String) -> String {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "?#%")
        let escaped = absolute.addingPercentEncoding(withAllowedCharacters: allowed) ?? absolute
        return "file:" + escaped + "?immutable=1"
    }

    /// A store others may write could be made to save anything (an outbox entry is saved into
    /// the CRM as it stands): refused when every user may write it or its -wal or -shm file
    /// (SQLite replays a -wal into the store), or its folder without the sticky bit (the
    /// file could be swapped); and, to write to it, when another user owns it (root may own
    /// it). Group write is an administrator's choice.
    static func checkOwnership(_ path: String, access: Access, user: uid_t = geteuid()) throws {
        try checkFolder(of: path)
        for file in [path, path + "-wal", path + "-shm"] {
            var info = stat()
            guard stat(file, &info) == 0 else { continue }
            let mode = info.st_mode & 0o7777
            if mode & 0o002 != 0 {
                throw StoreError(.failed, message: "\(file): mode \(String(mode, radix: 8)) lets every user write the store (and add saves to its outbox); "
                                 + "refused: chmod o-w \(file)")
            }
            if access == .readWrite && info.st_uid != user && info.st_uid != 0 {
                throw StoreError(.failed, message: "\(file): the store is owned by uid \(info.st_uid), not by this user (uid \(user)); "
                                 + "refused for writing: run mailsave as its owner")
            }
        }
    }

    /// A folder every user may write, without the sticky bit (which /tmp has), lets anyone
    /// replace the store between its checks and SQLite's open.
    static func checkFolder(of path: String) throws {
        let folder = PathNames.openableFolder(of: path)
        var info = stat()
        guard stat(folder, &info) == 0 else { return }
        if info.st_mode & 0o002 != 0 && info.st_mode & S_ISVTX == 0 {
            throw StoreError(.failed, message: "\(path): its folder \(folder) lets every user replace the store "
                             + "(mode \(String(info.st_mode & 0o7777, radix: 8)), no sticky bit); refused: keep the store in a folder of its owner's")
        }
    }

    /// Refuses, before SQLite touches it, a file that is not SQLite, or whose header names
    /// another application or a newer mailsave. (The header may lag behind a WAL; `identify`
    /// checks again inside SQLite.)
    static func checkHeader(_ path: String) throws {
        guard let header = readPrefix(of: path, count: 100) else {
            throw StoreError(.failed, message: "\(path): cannot read the store (\(String(cString: strerror(errno))))")
        }
        if header.isEmpty { return } // an empty file: a store not yet created
        guard header.count == 100, header.starts(with: Array("SQLite format 3\u{0}".utf8)) else {
            throw StoreError(.foreign, message: "\(path): not a mailsave store (not an SQLite database)")
        }
        func integer(at offset: Int) -> UInt32 { header[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) } }
        let application = Int32(bitPattern: integer(at: 68))
        if application != 0 && application != applicationID {
            throw StoreError(.foreign, message: "\(path): not a mailsave store (its application_id is 0x\(String(UInt32(bitPattern: application), radix: 16)))")
        }
        if application == applicationID, Int(integer(at: 60)) > formatVersion {
            throw newerError(path, version: Int(integer(at: 60)))
        }
    }

    static func newerError(_ path: String, version: Int) -> StoreError {
        StoreError(.newer, message: "\(path): the store was written by a newer mailsave (format \(version); this mailsave reads format \(formatVersion)); upgrade mailsave")
    }

    /// The store's format version: 0 for an empty database (to be created), 1 for a store of
    /// mailsave 0.2, 2 for a store without the outbox, 3 and 4 for older stores of the current
    /// tables, `formatVersion` for a current one.
    /// Anything else throws.
    static func identify(_ db: Database, path: String) throws -> Int {
        // Through prepared statements: `fetchOne(db, sql:)` builds an SQL literal, whose first
        // use in a process scans every protocol conformance of the binary (see `inReadTransaction`).
        let application = try Int32.fetchOne(db.makeStatement(sql: "PRAGMA application_id")) ?? 0
        let version = try Int.fetchOne(db.makeStatement(sql: "PRAGMA user_version")) ?? 0
        let tables = Set(try String.fetchAll(db.makeStatement(sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")))
        if application == applicationID {
            if version > formatVersion { throw newerError(path, version: version) }
            // Format 2 is upgraded in place (the outbox is added), formats 3 (its Contacts are
            // indexed by domain) and 4 (its Message-ID keys finished) too; anything else must match.
            if version == 2 && tables == format2Tables { return 2 }
            if (version == 3 || version == 4) && tables == currentTables { return version }
            guard version == formatVersion, tables == currentTables else {
                throw StoreError(.damaged, message: "\(path): the store's tables do not match its format \(version) (\(tables.sorted().joined(separator: ", ")))")
            }
            return version
        }
        guard application == 0 else {
            throw StoreError(.foreign, message: "\(path): not a mailsave store (its application_id is 0x\(String(UInt32(bitPattern: application), radix: 16)))")
        }
        if tables.isEmpty && version == 0 { return 0 }
        if version == 0, tables == format1Tables,
           try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations") == ["v1"] {
            return 1
        }
        throw StoreError(.foreign, message: "\(path): not a mailsave store (an SQLite database of another application: \(tables.isEmpty ? "no tables" : tables.sorted().prefix(5).joined(separator: ", ")))")
    }

    static let currentTables: Set<String> = ["record", "lookup", "ledger", "sequence", "outbox", "remote_ledger"]
    /// The tables of format 1 (mailsave 0.2, with `grdb_migrations`) and of format 2.
    static let format1Tables: Set<String> = ["record", "lookup", "ledger", "sequence", "grdb_migrations"]
    static let format2Tables: Set<String> = ["record", "lookup", "ledger", "sequence"]

    static let schema = """
        CREATE TABLE record (id TEXT PRIMARY KEY NOT NULL, object TEXT NOT NULL, fields TEXT NOT NULL) STRICT, WITHOUT ROWID;
        CREATE INDEX record_object ON record(object);
        CREATE TABLE lookup (kind TEXT NOT NULL, key TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (kind, key, id)) STRICT, WITHOUT ROWID;
        CREATE INDEX lookup_id ON lookup(id);
        CREATE TABLE ledger (
            message_key TEXT PRIMARY KEY NOT NULL,
            record_id TEXT NOT NULL,
            object TEXT NOT NULL,
            mailbox TEXT NOT NULL,
            saved_at TEXT NOT NULL
        ) STRICT, WITHOUT ROWID;
        CREATE TABLE sequence (prefix TEXT PRIMARY KEY NOT NULL, next INTEGER NOT NULL) STRICT, WITHOUT ROWID;
        """ + outboxSchema

    static func createSchema(_ db: Database) throws {
        try db.execute(sql: schema)
        try db.execute(sql: "PRAGMA application_id = \(applicationID); PRAGMA user_version = \(formatVersion)")
    }

    /// Upgrades an older store to the current format, in the caller's transaction, one format
    /// at a time.
    static func migrate(_ db: Database, from version: Int) throws {
        switch version {
        case 1:
            // Format 1 rebuilds every table in the current shape, its keys as they were.
            try migrateFormat1(db)
        case 2:
            try db.execute(sql: outboxSchema)
            try indexContactDomains(db)
        case 3:
            try indexContactDomains(db)
        case 4:
            break
        default:
            throw StoreError(.failed, message: "no upgrade from store format \(version)")
        }
        try finishMessageIDKeys(db)
        try db.execute(sql: "PRAGMA user_version = \(formatVersion)")
    }

    /// Formats 1 to 4 to 5: every key made from a Message-ID (the ledger's, the outbox's, the
    /// remote ledger's, and the `message_identifier` look-ups) as `MessageIDKey.normalize`
    /// makes it now (a key of format 4 normalised again is the key made now). Only a key over
    /// 253 bytes, with a byte outside printable ASCII, or with space or a bracket at an end
    /// can change; SQL picks those (and more), Swift decides. Keys are read and written as
    /// SQLite holds them (byte for byte: a Swift Set would take NFC and NFD spellings for one
    /// key). Where the new key is already there (two ids that differ only by control
    /// characters), the row already there stays. A key with a NUL was stored cut at the NUL
    /// (SQLite text binding) and cannot be made again; no real Message-ID holds one.
    static func finishMessageIDKeys(_ db: Database) throws {
        let tables: [(table: String, column: String, filter: String)] = [
            ("ledger", "message_key", ""), ("outbox", "message_key", ""), ("remote_ledger", "message_key", ""),
            ("lookup", "key", "kind = 'message_identifier' AND "),
        ]
        for (table, column, filter) in tables {
            let condition = filter + "(length(CAST(\(column) AS BLOB)) > 253 OR \(column) GLOB '*[^ -~]*' OR \(column) GLOB '[< ]*' OR \(column) GLOB '*[> ]')"
            let keys = try String.fetchAll(db, sql: "SELECT DISTINCT \(column) FROM \(table) WHERE \(condition)")
            for old in keys {
                let new = MessageIDKey.normalize(old)
                guard !new.utf8.elementsEqual(old.utf8) else { continue }
                try db.execute(sql: "UPDATE OR IGNORE \(table) SET \(column) = ? WHERE \(filter)\(column) = ?", arguments: [new, old])
                try db.execute(sql: "DELETE FROM \(table) WHERE \(filter)\(column) = ?", arguments: [old])
            }
        }
    }

    /// Formats 2 and 3 to 4: the `domain_account` look-up rows of every Contact, computed by
    /// `keys(of:)` as an import computes them (so an upgraded store and a new one hold the same
    /// rows): one pass over the Contacts, decoding each, once per store.
    static func indexContactDomains(_ db: Database) throws {
        let rows = try Row.fetchCursor(db, sql: "SELECT id, object, fields FROM record WHERE object = 'Contact'")
        let insert = try db.makeStatement(sql: "INSERT OR IGNORE INTO lookup (kind, key, id) VALUES (?, ?, ?)")
        while let row = try rows.next() {
            let contact = try record(row)
            for (kind, key) in keys(of: contact) where kind == domainAccountKind { try insert.execute(arguments: [kind, key, contact.id]) }
        }
    }

    /// Format 1 (mailsave 0.2) to the current format: the tables are rebuilt STRICT and every
    /// record's fields re-encoded from the separator string to JSON (as mailsave 0.2 read them).
    static func migrateFormat1(_ db: Database) throws {
        for table in format2Tables { try db.execute(sql: "ALTER TABLE \(table) RENAME TO old_\(table)") }
        try db.execute(sql: "DROP INDEX IF EXISTS record_object; DROP INDEX IF EXISTS lookup_id")
        try createSchema(db)
        try db.execute(sql: """
            INSERT INTO lookup SELECT CAST(kind AS TEXT), CAST(key AS TEXT), CAST(id AS TEXT) FROM old_lookup;
            INSERT INTO ledger SELECT CAST(message_key AS TEXT), CAST(record_id AS TEXT), CAST(object AS TEXT), CAST(mailbox AS TEXT), CAST(saved_at AS TEXT) FROM old_ledger;
            INSERT INTO sequence SELECT CAST(prefix AS TEXT), CAST(next AS INTEGER) FROM old_sequence;
            """)
        let rows = try Row.fetchCursor(db, sql: "SELECT CAST(id AS TEXT), CAST(object AS TEXT), CAST(fields AS TEXT) FROM old_record")
        let insert = try db.makeStatement(sql: "INSERT INTO record (id, object, fields) VALUES (?, ?, ?)")
        while let row = try rows.next() {
            let id: String = row[0] ?? "", object: String = row[1] ?? ""
            try insert.execute(arguments: [id, object, RecordFields.encode(legacyDecode(row[2] ?? ""))])
        }
        for table in format2Tables { try db.execute(sql: "DROP TABLE old_\(table)") }
        try db.execute(sql: "DROP TABLE grdb_migrations")
    }

    /// The file type bits of `path` (S_IFREG, S_IFDIR, ...), following links; nil when there is nothing there.
    static func fileKind(_ path: String) -> mode_t? {
        var info = stat()
        return stat(path, &info) == 0 ? info.st_mode & S_IFMT : nil
    }

    /// The size of the file at `path`, 0 when there is none.
    static func fileSize(_ path: String) -> Int64 {
        var info = stat()
        return stat(path, &info) == 0 ? Int64(info.st_size) : 0
    }

    /// Runs `PRAGMA quick_check` (page structure, NOT NULL and STRICT types) when asked to.
    static func quickCheck(_ db: Database, path: String, check: IntegrityCheck) throws {
        if check == .ifSmall {
            let size = fileSize(path)
            if size > quickCheckLimit { return }
        }
        let problems = try String.fetchAll(db.makeStatement(sql: "PRAGMA quick_check(3)"))
        if problems != ["ok"] {
            throw StoreError(.damaged, message: "\(path): the store is damaged (quick_check: \(problems.joined(separator: "; "))); restore it from a backup")
        }
    }

    /// What an error means for the user: its kind, and one line naming the store.
    /// `freeBytes`: what the store's file system has left (a test gives its own).
    static func classify(_ error: Error, path: String, doing: String,
                         freeBytes: (String) -> Int? = CRMStore.freeBytes) -> StoreError {
        if let error = error as? StoreError { return error }
        guard let database = error as? DatabaseError else { return StoreError(.failed, message: "\(path): \(doing): \(error)") }
        let detail = database.message ?? "\(database.resultCode)"
        switch database.resultCode {
        case .SQLITE_FULL:
            return StoreError(.temporary, message: "\(path): \(doing): the disk is full (\(detail)); nothing was written, retry later")
        case .SQLITE_IOERR where Self.growthErrors.contains(database.extendedResultCode),
             .SQLITE_CANTOPEN where Self.folderIsWritable(path):
            // SQLite says "disk I/O error" (or "unable to open") when the disk is too full for
            // the WAL index or a journal, and when this user's quota is used up (EDQUOT), not
            // SQLITE_FULL: a mail system must defer, not bounce. Only errors of growing a
            // file (or creating one in a folder this user may write): a permission or a
            // failing disk stays a failure.
            if let room = freeBytes(path), room < Self.nearlyFull {
                return StoreError(.temporary, message: "\(path): \(doing): the disk or this user's quota is nearly full (\(detail); \(room) bytes free); "
                                  + "nothing was written, retry later")
            }
            return StoreError(.failed, message: "\(path): \(doing): \(detail)")
        case .SQLITE_BUSY, .SQLITE_LOCKED, .SQLITE_PROTOCOL:
            return StoreError(.temporary, message: "\(path): \(doing): the store is locked by another process (\(detail)); nothing was written, retry later")
        case .SQLITE_READONLY:
            return StoreError(.failed, message: "\(path): \(doing): the store or its folder is read-only for this user (\(detail))")
        case .SQLITE_CORRUPT, .SQLITE_NOTADB:
            return StoreError(.damaged, message: "\(path): the store is damaged (\(detail)); restore it from a backup")
        default:
            return StoreError(.failed, message: "\(path): \(doing): \(detail)")
        }
    }

    /// Below this many free bytes, an I/O error of the store is taken for a full disk.
    static let nearlyFull = 1 << 20

    /// The I/O errors of writing or growing the store, its WAL or its WAL index.
    static let growthErrors: [ResultCode] = [.SQLITE_IOERR_WRITE, .SQLITE_IOERR_FSYNC, .SQLITE_IOERR_TRUNCATE, .SQLITE_IOERR_SHMSIZE,
                                                .SQLITE_IOERR_SHMOPEN, .SQLITE_IOERR_SHMMAP, .SQLITE_IOERR_DIR_FSYNC, .SQLITE_IOERR_SEEK]

    static func folderIsWritable(_ path: String) -> Bool { access(PathNames.openableFolder(of: path), W_OK) == 0 }

    /// Bytes this user may still write in `path`'s folder: what the file system has free for
    /// an unprivileged user, or, when that is plenty, what a trial write there could write
    /// (`writableBytes`), since statvfs cannot see a disk quota.
    static func freeBytes(_ path: String) -> Int? {
        var info = statvfs()
        guard statvfs(PathNames.openableFolder(of: path), &info) == 0 else { return nil }
        // No inode left (where the file system counts them; btrfs reports none at all).
        if info.f_files > 0 && info.f_favail == 0 { return 0 }
        let (bytes, overflow) = Int(clamping: info.f_bavail).multipliedReportingOverflow(by: Int(clamping: info.f_frsize))
        let free = overflow ? Int.max : bytes
        guard free >= nearlyFull else { return free }
        if let written = writableBytes(path, limit: nearlyFull), written < nearlyFull { return written }
        return free
    }

    /// How many of `limit` bytes this user can write in `path`'s folder now: written to a new
    /// file there, removed at once (unlinked before the first byte), stopping at the first
    /// ENOSPC or EDQUOT. Nil when no file can be made there or another error stops it. Only
    /// asked after a store failed to grow, so the megabyte it may write costs nothing else.
    static func writableBytes(_ path: String, limit: Int) -> Int? {
        var template = Array((PathNames.openableFolder(of: path) + "/.mailsave-space-XXXXXX").utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        _ = template.withUnsafeBufferPointer { unlink($0.baseAddress!) }
        let chunk = [UInt8](repeating: 0, count: 64 << 10)
        var written = 0
        while written < limit {
            let count = chunk.withUnsafeBytes { systemWrite(descriptor, $0.baseAddress, min($0.count, limit - written)) }
            if count > 0 { written += count; continue }
            if count < 0 && errno == EINTR { continue }
            if count < 0 && (errno == ENOSPC || errno == EDQUOT) { return written }
            return count == 0 ? written : nil
        }
        // NFS tells a quota at the flush, not at the write.
        if fsync(descriptor) != 0 && (errno == ENOSPC || errno == EDQUOT) { return 0 }
        return written
    }

    /// Runs `body`, turning any error into a `StoreError` naming the store (refusals and
    /// import problems pass through).
    func guarded<T>(_ doing: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as EditRefusal {
            throw error
        } catch let error as ImportProblem {
            throw error
        } catch {
            throw Self.classify(error, path: path, doing: doing)
        }
    }

    // MARK: Records

    /// The fields of a record row (`RecordFields`); anything but a JSON object of strings is a
    /// damaged store.
    static func decode(_ data: Data?, id: String) throws -> [String: String] {
        guard let fields = data?.withUnsafeBytes({ RecordFields.decode($0) }) else {
            throw StoreError(.damaged, message: "the fields of record \(id) are not a JSON object of strings")
        }
        return fields
    }

    /// Format 1's field string, `name \u{1F} value \u{1E}` repeated, read as mailsave 0.2 read it.
    static func legacyDecode(_ text: String) -> [String: String] {
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
            for field in SalesforceSchema.personEmailFields {
                if let email = record[field] { keys.append(("email", CRMDirectoryKeys.address(email))) }
            }
            for field in SalesforceSchema.personPhoneFields {
                if let phone = record[field] { keys.append(("phone", CRMDirectoryKeys.phoneDigits(phone))) }
            }
            if record.object == "Contact", let account = record["AccountId"] {
                for domain in CRMDirectoryKeys.emailDomains(of: record) { keys.append((domainAccountKind, domainAccountKey(domain, account))) }
            }
        case "Account":
            if let website = record["Website"], let domain = CRMDirectoryKeys.domain(ofWebsite: website) { keys.append(("website", domain)) }
            if let name = record["Name"] {
                let key = CRMDirectoryKeys.companyName(name)
                if !key.isEmpty { keys.append(("account_name", key)) }
            }
        case "Opportunity":
            if let account = record["AccountId"] { keys.append(("account", account)) }
        case "Case":
            if let contact = record["ContactId"] { keys.append(("case_contact", contact)) }
            if let number = record["CaseNumber"] { keys.append(("case_number", CRMDirectoryKeys.caseNumber(number))) }
        case "EmailMessage":
            if let identifier = record["MessageIdentifier"] { keys.append(("message_identifier", MessageIDKey.normalize(identifier))) }
        case "Task":
            if let identifier = record[SalesforceSchema.taskMessageIdentifierField] { keys.append(("message_identifier", MessageIDKey.normalize(identifier))) }
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
            .execute(arguments: [record.id, record.object, RecordFields.encode(record.fields)])
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

    /// What an import stored: `count` rows written, of which `replaced` replaced a record the
    /// store already had (same Id, in its 15- or 18-character form: a newer export of the
    /// same records).
    public struct ImportSummary: Sendable, Equatable {
        public var count: Int
        public var replaced: Int
        /// Rows marked IsDeleted: not imported, and removed from the store where it had them.
        public var deleted = 0

        public init(count: Int, replaced: Int, deleted: Int = 0) {
            self.count = count
            self.replaced = replaced
            self.deleted = deleted
        }
    }

    /// Imports a Data Export CSV of one object in a single transaction: a bad row leaves
    /// nothing of the file behind.
    public func importCSV(_ text: String, object: String) throws -> Int {
        try importCSV(bytes: Array(text.utf8), object: object).count
    }

    /// The same from the file's bytes (not UTF-8, NUL bytes: an error naming the line). Row
    /// by row inside the transaction: memory does not grow with the file, and a bad row
    /// still leaves nothing of the file behind (the transaction is rolled back).
    public func importCSV(bytes: [UInt8], object: String) throws -> ImportSummary {
        try guarded("cannot import") {
            try database.writeWithoutTransaction { db in
                var summary = ImportSummary(count: 0, replaced: 0)
                try db.inTransaction(.immediate) {
                    let exists = try db.cachedStatement(sql: "SELECT 1 FROM record WHERE id = ?")
                    let longForms = try db.cachedStatement(sql: "SELECT id FROM lookup WHERE kind = 'id15' AND key = ?")
                    var failure: Error?
                    do throws(InMemoryDirectory.CSVProblem) {
                        try InMemoryDirectory.forEachCSVRecord(bytes: bytes, object: object) { line, record throws(InMemoryDirectory.CSVProblem) in
                            do {
                                try Self.importRecord(record, line: line, object: object, exists: exists, longForms: longForms, summary: &summary, db)
                            } catch {
                                // Out of the typed closure: the reason is kept and thrown below.
                                failure = error
                                throw InMemoryDirectory.CSVProblem(line: line, reason: "")
                            }
                        }
                    } catch {
                        if let failure { throw failure }
                        throw ImportProblem(line: error.line, reason: error.reason)
                    }
                    return .commit
                }
                return summary
            }
        }
    }

    /// One imported row: its Id checked, the same record under its other form of Id (a
    /// report exports 15 characters, Data Loader 18) replaced, not kept beside it with its old
    /// addresses still matching.
    static func importRecord(_ record: CRMRecord, line: Int, object: String, exists: Statement, longForms: Statement,
                             summary: inout ImportSummary, _ db: Database) throws {
        if let expected = SalesforceID.prefix(of: object), !record.id.hasPrefix(expected) || !(record.id.count == 15 || record.id.count == 18) {
            throw ImportProblem(line: line, reason: "Id '\(InMemoryDirectory.CSVProblem.shown(record.id))' is not a \(object) id (15 or 18 characters starting with \(expected))")
        }
        var previous = try Bool.fetchOne(exists, arguments: [record.id]) == true
        let others = record.id.count == 18 ? [String(record.id.prefix(15))] : try String.fetchAll(longForms, arguments: [record.id])
        for other in others where other != record.id {
            guard try other.count == 18 || Bool.fetchOne(exists, arguments: [other]) == true else { continue }
            try delete(other, db)
            previous = true
        }
        // A row marked deleted (Data Loader's "Export All" keeps the recycle bin's): the
        // record is gone from the CRM, so from the store too, in both forms of its Id.
        if record.flag("IsDeleted") {
            if previous { try delete(record.id, db) }
            summary.deleted += 1
            return
        }
        if previous { summary.replaced += 1 }
        try insert(record, db)
        summary.count += 1
    }

    public func add(_ records: [CRMRecord]) throws {
        try guarded("cannot write") {
            try database.writeWithoutTransaction { db in
                try db.inTransaction(.immediate) {
                    for record in records { try Self.insert(record, db) }
                    return .commit
                }
            }
        }
    }

    public func records(object: String) throws -> [CRMRecord] {
        try guarded("cannot read") {
            try database.read { db in
                try Self.allRecords(db.makeStatement(sql: "SELECT id, object, fields FROM record WHERE object = ? ORDER BY id"), arguments: [object])
            }
        }
    }

    /// A record from a row of (id, object, fields); a value that is not what the schema
    /// says is a damaged store, never a crash.
    static func record(_ row: Row) throws -> CRMRecord {
        guard let id = String.fromDatabaseValue(row[0] as DatabaseValue), let object = String.fromDatabaseValue(row[1] as DatabaseValue) else {
            throw StoreError(.damaged, message: "a record row is not text")
        }
        return CRMRecord(object: object, id: id, fields: try row.withUnsafeData(atIndex: 2) { try decode($0, id: id) })
    }

    /// The first record `statement` finds, read from the statement's row as it stands: the
    /// fields' bytes exactly as stored, checked as UTF-8 by their decoder (`Row.fetchOne` copies
    /// the row, turning text into a `String` first, which replaces bad bytes and stops at a NUL,
    /// and its bytes back into `Data` through casts whose first use scans every conformance).
    static func firstRecord(_ statement: Statement, arguments: StatementArguments) throws -> CRMRecord? {
        let cursor = try Row.fetchCursor(statement, arguments: arguments)
        return try cursor.next().map(record)
    }

    /// Every record `statement` finds, each read as `firstRecord` reads one (a cursor also
    /// reuses one row buffer: no Row copies on the hot path); with `object`, only those of
    /// that object, the others skipped before their fields are decoded.
    static func allRecords(_ statement: Statement, arguments: StatementArguments, object: String? = nil) throws -> [CRMRecord] {
        let cursor = try Row.fetchCursor(statement, arguments: arguments)
        var records: [CRMRecord] = []
        while let row = try cursor.next() {
            if let object, String.fromDatabaseValue(row[1] as DatabaseValue) != object { continue }
            records.append(try record(row))
        }
        return records
    }

    /// Closes the store's connection (`batch` before it forks its jobs: a connection must
    /// not cross a fork); any use after this fails.
    public func closeConnection() throws {
        try database.close()
    }

    /// The read transaction of the `snapshot` running on each thread (decisions on several
    /// threads each read in their own).
    private let snapshots = PerThread<Database>()

    /// Runs `body` with every look-up in one read transaction: one consistent view of the CRM
    /// for a whole decision, and no per-query locking (the engine's look-ups cost half).
    ///
    /// Inside another snapshot on this thread, it joins it: `batch` holds one across a run of
    /// decisions (each read transaction took a shared lock on the database file and on the
    /// WAL index, through SQLite's process-wide mutex, which two jobs then queued on).
    public func snapshot<T>(_ body: () throws -> T) throws -> T {
        if snapshots.current != nil { return try body() }
        // The body's own errors (a selection that does not exist, a rule's budget) pass
        // through as they are; only the store's are classified.
        let outcome: Result<T, any Error> = try guarded("cannot read") {
            // Not reentrant, as GRDB's `read` was: a pool hands out a reader connection, never
            // its writer, and a snapshot inside another access of the same connection stops.
            try reader().unsafeRead { db in
                try Self.inReadTransaction(db) {
                    snapshots.with(db) {
                        do { return .success(try body()) } catch { return .failure(error) }
                    }
                }
            }
        }
        return try outcome.get()
    }

    /// Runs `body` in a read transaction (or in the one `db` is already in), begun and ended
    /// through statements prepared once per connection. GRDB's `read` begins its transaction
    /// through its SQL-literal path, whose first use in a process resolves a generic type by
    /// its mangled name and so scans every protocol conformance of the binary (a twentieth of
    /// a per-message `process`), and prepares BEGIN and COMMIT again for every decision.
    static func inReadTransaction<T>(_ db: Database, _ body: () throws -> T) throws -> T {
        if db.isInsideTransaction { return try body() }
        try db.cachedStatement(sql: "BEGIN DEFERRED TRANSACTION").execute()
        let result: T
        do {
            result = try body()
            // SQLite may have ended the transaction itself (an I/O error, an interrupt).
            if db.isInsideTransaction { try db.cachedStatement(sql: "COMMIT TRANSACTION").execute() }
        } catch {
            // A read has nothing to keep: end it whatever failed (GRDB stops the process when
            // an access leaves a transaction open), and report the first error.
            if db.isInsideTransaction { try? db.cachedStatement(sql: "ROLLBACK TRANSACTION").execute() }
            throw error
        }
        return result
    }

    /// The ledger's question is one read (`savedRecord` runs its statements in one `reading`):
    /// no read transaction around it, which cost a fifth of a message that needs nothing else.
    /// (A `SaveSession` keeps the default: its snapshot opens the save group.)
    public func ledgerSnapshot<T>(_ body: () throws -> T) throws -> T { try body() }

    /// Runs `body` with `db` as this thread's snapshot: the look-ups it makes read there (a
    /// `SaveSession` answers a decision inside its open write transaction this way).
    func reading<T>(through db: Database, _ body: () throws -> T) rethrows -> T {
        try snapshots.with(db, body)
    }

    /// Runs a read on the current snapshot when this thread has one, else on its own.
    func reading<T>(_ body: (Database) throws -> T) throws -> T {
        let current = snapshots.current
        return try guarded("cannot read") {
            if let current { return try body(current) }
            return try reader().unsafeReentrantRead(body)
        }
    }

    /// The connection this thread reads through: its own with `concurrentReads`, else the store's.
    func reader() throws -> any DatabaseReader {
        if let threadReaders { return try threadReaders.current() }
        return database
    }

    /// The look-up's statement, made once (not concatenated on each of a decision's look-ups).
    /// Ordered by `lookup.id`, which the join makes `record.id`: the lookup table's primary key
    /// already yields that order, where `ORDER BY record.id` made SQLite sort every answer in
    /// a temporary B-tree. One statement for every look-up, of one object or of all: a second
    /// one (`AND record.object = ?`) cost each process its own prepare, 150,000 instructions
    /// with GRDB's authorizer, to leave out rows a key seldom has (a Lead and a Contact of one
    /// address), which are now skipped before their fields are decoded.
    static let lookupSQL = "SELECT record.id, record.object, record.fields FROM lookup CROSS JOIN record ON record.id = lookup.id "
        + "WHERE lookup.kind = ? AND lookup.key = ? ORDER BY lookup.id"

    /// One indexed query. Single statements read a consistent snapshot on their own, so no
    /// explicit transaction is opened (it would double the cost of a look-up).
    func lookup(_ kind: String, _ key: String, object: String? = nil) throws -> [CRMRecord] {
        try reading { db in
            try Self.allRecords(db.cachedStatement(sql: Self.lookupSQL), arguments: [kind, key], object: object)
        }
    }

    // MARK: RecordLookups

    public func contacts(email address: String) throws -> [CRMRecord] { try lookup("email", address, object: "Contact") }
    public func leads(email address: String) throws -> [CRMRecord] { try lookup("email", address, object: "Lead").filter { !$0.flag("IsConverted") } }
    public func users(email address: String) throws -> [CRMRecord] { try lookup("email", address, object: "User") }

    public func people(email address: String) throws -> (contacts: [CRMRecord], leads: [CRMRecord], users: [CRMRecord]) {
        var people: (contacts: [CRMRecord], leads: [CRMRecord], users: [CRMRecord]) = ([], [], [])
        for record in try lookup("email", address) {
            switch record.object {
            case "Contact": people.contacts.append(record)
            case "Lead" where !record.flag("IsConverted"): people.leads.append(record)
            case "User": people.users.append(record)
            default: break
            }
        }
        return people
    }

    public func accounts(websiteDomain domain: String) throws -> [CRMRecord] {
        // The domain and each parent: mail.fabrikam.com finds fabrikam.com.
        var results: [CRMRecord] = []
        var candidate = Substring(domain)
        // "." is ASCII: its UTF-8 position is a Character boundary (and a byte search costs no
        // Foundation string search).
        while let dot = candidate.utf8.firstIndex(of: 0x2E) {
            // A store imported before public suffixes were refused may still hold `co.uk`.
            if !CRMDirectoryKeys.isPublicSuffix(String(candidate)) {
                results += try lookup("website", String(candidate), object: "Account")
            }
            candidate = candidate[candidate.utf8.index(after: dot)...]
        }
        return results
    }

    /// The `lookup` kind of a Contact's (email domain, Account) pairs: the key is the domain,
    /// U+001F (never in a domain) and the Account's canonical id, so the Accounts of a domain's
    /// Contacts are one contiguous, ordered range of the primary key.
    static let domainAccountKind = "domain_account"

    static func domainAccountKey(_ domain: String, _ account: String) -> String { domain + "\u{1F}" + SalesforceID.canonical(account) }

    /// Two seeks in the primary key, whatever the number of Contacts at the domain: the
    /// smallest Account id of the range, then the first key past it. (A million Contacts at
    /// one domain cost what one does.)
    public func account(contactDomain domain: String) throws -> DomainAccount? {
        let prefix = domain + "\u{1F}", end = domain + "\u{20}"
        let sql = "SELECT key FROM lookup WHERE kind = ? AND key > ? AND key < ? ORDER BY key LIMIT 1"
        let (first, second) = try reading { db -> (String?, String?) in
            let statement = try db.cachedStatement(sql: sql)
            guard let first = try String.fetchOne(statement, arguments: [Self.domainAccountKind, prefix, end]) else { return (nil, nil) }
            return (first, try String.fetchOne(statement, arguments: [Self.domainAccountKind, first, end]))
        }
        guard let first else { return nil }
        if second != nil { return .several }
        let account = String(first.dropFirst(prefix.count))
        return .one(try record(id: account)?.id ?? account)
    }

    /// Accounts by company name (the signature's company, when no domain finds one),
    /// compared as `CRMDirectoryKeys.companyName` normalises them.
    public func accounts(name: String) throws -> [CRMRecord] {
        let key = CRMDirectoryKeys.companyName(name)
        return key.isEmpty ? [] : try lookup("account_name", key, object: "Account")
    }

    public func people(phone: String) throws -> [CRMRecord] {
        try lookup("phone", CRMDirectoryKeys.phoneDigits(phone)).filter { $0.object == "Contact" || $0.object == "Lead" }
    }

    public func opportunities(accountID: String) throws -> [CRMRecord] { try lookup("account", accountID, object: "Opportunity") }
    public func cases(contactID: String) throws -> [CRMRecord] { try lookup("case_contact", contactID, object: "Case") }
    public func caseRecord(number: String) throws -> CRMRecord? { try lookup("case_number", CRMDirectoryKeys.caseNumber(number), object: "Case").first }

    public func record(id: String) throws -> CRMRecord? {
        try reading { db in try Self.record(id: id, in: db) }
    }

    /// The record of `id` given in either form (15 or 18 characters), read through `db` (a
    /// decision's snapshot, or an edit's write transaction).
    static func record(id: String, in db: Database) throws -> CRMRecord? {
        let statement = try db.cachedStatement(sql: "SELECT id, object, fields FROM record WHERE id = ?")
        if let found = try firstRecord(statement, arguments: [id]) { return found }
        let short = String(id.prefix(15))
        // An 18-character id of a record the store holds in 15 (an import of that form).
        if id.count == 18, let found = try firstRecord(statement, arguments: [short]) { return found }
        let sql = "SELECT record.id, record.object, record.fields FROM lookup CROSS JOIN record ON record.id = lookup.id WHERE kind = 'id15' AND key = ?"
        return try firstRecord(db.cachedStatement(sql: sql), arguments: [short])
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
            // Saved before mailsave, or from another client: an activity with this Message-ID
            // (the first of them by id; through the look-up statement the decision prepares
            // anyway, whose first column is the id).
            return try String.fetchOne(db.cachedStatement(sql: Self.lookupSQL), arguments: ["message_identifier", key])
        }
    }
}

/// The first `count` bytes of a file (fewer when it is shorter), or nil with errno set when it
/// cannot be opened. (Plain POSIX: the store's header is read once per `process`.)
private func readPrefix(of path: String, count: Int) -> [UInt8]? {
    // Non-blocking: a file that became a FIFO after it was checked cannot hang the open.
    let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
    guard descriptor >= 0 else { return nil }
    defer { close(descriptor) }
    var info = stat()
    guard fstat(descriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
        errno = EINVAL
        return nil
    }
    var bytes = [UInt8](repeating: 0, count: count)
    var filled = 0
    while filled < count {
        let got = bytes.withUnsafeMutableBytes { read(descriptor, $0.baseAddress! + filled, count - filled) }
        if got < 0 && errno == EINTR { continue }
        if got <= 0 { break }
        filled += got
    }
    bytes.removeSubrange(filled...)
    return bytes
}

/// Creates an empty file only this user may read and write, never through a link (outside
/// `CRMStore`, whose `open` would hide the system's): 0, or the errno (EEXIST: a file or a
/// link is there; anything else is left for SQLite's open to report).
private func createPrivateFile(_ path: String) -> Int32 {
    let descriptor = open(path, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0o600)
    guard descriptor >= 0 else { return errno }
    close(descriptor)
    return 0
}
