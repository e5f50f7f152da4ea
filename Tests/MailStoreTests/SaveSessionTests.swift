import Foundation
import GRDB
import MailEngine
import MailMessage
import MailRules
@testable import MailStore
import Testing
import ShippedFixtures

/// Group commit (`SaveSession`): a group is saved whole or not at all, and saves what
/// message-by-message saving saves.
@Suite struct SaveSessionTests {
    /// A message from Bob big enough (about 30 KB of body) that a few saves fill a capped store.
    func bigMessage(_ number: Int) throws -> Message {
        try MessageParser.parse(Array(("From: Bob Buyer <bob@fabrikam.com>\r\nTo: ann@contoso.com\r\nSubject: Big \(number)\r\n"
            + "Message-ID: <group-\(number)@fabrikam.com>\r\n\r\n" + String(repeating: "All work and no play. ", count: 1400) + "\r\n").utf8))
    }

    /// Limits the store's size to its current pages plus `pages` (a full disk, for SQLite).
    func cap(_ store: CRMStore, extraPages pages: Int?) throws {
        try store.database.writeWithoutTransaction { db in
            let count = try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0
            _ = try Int.fetchOne(db, sql: "PRAGMA max_page_count = \(pages.map { count + $0 } ?? 1_073_741_823)")
        }
    }

    /// Decides and saves `messages` through one session, returning what each save reported.
    func saveInGroups(_ messages: [Message], store: CRMStore, pack: RulePack, groupSize: Int = 256) throws -> [SaveResult?] {
        try store.withSaveSession(maxGroupMessages: groupSize, maxGroupSeconds: 60) { session in
            var results: [SaveResult?] = []
            for message in messages {
                let decision = try Engine(pack: pack, directory: session).decide(message, context: ProcessContext(mailbox: "ann@contoso.com")).0
                results.append(try session.write(decision, message: message, mailbox: "ann@contoso.com"))
                if session.isGroupDue { try session.commit() }
            }
            return results
        }
    }

    /// Every row of the tables a save writes (the ledger without its time stamp), in key order.
    func rows(_ store: CRMStore) throws -> [String] {
        try store.database.read { db in
            try String.fetchAll(db, sql: "SELECT id || ' ' || object || ' ' || fields FROM record ORDER BY id")
                + String.fetchAll(db, sql: "SELECT kind || ' ' || key || ' ' || id FROM lookup ORDER BY kind, key, id")
                + String.fetchAll(db, sql: "SELECT message_key || ' ' || record_id || ' ' || object || ' ' || mailbox FROM ledger ORDER BY message_key")
                + String.fetchAll(db, sql: "SELECT prefix || ' ' || next FROM sequence ORDER BY prefix")
        }
    }

    /// A group counts one message per decision, whether the ledger alone decided it or the
    /// decision searched the CRM too (two look-ups, one ledger question), and opens on the
    /// ledger question: the first step of a decision reads inside the group.
    @Test func aGroupCountsEachDecisionOnce() throws {
        let store = try temporaryStore()
        try store.add(try sampleRecords())
        let pack = try shippedPack()
        let files = ["05-bounce-postfix.eml", "02-internal-only.eml", "01-customer-question.eml", "08-gmail-prospect.eml"]
        try store.withSaveSession(maxGroupMessages: 100, maxGroupSeconds: 60) { session in
            for (index, file) in files.enumerated() {
                _ = try Engine(pack: pack, directory: session).decide(try sampleMessage(file), context: ProcessContext(mailbox: "ann@contoso.com"))
                #expect(session.isGroupOpen, "\(file)")
                #expect(session.groupMessages == index + 1, "\(file)")
            }
        }
    }

    @Test func aSaveThatFailsRollsItsWholeGroupBackAndASecondSessionFinishes() throws {
        let pack = try shippedPack()
        let messages = try (0..<6).map(bigMessage)
        let store = try temporaryStore()
        try store.add(try sampleRecords())
        try cap(store, extraPages: 40)
        var saved = 0
        #expect(throws: CRMError.self) {
            try store.withSaveSession(maxGroupMessages: 256, maxGroupSeconds: 60) { session in
                for message in messages {
                    let decision = try Engine(pack: pack, directory: session).decide(message, context: ProcessContext(mailbox: "ann@contoso.com")).0
                    if try session.write(decision, message: message, mailbox: "ann@contoso.com") != nil { saved += 1 }
                }
            }
        }
        // Some saves of the group were made before the disk filled up: none of them stayed.
        #expect(saved >= 1 && saved < messages.count)
        #expect(try store.ledgerCount() == 0)
        #expect(try store.records(object: "Task").count == 1) // the sample's own
        // The disk has room again: a new session saves everything, with the ids a store
        // that never failed gives.
        try cap(store, extraPages: nil)
        let results = try saveInGroups(messages, store: store, pack: pack)
        #expect(results.allSatisfy { $0?.created == true })
        let reference = try temporaryStore()
        try reference.add(try sampleRecords())
        for message in messages {
            let decision = try Engine(pack: pack, directory: reference).decide(message, context: ProcessContext(mailbox: "ann@contoso.com")).0
            _ = try reference.save(decision, message: message, mailbox: "ann@contoso.com")
        }
        #expect(try rows(store) == rows(reference))
    }

    @Test func groupsSaveWhatOneTransactionAMessageSaves() throws {
        let pack = try shippedPack()
        let question = String(decoding: try Data(contentsOf: packageRoot.appendingPathComponent("examples/messages/01-customer-question.eml")), as: UTF8.self)
        var texts: [String] = []
        for number in 0..<12 {
            texts.append(question.replacing("<CAB1234567@mail.fabrikam.com>", with: "<copy-\(number)@mail.fabrikam.com>"))
            // A copy of an earlier message (the second finds the first in the ledger), and a
            // reply to it (found through the saved Task's Message-ID).
            if number % 4 == 3 { texts.append(question.replacing("<CAB1234567@mail.fabrikam.com>", with: "<copy-\(number - 1)@mail.fabrikam.com>")) }
            if number % 3 == 2 {
                texts.append("From: Bob Buyer <bob@fabrikam.com>\r\nTo: Ann Seller <ann@contoso.com>\r\nSubject: Re: copy \(number)\r\n"
                             + "Message-ID: <reply-\(number)@mail.fabrikam.com>\r\nIn-Reply-To: <copy-\(number)@mail.fabrikam.com>\r\n"
                             + "References: <copy-\(number)@mail.fabrikam.com>\r\n\r\nThanks.\r\n")
            }
        }
        let messages = try texts.map { try MessageParser.parse(Array($0.utf8)) }
        let perMessage = try temporaryStore()
        try perMessage.add(try sampleRecords())
        var expected: [SaveResult?] = []
        for message in messages {
            let decision = try Engine(pack: pack, directory: perMessage).decide(message, context: ProcessContext(mailbox: "ann@contoso.com")).0
            expected.append(try perMessage.save(decision, message: message, mailbox: "ann@contoso.com"))
        }
        // Each Message-ID saved once: a copy finds the first in the ledger and saves nothing.
        #expect(expected.filter { $0?.created == true }.count == Set(messages.compactMap(\.messageID)).count)
        #expect(expected.count > Set(messages.compactMap(\.messageID)).count)
        for groupSize in [1, 5, 256] {
            let grouped = try temporaryStore()
            try grouped.add(try sampleRecords())
            let results = try saveInGroups(messages, store: grouped, pack: pack, groupSize: groupSize)
            #expect(results == expected, "groups of \(groupSize)")
            #expect(try rows(grouped) == rows(perMessage), "groups of \(groupSize)")
        }
    }
}
