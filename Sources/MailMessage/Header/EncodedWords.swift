/// RFC 2047 encoded words (`=?charset?B|Q?text?=`) and RFC 6532 raw UTF-8 in header text.
///
/// Lenient where mail is: encoded words glued to other text are decoded, whitespace
/// between adjacent encoded words is dropped, and adjacent words in one charset are joined
/// before decoding so a multi-byte character split across two words survives.
public enum EncodedWords {
    public static func decode(_ raw: ArraySlice<UInt8>) -> String {
        if !containsEncodedWordStart(raw) { return plain(raw) }
        var output = ""
        var literal: [UInt8] = []
        var pending: (charset: String, bytes: [UInt8])?
        var index = raw.startIndex
        var scan = TextScan()

        func flushPending() {
            if let word = pending {
                output += Charset.decode(word.bytes, label: word.charset).text
                pending = nil
            }
        }

        while index < raw.endIndex {
            if raw[index] == 0x3D, index + 1 < raw.endIndex, raw[index + 1] == 0x3F,
               let word = parseWord(raw, at: index, scan: &scan) {
                // Whitespace between two encoded words is not part of the text.
                if pending != nil && literal.allSatisfy(isWhitespace) {
                    literal.removeAll(keepingCapacity: true)
                }
                if !literal.isEmpty {
                    flushPending()
                    output += plain(literal[...])
                    literal.removeAll(keepingCapacity: true)
                }
                if let current = pending, current.charset == word.charset {
                    pending?.bytes.append(contentsOf: word.bytes)
                } else {
                    flushPending()
                    pending = (word.charset, word.bytes)
                }
                index = word.end
                continue
            }
            literal.append(raw[index])
            index += 1
        }
        flushPending()
        if !literal.isEmpty { output += plain(literal[...]) }
        return output
    }

    /// Header bytes that are not encoded words: UTF-8 when valid (RFC 6532), else Windows-1252.
    static func plain(_ bytes: ArraySlice<UInt8>) -> String {
        if let text = UTF8Text.valid(bytes) { return text }
        return Charset.windows1252(bytes)
    }

    static func containsEncodedWordStart(_ raw: ArraySlice<UInt8>) -> Bool {
        var index = raw.startIndex
        while index + 1 < raw.endIndex {
            if raw[index] == 0x3D && raw[index + 1] == 0x3F { return true }
            index += 1
        }
        return false
    }

    struct Word {
        var charset: String
        var bytes: [UInt8]
        var end: Int
    }

    /// Where the last search for an encoded word's end stopped. Words are tried left to
    /// right, so a later try that starts inside the searched stretch stops at the same
    /// place: remembering it keeps `=?` repeated without `?=` linear instead of quadratic.
    struct TextScan {
        var from = Int.max
        var stop = Int.min
    }

    /// Parses one encoded word starting at `start` (which holds `=?`).
    static func parseWord(_ raw: ArraySlice<UInt8>, at start: Int) -> Word? {
        var scan = TextScan()
        return parseWord(raw, at: start, scan: &scan)
    }

    static func parseWord(_ raw: ArraySlice<UInt8>, at start: Int, scan: inout TextScan) -> Word? {
        var index = start + 2
        let charsetStart = index
        while index < raw.endIndex, raw[index] != 0x3F {
            if raw[index] <= 0x20 { return nil }
            index += 1
        }
        guard index < raw.endIndex, index > charsetStart else { return nil }
        var charset = String(decoding: raw[charsetStart..<index], as: UTF8.self)
        if let star = charset.firstIndex(of: "*") { charset = String(charset[..<star]) } // RFC 2231 language
        index += 1
        guard index + 1 < raw.endIndex, raw[index + 1] == 0x3F else { return nil }
        let encoding = raw[index] | 0x20
        guard encoding == 0x62 || encoding == 0x71 else { return nil } // b or q
        index += 2
        let textStart = index
        if textStart >= scan.from && textStart <= scan.stop {
            index = scan.stop
        } else {
            while index + 1 < raw.endIndex, !(raw[index] == 0x3F && raw[index + 1] == 0x3D) {
                if raw[index] == 0x20 || raw[index] == 0x09 { break }
                index += 1
            }
            scan = TextScan(from: textStart, stop: index)
        }
        guard index + 1 < raw.endIndex, raw[index] != 0x20, raw[index] != 0x09 else { return nil }
        let text = raw[textStart..<index]
        let bytes = encoding == 0x62 ? TransferEncoding.decodeBase64(text).bytes : decodeQ(text)
        return Word(charset: charset.lowercased(), bytes: bytes, end: index + 2)
    }

    /// RFC 2047 4.2: quoted-printable where `_` stands for a space.
    static func decodeQ(_ text: ArraySlice<UInt8>) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(text.count)
        var index = text.startIndex
        while index < text.endIndex {
            let byte = text[index]
            if byte == 0x5F {
                output.append(0x20)
            } else if byte == 0x3D, index + 2 < text.endIndex,
                      let high = hexValue(text[index + 1]), let low = hexValue(text[index + 2]) {
                output.append(high << 4 | low)
                index += 3
                continue
            } else {
                output.append(byte)
            }
            index += 1
        }
        return output
    }
}

func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case 0x30...0x39: return byte - 0x30
    case 0x41...0x46: return byte - 0x41 + 10
    case 0x61...0x66: return byte - 0x61 + 10
    default: return nil
    }
}
