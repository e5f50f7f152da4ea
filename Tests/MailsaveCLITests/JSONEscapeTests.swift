import Foundation
import Testing
@testable import mailsave

/// The output's string escaping, read back by Foundation's JSON parser: every text (controls,
/// quotes, backslashes, U+2028/9, emoji, combining marks, long runs cut for flushing) comes
/// back exactly, and the escaped form holds no raw control or line separator.
@Suite struct JSONEscapeTests {
    static func roundTrip(_ text: String, flushing: Bool = false) throws -> String {
        var output: [UInt8] = []
        var flushed: [UInt8] = []
        JSON.escape(text, into: &output, flush: flushing ? { buffer in flushed += buffer; buffer = [] } : nil)
        let json = String(decoding: flushed + output, as: UTF8.self)
        #expect(!json.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x2028 || $0.value == 0x2029 }, "\(json.debugDescription)")
        let value = try JSONSerialization.jsonObject(with: Data(("[" + json + "]").utf8)) as? [String]
        return value?.first ?? "<not a string>"
    }

    @Test func everyTextComesBackExactly() throws {
        let pieces = ["a", "\"", "\\", "\n", "\r", "\t", "\u{0}", "\u{1F}", "\u{7F}", "\u{2028}", "\u{2029}", "\u{2027}", "é", "e\u{301}", "👋🏽",
                      "€", "\u{E2}", "<id@example.com>", " "]
        var generator = SystemRandomNumberGenerator()
        var texts = ["", "plain", String(repeating: "x", count: 70_000) + "\"" + String(repeating: "é", count: 40_000)]
        for _ in 0..<2000 {
            texts.append((0..<Int.random(in: 1...12, using: &generator)).map { _ in pieces.randomElement(using: &generator) ?? "" }.joined())
        }
        for text in texts {
            #expect(try Self.roundTrip(text) == text)
        }
        #expect(try Self.roundTrip(texts[2], flushing: true) == texts[2])
        var output: [UInt8] = []
        JSON.escape("\u{1}\u{1F}\"\\\n\u{2028}", into: &output)
        #expect(String(decoding: output, as: UTF8.self) == #""\u0001\u001f\"\\\n\u2028""#)
    }

    @Test func containsBytesFindsEveryOccurrence() {
        #expect("mail delivery subsystem".containsBytes("mail delivery"))
        #expect("the postmaster".containsBytes("postmaster"))
        #expect(!"postmaste".containsBytes("postmaster"))
        #expect("mmailer-daemon".containsBytes("mailer-daemon"))
        #expect("x".containsBytes(""))
        #expect("Grüße, mailer daemon".containsBytes("mailer daemon"))
        #expect(!"".containsBytes("a"))
    }
}
