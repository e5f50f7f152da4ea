import Foundation
import MailEngine
import MailMessage
import Testing

/// Message-ID keys are what ledgers and outboxes hold: the byte path for ASCII ids must give
/// the keys the Character path always gave.
@Suite struct MessageIDKeyTests {
    /// The Character reading: without control characters and the space and brackets around
    /// it, lower case after the last "@" (an ASCII id is read by its bytes instead).
    static func byCharacters(_ id: String) -> String {
        var text = Substring(String(String.UnicodeScalarView(id.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F })))
        while let first = text.unicodeScalars.first, first == "<" || String.isHorizontalSpace(first) { text.unicodeScalars.removeFirst() }
        while let last = text.unicodeScalars.last, last == ">" || String.isHorizontalSpace(last) { text.unicodeScalars.removeLast() }
        guard let at = text.lastIndex(of: "@") else { return String(text).precomposedStringWithCanonicalMapping }
        return (String(text[..<at]) + "@" + text[text.index(after: at)...].lowercased()).precomposedStringWithCanonicalMapping
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
            #expect(MessageIDKey.normalize(MessageIDKey.normalize(id)) == MessageIDKey.normalize(id), "\(id)")
        }
        #expect(MessageIDKey.fieldValue("<CAB1234567@Mail.Fabrikam.COM>") == "<CAB1234567@mail.fabrikam.com>")
        #expect(MessageIDKey.normalize("<a\u{1}b\tc@example.com>") == "abc@example.com")
        // Precomposed and decomposed spellings: one key, byte for byte (SQLite compares bytes).
        let composed = MessageIDKey.normalize("<caf\u{E9}@a.com>"), decomposed = MessageIDKey.normalize("<cafe\u{301}@a.com>")
        #expect(Array(composed.utf8) == Array(decomposed.utf8))
        let longComposed = MessageIDKey.normalize("<" + String(repeating: "\u{E9}", count: 300) + "@a.com>")
        let longDecomposed = MessageIDKey.normalize("<" + String(repeating: "e\u{301}", count: 300) + "@a.com>")
        #expect(Array(longComposed.utf8) == Array(longDecomposed.utf8))
    }

    /// A key's key is itself and a field's key is the id's, whatever the id: control
    /// characters next to combining marks, brackets and spaces around it, letters whose lower
    /// case is longer (İ), ids of 250-260 units around the limit.
    @Test func keysAreIdempotentAndFieldsReadBackToThem() {
        let pieces = ["<", ">", "@", "A", "İ", "\u{301}", "\u{1}", "\u{0}", "\u{7F}", "\t", " ", "\u{A0}", "é", "😀", ".", "Mail", "x"]
        var state: UInt64 = 7
        func next() -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int(truncatingIfNeeded: state >> 33)
        }
        var ids = ["<bob@Mail@\u{1}\u{301}X.com>", "<<a@b>", "<\u{A0}x@Y.com>", " < spaced@Example.com > ",
                   "<" + String(repeating: "B", count: 241) + "@mail.fabİ.com>"]
        for _ in 0..<5_000 { ids.append((0..<(1 + next() % 14)).map { _ in pieces[next() % pieces.count] }.joined()) }
        for length in 250...260 { ids.append("<" + String(repeating: "k", count: length - 11) + "@Exİmple>") }
        for id in ids {
            let key = MessageIDKey.normalize(id), field = MessageIDKey.fieldValue(id)
            #expect(MessageIDKey.normalize(key) == key, "\(id.debugDescription)")
            #expect(MessageIDKey.normalize(field) == key, "\(id.debugDescription)")
            #expect(field.utf16.count <= 255, "\(id.debugDescription)")
            #expect(!key.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }, "\(id.debugDescription)")
        }
    }
}
