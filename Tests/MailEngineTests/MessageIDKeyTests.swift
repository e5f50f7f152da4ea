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
            #expect(MessageIDKey.normalize(id) == MessageIDKey.finish(Self.byCharacters(id)), "\(id)")
        }
    }

    static let long = "<" + String(repeating: "a.Part-of-a-long-id", count: 16) + "@Mail.Example.COM>"

    /// Up to 253 characters a key is the id; past it, the start of its local part and the
    /// SHA-256 of the whole key, whatever the case of the domain; within Salesforce's 255.
    @Test func longIdsGiveShortStableKeys() {
        let kept = "<" + String(repeating: "k", count: 240) + "@example.com>"
        #expect(MessageIDKey.normalize(kept) == String(repeating: "k", count: 240) + "@example.com")
        let key = MessageIDKey.normalize(Self.long)
        #expect(key.utf16.count <= MessageIDKey.longestKept)
        #expect(key.hasPrefix("a.Part-of-a-long-ida.Part"))
        #expect(key.hasSuffix("@long-id.mailsave.invalid"))
        #expect(key == MessageIDKey.normalize(Self.long.replacingOccurrences(of: "Mail.Example.COM", with: "mail.example.com")))
        #expect(key != MessageIDKey.normalize(Self.long.replacingOccurrences(of: "a.Part", with: "A.Part")))
        // A different id of the same start: another digest.
        #expect(key != MessageIDKey.normalize(Self.long.replacingOccurrences(of: "Mail.", with: "Mail2.")))
        #expect(MessageIDKey.normalize(key) == key)
    }

    /// No control character stays in a key; `fieldValue` is what a Salesforce field can hold,
    /// and its key is the id's key: the save-once check and the Magic Anchor compare the two.
    @Test func fieldValuesFitAndReadBackToTheKey() {
        let ids = [Self.long, "<CAB1234567@Mail.Fabrikam.COM>", "<a\u{1}b\tc@example.com>", "<x\u{0}@example.com>",
                   "<" + String(repeating: "é", count: 300) + "@Example.com>", "<" + String(repeating: "😀", count: 130) + "@x>",
                   "<<double>>", " < spaced@Example.com> ", "no-brackets-" + String(repeating: "z", count: 250)]
        for id in ids {
            let field = MessageIDKey.fieldValue(id)
            #expect(field.utf16.count <= MessageIDKey.longestKept + 2, "\(id)")
            #expect(!field.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }, "\(id)")
            #expect(MessageIDKey.normalize(field) == MessageIDKey.normalize(id), "\(id)")
            #expect(MessageIDKey.finish(MessageIDKey.normalize(id)) == MessageIDKey.normalize(id), "\(id)")
        }
        #expect(MessageIDKey.fieldValue("<CAB1234567@Mail.Fabrikam.COM>") == "<CAB1234567@Mail.Fabrikam.COM>")
        #expect(MessageIDKey.normalize("<a\u{1}b\tc@example.com>") == "abc@example.com")
    }
}
