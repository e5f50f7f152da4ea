import Foundation
import MailRules
import SalesforceTestServer
import Testing

/// The Save dialog's selection against Salesforce: one message's decision checks it in its own
/// look-up call (not a call of its own first), and a refused selection is still exit 2 with
/// nothing saved.
@Suite struct SalesforceSelectionTests {
    @Test func oneMessageWithASelectionIsOneLookupCall() throws {
        let (server, _) = try SalesforceCommandTests.serverWithSampleOrg()
        let base = ["process", "--rules", "rules", "--mailbox", "ann@contoso.com", "--salesforce", "--trigger", "button"]
        let result = try SalesforceCommandTests.run(server, base + ["--select", "contact=0035e00000Car01", "examples/messages/01-customer-question.eml"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("0035e00000Car01"), "\(result.stdout)")
        let calls = try server.stats()["by_kind"]?["composite"]?.number.map { Int($0) } ?? -1
        let log = try server.log()
        #expect(calls == 1, "\(calls) composite calls for one message: \(log)")

        let refused = try SalesforceCommandTests.run(server, base + ["--select", "contact=0035e00000Zzz01", "--apply",
                                                                     "examples/messages/01-customer-question.eml"])
        #expect(refused.status == 2, "\(refused.stderr)")
        #expect(refused.stderr.contains("0035e00000Zzz01") && refused.stderr.contains("no such record"), "\(refused.stderr)")
        #expect(refused.stdout.isEmpty)
    }
}
