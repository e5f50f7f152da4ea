import Foundation
import GRDB
import MailEngine
import MailMessage
import MailRules
@testable import MailStore
import Testing
import ShippedFixtures

/// The Account by the Contacts of a domain in the store: the same answers as the CSV
/// directory, an index seek whatever the size, and old stores upgraded.
@Suite struct ContactDomainStoreTests {
    static let records: [CRMRecord] = [
        CRMRecord(object: "Account", id: "0015e00000Tsp01AAA", fields: ["Name": "Tailspin Toys"]),
        CRMRecord(object: "Account", id: "0015e00000Shr02", fields: ["Name": "Shared Two"]),
        CRMRecord(object: "Contact", id: "0035e00000Tsp01", fields: ["Email": "j.doe@tailspin.example", "LastName": "Doe", "AccountId": "0015e00000Tsp01"]),
        CRMRecord(object: "Contact", id: "0035e00000Tsp02", fields: ["Email": "K.Roe@TAILSPIN.example", "LastName": "Roe", "AccountId": "0015e00000Tsp01AAA"]),
        CRMRecord(object: "Contact", id: "0035e00000Tsp03", fields: ["Email": "private@tailspin.example", "LastName": "Private"]),
        CRMRecord(object: "Contact", id: "0035e00000Shr01", fields: ["Email": "a@shared.example", "LastName": "A", "AccountId": "0015e00000Shr01"]),
        CRMRecord(object: "Contact", id: "0035e00000Shr02", fields: ["Email": "b@shared.example", "Secondary_Email__c": "b@second.example",
                                                                     "LastName": "B", "AccountId": "0015e00000Shr02"]),
        CRMRecord(object: "Contact", id: "0035e00000Sub01", fields: ["Email": "c@mail.subdomain.example", "LastName": "C", "AccountId": "0015e00000Shr02"]),
        // A Lead is no Contact: its domain tells no Account.
        CRMRecord(object: "Lead", id: "00Q5e00000Led01", fields: ["Email": "lead@lead-only.example", "LastName": "L", "Company": "X"]),
    ]

    static let expected: [(String, DomainAccount?)] = [
        ("tailspin.example", .one("0015e00000Tsp01AAA")), // the Account's id as the CRM holds it
        ("shared.example", .several),
        ("second.example", .one("0015e00000Shr02")), // other email fields count too
        ("mail.subdomain.example", .one("0015e00000Shr02")),
        ("subdomain.example", nil), // exact domains only
        ("lead-only.example", nil),
        ("unknown.example", nil),
    ]

    @Test func theStoreAndTheCSVDirectoryAnswerAlike() throws {
        let store = try temporaryStore()
        try store.add(Self.records)
        let memory = InMemoryDirectory(records: Self.records)
        for (domain, answer) in Self.expected {
            #expect(try store.account(contactDomain: domain) == answer, "sqlite \(domain)")
            #expect(memory.account(contactDomain: domain) == answer, "memory \(domain)")
        }
        // Whole plans, as the engine makes them.
        let pack = try shippedPack()
        for from in ["new@tailspin.example", "j.doe@tailspin.example", "x@shared.example", "x@subdomain.example", "x@gmail.com"] {
            let text = "From: \(from)\nTo: ann@contoso.com, other@second.example\nMessage-ID: <p@x>\n\nHi."
            let plan = FactsBuilder(pack: pack).plan(try MessageParser.parse(Array(text.utf8)), context: ProcessContext(mailbox: "ann@contoso.com"))
            let fromStore = try store.resolve(plan), fromMemory = try memory.resolve(plan)
            #expect(CRMContractTests.normalised(fromStore) == CRMContractTests.normalised(fromMemory), "\(from)")
            #expect(fromStore.accountByContactDomain["second.example"] == .one("0015e00000Shr02"), "\(from)")
        }
    }

    @Test func replacingAContactReindexesItsDomain() throws {
        let store = try temporaryStore()
        try store.add(Self.records)
        try store.add([CRMRecord(object: "Contact", id: "0035e00000Shr01", fields: ["Email": "a@elsewhere.example", "LastName": "A", "AccountId": "0015e00000Shr01"])])
        #expect(try store.account(contactDomain: "shared.example") == .one("0015e00000Shr02"))
        #expect(try store.account(contactDomain: "elsewhere.example") == .one("0015e00000Shr01"))
    }

    /// Two seeks of the primary key: SQLite's plan says so, and 100,000 Contacts at one domain
    /// answer as fast as one.
    @Test func theLookUpIsAnIndexSeek() throws {
        let store = try temporaryStore()
        var records: [CRMRecord] = []
        for index in 0..<100_000 {
            let id = String(format: "0035e0%09d", index)
            records.append(CRMRecord(object: "Contact", id: id, fields: ["Email": "p\(index)@big.example", "LastName": "P", "AccountId": "0015e00000Big01"]))
        }
        records.append(CRMRecord(object: "Contact", id: "0035e00000One01", fields: ["Email": "x@small.example", "LastName": "X", "AccountId": "0015e00000Sml01"]))
        try store.add(records)
        let plan = try store.database.read { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN SELECT key FROM lookup WHERE kind = ? AND key > ? AND key < ? ORDER BY key LIMIT 1",
                             arguments: ["domain_account", "big.example\u{1F}", "big.example\u{20}"]).map { $0["detail"] as String? ?? "" }
        }
        #expect(plan.contains { $0.contains("SEARCH lookup USING PRIMARY KEY (kind=? AND key>? AND key<?)") }, "\(plan)")
        func time(_ domain: String) throws -> Double {
            let start = Date()
            for _ in 0..<200 { _ = try store.account(contactDomain: domain) }
            return Date().timeIntervalSince(start) / 200
        }
        #expect(try store.account(contactDomain: "big.example") == .one("0015e00000Big01"))
        let (big, small) = (try time("big.example"), try time("small.example"))
        #expect(big < 0.002, "\(big * 1000) ms for a domain of 100,000 Contacts")
        #expect(big < small * 5 + 0.0002, "big \(big * 1000) ms, small \(small * 1000) ms")
    }

    /// A decision's look-up is two primary-key seeks and sorts nothing: the lookup key's own
    /// order is the records' id order (`ORDER BY record.id` had SQLite sort each answer).
    @Test func theLookUpStatementsSortNothing() throws {
        let store = try temporaryStore()
        let ids = ["0035e00000Ccc01", "0035e00000Aaa01", "0035e00000Bbb01"]
        try store.add(ids.map { CRMRecord(object: "Contact", id: $0, fields: ["Email": "shared@one.example", "LastName": "S"]) })
        for (sql, arguments) in [(CRMStore.lookupSQL, ["email", "shared@one.example"])] {
            let plan = try store.database.read { db in
                try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql, arguments: StatementArguments(arguments)).map { $0["detail"] as String? ?? "" }
            }
            #expect(plan.count == 2 && plan.allSatisfy { $0.contains("USING PRIMARY KEY") } && !plan.contains { $0.contains("B-TREE") }, "\(plan)")
        }
        #expect(try store.contacts(email: "shared@one.example").map(\.id) == ids.sorted())
        // One statement for every object: a Lead of the same address is left out of the
        // Contacts and found as a Lead (with its fields).
        try store.add([CRMRecord(object: "Lead", id: "00Q5e00000Lea01", fields: ["Email": "shared@one.example", "LastName": "L", "Company": "One"])])
        #expect(try store.contacts(email: "shared@one.example").map(\.id) == ids.sorted())
        #expect(try store.leads(email: "shared@one.example").map(\.id) == ["00Q5e00000Lea01"])
        #expect(try store.leads(email: "shared@one.example").first?.fields["Company"] == "One")
        #expect(try store.users(email: "shared@one.example").isEmpty)
        #expect(try store.people(email: "shared@one.example").contacts.count == 3)
    }

    /// A format 3 store (no domain index) opened by a command that only reads is upgraded once,
    /// then answers; a newer store is still refused.
    @Test func aFormat3StoreIsUpgradedAndIndexed() throws {
        let store = try temporaryStore()
        try store.add(Self.records)
        let path = store.path
        try store.database.write { db in
            try db.execute(sql: "DELETE FROM lookup WHERE kind = 'domain_account'; PRAGMA user_version = 3")
        }
        try store.database.close()
        let reader = try CRMStore(path: path, access: .readOnly)
        for (domain, answer) in Self.expected { #expect(try reader.account(contactDomain: domain) == answer, "\(domain)") }
        #expect(try reader.database.read { try Int.fetchOne($0, sql: "PRAGMA user_version") } == CRMStore.formatVersion)
        let writer = try CRMStore(path: path)
        #expect(try writer.account(contactDomain: "shared.example") == .several)
    }
}
