import Foundation
import GRDB
import MailEngine
import MailRules
@testable import MailStore
import Testing

/// A read-only store opened for several deciding threads (`batch --jobs N`): a connection for
/// each thread, each thread's snapshot its own, every answer the one connection would give.
@Suite struct ConcurrentReadTests {
    @Test func threadsReadAtOnceEachInItsOwnSnapshot() throws {
        let writer = try temporaryStore()
        let records = try sampleRecords()
        try writer.add(records)
        let path = writer.path
        try writer.database.close()
        let serial = try CRMStore(path: path, access: .readOnly)
        let shared = try CRMStore(path: path, access: .readOnly, concurrentReads: true)
        #expect(serial.database is DatabaseQueue)
        #expect(shared.database is DatabaseQueue)
        #expect(serial.threadReaders == nil)
        #expect(shared.threadReaders != nil)
        let addresses = records.compactMap { $0["Email"] }
        #expect(addresses.count >= 5)
        let expected = try addresses.map { address in try serial.snapshot { try serial.people(email: address) } }
        let lock = NSLock()
        nonisolated(unsafe) var mismatches = 0
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for round in 0..<50 {
                let index = (worker + round) % addresses.count
                let found = try? shared.snapshot { () -> (contacts: [CRMRecord], leads: [CRMRecord], users: [CRMRecord]) in
                    // Another thread's snapshot must not be this one's: look twice inside it.
                    let first = try shared.people(email: addresses[index])
                    _ = try shared.contacts(email: addresses[(index + 1) % addresses.count])
                    return first
                }
                let want = expected[index]
                if found?.contacts.map(\.id) != want.contacts.map(\.id) || found?.leads.map(\.id) != want.leads.map(\.id)
                    || found?.users.map(\.id) != want.users.map(\.id) {
                    lock.withLock { mismatches += 1 }
                }
            }
        }
        #expect(lock.withLock { mismatches } == 0)
        #expect((shared.threadReaders?.count ?? 0) >= 1)
    }

    /// A store holding the sample Accounts, and a sample Contact (with its address) that it
    /// does not hold yet: a test adds it while a snapshot is open.
    func storeWithoutAContact() throws -> (writer: CRMStore, contact: CRMRecord, address: String) {
        let writer = try temporaryStore()
        let records = try sampleRecords()
        let contact = try #require(records.first { $0.object == "Contact" && $0["Email"] != nil })
        let address = try #require(contact["Email"])
        try writer.add(records.filter { $0.object == "Account" })
        return (writer, contact, address)
    }

    /// A decision's snapshot is one read transaction, begun and ended by the store itself
    /// (not through GRDB's `read`): what another connection saves meanwhile is seen by the next
    /// snapshot, not this one; a body that throws ends it all the same, its error unchanged.
    @Test func aSnapshotIsOneViewAndEndsWhenItsBodyThrows() throws {
        let (writer, contact, address) = try storeWithoutAContact()
        let reader = try CRMStore(path: writer.path, access: .readOnly)
        let (before, during) = try reader.snapshot { () -> (Int, Int) in
            let before = try reader.contacts(email: address).count
            try writer.add([contact])
            return (before, try reader.contacts(email: address).count)
        }
        #expect(before == 0 && during == 0, "the snapshot's view stays the one it began with")
        #expect(try reader.snapshot { try reader.contacts(email: address).map(\.id) } == [contact.id])
        struct Failure: Error, Equatable { let code: Int }
        #expect(throws: Failure(code: 7)) { try reader.snapshot { () -> Int in _ = try reader.contacts(email: address); throw Failure(code: 7) } }
        #expect(try reader.database.unsafeRead { $0.isInsideTransaction } == false)
        #expect(try reader.snapshot { try reader.contacts(email: address).count } == 1)
        // The transaction itself: a body that throws is rolled back and its error comes out;
        // inside a transaction already open, it joins it and ends nothing.
        try reader.database.unsafeRead { db in
            #expect(throws: Failure(code: 8)) { try CRMStore.inReadTransaction(db) { () -> Int in #expect(db.isInsideTransaction); throw Failure(code: 8) } }
            #expect(!db.isInsideTransaction)
            #expect(try CRMStore.inReadTransaction(db) { db.isInsideTransaction } == true)
            #expect(!db.isInsideTransaction)
            try db.execute(sql: "BEGIN DEFERRED TRANSACTION")
            _ = try CRMStore.inReadTransaction(db) { try reader.contacts(email: address) }
            #expect(db.isInsideTransaction, "a transaction the caller opened stays the caller's")
            try db.execute(sql: "COMMIT")
        }
    }

    /// A snapshot inside another on the same thread joins it (`batch` holds one across a run
    /// of decisions): what another connection saves during the outer one is seen by no
    /// snapshot inside it, and by the first one after it; an inner body that throws leaves
    /// the outer one open.
    @Test func aSnapshotInsideAnotherJoinsIt() throws {
        let (writer, contact, address) = try storeWithoutAContact()
        let reader = try CRMStore(path: writer.path, access: .readOnly, concurrentReads: true)
        let seen = try reader.snapshot { () -> [Int] in
            let first = try reader.snapshot { try reader.contacts(email: address).count }
            try writer.add([contact])
            let second = try reader.snapshot { try reader.contacts(email: address).count }
            let failed = (try? reader.snapshot { () -> Int in throw CancellationError() }) == nil
            let third = try reader.snapshot { try reader.contacts(email: address).count }
            return [first, second, failed ? -1 : 99, third]
        }
        #expect(seen == [0, 0, -1, 0])
        #expect(try reader.snapshot { try reader.contacts(email: address).count } == 1)
        #expect(try reader.reader().unsafeRead { $0.isInsideTransaction } == false)
    }

    /// A thread reads through the same connection every time, and never through another
    /// thread's.
    @Test func eachThreadHasItsOwnConnection() throws {
        let writer = try temporaryStore()
        try writer.add(try sampleRecords())
        let path = writer.path
        try writer.database.close()
        let shared = try CRMStore(path: path, access: .readOnly, concurrentReads: true)
        let readers = try #require(shared.threadReaders)
        let mine = try readers.current()
        #expect(try readers.current() === mine)
        final class Box: @unchecked Sendable { var connection: DatabaseQueue?; var again: DatabaseQueue? }
        let other = Box()
        let thread = Thread {
            other.connection = try? readers.current()
            other.again = try? readers.current()
        }
        thread.start()
        while !thread.isFinished { usleep(1_000) }
        let theirs = try #require(other.connection)
        #expect(theirs !== mine)
        #expect(other.again === theirs)
        #expect(readers.count == 2)
        // Both answer as the store does.
        let address = try #require(try sampleRecords().compactMap { $0["Email"] }.first)
        #expect(try theirs.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM lookup WHERE kind = 'email' AND key = ?", arguments: [address.lowercased()]) } ?? 0 > 0)
    }

    /// A thread that read through one store's connection and then through another store's
    /// (the first one gone) reads the second store: its slot never hands back the first
    /// store's connection, whatever reuses its memory or key.
    @Test func aThreadThatOutlivesAStoreReadsTheNextOne() throws {
        func store(with id: String) throws -> String {
            let writer = try temporaryStore()
            try writer.add([CRMRecord(object: "Account", id: id, fields: ["Name": id])])
            try writer.database.close()
            return writer.path
        }
        let first = try store(with: "0015e00000One01")
        let second = try store(with: "0015e00000Two01")
        func names(_ connection: DatabaseQueue) throws -> [String] {
            try connection.read { db in try String.fetchAll(db, sql: "SELECT id FROM record WHERE object = 'Account' ORDER BY id") }
        }
        do {
            let one = try CRMStore(path: first, access: .readOnly, concurrentReads: true)
            #expect(try names(try #require(one.threadReaders).current()) == ["0015e00000One01"])
        }
        for _ in 0..<3 {
            let two = try CRMStore(path: second, access: .readOnly, concurrentReads: true)
            #expect(try names(try #require(two.threadReaders).current()) == ["0015e00000Two01"])
            #expect(try two.record(id: "0015e00000Two01") != nil)
            #expect(try two.record(id: "0015e00000One01") == nil)
        }
    }
}
