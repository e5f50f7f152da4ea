import Foundation
@_spi(RecordFormat) @testable import MailStore
import Testing
import SeededRandom

/// The record-fields codec (`RecordFields`): it writes what JSONEncoder wrote, and reads what
/// JSONSerialization reads as an object of strings, no more and no less.
@Suite struct RecordFieldsTests {
    /// Hostile values: JSON's own syntax, every control character, non-ASCII and non-BMP text.
    static let values = ["plain", "quote \" and \\ backslash", "tab\tnew\nline\r\u{8}\u{c}", "nul \u{0} \u{1} \u{1f} \u{7f}", "https://a.example/b?c=d",
                         "é ü 日本 😀 \u{2028} \u{2029}", "</script>", "{\"a\":\"b\"}", "\\u0041", ""]

    static func decode(_ bytes: [UInt8]) -> [String: String]? { bytes.withUnsafeBytes { RecordFields.decode($0) } }

    /// The reference: Foundation's parser, then the cast the store made before.
    static func reference(_ bytes: [UInt8]) -> [String: String]? {
        (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: String]
    }

    /// The hand-written field encoding writes what JSONEncoder wrote (stores already hold it).
    @Test func fieldsAreEncodedAsJSONEncoderEncodedThem() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        for value in Self.values {
            let fields = ["Subject": value, "Description": value + "!", "WhoId": "0035e00000Bob01", "mailsave__X__c": "x", "Empty": ""]
            let expected = String(decoding: try encoder.encode(fields.filter { !$0.value.isEmpty }), as: UTF8.self)
            #expect(RecordFields.encode(fields) == expected)
            #expect(Self.decode(Array(RecordFields.encode(fields).utf8)) == fields.filter { !$0.value.isEmpty })
            #expect(try CRMStore.decode(Data(RecordFields.encode(fields).utf8), id: "x") == fields.filter { !$0.value.isEmpty })
        }
    }

    /// Golden pairs: a JSON text and the fields read from it (nil: not an object of strings).
    @Test(arguments: [
        ("{}", [:]),
        (" {\"a\" : \"b\" ,\n\t\"c\":\"\"}\r\n", ["a": "b", "c": ""]),
        ("{\"a\":\"\\/\\u0041\\u00e9\\u00E9\\b\\f\\n\\r\\t\\\"\\\\\"}", ["a": "/Aéé\u{8}\u{c}\n\r\t\"\\"]),
        ("{\"a\":\"\\ud83d\\ude00\"}", ["a": "😀"]),
        ("{\"a\":\"\\u0000\"}", ["a": "\u{0}"]),
        ("{\"a\":\"b\",}", ["a": "b"]),
        ("{\"a\":\"b\",,}", nil),
        ("{\"a\":\"b\",\"a\":\"c\"}", ["a": "c"]),
        ("{,}", nil),
        ("{\"a\"}", nil),
        ("{\"a\":}", nil),
        ("{\"a\":1}", nil),
        ("{\"a\":null}", nil),
        ("{\"a\":true}", nil),
        ("{\"a\":{\"b\":\"c\"}}", nil),
        ("{\"a\":[\"b\"]}", nil),
        ("[\"a\"]", nil),
        ("\"a\"", nil),
        ("", nil),
        ("{", nil),
        ("{\"a\":\"b\"", nil),
        ("{\"a\":\"b\"} x", nil),
        ("{\"a\":\"b\"}{}", nil),
        ("{\"a\":\"\\ud83d\"}", nil),
        ("{\"a\":\"\\ude00\"}", nil),
        ("{\"a\":\"\\ud83d\\u0041\"}", nil),
        ("{\"a\":\"\\u12\"}", nil),
        ("{\"a\":\"\\x41\"}", nil),
        ("{\"a\":\"\\\"}", nil),
        ("{\"a\":\"raw\ttab\"}", nil),
        ("{'a':'b'}", nil),
    ] as [(String, [String: String]?)])
    func goldenTexts(_ text: String, _ expected: [String: String]?) {
        #expect(Self.decode(Array(text.utf8)) == expected, "\(text.debugDescription)")
        #expect(Self.reference(Array(text.utf8)) == expected, "the reference disagrees on \(text.debugDescription)")
    }

    /// Bytes that are not UTF-8 inside a string are refused, as the reference refuses them.
    @Test func invalidUTF8IsRefused() {
        for bad: [UInt8] in [[0xFF], [0xC3], [0xC3, 0x28], [0xED, 0xA0, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80], [0xC0, 0xAF]] {
            let text = Array("{\"a\":\"x".utf8) + bad + Array("y\"}".utf8)
            #expect(Self.decode(text) == nil, "\(bad)")
            #expect(Self.reference(text) == nil, "the reference accepts \(bad)")
        }
    }

    /// A deeply nested text is refused in one pass (no recursion to overflow).
    @Test func deepNestingIsRefusedAtOnce() {
        let deep = Array(repeating: UInt8(ascii: "["), count: 1_000_000)
        #expect(Self.decode(deep) == nil)
        let deepObjects = Array("{\"a\":".utf8) + Array(repeating: UInt8(ascii: "{"), count: 1_000_000)
        #expect(Self.decode(deepObjects) == nil)
    }

    /// Texts from four writers (this one, JSONEncoder with and without escaped slashes,
    /// JSONSerialization), each also mutated at random byte by byte: every one is read exactly
    /// as the reference reads it, and every unmutated one is read back as written.
    @Test func readsWhatTheReferenceReadsOnWrittenAndMutatedTexts() throws {
        var random = SplitMix(state: 2026)
        let pieces = Self.values + ["\u{1}", "\u{1f}", "\u{7f}", "\u{80}", "\u{ffff}", "\u{10ffff}", "/", "\\", "\"", "\\u", "é"]
        let names = ["Subject", "Description", "WhoId", "Email", "é", "a\"b", "\u{1}", "x/y"]
        let interesting = Array("{}[]\":,\\ u0dDfF/-1tn".utf8) + [0x00, 0x09, 0x0A, 0x7F, 0x80, 0xC3, 0xED, 0xF0, 0xFF]
        let slashEscaping = JSONEncoder()
        slashEscaping.outputFormatting = [.sortedKeys]
        let plain = JSONEncoder()
        plain.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var compared = 0, accepted = 0, refused = 0
        for _ in 0..<400 {
            var fields: [String: String] = [:]
            for _ in 0..<random.below(5) {
                let value = (0..<random.below(4)).map { _ in pieces[random.below(pieces.count)] }.joined()
                fields[names[random.below(names.count)]] = value
            }
            let kept = fields.filter { !$0.value.isEmpty }
            let texts: [[UInt8]] = [
                Array(RecordFields.encode(fields).utf8),
                Array(try slashEscaping.encode(kept)),
                Array(try plain.encode(kept)),
                Array(try JSONSerialization.data(withJSONObject: kept)),
            ]
            for text in texts {
                #expect(Self.decode(text) == kept, "\(String(decoding: text, as: UTF8.self).debugDescription)")
                for _ in 0..<8 {
                    var mutated = text
                    for _ in 0...random.below(3) {
                        let at = random.below(mutated.count + 1)
                        switch random.below(4) {
                        case 0 where at < mutated.count: mutated[at] = interesting[random.below(interesting.count)]
                        case 1 where at < mutated.count: mutated.remove(at: at)
                        case 2: mutated.insert(interesting[random.below(interesting.count)], at: at)
                        default: mutated = Array(mutated[..<at])
                        }
                    }
                    // Foundation reads a text starting with a NUL byte as UTF-16 or UTF-32; a
                    // store's fields are UTF-8 JSON, which cannot start with one.
                    if mutated.first == 0 { continue }
                    let ours = Self.decode(mutated)
                    #expect(ours == Self.reference(mutated), "\(mutated)")
                    compared += 1
                    if ours == nil { refused += 1 } else { accepted += 1 }
                }
            }
        }
        // The mutations reach both sides of the question often.
        #expect(compared > 12_000 && accepted > 1_000 && refused > 5_000, "compared \(compared), accepted \(accepted), refused \(refused)")
    }
}
