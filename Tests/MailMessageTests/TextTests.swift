import Foundation
import SeededRandom
import Testing
@testable import MailMessage

/// `trimmingSpaces` against Foundation's `trimmingCharacters(in: .whitespaces)`, which it
/// replaced on the hot paths: the same text for every mix of ASCII and Unicode spaces, tabs,
/// newlines (kept: not in `.whitespaces`), combining marks and emoji.
@Suite struct TrimmingTests {
    @Test func agreesWithFoundation() {
        let pieces = [" ", "\t", "\n", "\r", "\u{A0}", "\u{2003}", "\u{3000}", "\u{200B}", "\u{FEFF}", "a", "<id@Example.COM>", "é", "e\u{301}",
                      "👋🏽", "\u{301}", "x y", "", "\u{85}", "\u{2028}"]
        var generator = SystemRandomNumberGenerator()
        var texts = ["", " ", "\t\t", "abc", " abc ", "\u{A0}abc\u{3000}"]
        for _ in 0..<3000 {
            texts.append((0..<Int.random(in: 1...7, using: &generator)).map { _ in pieces.randomElement(using: &generator) ?? "" }.joined())
        }
        for text in texts {
            #expect(text.trimmingHorizontalSpace() == text.trimmingCharacters(in: .whitespaces), "\(text.debugDescription)")
            let inner = text.dropFirst()
            #expect(inner.trimmingHorizontalSpace() == inner.trimmingCharacters(in: .whitespaces), "\(String(inner).debugDescription)")
        }
    }
}

/// FNV-1a keys the ledger of messages without a Message-ID: its values must never change.
@Suite struct FNV1aTests {
    @Test func publishedValuesAndBothEntryPointsAgree() {
        func hash(_ text: String) -> UInt64 { var hash = FNV1a(); hash.add(text); return hash.value }
        func hashBytes(_ text: String) -> UInt64 { var hash = FNV1a(); hash.add(Array(text.utf8)); return hash.value }
        // The reference values of the FNV-1a 64-bit test suite.
        #expect(hash("") == 0xcbf2_9ce4_8422_2325)
        #expect(hash("a") == 0xaf63_dc4c_8601_ec8c)
        #expect(hash("foobar") == 0x8594_4171_f739_67e8)
        for text in ["", "a", "Grüße 👋🏽", String(repeating: "x\u{0}", count: 5000)] { #expect(hash(text) == hashBytes(text)) }
    }
}

/// `UTF8Text.valid` against the standard library's `String(validating:as:)`, which it
/// replaced: the same text, or nil, for hand-picked edge cases and for random bytes biased
/// towards the ones that make UTF-8 invalid (continuation bytes, lead bytes cut short,
/// overlong forms, surrogates, code points past U+10FFFF, U+FFFD itself).
@Suite struct UTF8TextTests {
    @Test func agreesWithTheStandardLibrary() {
        let cases: [[UInt8]] = [[], Array("plain ascii".utf8), Array("Grüße, 👋🏽".utf8), [0xEF, 0xBF, 0xBD], [0x80], [0xC3], [0xC3, 0x28],
                                [0xF0, 0x9F, 0x98], [0xF0, 0x9F, 0x98, 0x41], [0xC0, 0xAF], [0xE0, 0x80, 0xAF], [0xED, 0xA0, 0x80],
                                [0xF4, 0x90, 0x80, 0x80], [0xFF], [0x41, 0x00, 0x42], [0xE2, 0x82], [0xEF, 0xBF, 0xBD, 0xEF, 0xBF]]
        for bytes in cases {
            #expect(UTF8Text.valid(bytes) == String(validating: bytes, as: UTF8.self), "\(bytes)")
            #expect(UTF8Text.valid(bytes[...]) == String(validating: bytes, as: UTF8.self), "\(bytes)")
            #expect(UTF8Text.isValid(bytes) == (String(validating: bytes, as: UTF8.self) != nil), "\(bytes)")
        }
        let alphabet: [UInt8] = [0x41, 0x7F, 0x80, 0xBF, 0xC0, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xBD, 0xF0, 0xF4, 0xF5, 0x9F, 0xA0, 0x90, 0xFF, 0x00]
        var random = SplitMix(state: 0x5EED)
        var valid = 0
        for _ in 0..<50_000 {
            let bytes = (0..<random.below(9)).map { _ in alphabet[random.below(alphabet.count)] }
            let expected = String(validating: bytes, as: UTF8.self)
            if expected != nil { valid += 1 }
            #expect(UTF8Text.valid(bytes) == expected, "\(bytes)")
            #expect(UTF8Text.isValid(bytes) == (expected != nil), "\(bytes)")
        }
        #expect(valid > 1_000 && valid < 49_000) // both outcomes are exercised
    }
}
