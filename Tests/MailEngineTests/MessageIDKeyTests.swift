import MailEngine
import MailMessage
import Testing

/// Message-ID keys are what ledgers and outboxes hold: the byte path for ASCII ids must give
/// the keys the Character path always gave.
@Suite struct MessageIDKeyTests {
    /// The Character reading, as keys were always made.
    static func byCharacters(_ id: String) -> String {
        var text = id.trimmingHorizontalSpace()
        if text.hasPrefix("<") { text.removeFirst() }
        if text.hasSuffix(">") { text.removeLast() }
        guard let at = text.lastIndex(of: "@") else { return text }
        return String(text[..<at]) + "@" + text[text.index(after: at)...].lowercased()
    }

    @Test func keysAreTheLocalPartAsWrittenAndTheDomainLowerCased() {
        #expect(MessageIDKey.normalize(" <CAB1234567@Mail.Fabrikam.COM> ") == "CAB1234567@mail.fabrikam.com")
        #expect(MessageIDKey.normalize("<A@B@Example.ORG>") == "A@B@example.org")
        #expect(MessageIDKey.normalize("<no-at-sign>") == "no-at-sign")
        #expect(MessageIDKey.normalize("<x@BÜCHER.de>") == "x@bücher.de")
        #expect(MessageIDKey.normalize("<x@\u{301}Example.com>") == Self.byCharacters("<x@\u{301}Example.com>"))
    }

    @Test func asciiIdsGiveTheKeysOfTheCharacterReading() {
        let pieces = ["<", ">", "@", "A", "b", "Z", ".", "-", "_", "$", " ", "\t", "1", "Mail", "EXAMPLE", "com", "%", "\"", "=", "+"]
        var state: UInt64 = 42
        func next() -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int(truncatingIfNeeded: state >> 33)
        }
        for _ in 0..<20_000 {
            let id = (0..<(1 + next() % 12)).map { _ in pieces[next() % pieces.count] }.joined()
            #expect(MessageIDKey.normalize(id) == Self.byCharacters(id), "\(id)")
        }
    }
}
