import Foundation
@testable import MailEngine
import MailMessage
import MailRules
import Testing
import ShippedFixtures

/// The Account of an unknown sender by the other Contacts of its domain, before the website
/// match (the Salesforce issue "Accounts by website").
@Suite struct ContactDomainTests {
    /// Tailspin's Website names another domain, so only its Contacts can tie tailspin.example
    /// to it; Woodgrove's Website is woodgrove.example but its Contacts there belong to
    /// Tailspin (a reseller's domain); shared.example's Contacts belong to two Accounts;
    /// gmail.com's Contact has an Account.
    static let records: [CRMRecord] = [
        CRMRecord(object: "Account", id: "0015e00000Tsp01", fields: ["Name": "Tailspin Toys", "Website": "https://tailspin-toys.example"]),
        CRMRecord(object: "Account", id: "0015e00000Wgr01", fields: ["Name": "Woodgrove", "Website": "woodgrove.example"]),
        CRMRecord(object: "Account", id: "0015e00000Shr01", fields: ["Name": "Shared One", "Website": "shared.example"]),
        CRMRecord(object: "Account", id: "0015e00000Shr02", fields: ["Name": "Shared Two"]),
        CRMRecord(object: "Contact", id: "0035e00000Tsp01", fields: ["Email": "j.doe@tailspin.example", "LastName": "Doe", "AccountId": "0015e00000Tsp01"]),
        // The same Account in its 18-character form, and a Contact with no Account: still one Account.
        CRMRecord(object: "Contact", id: "0035e00000Tsp02", fields: ["Email": "K.Roe@Tailspin.example", "LastName": "Roe", "AccountId": "0015e00000Tsp01AAA"]),
        CRMRecord(object: "Contact", id: "0035e00000Tsp03", fields: ["Email": "private@tailspin.example", "LastName": "Private"]),
        CRMRecord(object: "Contact", id: "0035e00000Wgr01", fields: ["Email": "sales@woodgrove.example", "LastName": "Sales", "AccountId": "0015e00000Tsp01"]),
        CRMRecord(object: "Contact", id: "0035e00000Shr01", fields: ["Email": "a@shared.example", "LastName": "A", "AccountId": "0015e00000Shr01"]),
        CRMRecord(object: "Contact", id: "0035e00000Shr02", fields: ["Email": "b@shared.example", "LastName": "B", "AccountId": "0015e00000Shr02"]),
        CRMRecord(object: "Contact", id: "0035e00000Sub01", fields: ["Email": "c@mail.subdomain.example", "LastName": "C", "AccountId": "0015e00000Shr02"]),
        CRMRecord(object: "Contact", id: "0035e00000Gml01", fields: ["Email": "someone@gmail.com", "LastName": "G", "AccountId": "0015e00000Shr01"]),
    ]

    func facts(_ from: String, to: String = "ann@contoso.com") throws -> EngineFacts {
        let engine = Engine(pack: try shippedPack(), directory: InMemoryDirectory(records: Self.records))
        return try engine.facts(try message("From: \(from)\nTo: \(to)\nSubject: Hello\nMessage-ID: <cd-\(from)>\n\nHi."),
                                context: ProcessContext(mailbox: "ann@contoso.com"))
    }

    @Test func anUnknownSenderAtAContactsDomainGetsItsAccount() throws {
        let facts = try facts("new.person@tailspin.example")
        let sender = try #require(facts.participants.first)
        #expect(sender.contact == nil && sender.lead == nil)
        #expect(sender.account == "0015e00000Tsp01")
        #expect(sender.accountByContactDomain == "tailspin.example")
        #expect(sender.accountByWebsite == nil)
        #expect(facts.related.accounts == ["0015e00000Tsp01"])
        // The rules see it as the participant's Account.
        guard case .list(let people)? = facts.object["participants"], case .object(let first)? = people.first else {
            Issue.record("no participants fact")
            return
        }
        #expect(first["account"] == .string("0015e00000Tsp01"))
    }

    @Test func theContactsAccountComesBeforeTheWebsiteMatch() throws {
        // woodgrove.example is Woodgrove's Website, but its Contacts are Tailspin's.
        let facts = try facts("buyer@woodgrove.example")
        #expect(facts.participants.first?.account == "0015e00000Tsp01")
        #expect(facts.related.accounts == ["0015e00000Tsp01"])
    }

    @Test func contactsOfSeveralAccountsMatchNoneAndTheWebsiteDecides() throws {
        let facts = try facts("c@shared.example")
        #expect(facts.participants.first?.accountByContactDomain == nil)
        #expect(facts.participants.first?.account == "0015e00000Shr01")
        #expect(facts.participants.first?.accountByWebsite == "shared.example")
    }

    @Test func freeMailIsNeverMatchedByItsContacts() throws {
        let facts = try facts("stranger@gmail.com")
        #expect(facts.participants.first?.account == nil)
        #expect(facts.related.accounts.isEmpty)
        let plan = FactsBuilder(pack: try shippedPack()).plan(try message("From: stranger@gmail.com\nTo: ann@contoso.com\n\nHi."),
                                                              context: ProcessContext(mailbox: "ann@contoso.com"))
        #expect(plan.contactDomains.isEmpty)
    }

    @Test func theCorporateDomainsAreNeverAsked() throws {
        let plan = FactsBuilder(pack: try shippedPack()).plan(
            try message("From: colleague@contoso.com\nTo: ann@contoso.com, x@sub.contoso.co.uk, new@tailspin.example\n\nHi."),
            context: ProcessContext(mailbox: "ann@contoso.com"))
        #expect(plan.contactDomains == [ContactDomainQuestion(domain: "tailspin.example", addresses: ["new@tailspin.example"])])
    }

    @Test func aSubdomainIsNotItsParent() throws {
        // mail.subdomain.example's Contact does not make subdomain.example its Account, nor the reverse.
        #expect(try facts("x@subdomain.example").participants.first?.account == nil)
        #expect(try facts("x@mail.subdomain.example").participants.first?.account == "0015e00000Shr02")
        #expect(try facts("x@eu.tailspin.example").participants.first?.account == nil)
    }

    @Test func theQuestionIsAnsweredOnlyForUnknownAddresses() throws {
        let directory = InMemoryDirectory(records: Self.records)
        var plan = LookupPlan()
        plan.ask(contactDomain: "tailspin.example", for: "j.doe@tailspin.example")
        plan.ask(contactDomain: "shared.example", for: "new@shared.example")
        let answers = try directory.resolve(plan)
        // A Contact at the domain is on the message: its Account is known, nothing is asked.
        #expect(answers.account(contactDomain: "tailspin.example") == nil)
        #expect(answers.account(contactDomain: "shared.example") == .several)
    }

    @Test func aCreatedContactGoesUnderTheContactsAccount() throws {
        let text = try String(contentsOf: packageRoot.appendingPathComponent("rules/org.yaml"), encoding: .utf8)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("contact-domain-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        for name in try FileManager.default.contentsOfDirectory(atPath: packageRoot.appendingPathComponent("rules").path) where name.hasSuffix(".yaml") {
            try FileManager.default.copyItem(at: packageRoot.appendingPathComponent("rules/\(name)"), to: folder.appendingPathComponent(name))
        }
        try text.replacingOccurrences(of: "auto_save_mode: general", with: "auto_save_mode: forced")
            .write(to: folder.appendingPathComponent("org.yaml"), atomically: true, encoding: .utf8)
        let pack: RulePack
        switch try Linter.load(folder.path) {
        case .success(let loaded): pack = loaded
        case .failure(let result): throw result
        }
        let engine = Engine(pack: pack, directory: InMemoryDirectory(records: Self.records))
        let (decision, _, _) = try engine.decide(try message("From: buyer@woodgrove.example\nTo: ann@contoso.com\nMessage-ID: <forced@x>\n\nHi."),
                                                 context: ProcessContext(mailbox: "ann@contoso.com"))
        #expect(decision.toCreate.map(\.object) == ["Contact"])
        #expect(decision.toCreate.first?.accountID == "0015e00000Tsp01")
    }
}

/// Account websites to the domain their Contacts' addresses are compared with.
@Suite struct WebsiteDomainTests {
    @Test func aWebsiteIsItsHostWithoutWww() {
        #expect(CRMDirectoryKeys.domain(ofWebsite: "https://www.Fabrikam.com/about") == "fabrikam.com")
        #expect(CRMDirectoryKeys.domain(ofWebsite: " HTTP://shop.Example.org:8080?x=1 ") == "shop.example.org")
        #expect(CRMDirectoryKeys.domain(ofWebsite: "fabrikam.com#top") == "fabrikam.com")
        #expect(CRMDirectoryKeys.domain(ofWebsite: "ftp://files.northwind.example/pub") == "files.northwind.example")
        #expect(CRMDirectoryKeys.domain(ofWebsite: "www.bücher.de") == "xn--bcher-kva.de")
        #expect(CRMDirectoryKeys.domain(ofWebsite: "fabrikam") == nil)
        #expect(CRMDirectoryKeys.domain(ofWebsite: "https://") == nil)
    }
}
