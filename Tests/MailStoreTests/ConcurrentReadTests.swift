import Foundation
import GRDB
import MailEngine
import MailRules
@testable import MailStore
import Testing

/// A read-only store opened for several deciding threads (`batch --jobs N`): a pool of
/// readers, each thread's snapshot its own, every answer the one connection would give.
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
        #expect(shared.database is DatabasePool)
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
    }
}
