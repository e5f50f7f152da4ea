import MailMessage
/// A record's fields as the store keeps them: one JSON object of strings (keys sorted, empty
/// values left out), so any text, control characters and NUL included, goes in and comes back
/// byte for byte, and any JSON tool can read a store.
///
/// Both directions are written by hand because they are the store's hot path: JSONEncoder
/// took 36 µs of an 840 µs save, and reading through JSONSerialization (an `[String: Any]`,
/// then a cast of every value) was two thirds of a Contact look-up. The writer produces
/// exactly what JSONEncoder (`.sortedKeys, .withoutEscapingSlashes`) wrote, which stores of
/// formats 2 and 3 hold; the reader accepts exactly the JSON texts whose value is an object of
/// strings, as JSONSerialization does (tests compare the two on valid, broken and mutated
/// input; like it, this tolerates a trailing comma), and nothing else: a store damaged there
/// is reported, never guessed at. (Unlike it, the text must be UTF-8, without a byte order
/// mark: JSONSerialization also detects UTF-16 and UTF-32, which no store holds.)
/// Public only to the `RecordFormat` SPI: the fuzz target compares it with JSONSerialization.
@_spi(RecordFormat) public enum RecordFields {
    /// The JSON text of `fields`.
    public static func encode(_ fields: [String: String]) -> String {
        var json: [UInt8] = [UInt8(ascii: "{")]
        json.reserveCapacity(256)
        for (name, value) in fields.sorted(by: { $0.key < $1.key }) where !value.isEmpty {
            if json.count > 1 { json.append(UInt8(ascii: ",")) }
            appendString(name, to: &json)
            json.append(UInt8(ascii: ":"))
            appendString(value, to: &json)
        }
        json.append(UInt8(ascii: "}"))
        return String(decoding: json, as: UTF8.self)
    }

    /// A JSON string literal: quote, backslash and control characters escaped, nothing else.
    static func appendString(_ text: String, to json: inout [UInt8]) {
        json.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): json += [UInt8(ascii: "\\"), byte]
            case 0x08: json += [UInt8(ascii: "\\"), UInt8(ascii: "b")]
            case 0x09: json += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0x0A: json += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case 0x0C: json += [UInt8(ascii: "\\"), UInt8(ascii: "f")]
            case 0x0D: json += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case 0..<0x20: json += [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0xF)]]
            default: json.append(byte)
            }
        }
        json.append(UInt8(ascii: "\""))
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// The fields in a JSON text, or nil unless the text is one JSON object whose values are
    /// all strings (whitespace around tokens and a comma before the closing brace allowed, as
    /// JSONSerialization allows them; a repeated name keeps its last value).
    /// One pass, no recursion: time and memory linear in the text.
    public static func decode(_ bytes: UnsafeRawBufferPointer) -> [String: String]? {
        var reader = Reader(bytes: bytes)
        reader.skipSpace()
        guard reader.take(UInt8(ascii: "{")) else { return nil }
        var fields: [String: String] = [:]
        reader.skipSpace()
        if !reader.take(UInt8(ascii: "}")) {
            while true {
                guard let name = reader.string() else { return nil }
                reader.skipSpace()
                guard reader.take(UInt8(ascii: ":")) else { return nil }
                reader.skipSpace()
                guard let value = reader.string() else { return nil }
                fields[name] = value
                reader.skipSpace()
                if reader.take(UInt8(ascii: ",")) {
                    reader.skipSpace()
                    // A comma before the closing brace, which JSONSerialization accepts too.
                    if reader.take(UInt8(ascii: "}")) { break }
                    continue
                }
                guard reader.take(UInt8(ascii: "}")) else { return nil }
                break
            }
        }
        reader.skipSpace()
        return reader.atEnd ? fields : nil
    }

    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        var index = 0

        var atEnd: Bool { index == bytes.count }

        mutating func skipSpace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x09, 0x0A, 0x0D: index += 1
                default: return
                }
            }
        }

        mutating func take(_ byte: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        /// A string literal at the reader, unescaped; nil when there is none, or it is not
        /// valid JSON (a raw control character, a bad escape, a lone surrogate, invalid UTF-8).
        mutating func string() -> String? {
            guard take(UInt8(ascii: "\"")) else { return nil }
            let start = index
            // Fast path: no escapes, the common case; the bytes are validated as they are.
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    defer { index += 1 }
                    return UTF8Text.valid(UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
                }
                if byte == UInt8(ascii: "\\") { break }
                if byte < 0x20 { return nil }
                index += 1
            }
            var text = Array(UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    return UTF8Text.valid(text)
                case UInt8(ascii: "\\"):
                    guard index < bytes.count else { return nil }
                    let escape = bytes[index]
                    index += 1
                    switch escape {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): text.append(escape)
                    case UInt8(ascii: "b"): text.append(0x08)
                    case UInt8(ascii: "f"): text.append(0x0C)
                    case UInt8(ascii: "n"): text.append(0x0A)
                    case UInt8(ascii: "r"): text.append(0x0D)
                    case UInt8(ascii: "t"): text.append(0x09)
                    case UInt8(ascii: "u"):
                        guard let scalar = unicodeEscape() else { return nil }
                        text.append(contentsOf: String(Character(scalar)).utf8)
                    default: return nil
                    }
                case 0..<0x20:
                    return nil
                default:
                    text.append(byte)
                }
            }
            return nil
        }

        /// The scalar of a `\uXXXX` escape whose `\u` was read, joining a surrogate pair.
        private mutating func unicodeEscape() -> Unicode.Scalar? {
            guard let unit = hexUnit() else { return nil }
            switch unit {
            case 0xD800...0xDBFF:
                guard take(UInt8(ascii: "\\")), take(UInt8(ascii: "u")), let low = hexUnit(), (0xDC00...0xDFFF).contains(low) else { return nil }
                return Unicode.Scalar(0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00))
            case 0xDC00...0xDFFF:
                return nil
            default:
                return Unicode.Scalar(unit)
            }
        }

        private mutating func hexUnit() -> UInt16? {
            guard bytes.count - index >= 4 else { return nil }
            var unit: UInt16 = 0
            for _ in 0..<4 {
                let byte = bytes[index]
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: return nil
                }
                unit = unit << 4 | UInt16(digit)
                index += 1
            }
            return unit
        }
    }
}
