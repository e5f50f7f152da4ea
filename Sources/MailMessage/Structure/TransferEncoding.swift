/// Content-Transfer-Encoding decoding (RFC 2045 6), lenient the way readers of real mail are:
/// stray characters in base64 are skipped, a bad `=` in quoted-printable is kept literally,
/// and either is reported rather than fatal.
public enum TransferEncoding: String, Sendable {
    case sevenBit = "7bit"
    case eightBit = "8bit"
    case binary
    case base64
    case quotedPrintable = "quoted-printable"

    /// Reads a Content-Transfer-Encoding value; nil when unknown.
    public init?(label: String) {
        switch asciiLowercased(label.trimmingSpaces()) {
        case "7bit", "7-bit", "": self = .sevenBit
        case "8bit", "8-bit": self = .eightBit
        case "binary": self = .binary
        case "base64", "base-64": self = .base64
        case "quoted-printable", "quoted_printable", "qp": self = .quotedPrintable
        default: return nil
        }
    }

    public struct Output {
        public var bytes: [UInt8]
        public var problem: String?
    }

    /// True when the body's bytes are the content (7bit, 8bit, binary): nothing to decode.
    public var isIdentity: Bool { self == .sevenBit || self == .eightBit || self == .binary }

    /// Decodes `body` in this encoding.
    public func decode(_ body: ArraySlice<UInt8>) -> Output {
        switch self {
        case .sevenBit, .eightBit, .binary: return Output(bytes: Array(body), problem: nil)
        case .base64: return Self.decodeBase64(body)
        case .quotedPrintable: return Self.decodeQuotedPrintable(body)
        }
    }

    /// The decoded size without keeping the decoded bytes (attachments are only measured).
    public func decodedSize(_ body: ArraySlice<UInt8>) -> Int {
        switch self {
        case .sevenBit, .eightBit, .binary: return body.count
        case .base64:
            var symbols = 0
            for byte in body where base64Table[Int(byte)] != 0xFF { symbols += 1 }
            return symbols / 4 * 3 + max(0, symbols % 4 - 1)
        case .quotedPrintable:
            var size = 0
            var index = body.startIndex
            while index < body.endIndex {
                if body[index] == 0x3D {
                    if index + 2 < body.endIndex, hexValue(body[index + 1]) != nil, hexValue(body[index + 2]) != nil {
                        size += 1; index += 3; continue
                    }
                    var probe = index + 1
                    while probe < body.endIndex, body[probe] == 0x20 || body[probe] == 0x09 || body[probe] == 0x0D { probe += 1 }
                    if probe < body.endIndex, body[probe] == 0x0A { index = probe + 1; continue }
                    if probe == body.endIndex { break }
                }
                size += 1
                index += 1
            }
            return size
        }
    }

    static func decodeBase64(_ text: ArraySlice<UInt8>) -> Output {
        var output: [UInt8] = []
        output.reserveCapacity(text.count / 4 * 3 + 3)
        var accumulator: UInt32 = 0
        var count = 0
        var stray = false
        var sawPadding = false
        for byte in text {
            let value = base64Table[Int(byte)]
            if value == 0xFF {
                if byte == 0x3D { sawPadding = true; continue }
                if !isWhitespace(byte) { stray = true }
                continue
            }
            if sawPadding { stray = true }
            accumulator = accumulator << 6 | UInt32(value)
            count += 1
            if count == 4 {
                output.append(UInt8(truncatingIfNeeded: accumulator >> 16))
                output.append(UInt8(truncatingIfNeeded: accumulator >> 8))
                output.append(UInt8(truncatingIfNeeded: accumulator))
                accumulator = 0
                count = 0
            }
        }
        switch count {
        case 2: output.append(UInt8(truncatingIfNeeded: accumulator >> 4))
        case 3:
            output.append(UInt8(truncatingIfNeeded: accumulator >> 10))
            output.append(UInt8(truncatingIfNeeded: accumulator >> 2))
        default: break
        }
        var problem: String?
        if stray { problem = "invalid characters in base64 were skipped" }
        if count == 1 { problem = "base64 ends with an incomplete group" }
        return Output(bytes: output, problem: problem)
    }

    static func decodeQuotedPrintable(_ text: ArraySlice<UInt8>) -> Output {
        var output: [UInt8] = []
        output.reserveCapacity(text.count)
        var index = text.startIndex
        var problem: String?
        while index < text.endIndex {
            let byte = text[index]
            if byte == 0x3D {
                if index + 2 < text.endIndex, let high = hexValue(text[index + 1]), let low = hexValue(text[index + 2]) {
                    output.append(high << 4 | low)
                    index += 3
                    continue
                }
                // Soft line break: `=` then optional trailing whitespace, then the line end.
                var probe = index + 1
                while probe < text.endIndex, text[probe] == 0x20 || text[probe] == 0x09 || text[probe] == 0x0D { probe += 1 }
                if probe < text.endIndex, text[probe] == 0x0A { index = probe + 1; continue }
                if probe == text.endIndex { break }
                problem = "a '=' not followed by two hex digits was kept as is"
            }
            output.append(byte)
            index += 1
        }
        return Output(bytes: output, problem: problem)
    }
}

let base64Table: [UInt8] = {
    var table = [UInt8](repeating: 0xFF, count: 256)
    for (index, byte) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
        table[Int(byte)] = UInt8(index)
    }
    // base64url, seen in some generators.
    table[Int(UInt8(ascii: "-"))] = 62
    table[Int(UInt8(ascii: "_"))] = 63
    return table
}()
