import MailEngine
import MailMessage
import MailRules
import ScalingCheck
import ShippedFixtures
import Testing

/// The look-up plan asks each key once, in the order first asked, and takes time linear in
/// what the message names (a message may name 100,000 addresses).
@Suite struct LookupPlanTests {
    /// A message from a customer naming `count` recipients at one domain, `count` addresses
    /// in the body and `count` References ids; `repeats` of each name them twice.
    static func message(_ count: Int, repeats: Bool = false) throws -> Message {
        let times = repeats ? 2 : 1
        var text = "From: bob@fabrikam.com\nTo: ann@contoso.com, "
        text += (0..<count * times).map { "r\($0 % count)@fabrikam.com, x\($0 % count)@c\($0 % count % 64).example" }.joined(separator: ", ") + "\n"
        text += "Message-ID: <x@fabrikam.com>\nReferences: " + (0..<count * times).map { "<\($0 % count)@r.example>" }.joined(separator: " ") + "\n\n"
        text += (0..<count * times).map { "u\($0 % count)@e\($0 % count).example" }.joined(separator: " ") + "\n"
        return try MessageParser.parse(Array(text.utf8))
    }

    static let context = ProcessContext(mailbox: "ann@contoso.com")

    @Test func eachKeyIsAskedOnceInTheOrderFirstAsked() throws {
        let pack = try shippedPack()
        let once = FactsBuilder(pack: pack).plan(try Self.message(100), context: Self.context)
        let twice = FactsBuilder(pack: pack).plan(try Self.message(100, repeats: true), context: Self.context)
        // Past the length where the plan stops scanning and hashes: still each key once.
        #expect(twice == once)
        #expect(once.messageIdentifiers.count == 100)
        #expect(once.messageIdentifiers.first == "99@r.example")
        #expect(Set(once.addresses).count == once.addresses.count)
        #expect(once.addresses.contains("r0@fabrikam.com") && once.addresses.contains("u99@e99.example"))
        let domain = try #require(once.contactDomains.first { $0.domain == "fabrikam.com" })
        #expect(domain.addresses.count == 101) // bob and the 100 recipients
        #expect(Set(domain.addresses).count == domain.addresses.count)
        // 64 more domains, each asked once, each with its own recipients (past the scan limit
        // the domains are found through the index).
        #expect(once.contactDomains.count == 65)
        #expect(Set(once.contactDomains.map(\.domain)).count == 65)
        let c7 = try #require(once.contactDomains.first { $0.domain == "c7.example" })
        #expect(c7.addresses == [7, 71].map { "x\($0)@c7.example" })
    }

    @Test func planningTakesLinearTime() throws {
        let pack = try shippedPack()
        let small = try Self.message(4_000), large = try Self.message(8_000)
        let ratio = Scaling.ratio(small: small, large: large) { message in
            _ = FactsBuilder(pack: pack).plan(message, context: Self.context)
        }
        #expect(ratio < Scaling.limit, "doubling the addresses and ids multiplied the time by \(ratio)")
    }
}
