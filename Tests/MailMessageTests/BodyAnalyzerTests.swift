@testable import MailMessage
import SeededRandom
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

    /// A web address no host name may be (an underscore) is not the company: it was, and the
    /// look-up searched Accounts named like "www".
    @Test func aHostLikeLineIsNotTheCompany() throws {
        let body = """
        Best regards,
        Bob Buyer
        www.fab_ikam.com
        """
        let signature = try #require(BodyAnalyzer.signature(of: body, senderDomain: "fabrikam.com"))
        #expect(signature.name == "Bob Buyer")
        #expect(signature.company == nil)
        for line in ["www.fab_ikam.com", "fab_ikam.com", "  wWw.Ex_ample.org "] { #expect(BodyAnalyzer.looksLikeHost(line), "\(line)") }
        for line in ["Fabrikam Inc.", "Inc.", "Fabrikam", ".net", "Fabrikam Ltd.", "J.Smith", "Ph.D.", "Dr.Müller"] {
            #expect(!BodyAnalyzer.looksLikeHost(line), "\(line)")
        }
        #expect(BodyAnalyzer.looksLikeHost("fabrikam.com"))
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

/// The signature reader takes ASCII lines by bytes and other lines by Characters: on ASCII
/// lines both must say the same, since the byte path exists only for speed.
@Suite struct SignatureByteReadingTests {
    /// Signature-like ASCII lines: numbers, punctuation of phone numbers, hosts, schemes,
    /// names and words of titles and companies, glued in random orders.
    static func lines(count: Int, seed: UInt64) -> [String] {
        let pieces = ["+44", "(0)", "20", "7946", "0958", "07700", "900123", "555-0100", "1", "0049", "(", ")", "-", ".", "/", " ", "  ", "\t",
                      "|", ":", "@", "Tel:", "Fax:", "fax", "f:", "F.", "Mobile", "SW1A", "v2", "www.", "http://", "https://", "web:",
                      "fabrikam", "Fabrikam", ".com", ".co.uk", ".io", ".xyz", ".de", "example", "e.g.", "Mr.Smith", "<", ">", "[", "]", ",", ";",
                      "Bob", "Buyer", "Jean-Luc", "O'Neil", "Ltd", "Inc.", "GmbH", "Head", "of", "Sales", "Director", "a", "Z", "x", "?", "#", "_",
                      "\r", "HTTP://", "WWW.", "Web:", "12345678901234567", "00", "+1 (555) 010-0199"]
        var generator = SplitMix(state: seed)
        return (0..<count).map { _ in
            (0..<(1 + generator.below(14))).map { _ in pieces[generator.below(pieces.count)] }.joined()
        }
    }

    @Test func phonesWebsitesAndNamesReadByBytesAsByCharacters() {
        var checked = (phones: 0, websites: 0, names: 0)
        for line in Self.lines(count: 20_000, seed: 7) {
            for domain in ["fabrikam.co.uk", "fabrikam.com", nil] {
                let digits = line.utf8.filter { $0 >= 0x30 && $0 <= 0x39 }.count
                if line.utf8.count <= BodyAnalyzer.longestSignatureLine && digits >= 7 {
                    let expected = BodyAnalyzer.phonesByCharacters(in: line, senderDomain: domain)
                    #expect(BodyAnalyzer.phones(in: line, senderDomain: domain) == expected, "\(line)")
                    if !expected.isEmpty { checked.phones += 1 }
                }
            }
            if line.utf8.count <= BodyAnalyzer.longestSignatureLine && line.utf8.contains(0x2E) {
                let expected = BodyAnalyzer.websiteByCharacters(in: line)
                #expect(BodyAnalyzer.website(in: line) == expected, "\(line)")
                if expected != nil { checked.websites += 1 }
            }
            #expect(BodyAnalyzer.isPlainText(line) == BodyAnalyzer.isPlainTextByCharacters(line), "\(line)")
            let name = BodyAnalyzer.looksLikeNameByCharacters(line)
            #expect(BodyAnalyzer.looksLikeName(line) == name, "\(line)")
            if name { checked.names += 1 }
        }
        // The lines reach every kind of answer, not only the empty ones.
        #expect(checked.phones > 1_000 && checked.websites > 200 && checked.names > 200, "\(checked)")
    }

    @Test func closingsReadByBytesAsByCharacters() {
        let words = BodyAnalyzer.closings.map { $0.uppercased() } + BodyAnalyzer.closings
            + [",", ".", "!", "-", " ", "\t", "\u{0B}", "\u{0C}", "\u{1C}", "\u{1F}", "x", "Regards", "BEST", "thanks!!"]
        var state: UInt64 = 9
        func next() -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int(truncatingIfNeeded: state >> 33)
        }
        var closings = 0
        for _ in 0..<20_000 {
            let line = Substring((0..<(1 + next() % 4)).map { _ in words[next() % words.count] }.joined())
            let expected = BodyAnalyzer.isClosingByCharacters(line)
            #expect(BodyAnalyzer.isClosing(line) == (line.utf8.count <= 40 && expected), "\(line.debugDescription)")
            if expected { closings += 1 }
        }
        #expect(closings > 1_000)
    }

    @Test func aLineThatIsNotASCIIIsReadByCharacters() {
        #expect(BodyAnalyzer.phones(in: "Téléphone : +33 1 23 45 67 89", senderDomain: "fabrikam.fr") == ["+33123456789"])
        #expect(BodyAnalyzer.website(in: "Site : www.fabrikam.fr — bienvenue") == "fabrikam.fr")
        #expect(BodyAnalyzer.looksLikeName("Zoë Martín"))
    }
}
