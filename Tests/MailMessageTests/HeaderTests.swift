@testable import MailMessage
import SeededRandom
import Testing

@Suite struct EncodedWordTests {
    @Test(arguments: [
        ("=?UTF-8?B?QW5kcsOp?=", "André"),
        ("=?iso-8859-1?q?Andr=E9?=", "André"),
        ("=?ISO-8859-2?Q?Miros=B3aw?=", "Mirosław"),
        ("=?windows-1251?B?z/Do4uXy?=", "Привет"),
        ("=?KOI8-R?B?8NLJ18XU?=", "Привет"),
        ("=?Shift_JIS?B?g2WDWINn?=", "テスト"),
        ("=?utf-8?q?a?= =?utf-8?q?b?=", "ab"),                  // whitespace between words is dropped
        ("=?utf-8?q?a?=  x =?utf-8?q?b?=", "a  x b"),           // but text between them stays as written
        ("=?utf-8?q?Hello_World?=", "Hello World"),
        ("=?utf-8?B?w6k=?==?utf-8?B?w6k=?=", "éé"),
        ("=?utf-8?q?=C3?= =?utf-8?q?=A9?=", "é"),              // a character split across two words
        ("=?utf-8*en?q?Hi?=", "Hi"),                            // RFC 2231 language tag
        ("Café direct", "Café direct"),                        // RFC 6532 raw UTF-8
        ("=?bogus?q?x?=", "x"),                                 // unknown charset: bytes kept
        ("=?utf-8?x?nope?=", "=?utf-8?x?nope?="),               // not an encoded word
    ])
    func decodes(raw: String, expected: String) {
        #expect(EncodedWords.decode(Array(raw.utf8)[...]) == expected)
    }

    @Test func latin1HeaderBytesAreReadAsWindows1252() {
        #expect(EncodedWords.decode([0x43, 0x61, 0x66, 0xE9, 0x20, 0x80][...]) == "Café €")
    }
}

@Suite struct HeaderBlockTests {
    @Test func unfoldsAndKeepsRepeatedFieldsInOrder() throws {
        let message = try parse("Received: one\r\nSubject: a\r\n  folded\r\n\tline\r\nreceived: two\r\nFrom: x@y.example\r\n\r\nbody")
        #expect(message.subject == "a  folded\tline")
        #expect(message.headers.all("RECEIVED").map(\.text) == ["one", "two"])
        #expect(message.headers.first("subject")?.line == 2)
        #expect(message.textBody == "body")
    }

    @Test func acceptsObsoleteSpaceBeforeColonAndBareLF() throws {
        let message = try parse("Subject : hi\nFrom: a@b.example\n\nx")
        #expect(message.subject == "hi")
    }

    @Test func skipsAnMboxFromLine() throws {
        let message = try parse("From a@b.example Thu Oct 18 22:48:39 2012\nSubject: s\n\nx")
        #expect(message.subject == "s")
    }

    @Test func unindentedParameterContinuationIsJoined() throws {
        let message = try parse("Subject: s\nContent-Type: text/plain;\ncharset=\"iso-8859-1\"\n\ncaf\u{E9}")
        #expect(message.parts[0].charset == "iso-8859-1")
        #expect(message.defects.map(\.kind).contains("unindented-continuation"))
    }

    @Test func refusesWhatIsNotAMessage() {
        #expect(throws: MessageParseError(line: 1, reason: "not an RFC 5322 message: no header field before the body")) {
            try MessageParser.parse(Array("// Not an RFC-822 Document".utf8))
        }
        #expect(throws: MessageParseError.self) { try MessageParser.parse([]) }
        #expect(throws: MessageParseError.self) { try MessageParser.parse(Array("\n\n  \n".utf8)) }
    }
}

@Suite struct ParameterTests {
    @Test func rfc2231ContinuationsAndCharsets() {
        let raw = Array("attachment; filename*0*=UTF-8''%E6%97%A5%E6%9C%AC; filename*1=\".txt\"".utf8)
        let value = ParameterizedValue.parse(raw)
        #expect(value.value == "attachment")
        #expect(value["filename"] == "日本.txt")
    }

    @Test func rfc2231SingleExtendedValue() {
        let value = ParameterizedValue.parse(Array("attachment; filename*=iso-8859-1'en'%A3%20rates.pdf".utf8))
        #expect(value["filename"] == "£ rates.pdf")
    }

    @Test func quotedValuesCommentsAndEncodedWords() {
        let value = ParameterizedValue.parse(Array("Text/Plain (comment); charset=\"UTF-8\"; name=\"=?utf-8?B?w6kucGRm?=\"".utf8))
        #expect(value.value == "text/plain")
        #expect(value["charset"] == "UTF-8")
        #expect(value["name"] == "é.pdf")
    }

    @Test func unquotedSpecialsAndMissingQuoteAreRead() {
        let unquoted = ParameterizedValue.parse(Array("image/png; name=file(1).png".utf8))
        #expect(unquoted["name"] == "file.png")  // a comment, by RFC 2045's grammar, as Python reads it too
        let open = ParameterizedValue.parse(Array("text/plain; name=\"a b.txt".utf8))
        #expect(open["name"] == "a b.txt")
        #expect(!open.problems.isEmpty)
    }
}

@Suite struct DateTests {
    @Test(arguments: [
        ("Thu, 18 Oct 2012 22:48:39 -0700", "2012-10-18T22:48:39-07:00"),
        ("18 Oct 2012 22:48 +0000", "2012-10-18T22:48:00Z"),                 // no weekday, no seconds
        ("Thu, 18 Oct 12 22:48:39 PDT", "2012-10-18T22:48:39-07:00"),        // obsolete year and zone
        ("Fri, 21 Nov 97 09:55:06 GMT", "1997-11-21T09:55:06Z"),
        ("Wed, 20 Sep 1995 00:19:00 (EDT) -0400", "1995-09-20T00:19:00-04:00"),
        ("Thu Oct 18 22:48:39 2012", "2012-10-18T22:48:39Z"),                // asctime, no zone
        ("2012-10-18T22:48:39+02:00", "2012-10-18T22:48:39+02:00"),
        ("Mon, 29 Feb 2016 23:59:59 +1400", "2016-02-29T23:59:59+14:00"),
        ("1 Jan 2000 00:00:00 -0000", "2000-01-01T00:00:00Z"),
        ("Tue, 029 Apr 2019 08:22:45 +0900", "2019-04-29T08:22:45+09:00"),     // a zero-padded day (Google Groups)
    ])
    func parses(text: String, iso: String) {
        #expect(DateParser.parse(text).date?.iso8601 == iso)
    }

    @Test func epochSecondsAreRight() {
        #expect(DateParser.parse("Thu, 01 Jan 1970 01:00:00 +0100").date?.secondsSinceEpoch == 0)
        #expect(DateParser.parse("Sun, 29 Nov 2026 02:36:16 +0000").date?.secondsSinceEpoch == 1_795_919_776)
    }

    @Test func rejectsNonsense() {
        #expect(DateParser.parse("yesterday").date == nil)
        #expect(DateParser.parse("Thu, 45 Oct 2012 22:48:39 +0000").date == nil)
    }
}

@Suite struct MessageIDTests {
    @Test func parsesListsWithCommentsAndFolding() {
        let parsed = MessageIDParser.parse(Array("<a@x.example> (first)\r\n <b@y.example>\t<c@z.example>".utf8))
        #expect(parsed.ids == ["<a@x.example>", "<b@y.example>", "<c@z.example>"])
        #expect(parsed.problem == nil)
    }

    @Test func acceptsMissingBracketsWithADefect() {
        let parsed = MessageIDParser.parse(Array("abc@host.example".utf8))
        #expect(parsed.ids == ["<abc@host.example>"])
        #expect(parsed.problem != nil)
    }
}

@Suite struct CharsetTests {
    @Test(arguments: [
        ("windows-1250", [0x8A, 0x9A] as [UInt8], "Šš"),
        ("ISO-8859-15", [0xA4], "€"),
        ("cp1252", [0x93, 0x94], "“”"),
        ("gb2312", [0xC4, 0xE3, 0xBA, 0xC3], "你好"),
        ("big5", [0xA7, 0x41], "你"),
        ("euc-kr", [0xC7, 0xD1], "한"),
        ("us-ascii", [0xC3, 0xA9], "é"),
    ])
    func decodes(label: String, bytes: [UInt8], expected: String) {
        #expect(Charset.decode(bytes, label: label).text == expected)
    }

    @Test func unknownCharsetFallsBackAndSaysSo() {
        let decoded = Charset.decode([0x63, 0x61, 0x66, 0xE9], label: "fakescii-7")
        #expect(decoded.text == "café")
        #expect(decoded.problem?.contains("fakescii-7") == true)
    }
}

/// Date headers of ASCII are split by bytes: the same words as the Character reading.
@Suite struct DateTokenTests {
    @Test func asciiDatesSplitAsByCharacters() {
        let pieces = ["Mon", "Tue,", "1", "01", "31", "Jan", "jan", "FEB", "2024", "99", "10:00", "10:00:59", "10:00:59.5", "+0100", "-0830",
                      "GMT", "UT", "EST", "(", ")", "(comment)", "((nested) x)", ",", " ", "  ", "\t", "\n", "Z", "a", "-", "+", ":"]
        var generator = SplitMix(state: 11)
        var dated = 0
        for _ in 0..<20_000 {
            let text = (0..<(1 + generator.below(10))).map { _ in pieces[generator.below(pieces.count)] }.joined(separator: generator.below(3) == 0 ? "" : " ")
            #expect(DateParser.tokensOfASCII(text) == DateParser.tokensByCharacters(text), "\(text.debugDescription)")
            if DateParser.parse(text).date != nil { dated += 1 }
        }
        #expect(dated > 500, "\(dated)")
        // Text with a CR keeps the Character reading, where "\r\n" is one Character and no
        // separator: bytes would split there.
        #expect(DateParser.tokensByCharacters("1 Jan 2024\r\n 10:00") == ["1", "Jan", "2024\r\n", "10:00"])
    }
}
