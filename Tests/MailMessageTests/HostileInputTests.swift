import MailMessage
import ScalingCheck
import Testing

/// The reproducers of hostile messages: each trapped, hung or took quadratic time before.
@Suite struct HostileInputTests {
    func parse(_ text: String, limits: ParseLimits = ParseLimits()) throws -> Message {
        try MessageParser.parse(Array(text.utf8), limits: limits)
    }

    // MARK: Checked arithmetic

    @Test(arguments: [
        "1 Jan 999999999999 10:00:00 +0000",
        "1 Jan 9223372036854775807 10:00:00 +0000",
        "1 Jan 10000 10:00:00 +0000",
        "31 Dec 0 10:00:00 +0000",
        "1 Jan 2020 10:00:00 +9999",
        "1 Jan 2020 10:00:00 -9999",
        "99999-01-01T00:00:00Z",
        "0000-13-45T99:99:99+9999",
        "1 Jan 2020 99999999999999999999:00 +0000",
    ])
    func outOfRangeDatesAreDefectsNotCrashes(date: String) throws {
        let message = try parse("From: a@b.example\nDate: \(date)\n\nbody\n")
        #expect(message.date == nil, "\(date) gave \(String(describing: message.date?.iso8601))")
        #expect(message.defects.contains { $0.kind == "date" })
    }

    @Test func theExtremeValidDatesPrint() throws {
        for (text, iso) in [("1 Jan 9999 23:59:59 +1400", "9999-01-01T23:59:59+14:00"),
                            ("1 Jan 0001 00:00:00 -1200", "0001-01-01T00:00:00-12:00")] {
            let message = try parse("From: a@b.example\nDate: \(text)\n\nbody\n")
            #expect(message.date?.iso8601 == iso)
        }
    }

    /// Every combination of extreme numbers in every position of a date: none may trap.
    @Test func extremeNumbersAnywhereInADateNeverTrap() {
        let numbers = ["0", "-1", "99", "999", "2147483647", "4294967296", "9223372036854775807", "18446744073709551616"]
        for a in numbers { for b in numbers { for c in numbers {
            for template in ["\(a) Jan \(b) \(c):00:00 +0000", "Mon, \(a) Feb \(b) 10:\(c) -\(c)", "\(b)-\(a)-\(c)T10:00:00+01:00"] {
                _ = DateParser.parse(template)
            }
        } } }
    }

    // MARK: Limits on every byte

    @Test func oneHeaderLineCannotExceedTheHeaderBudget() {
        let line = "Subject: " + String(repeating: "x", count: ParseLimits().maxHeaderBytes + 10) + "\n"
        #expect(throws: MessageParseError.self) { try parse("From: a@b.example\n" + line + "\nbody\n") }
    }

    @Test func aFoldedHeaderOverTheBudgetIsRefused() {
        var text = "From: a@b.example\nSubject: x\n"
        text += String(repeating: " folded\n", count: ParseLimits().maxHeaderBytes / 8 + 10)
        #expect(throws: MessageParseError.self) { try parse(text + "\nbody\n") }
    }

    @Test func manyFoldedLinesUnderTheBudgetUnfoldExactly() throws {
        let count = 100_000
        let text = "From: a@b.example\nSubject: x\n" + String(repeating: "\ty\n", count: count) + "\nbody\n"
        let message = try parse(text)
        #expect(message.subject?.utf8.count == 1 + 2 * count)
    }

    @Test func parameterCountIsCapped() {
        var raw = "text/plain"
        for index in 0..<47_000 { raw += "; name*\(index % 999)*=a\(index)" }
        let parsed = ParameterizedValue.parse(Array(raw.utf8))
        #expect(parsed.problems.contains { $0.contains("more than \(ParameterizedValue.maxParameters) parameters") })
        #expect(parsed.value == "text/plain")
    }

    @Test func distinctRFC2231BasesAllDecode() {
        var raw = "attachment"
        for index in 0..<200 { raw += "; p\(index)*0=a; p\(index)*1=b" }
        let parsed = ParameterizedValue.parse(Array(raw.utf8))
        #expect(parsed.parameters["p0"] == "ab")
        #expect(parsed.parameters["p127"] == "ab")
    }

    @Test func fiftyThousandMailboxesWithoutCommasParseWithoutRecursion() {
        let angle = String(repeating: "A <a@b.example> ", count: 50_000)
        let parsedAngle = AddressParser.parse(Array(angle.utf8))
        #expect(parsedAngle.addresses.count == 10_000)
        #expect(parsedAngle.problems.contains { $0.contains("without commas") })
        let bare = String(repeating: "a@b.example ", count: 5_000)
        let parsedBare = AddressParser.parse(Array(bare.utf8))
        #expect(parsedBare.addresses.count == 5_000)
        #expect(parsedBare.addresses.allSatisfy { $0.normalized == "a@b.example" })
    }

    /// A megabyte of stray `;` (or of nested `g:`) is one problem a million times: listed
    /// ten times and counted, not a million defects (320 times the input in memory, 100 MB of
    /// `inspect` output).
    @Test func aMillionProblemsInOneFieldAreCountedNotListed() throws {
        for (field, problem) in [(String(repeating: ";", count: 1_000_000), "';' outside a group"),
                                 (String(repeating: "g:", count: 500_000), "nested group")] {
            let message = try parse("From: bob@fabrikam.com\nTo: \(field)\nSubject: x\n\nHi.\n")
            #expect(message.defects.count <= 12, "\(message.defects.count) defects")
            #expect(message.defects.filter { $0.detail.hasSuffix(problem) }.count == 10)
            #expect(message.defects.contains { $0.detail.contains("more problems like these") })
        }
        // Many fields, each under the per-field cap: the message lists 200 and counts the rest.
        let fields = (0..<300).map { "Cc: a\($0)@x.example;\n" }.joined()
        let many = try parse("From: bob@fabrikam.com\n" + fields + "Subject: x\n\nHi.\n")
        #expect(many.defects.count == 201)
        // 300 stray ';' and one "Cc appears 300 times".
        #expect(many.defects.last?.kind == "too-many-defects" && many.defects.last?.detail == "101 more defects not listed")
    }

    /// Lines ending in CR alone (classic Mac OS) were one header field: From came out as the
    /// Message-ID's address. Now they are lines, as Python reads them, with a defect saying so;
    /// a lone CR inside a CRLF message stays content. A byte order mark opens the header block.
    @Test func bareCRLinesAndAByteOrderMarkAreRead() throws {
        let text = "From: Bob <bob@fabrikam.com>\rTo: ann@contoso.com\rSubject: Mac\rMessage-ID: <cr1@x>\r\rHello\rAnn\r"
        let message = try MessageParser.parse(Array(text.utf8))
        #expect(message.from.map(\.normalized) == ["bob@fabrikam.com"])
        #expect(message.to.map(\.normalized) == ["ann@contoso.com"])
        #expect(message.subject == "Mac" && message.messageID == "<cr1@x>")
        #expect(message.textBody.contains("Hello\nAnn"))
        #expect(message.defects.contains { $0.kind == "bare-cr-line-endings" })
        let mixed = try MessageParser.parse(Array("From: bob@fabrikam.com\r\nSubject: a\rb\r\n\r\nHi.\r\n".utf8))
        #expect(mixed.from.map(\.normalized) == ["bob@fabrikam.com"])
        #expect(!mixed.defects.contains { $0.kind == "bare-cr-line-endings" })
        let bom = try MessageParser.parse([0xEF, 0xBB, 0xBF] + Array("From: bob@fabrikam.com\nSubject: BOM\n\nHi.\n".utf8))
        #expect(bom.from.map(\.normalized) == ["bob@fabrikam.com"] && bom.subject == "BOM")
    }

    /// A second From (or Subject...) is read as before and said: both Froms are participants.
    @Test func aRepeatedFieldIsADefect() throws {
        let message = try parse("From: bob@fabrikam.com\nTo: ann@contoso.com\nFrom: eve@evil.example\nSubject: x\n\nHi.\n")
        #expect(message.from.map(\.normalized) == ["bob@fabrikam.com", "eve@evil.example"])
        #expect(message.defects.contains { $0.kind == "repeated-field" && $0.line == 3 && $0.detail == "From appears 2 times; RFC 5322 allows one" })
        #expect(!(try parse("From: bob@fabrikam.com\nReceived: a\nReceived: b\n\nHi.\n")).defects.contains { $0.kind == "repeated-field" })
    }

    @Test func commaLessMailboxesKeepTheirNames() {
        let parsed = AddressParser.parse(Array("Ann <ann@x.example> Bob <bob@y.example>".utf8))
        #expect(parsed.addresses.map(\.name) == ["Ann", "Bob"])
        #expect(parsed.addresses.map(\.normalized) == ["ann@x.example", "bob@y.example"])
    }

    @Test func unclosedQuotesAreDroppedAndTheAddressesStillRead() {
        let parsed = AddressParser.parse(Array("\"Ann <ann@x.example>, bob@y.example".utf8))
        #expect(parsed.addresses.map(\.normalized).contains("bob@y.example"))
        #expect(parsed.problems.contains { $0.contains("unbalanced quote") })
    }

    @Test func encodedWordsStillDecodeNextToBrokenOnes() {
        let field = Array("=?utf-8?q?broken =?utf-8?q?caf=C3=A9?= =?".utf8)
        #expect(EncodedWords.decode(field[...]) == "=?utf-8?q?broken café =?")
    }

    // MARK: Doubling the input about doubles the time

    /// Time at size n and 2n (`Scaling.ratio`): a linear path gives about 2, a quadratic one 4.
    @discardableResult
    func scaling(_ name: String, size: Int, _ make: (Int) -> [UInt8], _ work: ([UInt8]) -> Void) -> Double {
        let ratio = Scaling.ratio(small: make(size), large: make(size * 2), work)
        #expect(ratio < Scaling.limit, "\(name): doubling the input multiplied the time by \(ratio)")
        return ratio
    }

    /// The whole parse, the body analysis (made on first read) included.
    func message(_ bytes: [UInt8]) { _ = (try? MessageParser.parse(bytes))?.signature }

    @Test func everyParserPathScalesLinearly() {
        scaling("LF-folded continuation lines", size: 40_000, { n in
            Array(("From: a@b.example\nSubject: x\n" + String(repeating: " y\n", count: n) + "\nbody\n").utf8)
        }, message)
        scaling("RFC 2231 sections", size: 40_000, { n in
            var text = "From: a@b.example\nContent-Type: text/plain"
            for index in 0..<n { text += "; n\(index)*0=v" }
            return Array((text + "\n\nbody\n").utf8)
        }, message)
        scaling("=? without ?=", size: 30_000, { n in
            Array(("From: a@b.example\nSubject: " + String(repeating: "=?a?q?b", count: n) + "\n\nbody\n").utf8)
        }, message)
        scaling("unclosed quotes", size: 25_000, { n in
            Array(("From: a@b.example\nTo: " + String(repeating: "\"\\", count: n) + "\n\nbody\n").utf8)
        }, message)
        scaling("mailboxes without commas", size: 2_000, { n in
            Array(("From: a@b.example\nTo: " + String(repeating: "A <a@b.example> ", count: n) + "\n\nbody\n").utf8)
        }, message)
        scaling("bare addresses without commas", size: 2_000, { n in
            Array(("From: a@b.example\nTo: " + String(repeating: "a@b.example ", count: n) + "\n\nbody\n").utf8)
        }, message)
        scaling("nested comments", size: 100_000, { n in
            Array(("From: a@b.example " + String(repeating: "(", count: n) + "\nDate: " + String(repeating: "(", count: n) + "\n\nbody\n").utf8)
        }, message)
        scaling("many MIME parts", size: 1_000, { n in
            var text = "From: a@b.example\nContent-Type: multipart/mixed; boundary=x\n\n"
            for _ in 0..<n { text += "--x\nContent-Type: text/plain; name=\"a.txt\"\nContent-Disposition: attachment\n\nhi\n" }
            return Array((text + "--x--\n").utf8)
        }, message)
        scaling("one long body line", size: 500_000, { n in
            Array(("From: a@b.example\n\n" + String(repeating: "word ", count: n / 5) + "\n").utf8)
        }, message)
        scaling("HTML body", size: 50_000, { n in
            Array(("From: a@b.example\nContent-Type: text/html\n\n" + String(repeating: "<p>a<b>b</b></p>", count: n / 16) + "\n").utf8)
        }, message)
    }
}
