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
