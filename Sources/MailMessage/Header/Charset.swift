#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Turns bytes in a declared charset into a String.
///
/// Mail declares charsets loosely: labels are misspelt, `us-ascii` parts carry 8-bit text,
/// `iso-8859-1` usually means Windows-1252. The common labels are decoded here without a
/// system call; everything else goes through the C library's iconv, which knows the
/// Windows, ISO, KOI8, EUC, GB, Big5 and Shift_JIS families.
public enum Charset {
    /// The outcome of decoding: the text, and whether it had to be repaired or guessed.
    public struct Decoded: Sendable {
        public var text: String
        /// Why the declared charset was not used as is, or nil when it was.
        public var problem: String?
    }

    /// Decodes `bytes` as `label`. Never fails: an unknown label or invalid bytes fall back
    /// to UTF-8 when the bytes are valid UTF-8, else to Windows-1252, and say so in `problem`.
    public static func decode<C: Collection>(_ bytes: C, label: String?) -> Decoded
    where C.Element == UInt8 {
        let name = normalize(label ?? "us-ascii")
        switch name {
        case "utf-8", "utf8", "unicode-1-1-utf-8", "x-unicode20utf8":
            if let text = validUTF8(bytes) { return Decoded(text: text, problem: nil) }
            return Decoded(text: windows1252(bytes), problem: "bytes are not valid UTF-8; read as Windows-1252")
        case "us-ascii", "ascii", "ansi_x3.4-1968", "iso646-us", "us", "7bit", "":
            // 8-bit bytes under an ASCII label are, in practice, UTF-8 (RFC 6532) or a Windows code page.
            if let text = validUTF8(bytes) { return Decoded(text: text, problem: nil) }
            return Decoded(text: windows1252(bytes), problem: "8-bit bytes under charset us-ascii; read as Windows-1252")
        case "iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1", "iso_8859-1", "cp819", "ibm819",
            "windows-1252", "cp1252", "x-cp1252", "iso-ir-100":
            // WHATWG: every ISO-8859-1 label means Windows-1252.
            return Decoded(text: windows1252(bytes), problem: nil)
        default:
            if let text = iconvDecode(bytes, from: name) { return Decoded(text: text, problem: nil) }
            if let text = validUTF8(bytes) {
                return Decoded(text: text, problem: "unknown or invalid charset '\(label ?? "")'; read as UTF-8")
            }
            return Decoded(text: windows1252(bytes), problem: "unknown or invalid charset '\(label ?? "")'; read as Windows-1252")
        }
    }

    /// True when `label` is read as UTF-8 when the bytes are valid UTF-8 (utf-8 and the
    /// ASCII labels, or no label): such text needs no conversion, only validation.
    static func readsAsUTF8(_ label: String?) -> Bool {
        switch normalize(label ?? "us-ascii") {
        case "utf-8", "utf8", "unicode-1-1-utf-8", "x-unicode20utf8", "us-ascii", "ascii", "ansi_x3.4-1968", "iso646-us", "us", "7bit", "":
            return true
        default:
            return false
        }
    }

    static func normalize(_ label: String) -> String {
        var name = label.lowercased()
        name = String(name.drop(while: { $0 == " " || $0 == "\"" || $0 == "'" }))
        while let last = name.last, last == " " || last == "\"" || last == "'" { name.removeLast() }
        switch name {
        case "utf-16": return "utf-16"
        case "ks_c_5601-1987", "ks_c_5601", "korean": return "cp949"
        case "gb2312", "x-gbk", "gbk": return "gb18030"
        case "x-sjis", "shift-jis", "sjis", "ms_kanji": return "shift_jis"
        case "x-euc-jp": return "euc-jp"
        case "cp-850": return "cp850"
        default: break
        }
        if name.hasPrefix("win-") { name = "windows-" + name.dropFirst(4) }
        if name.hasPrefix("windows") && !name.hasPrefix("windows-"), name.count > 7 {
            name = "windows-" + name.dropFirst(7)
        }
        return name
    }

    static func validUTF8<C: Collection>(_ bytes: C) -> String? where C.Element == UInt8 {
        UTF8Text.valid(bytes)
    }

    /// Windows-1252's 0x80–0x9F row; the rest of the code page equals Latin-1.
    private static let cp1252High: [UInt16] = [
        0x20AC, 0xFFFD, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0xFFFD, 0x017D, 0xFFFD,
        0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0xFFFD, 0x017E, 0x0178,
    ]

    static func windows1252<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        var utf8: [UInt8] = []
        utf8.reserveCapacity(bytes.count + bytes.count / 4)
        for byte in bytes {
            if byte < 0x80 {
                utf8.append(byte)
                continue
            }
            let value = byte < 0xA0 ? UInt32(cp1252High[Int(byte - 0x80)]) : UInt32(byte)
            if value < 0x800 {
                utf8.append(UInt8(0xC0 | (value >> 6)))
                utf8.append(UInt8(0x80 | (value & 0x3F)))
            } else {
                utf8.append(UInt8(0xE0 | (value >> 12)))
                utf8.append(UInt8(0x80 | ((value >> 6) & 0x3F)))
                utf8.append(UInt8(0x80 | (value & 0x3F)))
            }
        }
        return String(decoding: utf8, as: UTF8.self)
    }

    /// Decodes through iconv; nil when iconv does not know the charset or the bytes are invalid in it.
    static func iconvDecode<C: Collection>(_ bytes: C, from name: String) -> String? where C.Element == UInt8 {
        let descriptor = iconv_open("UTF-8", name)
        if descriptor == iconv_t(bitPattern: -1) { return nil }
        defer { iconv_close(descriptor) }
        var input = Array(bytes)
        if input.isEmpty { return "" }
        var output = [UInt8](repeating: 0, count: input.count * 4 + 16)
        let inputCount = input.count
        let outputCount = output.count
        let used: Int? = input.withUnsafeMutableBufferPointer { inBuffer in
            output.withUnsafeMutableBufferPointer { outBuffer in
                guard let inBase = inBuffer.baseAddress, let outBase = outBuffer.baseAddress else { return nil }
                var inPointer: UnsafeMutablePointer<CChar>? = UnsafeMutableRawPointer(inBase).assumingMemoryBound(to: CChar.self)
                var outPointer: UnsafeMutablePointer<CChar>? = UnsafeMutableRawPointer(outBase).assumingMemoryBound(to: CChar.self)
                var inLeft = inputCount
                var outLeft = outputCount
                let result = iconv(descriptor, &inPointer, &inLeft, &outPointer, &outLeft)
                if result == -1 || inLeft != 0 { return nil }
                return outputCount - outLeft
            }
        }
        guard let used else { return nil }
        return String(decoding: output[0..<used], as: UTF8.self)
    }
}
