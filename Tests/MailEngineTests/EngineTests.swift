import Foundation
@testable import MailEngine
import MailMessage
import MailRules
import Testing
import ShippedFixtures



func message(_ text: String) throws -> Message { try MessageParser.parse(Array(text.utf8)) }

@Suite struct CSVTests {
    @Test func readsADataExportWithItsQuirks() throws {
        let text = "\u{FEFF}Id,LastName,Description,Email,Unknown__c\r\n"
            + "0035e00000Aaa01,\"Gómez, PhD\",\"two\nlines\",a@x.example,\r\n"
            + "0035e00000Bbb01,O'Neil,\"say \"\"hi\"\"\",b@x.example,z\r\n"
        let records = try InMemoryDirectory.parseCSV(text, object: "Contact")
        #expect(records.map(\.id) == ["0035e00000Aaa01", "0035e00000Bbb01"])
        #expect(records[0]["LastName"] == "Gómez, PhD")
        #expect(records[0]["Description"] == "two\nlines")
        #expect(records[1]["Description"] == "say \"hi\"")
        #expect(records[0]["Unknown__c"] == nil) // empty is absent
    }

    @Test func aBadRowNamesItsLine() {
        #expect(throws: InMemoryDirectory.CSVProblem(line: 4, reason: "3 fields where the header has 2")) {
            try InMemoryDirectory.parseCSV("Id,Email\n0035e00000Aaa01,\"multi\nline\"\n0035e00000Bbb01,b@x.example,extra\n", object: "Contact")
        }
        #expect(throws: InMemoryDirectory.CSVProblem.self) { try InMemoryDirectory.parseCSV("Name,Email\nx,y\n", object: "Contact") }
    }
}

extension InMemoryDirectory.CSVProblem: Equatable {
    public static func == (left: Self, right: Self) -> Bool { left.line == right.line && left.reason == right.reason }
}

@Suite struct ThreadReferenceTests {
    @Test func caseNumbersAndTokens() {
        #expect(ThreadReferences.caseNumbers(in: "Re: Case 00001042: login fails") == ["00001042"])
        #expect(ThreadReferences.caseNumbers(in: "case #1042, Case No. 20077, showcase 12345") == ["1042", "20077"])
        #expect(ThreadReferences.caseNumbers(in: "CASE-00002026, Case Number: 1042, Case number 1043") == ["00002026", "1042", "1043"])
        // Prose is no Case number: a number without its zeros and without #, No. or Number.
        #expect(ThreadReferences.caseNumbers(in: "just in case 1042 users sign up; a use case: 2026 seats; Case 1500; CASE-2026").isEmpty)
        // The token drops the zeros that pad the id: 500 + 5e + (zeros) + 0XYZ.
        #expect(ThreadReferences.threadTokens(in: "[ ref:_00D5e0ABC._5005e0XYZ:ref ]") == ["5005e0000000XYZ"])
        // Every token in order, after non-ASCII text; a token without its end, or whose Case part
        // is not an id, gives nothing; an unfinished one stops the scan.
        #expect(ThreadReferences.threadTokens(in: "Grüße 👋🏽 ref:_00D1._5001a7:ref, ref:_00D2._500ZZ12345:ref ref:_00D3._500é1:ref ref:_00D4._50012")
                == ["5001a0000000007", "500ZZ0000012345"])
        #expect(ThreadReferences.threadTokens(in: "ref:_00D1.5001a7:ref ref:_:ref ref:_00D._600aa1:ref").isEmpty)
        #expect(ThreadReferences.threadTokens(in: "") == [])
        #expect(ThreadReferences.recordID(inLink: "https://na1.salesforce.com/0035e00000Bob01") == "0035e00000Bob01")
        #expect(ThreadReferences.recordID(inLink: "https://contoso.lightning.force.com/lightning/r/Case/5005e00000Cas01AAA/view") == "5005e00000Cas01AAA")
        #expect(ThreadReferences.recordID(inLink: "https://example.com/0035e00000Bob01") == nil)
    }
}

/// The byte scans of `ThreadReferences` against the scalar-by-scalar reading they replaced, on
/// texts full of near misses: non-ASCII letters before "case", no-break spaces, "No.", short
/// and long numbers, the end of the text.
@Suite struct ThreadReferenceReferenceTests {
    static func referenceCaseNumbers(_ text: String) -> [String] {
        var numbers: [String] = []
        let scalars = Array(text.unicodeScalars)
        var index = 0
        while index + 4 < scalars.count {
            let word = String(String.UnicodeScalarView(scalars[index..<index + 4])).lowercased()
            let before: Unicode.Scalar = index > 0 ? scalars[index - 1] : " "
            if word == "case", !before.properties.isAlphabetic {
                var probe = index + 4
                var marked = false
                while probe < scalars.count, [" ", "#", ":", "-", "\u{A0}"].contains(scalars[probe]) {
                    if scalars[probe] == "#" { marked = true }
                    probe += 1
                }
                func word(_ text: String) -> Bool {
                    probe + text.count <= scalars.count && String(String.UnicodeScalarView(scalars[probe..<probe + text.count])).lowercased() == text
                }
                if word("no.") {
                    probe += 3
                    marked = true
                } else if word("number") {
                    probe += 6
                    marked = true
                    while probe < scalars.count, scalars[probe] == ":" { probe += 1 }
                }
                while probe < scalars.count, scalars[probe] == " " { probe += 1 }
                var digits = ""
                while probe < scalars.count, ("0"..."9").contains(scalars[probe]) { digits.unicodeScalars.append(scalars[probe]); probe += 1 }
                if (4...10).contains(digits.count), marked || digits.hasPrefix("0") { numbers.append(digits) }
            }
            index += 1
        }
        return numbers
    }

    @Test func caseNumbersAgreeWithTheScalarReading() {
        let pieces = ["case", "Case", "CASE", "cAsE", "éCase", "ßcase", "1case", "_case", " ", "\u{A0}", "#", ":", "-", "No.", "no.", "NO", "Number", "numb",
                      "12", "1234", "00001042", "12345678901", "x", "Ünïcödé", "👋🏽", "\u{301}", "\n"]
        var generator = SystemRandomNumberGenerator()
        var texts = ["", "case", "case 1234", "case 12345", "Re: Case No. 1042", "showcase 12345", "CASE\u{A0}#:-No. 123456"]
        for _ in 0..<3000 {
            texts.append((0..<Int.random(in: 1...8, using: &generator)).map { _ in pieces.randomElement(using: &generator) ?? "" }.joined())
        }
        for text in texts {
            #expect(ThreadReferences.caseNumbers(in: text) == Self.referenceCaseNumbers(text), "\(text.debugDescription)")
        }
    }
}

@Suite struct RelatedSearchTests {
    func directory() -> InMemoryDirectory {
        InMemoryDirectory(records: [
            CRMRecord(object: "Contact", id: "0035e00000Bob01", fields: ["Email": "Bob@Fabrikam.com", "AccountId": "0015e00000Fab01"]),
            CRMRecord(object: "Opportunity", id: "0065e00000New01", fields: ["AccountId": "0015e00000Fab01", "CloseDate": "2026-08-01", "IsClosed": "false"]),
            CRMRecord(object: "Opportunity", id: "0065e00000Far01", fields: ["AccountId": "0015e00000Fab01", "CloseDate": "2027-06-01", "IsClosed": "false"]),
            CRMRecord(object: "Opportunity", id: "0065e00000Won01", fields: ["AccountId": "0015e00000Fab01", "CloseDate": "2025-06-01", "IsClosed": "true"]),
            CRMRecord(object: "Opportunity", id: "0065e00000Old01", fields: ["AccountId": "0015e00000Fab01", "CloseDate": "2024-06-01", "IsClosed": "true"]),
            // Open, its close date passed: late by a month it is current, by three years not.
            CRMRecord(object: "Opportunity", id: "0065e00000Due01", fields: ["AccountId": "0015e00000Fab01", "CloseDate": "2026-02-01", "IsClosed": "false"]),
            CRMRecord(object: "Opportunity", id: "0065e00000Sta01", fields: ["AccountId": "0015e00000Fab01", "CloseDate": "2023-01-01", "IsClosed": "false"]),
            CRMRecord(object: "Case", id: "5005e00000New01", fields: ["ContactId": "0035e00000Bob01", "CreatedDate": "2026-02-01T00:00:00Z", "IsClosed": "false"]),
            CRMRecord(object: "Case", id: "5005e00000Old01", fields: ["ContactId": "0035e00000Bob01", "CreatedDate": "2025-10-01T00:00:00Z", "IsClosed": "false"]),
            CRMRecord(object: "Case", id: "5005e00000Shut1", fields: ["ContactId": "0035e00000Bob01", "CreatedDate": "2026-02-20T00:00:00Z", "Status": "Closed"]),
        ])
    }

    @Test func datesAreRelativeToTheMessage() throws {
        let engine = Engine(pack: try shippedPack(), directory: directory())
        let facts = try engine.facts(try message("From: bob@fabrikam.com\nTo: ann@contoso.com\nDate: Sun, 1 Mar 2026 10:00:00 +0000\n\nhi"),
                                     context: ProcessContext(mailbox: "ann@contoso.com"))
        #expect(facts.related.contacts == ["0035e00000Bob01"])
        // Not 2027, not closed in 2024, not open since 2023 (a stale deal was linked first).
        #expect(Set(facts.related.opportunities) == ["0065e00000New01", "0065e00000Due01", "0065e00000Won01"], "\(facts.related.opportunities)")
        #expect(facts.related.cases == ["5005e00000New01"]) // not older than 90 days, not closed
        #expect(facts.direction == "inbound")
        #expect(facts.participants.first { $0.owner }?.address.normalized == "ann@contoso.com")
    }

    @Test func theOwnersAliasOnACorporateDomainIsTheOwner() throws {
        let engine = Engine(pack: try shippedPack(), directory: directory())
        let facts = try engine.facts(try message("From: Ann <ann@contoso.co.uk>\nTo: bob@fabrikam.com\n\nhi"), context: ProcessContext(mailbox: "ann@contoso.com"))
        #expect(facts.direction == "outbound")
    }

    @Test func blocklistLayersAndWhichEntryMatched() throws {
        let engine = Engine(pack: try shippedPack(), directory: directory())
        let facts = try engine.facts(try message("From: a@mail.newsletters.example\nTo: ann@contoso.com, x@promo.example, bob@fabrikam.com\n\nhi"),
                                     context: ProcessContext(mailbox: "ann@contoso.com"))
        let layers = facts.participants.map { "\($0.address.normalized) \($0.blockedBy ?? "-") \($0.blockedEntry ?? "-")" }
        #expect(layers == ["a@mail.newsletters.example org newsletters.example", "ann@contoso.com internal contoso.com",
                           "x@promo.example individual promo.example", "bob@fabrikam.com - -"])
    }
}

/// `PendingSave.affects`: when `batch --apply` must send its waiting saves before deciding the
/// next message (pure, from the look-up plan alone).
@Suite struct PendingSaveTests {
    func pending(_ text: String, creates addresses: [String] = []) throws -> PendingSave {
        var decision = Decision(messageID: nil, verdict: .save, saveAs: "Task", who: [], what: nil, reasons: [], observations: [],
                                category: nil, record: ("Task", []), toCreate: [])
        decision.toCreate = addresses.map { RecordToCreate(address: $0, object: "Lead", accountID: nil) }
        return PendingSave(decision: decision, message: try message(text), mailbox: "ann@contoso.com")
    }

    func plan(_ text: String) throws -> LookupPlan {
        FactsBuilder(pack: try shippedPack()).plan(try message(text), context: ProcessContext(mailbox: "ann@contoso.com"))
    }

    @Test func aDecisionWaitsForTheSavesItCouldRead() throws {
        let first = try pending("From: Sam <sam@unknown.example>\r\nTo: ann@contoso.com\r\nMessage-ID: <a@x>\r\n\r\nHi\r\n", creates: ["sam@unknown.example"])
        // The same unknown sender: the waiting save creates the Lead this decision asks about.
        #expect(first.affects(try plan("From: Sam <sam@unknown.example>\r\nTo: ann@contoso.com\r\nMessage-ID: <b@x>\r\n\r\nAgain\r\n")))
        // A reply naming the waiting message, or the same message again.
        #expect(first.affects(try plan("From: Bob <bob@fabrikam.com>\r\nTo: ann@contoso.com\r\nIn-Reply-To: <a@x>\r\nMessage-ID: <c@x>\r\n\r\nRe\r\n")))
        #expect(first.affects(try plan("From: Bob <bob@fabrikam.com>\r\nTo: ann@contoso.com\r\nMessage-ID: <a@x>\r\n\r\nDup\r\n")))
        // Anything else goes on without sending it.
        #expect(!first.affects(try plan("From: Bob <bob@fabrikam.com>\r\nTo: ann@contoso.com\r\nMessage-ID: <d@x>\r\n\r\nOther\r\n")))
        // A save that creates nothing is only read by its own key and thread.
        let plain = try pending("From: Bob <bob@fabrikam.com>\r\nTo: ann@contoso.com\r\nMessage-ID: <e@x>\r\n\r\nHi\r\n")
        #expect(!plain.affects(try plan("From: Bob <bob@fabrikam.com>\r\nTo: ann@contoso.com\r\nMessage-ID: <f@x>\r\n\r\nHi\r\n")))
    }
}
