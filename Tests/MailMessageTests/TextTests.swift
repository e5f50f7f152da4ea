import Foundation
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
