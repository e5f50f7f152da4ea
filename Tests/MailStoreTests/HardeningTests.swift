import Foundation
import GRDB
import MailEngine
import MailMessage
import MailRules
@testable import MailStore
import Testing
import ShippedFixtures

/// A fresh, existing folder under the test run's temporary folder.
func temporaryFolder() throws -> URL {
    let folder = storeRoot.appendingPathComponent(UUID().uuidString)
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    return folder
}

/// The first column of the first row of `sql`, as text.
func text(_ store: CRMStore, _ sql: String) throws -> String? {
    try store.database.read { db in try String.fetchOne(db, sql: sql) }
}

func storeError(_ body: () throws -> Void) -> StoreError? {
    do {
        try body()
        return nil
    } catch let error as StoreError {
        return error
    } catch {
        Issue.record("not a StoreError: \(error)")
        return nil
    }
}

/// Field values are stored as JSON, never with in-band separators.
@Suite struct FieldEncodingTests {
    @Test func separatorsAndNULsInValuesAreStoredByteForByte() throws {
        let store = try temporaryStore()
        let fields = ["Subject": "Quote\u{1E}OwnerId\u{1F}0055e00000Dan01\u{1E}", "Description": "a\u{0}b\u{1F}c\u{1E}\"{}\\",
                      "OwnerId": "0055e00000Ann01", "WhoId": "0035e00000Bob01", "WhatId": "0065e00000Opp01", "TaskSubtype": "Email"]
        try store.add([CRMRecord(object: "Task", id: "00T5e00000Inj01", fields: fields)])
        let record = try #require(try store.record(id: "00T5e00000Inj01"))
        #expect(record.fields == fields)
        #expect(try store.records(object: "Task").first?.fields == fields)
    }

    /// A record's stored fields that are not what the store writes (bytes that are not UTF-8
    /// inside a value, a NUL with more after it) are a damaged store, whether the record is
    /// read by id, found by a look-up or listed, never read as something else.
    @Test func fieldsThatAreNotUTF8OrGoOnAfterANULAreDamaged() throws {
        let store = try temporaryStore()
        try store.add([CRMRecord(object: "Contact", id: "0035e00000Bad01", fields: ["Email": "bad@fabrikam.com", "LastName": "Bad"])])
        // {"Email":"bad@fabrikam.com","LastName":"B\xffd"} and {"Email":"bad@fabrikam.com"} NUL "junk".
        let invalid = Array(#"{"Email":"bad@fabrikam.com","LastName":"B"#.utf8) + [0xFF] + Array(#"d"}"#.utf8)
        let trailing = Array(#"{"Email":"bad@fabrikam.com"}"#.utf8) + [0] + Array("junk".utf8)
        for bytes in [invalid, trailing] {
            let hex = bytes.map { String(format: "%02x", $0) }.joined()
            try store.database.write { db in
                try db.execute(sql: "UPDATE record SET fields = CAST(x'\(hex)' AS TEXT) WHERE id = '0035e00000Bad01'")
            }
            #expect(storeError { _ = try store.record(id: "0035e00000Bad01") }?.kind == .damaged)
            #expect(storeError { _ = try store.contacts(email: "bad@fabrikam.com") }?.kind == .damaged)
            #expect(storeError { _ = try store.records(object: "Contact") }?.kind == .damaged)
        }
    }

    func message(subject: String, body: String) throws -> Message {
        let text = "From: Bob Buyer <bob@fabrikam.com>\r\nTo: Ann Seller <ann@contoso.com>\r\nSubject: \(subject)\r\n"
            + "Date: Mon, 2 Mar 2026 09:15:00 +0000\r\nMessage-ID: <inject-\(UUID().uuidString)@fabrikam.com>\r\n"
            + "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\(body)\r\n"
        return try MessageParser.parse(Array(text.utf8))
    }

    func saveAndReadBack(_ message: Message, _ store: CRMStore) throws -> (Decision, CRMRecord) {
        let decision = try Engine(pack: try shippedPack(), directory: store).decide(message, context: ProcessContext(mailbox: "ann@contoso.com")).0
        try #require(decision.verdict == .save)
        let saved = try #require(try store.save(decision, message: message, mailbox: "ann@contoso.com"))
        return (decision, try #require(try store.record(id: saved.id)))
    }

    @Test func anInjectingSubjectDoesNotChangeTheOwner() throws {
        let store = try temporaryStore()
        try store.add(try sampleRecords())
        let message = try message(subject: "=?utf-8?Q?Quote=1EOwnerId=1F0055e00000Dan01=1E?=", body: "Please quote.")
        try #require(message.subject == "Quote\u{1E}OwnerId\u{1F}0055e00000Dan01\u{1E}")
        let (decision, task) = try saveAndReadBack(message, store)
        #expect(task["OwnerId"] == "0055e00000Ann01")
        // The separators never reach the record: a CRM's text cannot hold control characters.
        #expect(task["Subject"] == "QuoteOwnerId0055e00000Dan01")
        #expect(decision.observations.contains("Task.Subject: 3 control characters removed (a CRM's text cannot hold them)"))
        #expect(task["WhoId"] == "0035e00000Bob01")
        #expect(task["WhatId"] == decision.what)
        #expect(task["TaskSubtype"] == "Email")
    }

    @Test func aNULInTheSubjectOrBodyKeepsEveryField() throws {
        let store = try temporaryStore()
        try store.add(try sampleRecords())
        let message = try message(subject: "=?utf-8?Q?Quote=00for=1F20?=", body: "Hello=00there=1E, see you")
        let (decision, task) = try saveAndReadBack(message, store)
        #expect(task["OwnerId"] == "0055e00000Ann01")
        #expect(task["WhoId"] == "0035e00000Bob01")
        #expect(task["WhatId"] == decision.what)
        #expect(task["WhatId"] != nil)
        #expect(task["TaskSubtype"] == "Email")
        // Every field the decision wrote is read back byte for byte.
        for field in try #require(decision.record).fields {
            if case .string(let text) = field.value, !text.isEmpty, field.name != "WhoId" {
                #expect(task[field.name] == text, "\(field.name)")
            }
        }
        #expect(message.subject == "Quote\u{0}for\u{1F}20")
        #expect(task["Subject"] == "Quotefor20")
    }

    @Test func csvCellsWithSeparatorsAreStoredAsWritten() throws {
        let store = try temporaryStore()
        let csv = "Id,LastName,Title\n0035e00000Sep01,\"Lee\u{1E}OwnerId\u{1F}0055e00000Dan01\u{1E}\",x\u{1F}y\n"
        #expect(try store.importCSV(csv, object: "Contact") == 1)
        let contact = try #require(try store.record(id: "0035e00000Sep01"))
        #expect(contact["LastName"] == "Lee\u{1E}OwnerId\u{1F}0055e00000Dan01\u{1E}")
        #expect(contact["Title"] == "x\u{1F}y")
        #expect(contact["OwnerId"] == nil)
    }

    @Test func aFormat1StoreIsUpgradedInPlace() throws {
        let path = try temporaryFolder().appendingPathComponent("old.sqlite").path
        do {
            // The schema and encoding of mailsave 0.2 (GRDB migration "v1").
            let queue = try DatabaseQueue(path: path)
            try queue.write { db in
                try db.execute(sql: """
                    CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY);
                    INSERT INTO grdb_migrations VALUES ('v1');
                    CREATE TABLE record (id TEXT PRIMARY KEY NOT NULL, object TEXT NOT NULL, fields TEXT NOT NULL) WITHOUT ROWID;
                    CREATE INDEX record_object ON record(object);
                    CREATE TABLE lookup (kind TEXT NOT NULL, key TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (kind, key, id)) WITHOUT ROWID;
                    CREATE INDEX lookup_id ON lookup(id);
                    CREATE TABLE ledger (message_key TEXT PRIMARY KEY NOT NULL, record_id TEXT NOT NULL, object TEXT NOT NULL,
                        mailbox TEXT NOT NULL, saved_at TEXT NOT NULL) WITHOUT ROWID;
                    CREATE TABLE sequence (prefix TEXT PRIMARY KEY NOT NULL, next INTEGER NOT NULL) WITHOUT ROWID;
                    INSERT INTO record VALUES ('0035e00000Old01', 'Contact', 'Email\u{1F}old@x.example\u{1E}LastName\u{1F}Old\u{1E}');
                    INSERT INTO lookup VALUES ('email', 'old@x.example', '0035e00000Old01');
                    INSERT INTO ledger VALUES ('m@x', '00T5e0000000001', 'Task', 'ann@contoso.com', '2026-01-01');
                    INSERT INTO sequence VALUES ('00T', 2);
                    """)
            }
        }
        // A command that only reads upgrades it too (it may write the file), then reads it.
        let reader = try CRMStore(path: path, access: .readOnly)
        #expect(reader.readOnly)
        #expect(try reader.contacts(email: "old@x.example").first?.fields == ["Email": "old@x.example", "LastName": "Old"])
        let store = try CRMStore(path: path)
        #expect(try store.contacts(email: "old@x.example").first?.fields == ["Email": "old@x.example", "LastName": "Old"])
        #expect(try store.ledgerCount() == 1)
        #expect(try text(store, "PRAGMA application_id") == String(CRMStore.applicationID))
        #expect(try text(store, "PRAGMA user_version") == String(CRMStore.formatVersion))
        #expect(try text(store, "SELECT fields FROM record") == #"{"Email":"old@x.example","LastName":"Old"}"#)
        #expect(try text(store, "SELECT name FROM sqlite_master WHERE name = 'grdb_migrations'") == nil)
    }
}

/// Stores are identified; foreign, newer and damaged files are refused and left untouched.
@Suite struct StoreIdentityTests {
    @Test func aNewStoreIsStamped() throws {
        let store = try temporaryStore()
        #expect(try text(store, "PRAGMA application_id") == String(0x4D53_6176))
        #expect(try text(store, "PRAGMA user_version") == "5")
    }

    /// Opening `path` fails with `kind` and leaves the file as it was (and, unless SQLite had to
    /// open it to find out, without a WAL file beside it).
    func refused(_ path: String, _ kind: StoreError.Kind, _ words: String, access: CRMStore.Access = .readWrite, noWAL: Bool = true) throws {
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let error = storeError { _ = try CRMStore(path: path, access: access) }
        #expect(error?.kind == kind)
        #expect(error?.message.contains(words) == true, "\(error?.message ?? "no error")")
        #expect(error?.message.hasPrefix(path) == true)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before, "the refused file was changed")
        if noWAL { #expect(!FileManager.default.fileExists(atPath: path + "-wal")) }
    }

    @Test func aForeignSQLiteFileIsRefusedAndNotWritten() throws {
        let folder = try temporaryFolder()
        let path = folder.appendingPathComponent("other.sqlite").path
        do {
            let queue = try DatabaseQueue(path: path)
            try queue.write { try $0.execute(sql: "CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('x')") }
        }
        try refused(path, .foreign, "not a mailsave store")
        try refused(path, .foreign, "not a mailsave store", access: .readOnly)

        let tagged = folder.appendingPathComponent("tagged.sqlite").path
        do {
            let queue = try DatabaseQueue(path: tagged)
            try queue.write { try $0.execute(sql: "PRAGMA application_id = 1234") }
        }
        try refused(tagged, .foreign, "application_id")

        let text = folder.appendingPathComponent("text.sqlite").path
        try Data("Id,Email\n".utf8).write(to: URL(fileURLWithPath: text))
        try refused(text, .foreign, "not an SQLite database")
    }

    @Test func aNewerStoreIsRefused() throws {
        let path = try temporaryStore().path
        do {
            let queue = try DatabaseQueue(path: path)
            try queue.write { try $0.execute(sql: "PRAGMA user_version = \(CRMStore.formatVersion + 1)") }
        }
        try refused(path, .newer, "newer mailsave")
        try refused(path, .newer, "newer mailsave", access: .readOnly)
    }

    @Test func aDamagedStoreIsRefused() throws {
        let path = try temporaryFolder().appendingPathComponent("crm.sqlite").path
        do {
            let store = try CRMStore(path: path)
            try store.add((0..<1002).map { CRMRecord(object: "Contact", id: SalesforceID.make(prefix: "003", number: $0),
                                                     fields: ["Email": "person\($0)@x.example", "LastName": "Person \($0)"]) })
        }
        // Closed: the WAL is checkpointed into the file. Damage a page in its middle.
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        let size = try handle.seekToEnd()
        let pages = size / 4096
        try #require(pages > 8)
        try handle.seek(toOffset: (pages / 2) * 4096)
        try handle.write(contentsOf: Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 13) }))
        try handle.close()
        try refused(path, .damaged, "damaged", noWAL: false)
        try refused(path, .damaged, "damaged", access: .readOnly, noWAL: false)
    }

    @Test func aStoreIsNeverCreatedInAMissingFolder() throws {
        let folder = try temporaryFolder().appendingPathComponent("missing/dir")
        let path = folder.appendingPathComponent("s.sqlite").path
        let error = storeError { _ = try CRMStore(path: path) }
        #expect(error?.kind == .missingFolder)
        #expect(error?.message.contains(folder.path) == true)
        #expect(!FileManager.default.fileExists(atPath: folder.deletingLastPathComponent().path))
        // Only when asked (the default store's own folder).
        _ = try CRMStore(path: path, createFolder: true)
        #expect(FileManager.default.fileExists(atPath: path))
    }

    @Test func aReadOnlyOpenNeitherCreatesNorWrites() throws {
        let path = try temporaryFolder().appendingPathComponent("crm.sqlite").path
        #expect(storeError { _ = try CRMStore(path: path, access: .readOnly) }?.kind == .missing)
        #expect(!FileManager.default.fileExists(atPath: path))
        do { try CRMStore(path: path).add(try sampleRecords()) }
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let store = try CRMStore(path: path, access: .readOnly)
        #expect(store.readOnly)
        #expect(try store.contacts(email: "bob@fabrikam.com").map(\.id) == ["0035e00000Bob01"])
        #expect(try store.records(object: "Contact").count == 2)
        #expect(storeError { try store.add([CRMRecord(object: "Contact", id: "0035e00000New01", fields: [:])]) } != nil)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
    }
}

/// Disk full and a locked store are temporary failures, and leave nothing half-written.
@Suite struct TemporaryFailureTests {
    /// Caps the store's file at its current size plus `pages` pages (SQLITE_FULL past it).
    func cap(_ store: CRMStore, extraPages pages: Int) throws {
        try store.database.writeWithoutTransaction { db in
            let count = try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0
            _ = try Int.fetchOne(db, sql: "PRAGMA max_page_count = \(count + pages)")
        }
    }

    /// On a nearly full disk SQLite says "disk I/O error" (it cannot grow the WAL index) or
    /// "unable to open": taken for a full disk there (exit 75, the mail is deferred), and for
    /// a failure anywhere else.
    @Test func anIOErrorOnANearlyFullDiskIsTemporary() {
        for code in [ResultCode.SQLITE_IOERR_SHMSIZE, .SQLITE_IOERR_WRITE, .SQLITE_CANTOPEN] {
            let error = DatabaseError(resultCode: code, message: "disk I/O error")
            let nearlyFull = CRMStore.classify(error, path: NSTemporaryDirectory() + "/crm.sqlite", doing: "cannot open the store", freeBytes: { _ in 8_192 })
            #expect(nearlyFull.kind == .temporary)
            #expect(nearlyFull.message == NSTemporaryDirectory() + "/crm.sqlite: cannot open the store: the disk or this user's quota is nearly full (disk I/O error; 8192 bytes free); "
                    + "nothing was written, retry later")
            let roomy = CRMStore.classify(error, path: "/var/mail/crm.sqlite", doing: "cannot open the store", freeBytes: { _ in 50 << 20 })
            #expect(roomy.kind == .failed)
            let unknown = CRMStore.classify(error, path: "/var/mail/crm.sqlite", doing: "cannot open the store", freeBytes: { _ in nil })
            #expect(unknown.kind == .failed)
        }
        // A read error, or a permission, is no full disk however little room is left.
        let read = DatabaseError(resultCode: .SQLITE_IOERR_READ, message: "disk I/O error")
        #expect(CRMStore.classify(read, path: "/var/mail/crm.sqlite", doing: "cannot read", freeBytes: { _ in 8_192 }).kind == .failed)
        let unwritable = DatabaseError(resultCode: .SQLITE_CANTOPEN, message: "unable to open database file")
        #expect(CRMStore.classify(unwritable, path: "/nonexistent-mailsave-folder/crm.sqlite", doing: "cannot open the store", freeBytes: { _ in 8_192 }).kind == .failed)
        #expect(CRMStore.freeBytes(NSTemporaryDirectory() + "/x.sqlite").map { $0 > 0 } == true)
        #expect(CRMStore.freeBytes("crm.sqlite").map { $0 > 0 } == true, "a store named without its folder is in the current one")
    }

    @Test func aFullDiskDuringImportIsTemporaryAndImportsNothing() throws {
        let store = try temporaryStore()
        try store.add(try sampleRecords())
        try cap(store, extraPages: 2)
        var csv = "Id,Email,LastName,Description\n"
        for index in 0..<3000 {
            csv += "\(SalesforceID.make(prefix: "003", number: index)),p\(index)@x.example,Person \(index),\(String(repeating: "d", count: 200))\n"
        }
        let error = storeError { _ = try store.importCSV(csv, object: "Contact") }
        #expect(error?.kind == .temporary)
        #expect(error?.message.contains("disk is full") == true, "\(error?.message ?? "")")
        #expect(try store.records(object: "Contact").count == 2)
    }

    @Test func aFullDiskDuringSaveIsTemporaryAndSavesNothing() throws {
        let store = try temporaryStore()
        try store.add(try sampleRecords())
        let message = try MessageParser.parse(Array(("From: Bob Buyer <bob@fabrikam.com>\r\nTo: ann@contoso.com\r\nSubject: Big\r\n"
            + "Message-ID: <full-1@fabrikam.com>\r\n\r\n" + String(repeating: "All work and no play. ", count: 1400) + "\r\n").utf8))
        let decision = try Engine(pack: try shippedPack(), directory: store).decide(message, context: ProcessContext(mailbox: "ann@contoso.com")).0
        try #require(decision.verdict == .save)
        try cap(store, extraPages: 0)
        let error = storeError { _ = try store.save(decision, message: message, mailbox: "ann@contoso.com") }
        #expect(error?.kind == .temporary)
        #expect(try store.ledgerCount() == 0)
        #expect(try store.savedRecord(messageID: "<full-1@fabrikam.com>") == nil)
        #expect(try store.records(object: "Task").count == 1) // the sample's own
    }

    @Test func aStoreLockedPastTheBusyTimeoutIsTemporary() throws {
        let path = try temporaryStore().path
        let holder = try CRMStore(path: path)
        let waiter = try CRMStore(path: path, busyTimeout: 0.2)
        try holder.database.writeWithoutTransaction { db in
            try db.execute(sql: "BEGIN IMMEDIATE")
            defer { try? db.execute(sql: "ROLLBACK") }
            let error = storeError { try waiter.add([CRMRecord(object: "Contact", id: "0035e00000Wai01", fields: ["Email": "w@x.example"])]) }
            #expect(error?.kind == .temporary)
            #expect(error?.message.contains("locked") == true)
        }
        try waiter.add([CRMRecord(object: "Contact", id: "0035e00000Wai01", fields: ["Email": "w@x.example"])])
    }
}

/// `crm import`'s CSV: every problem is an error naming its line, never a guess.
@Suite struct CSVImportTests {
    func problem(_ bytes: [UInt8]) -> CRMStore.ImportProblem? {
        guard let store = try? temporaryStore() else { return nil }
        do {
            _ = try store.importCSV(bytes: bytes, object: "Contact")
            Issue.record("imported")
        } catch let problem as CRMStore.ImportProblem {
            #expect((try? store.records(object: "Contact").count) == 0, "nothing is imported")
            return problem
        } catch {
            Issue.record("\(error)")
        }
        return nil
    }

    @Test func anUnterminatedQuoteIsNamedWhereItOpens() {
        let text = "Id,LastName\n0035e00000Aaa01,Lee\n0035e00000Bbb01,\"Kim\n0035e00000Ccc01,Ray\n0035e00000Ddd01,Roe\n"
        let found = problem(Array(text.utf8))
        #expect(found?.line == 3)
        #expect(found?.reason.contains("never closed") == true)
    }

    @Test func bytesThatAreNotUTF8AreAnError() {
        let found = problem(Array("Id,LastName\n0035e00000Aaa01,Lee\n0035e00000Bbb01,G".utf8) + [0xF3, 0x6D, 0x65, 0x7A] + Array("\n".utf8))
        #expect(found?.line == 3)
        #expect(found?.reason.contains("not UTF-8") == true)
        #expect(problem([0xFF, 0xFE] + Array("I\0d\0".utf8))?.reason.contains("UTF-16") == true)
    }

    @Test func aNULIsAnError() {
        let found = problem(Array("Id,LastName,Title\n0035e00000Aaa01,\"multi\nline\",x\n0035e00000Bbb01,Le".utf8) + [0] + Array("e,Boss\n".utf8))
        #expect(found?.line == 4)
        #expect(found?.reason.contains("NUL") == true)
    }

    @Test func aDuplicateIdNamesBothLines() {
        let found = problem(Array("Id,LastName\n0035e00000Aaa01,Lee\n0035e00000Bbb01,Kim\n0035e00000Aaa01AAA,Lee again\n".utf8))
        #expect(found?.line == 4)
        #expect(found?.reason.contains("already on line 2") == true)
        // A huge value is never echoed whole (rows are checked one by one: this one is over
        // the longest field, on the first line that has it).
        let huge = String(repeating: "x", count: 1 << 20)
        let long = problem(Array("Id,LastName\n\(huge),Lee\n\(huge),Kim\n".utf8))
        #expect(long?.line == 2)
        #expect((long?.reason.count ?? .max) < 200, "\(long?.reason.prefix(200) ?? "")")
        #expect(long?.reason.contains("the Id cell holds 1048576 characters") == true, "\(long?.reason.prefix(200) ?? "")")
        do {
            _ = try InMemoryDirectory.parseCSVRows(bytes: Array("Id,LastName\n\(huge),Lee\n\(huge),Kim\n".utf8), object: "Contact")
            Issue.record("a megabyte Id was read")
        } catch {
            #expect(error.line == 2)
            #expect(error.reason.count < 200)
            #expect(error.reason.contains("the Id cell holds 1048576 characters"))
        }
    }

    /// An Id, or a field naming another record, is 15 or 18 letters and digits, nothing else:
    /// a control character in one reached a saved Task's WhoId and the terminal. A cell is at
    /// most Salesforce's longest field.
    @Test func idsAreIdsAndCellsAreBounded() throws {
        let cases: [(String, Int, String)] = [
            ("Id,LastName\n0035e00000Aaa01,Lee\n0035e00000\u{1B}[31m,Kim\n", 3, "Id '0035e00000\u{1B}[31m' is not a Salesforce id"),
            ("Id,LastName\n0035e00000Aaa0é,Lee\n", 2, "is not a Salesforce id"),
            ("Id,LastName\n0035e00000Aaa01 ,Lee\n", 2, "is not a Salesforce id"),
            ("Id,LastName,AccountId\n0035e00000Aaa01,Lee,acc-1\n", 2, "AccountId 'acc-1' is not a Salesforce id"),
            ("Id,LastName,ContactId\n0035e00000Aaa01,Lee,0035e00000Aaa01\u{200B}\n", 2, "ContactId"),
            ("Id,LastName\n0035e00000Aaa01,\(String(repeating: "é", count: 131_073))\n", 2, "holds 131073 characters, more than any Salesforce field (131072)"),
        ]
        for (text, line, reason) in cases {
            let found = problem(Array(text.utf8))
            #expect(found?.line == line, "\(text.prefix(80))")
            #expect(found?.reason.contains(reason) == true, "\(found?.reason.prefix(200) ?? "none")")
        }
        // What a Data Export holds is read: 15 and 18 characters, an empty reference, a cell
        // of exactly the longest field (in bytes, twice that).
        let good = "Id,LastName,AccountId,Description\n0035e00000Aaa01,Lee,,x\n0035e00000Bbb01AAA,Kim,0015e00000Acc01,\(String(repeating: "é", count: 131_072))\n"
        #expect(try InMemoryDirectory.parseCSV(bytes: Array(good.utf8), object: "Contact").count == 2)
    }

    /// A header of more columns than any Salesforce object has fields: an error, not a
    /// million fields on every record.
    @Test func tooManyColumnsIsAnError() {
        let header = "Id," + (1...2_100).map { "C\($0)" }.joined(separator: ",")
        let found = problem(Array((header + "\n0035e00000Aaa01\n").utf8))
        #expect(found?.line == 1)
        #expect(found?.reason == "more than 2000 columns; no Salesforce object has that many fields")
    }

    @Test func aDuplicateColumnIsAnError() {
        let found = problem(Array("Id,Email,LastName,email\n0035e00000Aaa01,a@x.example,Lee,b@x.example\n".utf8))
        #expect(found?.line == 1)
        #expect(found?.reason.contains("'email' appears twice") == true)
    }

    @Test func textAfterAClosingQuoteIsAnError() {
        #expect(problem(Array("Id,LastName\n0035e00000Aaa01,\"Lee\"x\n".utf8))?.line == 2)
    }

    @Test func theCountIsWhatWasStored() throws {
        let store = try temporaryStore()
        let first = try store.importCSV(bytes: Array("Id,LastName\n0035e00000Aaa01,Lee\n0035e00000Bbb01,Kim\n".utf8), object: "Contact")
        #expect(first == CRMStore.ImportSummary(count: 2, replaced: 0))
        let second = try store.importCSV(bytes: Array("Id,LastName\r\n0035e00000Bbb01,Kim2\r\n0035e00000Ccc01,Ray\r".utf8), object: "Contact")
        #expect(second == CRMStore.ImportSummary(count: 2, replaced: 1))
        #expect(try store.records(object: "Contact").map { $0["LastName"] ?? "" } == ["Lee", "Kim2", "Ray"])
    }

    /// A report exports 15-character Ids, Data Loader 18: a refresh in the other form replaced
    /// nothing, and the record's old address went on matching beside the new one.
    @Test func aRecordImportedInItsOtherIdFormIsReplaced() throws {
        let store = try temporaryStore()
        _ = try store.importCSV(bytes: Array("Id,Email,LastName\n0035e00000Aaa01,old@x.example,Lee\n0035e00000Bbb01,b@x.example,Kim\n".utf8), object: "Contact")
        let long = try store.importCSV(bytes: Array("Id,Email,LastName\n0035e00000Aaa01AAA,new@x.example,Lee\n".utf8), object: "Contact")
        #expect(long == CRMStore.ImportSummary(count: 1, replaced: 1))
        #expect(try store.records(object: "Contact").map(\.id) == ["0035e00000Aaa01AAA", "0035e00000Bbb01"])
        #expect(try store.resolve({ var plan = LookupPlan(); plan.addresses = ["old@x.example"]; return plan }()).contacts(email: "old@x.example").isEmpty)
        let short = try store.importCSV(bytes: Array("Id,Email,LastName\n0035e00000Aaa01,newer@x.example,Lee\n".utf8), object: "Contact")
        #expect(short == CRMStore.ImportSummary(count: 1, replaced: 1))
        #expect(try store.records(object: "Contact").map(\.id) == ["0035e00000Aaa01", "0035e00000Bbb01"])
        #expect(try store.records(object: "Contact").first?["Email"] == "newer@x.example")
    }

    @Test func aBadIdIsNamedAtItsOwnLine() {
        let found = problem(Array("Id,LastName\n0035e00000Aaa01,\"two\nlines\"\n001xx,Lee\n".utf8))
        #expect(found?.line == 4)
    }
}

/// A store others may write could be made to save anything: its outbox entries are saved into
/// the CRM as they stand (an attack added one to a 0666 store owned by another user, and
/// root's `retry` saved it into the org).
@Suite struct StoreOwnershipTests {
    @Test func aNewStoreIsItsOwnersAlone() throws {
        let store = try temporaryStore()
        try store.add(try sampleRecords())
        var info = stat()
        #expect(stat(store.path, &info) == 0)
        #expect(info.st_mode & 0o077 == 0, "mode \(String(info.st_mode & 0o777, radix: 8))")
    }

    @Test func aStoreEveryUserMayWriteIsRefused() throws {
        let path = try temporaryStore().path
        #expect(chmod(path, 0o666) == 0)
        for access in [CRMStore.Access.readWrite, .readOnly] {
            let error = storeError { _ = try CRMStore(path: path, access: access) }
            #expect(error?.message == "\(path): mode 666 lets every user write the store (and add saves to its outbox); refused: chmod o-w \(path)")
        }
        #expect(chmod(path, 0o660) == 0)
        #expect(storeError { _ = try CRMStore(path: path) } == nil, "group write is the administrator's choice")
    }

    /// The file could be swapped in a folder every user may write (unless sticky, as /tmp
    /// is), and SQLite replays a -wal file into the store: both are checked as the store is.
    @Test func itsFolderAndWALFilesAreCheckedToo() throws {
        let folder = try temporaryFolder()
        let path = folder.appendingPathComponent("crm.sqlite").path
        #expect(chmod(folder.path, 0o777) == 0)
        let open = storeError { _ = try CRMStore(path: path) }
        #expect(open?.message.contains("lets every user replace the store (mode 777, no sticky bit)") == true, "\(open?.message ?? "accepted")")
        #expect(!FileManager.default.fileExists(atPath: path), "nothing created there")
        #expect(chmod(folder.path, 0o1777) == 0)
        try CRMStore(path: path).add(try sampleRecords())
        #expect(chmod(folder.path, 0o755) == 0)
        #expect(FileManager.default.createFile(atPath: path + "-wal", contents: Data()))
        #expect(chmod(path + "-wal", 0o666) == 0)
        let wal = storeError { _ = try CRMStore(path: path) }
        #expect(wal?.message == "\(path)-wal: mode 666 lets every user write the store (and add saves to its outbox); refused: chmod o-w \(path)-wal")
    }

    /// A link where a new store would be created is not followed (it was: the store was made
    /// wherever the link pointed).
    @Test func aNewStoreIsNotCreatedThroughALink() throws {
        let folder = try temporaryFolder()
        let path = folder.appendingPathComponent("crm.sqlite").path
        let elsewhere = folder.appendingPathComponent("elsewhere.sqlite").path
        #expect(symlink(elsewhere, path) == 0)
        #expect(storeError { _ = try CRMStore(path: path) } != nil)
        #expect(!FileManager.default.fileExists(atPath: elsewhere))
    }

    @Test func aStoreAnotherUserOwnsIsReadButNotWritten() throws {
        let path = try temporaryStore().path
        // The file owned by someone who is not the user checking (as root: given away).
        var user = geteuid()
        if user == 0 {
            #expect(chown(path, 12_345, 12_345) == 0)
        } else {
            user += 1
        }
        let error = storeError { try CRMStore.checkOwnership(path, access: .readWrite, user: user) }
        #expect(error?.message.contains("the store is owned by uid") == true && error?.message.contains("refused for writing") == true,
                "\(error?.message ?? "accepted")")
        #expect(storeError { try CRMStore.checkOwnership(path, access: .readOnly, user: user) } == nil)
    }
}
