import Foundation
import SalesforceTestServer
import Testing

/// A Message-ID longer than Salesforce's 255-character fields (legal: RFC 5322 sets no
/// length) is saved under its shortened key, once, into the store and into the org; the org
/// refused the whole id (STRING_TOO_LONG), so the message could never be saved.
@Suite(.serialized) struct LongMessageIDTests {
    static let longID = "<" + String(repeating: "Part-of-a-very-long-id.", count: 13) + "X@Mail.Fabrikam.COM>"

    /// The sample customer question under a 320-character Message-ID.
    static func message(in folder: URL) throws -> String {
        let sample = try String(contentsOf: Binary.packageRoot.appendingPathComponent("examples/messages/01-customer-question.eml"), encoding: .utf8)
        let file = folder.appendingPathComponent("long-id.eml").path
        try sample.replacingOccurrences(of: "<CAB1234567@mail.fabrikam.com>", with: longID).write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    static func saved(_ result: Binary.Result) throws -> [String: Any] {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stdout)")
        return try #require(object["saved"] as? [String: Any], "\(result.stdout)")
    }

    @Test func theStoreSavesItOnceUnderItsShortenedKey() throws {
        #expect(Self.longID.utf16.count > 300)
        let folder = try Mailboxes.temporaryFolder("long-id")
        let store = folder.appendingPathComponent("crm.sqlite").path
        for object in ["Account", "Contact", "Lead", "Opportunity", "Case", "User", "EmailMessage", "EmailMessageRelation", "Task"] {
            let imported = try Binary.run(["crm", "import", "--store", store, "--object", object, "examples/crm/\(object).csv"])
            #expect(imported.status == 0, "\(imported.stderr)")
        }
        let file = try Self.message(in: folder)
        let arguments = ["process", "--mailbox", "ann@contoso.com", "--store", store, "--apply", file]
        let first = try Binary.run(arguments)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(try Self.saved(first)["created"] as? Bool == true)
        let second = try Binary.run(arguments)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(try Self.saved(second)["created"] as? Bool == false)
        // The Task holds the key in angle brackets: within the field, and read back to the key.
        let export = try Binary.run(["crm", "export", "--store", store, "--object", "Task"])
        let line = try #require(export.stdout.split(separator: "\n").first { $0.contains("long-id.mailsave.invalid") }, "\(export.stdout)")
        let value = try #require(line.split(separator: ",").first { $0.contains("long-id.mailsave.invalid") })
        #expect(value.hasPrefix("<Part-of-a-very-long-id."))
        #expect(value.hasSuffix("@long-id.mailsave.invalid>"))
        #expect(value.utf16.count <= 255)
    }

    @Test func theOrgSavesItOnceWhereItRefusedTheWholeId() throws {
        let (server, folder) = try SalesforceCommandTests.serverWithSampleOrg()
        let file = try Self.message(in: URL(fileURLWithPath: folder))
        let environment = ["MAILSAVE_SF_TASK_MESSAGE_ID_FIELD": "Email_Message_ID__c"]
        func run(ledger: String) throws -> Binary.Result {
            try SalesforceCommandTests.run(server, ["process", "--mailbox", "ann@contoso.com", "--salesforce", "--store", folder + "/" + ledger,
                                                     "--apply", file], extra: environment)
        }
        let first = try run(ledger: "ledger.sqlite")
        #expect(first.status == 0, "\(first.stderr)")
        #expect(try Self.saved(first)["created"] as? Bool == true)
        // A new ledger: only the org's own record (its Message-ID field) can say it is saved.
        let second = try run(ledger: "other-ledger.sqlite")
        #expect(second.status == 0, "\(second.stderr)")
        #expect(try Self.saved(second)["created"] as? Bool == false)
    }

    /// One key, one value: a Message-ID whose domain differs only in case is the same message,
    /// and the org's Unique, case-sensitive Task field refuses it a second time (the fields
    /// held the ids as written, so the org took both).
    @Test func theOrgsUniqueFieldHoldsTheKeyNotTheSpelling() throws {
        let (server, folder) = try SalesforceCommandTests.serverWithSampleOrg()
        let sample = try String(contentsOf: Binary.packageRoot.appendingPathComponent("examples/messages/01-customer-question.eml"), encoding: .utf8)
        var results: [Binary.Result] = []
        for (index, id) in ["<Dup1@Mail.Fabrikam.com>", "<Dup1@mail.fabrikam.com>"].enumerated() {
            let file = folder + "/dup-\(index).eml"
            try sample.replacingOccurrences(of: "<CAB1234567@mail.fabrikam.com>", with: id).write(toFile: file, atomically: true, encoding: .utf8)
            // A ledger each: only the org can tell that the second is the first.
            results.append(try SalesforceCommandTests.run(server, ["process", "--mailbox", "ann@contoso.com", "--salesforce", "--store", folder + "/ledger-\(index).sqlite",
                                                                   "--apply", file], extra: ["MAILSAVE_SF_TASK_MESSAGE_ID_FIELD": "Email_Message_ID__c"]))
        }
        #expect(results.map(\.status) == [0, 0], "\(results.map(\.stderr))")
        #expect(try results.map { try Self.saved($0)["created"] as? Bool } == [true, false])
    }
}
