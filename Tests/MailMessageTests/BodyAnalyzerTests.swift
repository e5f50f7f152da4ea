import MailMessage
import Testing

@Suite struct SignatureTests {
    @Test func delimitedSignatureWithUKPhones() throws {
        let body = """
        Hi Ann,

        Please send the quote for 20 licences.

        --\u{20}
        Bob Buyer
        Head of Procurement
        Fabrikam Ltd
        Tel: +44 (0)20 7946 0958 | Mobile: 07700 900123
        Fax: 020 7946 0000
        www.fabrikam.co.uk
        """
        let signature = try #require(BodyAnalyzer.signature(of: body, senderDomain: "fabrikam.co.uk"))
        #expect(signature.name == "Bob Buyer")
        #expect(signature.title == "Head of Procurement")
        #expect(signature.company == "Fabrikam Ltd")
        #expect(signature.phones == ["+442079460958", "+447700900123"])
        #expect(signature.website == "fabrikam.co.uk")
    }

    @Test func closingSalutationWithoutDelimiterAndNorthAmericanPhone() throws {
        let body = """
        Thanks for the call today.

        Best regards,
        Carla Gomez
        VP Sales, Northwind Traders Inc.
        (415) 555-0134
        https://www.northwind.example/contact
        """
        let signature = try #require(BodyAnalyzer.signature(of: body, senderDomain: "northwind.example"))
        #expect(signature.name == "Carla Gomez")
        #expect(signature.company == "VP Sales, Northwind Traders Inc.")
        #expect(signature.phones == ["+14155550134"])
        #expect(signature.website == "northwind.example")
    }

    @Test func quotedHistoryIsNotTheSignature() throws {
        let body = """
        Sounds good.

        On Mon, 2 Mar 2026 at 10:00, Ann Seller <ann@contoso.com> wrote:
        > Regards,
        > Ann Seller
        > +1 206 555 0100
        """
        #expect(BodyAnalyzer.signature(of: body, senderDomain: "fabrikam.com") == nil)
    }

    @Test func germanNumberWithTrunkPrefix() {
        #expect(BodyAnalyzer.signature(of: "Gruß\n\nMit freundlichen Grüßen\nJonas Weber\nTel. 030 1234567", senderDomain: "firma.de")?.phones
                == ["+49301234567"])
    }

    @Test func phoneWithoutInferableCountryIsKeptAsWritten() {
        #expect(BodyAnalyzer.signature(of: "x\n\nRegards,\nKim Lee\n0123 456 789", senderDomain: "example.com")?.phones
                == ["0123 456 789"])
    }
}

@Suite struct BodyScanTests {
    @Test func findsEmailsAndLinksInText() {
        let text = "Write to sales@Fabrikam.COM or see https://fabrikam.com/pricing). Also www.contoso.com, thanks."
        #expect(BodyAnalyzer.findEmails(text) == ["sales@fabrikam.com"])
        #expect(BodyAnalyzer.findLinks(text) == ["https://fabrikam.com/pricing", "www.contoso.com"])
    }

    @Test func htmlBodyGivesTextLinksAndMailto() throws {
        let message = try parse("""
        From: a@b.example
        Content-Type: text/html; charset=utf-8

        <html><head><style>p{color:red}</style></head><body><p>Hello&nbsp;&amp; welcome</p>
        <p><a href="https://na1.salesforce.com/0035000000abcde">record</a> <a href='mailto:bob@x.example?subject=hi'>Bob</a></p>
        <script>var a = "<p>hidden</p>";</script></body></html>
        """)
        #expect(message.textBody == "Hello & welcome\nrecord Bob")
        #expect(message.bodyLinks == ["https://na1.salesforce.com/0035000000abcde"])
        #expect(message.bodyEmails == ["bob@x.example"])
    }
}
