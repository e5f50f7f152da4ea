import MailMessage
import Testing

@Suite struct AddressTests {
    func parse(_ raw: String) -> AddressParser.Result { AddressParser.parse(Array(raw.utf8)) }
    func pairs(_ raw: String) -> [String] { parse(raw).addresses.map { "\($0.name)|\($0.address)" } }

    @Test func commonForms() {
        #expect(pairs("Ann Smith <ann@x.example>, bob@y.example") == ["Ann Smith|ann@x.example", "|bob@y.example"])
        #expect(pairs("\"Smith, Ann\" <ann@x.example>") == ["Smith, Ann|ann@x.example"])
        #expect(pairs("=?utf-8?q?Andr=C3=A9?= <andre@x.example>") == ["André|andre@x.example"])
        #expect(pairs("\"=?utf-8?q?Andr=C3=A9?=\" <andre@x.example>") == ["André|andre@x.example"])
    }

    @Test func groupsAndEmptyGroups() {
        #expect(pairs("undisclosed-recipients:;") == [])
        #expect(pairs("Team: a@x.example, b@x.example;, c@y.example") == ["|a@x.example", "|b@x.example", "|c@y.example"])
    }

    @Test func commentsAndObsoleteRoutes() {
        #expect(pairs("ann@x.example (Ann Smith)") == ["Ann Smith|ann@x.example"])
        #expect(pairs("Ann (work) <ann@x.example>") == ["Ann|ann@x.example"])
        #expect(pairs("<@relay.example,@b.example:ann@x.example>") == ["|ann@x.example"])
    }

    @Test func brokenForms() {
        #expect(pairs("Bob Dunite <bob@extern> Bobby Dunite <bobby@extern>") == ["Bob Dunite|bob@extern", "Bobby Dunite|bobby@extern"])
        #expect(pairs("Ann Smith ann@x.example") == ["Ann Smith|ann@x.example"])
        #expect(pairs("a@x.example,, b@x.example,") == ["|a@x.example", "|b@x.example"])
        #expect(pairs("\"Ann <ann@x.example>") == ["Ann|ann@x.example"])  // an unclosed quote is dropped, not swallowing the address
        #expect(pairs("Ann <ann@x.example") == ["Ann|ann@x.example"])
        #expect(!parse("Ann <ann@x.example").problems.isEmpty)
    }

    /// Whitespace around the '@' of a bare address is CFWS inside it, as Python reads it: the
    /// word before is the local part (it was read as a display name, leaving `@fabrikam.com`,
    /// and a blocklist entry for the address never matched).
    @Test func spaceAroundTheAtSignKeepsTheLocalPart() {
        #expect(pairs("noreply @fabrikam.com") == ["|noreply@fabrikam.com"])
        #expect(pairs("noreply @ fabrikam.com") == ["|noreply@fabrikam.com"])
        #expect(pairs("\"noreply\" @ fabrikam.com") == ["|noreply@fabrikam.com"])
        #expect(pairs("Ann Smith ann @x.example") == ["Ann Smith|ann@x.example"])
        #expect(pairs("a@x.example @y.example") == ["|a@x.example", "|@y.example"])
        // Obsolete spacing around a domain's dots (RFC 5322 4.4), as Python reads it; a
        // missing comma still parts two addresses.
        #expect(pairs("bob @ fabrikam . com") == ["|bob@fabrikam.com"])
        #expect(pairs("Bob <bob@fabrikam. com>") == ["Bob|bob@fabrikam.com"])
        #expect(pairs("bob@fabrikam .com") == ["|bob@fabrikam.com"])
        #expect(pairs("a@x.example b@y.example") == ["|a@x.example", "|b@y.example"])
        #expect(pairs("a@x.example. b@y.example") == ["|a@x.example.", "|b@y.example"])
    }

    /// Full-width letters name the same domain (UTS 46), and an over-long label is compared as
    /// written rather than encoded.
    @Test func fullWidthDomainsAreTheirASCIISelves() {
        #expect(IDNA.normalize("ｃｏｎｔｏｓｏ.com") == "contoso.com")
        #expect(IDNA.normalize("ＣＯＮＴＯＳＯ．ＣＯＭ") == "contoso.com")
        let long = String(repeating: "ü", count: 64)
        #expect(IDNA.normalize(long + ".example") == long + ".example")
    }

    @Test func quotedLocalPartsKeepTheirQuotes() {
        let address = parse("\"john doe\"@x.example").addresses.first
        #expect(address?.local == "john doe")
        #expect(address?.address == "\"john doe\"@x.example")
    }

    @Test func domainsAreLowerCasedAndIDNAEncodedForComparison() {
        let address = parse("Ann <Ann@Bücher.Example>").addresses.first
        #expect(address?.address == "Ann@Bücher.Example")       // as written
        #expect(address?.domain == "xn--bcher-kva.example")     // for comparison
        #expect(address?.normalized == "ann@xn--bcher-kva.example")
        #expect(IDNA.normalize("例え.テスト") == "xn--r8jz45g.xn--zckzah")
        #expect(IDNA.normalize("EXAMPLE.com.") == "example.com")
        #expect(IDNA.normalize("müller。de") == "xn--mller-kva.de")
        #expect(IDNA.normalize("Bu\u{308}cher.example") == "xn--bcher-kva.example") // decomposed: NFC first
    }
}
