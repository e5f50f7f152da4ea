/// A JSON value with keys kept in insertion order, so output reads in the documented order.
enum JSON {
    case null
    case bool(Bool)
    case int(Int)
    case string(String)
    case array([JSON])
    case object([(String, JSON)])

    static func optional(_ value: String?) -> JSON { value.map(JSON.string) ?? .null }
    static func strings(_ values: [String]) -> JSON { .array(values.map(JSON.string)) }

    /// Compact (one line) or indented by two spaces.
    func serialized(pretty: Bool) -> String {
        var output: [UInt8] = []
        output.reserveCapacity(1024)
        write(into: &output, pretty: pretty, indent: 0, flush: nil)
        return String(decoding: output, as: UTF8.self)
    }

    /// Writes the serialization to standard output in 64 KiB pieces, then a line feed: a
    /// 50 MB body is never held twice as one JSON string.
    func print(pretty: Bool) {
        var output: [UInt8] = []
        output.reserveCapacity(JSON.flushSize + 1024)
        let flush: (inout [UInt8]) -> Void = { bytes in
            Terminal.writeAll(1, bytes)
            bytes.removeAll(keepingCapacity: true)
        }
        write(into: &output, pretty: pretty, indent: 0, flush: flush)
        output.append(0x0A)
        flush(&output)
    }

    static let flushSize = 1 << 16

    /// Written as UTF-8 bytes: appending to a String cost a validation and a grapheme check
    /// per piece (writing a decision's line was a twelfth of `batch`).
    private func write(into output: inout [UInt8], pretty: Bool, indent: Int, flush: ((inout [UInt8]) -> Void)?) {
        func newline(_ indent: Int) {
            output.append(0x0A)
            output.append(contentsOf: repeatElement(UInt8(ascii: " "), count: indent))
        }
        switch self {
        case .null: output.append(contentsOf: "null".utf8)
        case .bool(let value): output.append(contentsOf: (value ? "true" : "false").utf8)
        case .int(let value): output.append(contentsOf: String(value).utf8)
        case .string(let value): JSON.escape(value, into: &output, flush: flush)
        case .array(let values):
            if values.isEmpty { output.append(contentsOf: "[]".utf8); return }
            output.append(UInt8(ascii: "["))
            for (index, value) in values.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                if pretty { newline(indent + 2) }
                value.write(into: &output, pretty: pretty, indent: indent + 2, flush: flush)
            }
            if pretty { newline(indent) }
            output.append(UInt8(ascii: "]"))
        case .object(let members):
            if members.isEmpty { output.append(contentsOf: "{}".utf8); return }
            output.append(UInt8(ascii: "{"))
            for (index, (key, value)) in members.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                if pretty { newline(indent + 2) }
                JSON.escape(key, into: &output)
                output.append(contentsOf: (pretty ? ": " : ":").utf8)
                value.write(into: &output, pretty: pretty, indent: indent + 2, flush: flush)
            }
            if pretty { newline(indent) }
            output.append(UInt8(ascii: "}"))
        }
    }

    /// `text` as a JSON string: runs of bytes that need no escape are copied whole; `"`, `\`,
    /// controls, U+2028 and U+2029 are escaped. Runs are cut at scalar boundaries every
    /// 16 KiB so `flush` keeps the buffer small for a huge text.
    static func escape(_ text: String, into output: inout [UInt8], flush: ((inout [UInt8]) -> Void)? = nil) {
        output.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { bytes in
            var runStart = 0
            var index = 0
            func emitRun(upTo end: Int) {
                if end > runStart { output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<end])) }
                if let flush, output.count >= flushSize { flush(&output) }
            }
            while index < bytes.count {
                let byte = bytes[index]
                let replacement: String
                var width = 1
                switch byte {
                case 0x22: replacement = "\\\""
                case 0x5C: replacement = "\\\\"
                case 0x0A: replacement = "\\n"
                case 0x0D: replacement = "\\r"
                case 0x09: replacement = "\\t"
                case 0x00..<0x20: replacement = (byte < 0x10 ? "\\u000" : "\\u00") + String(byte, radix: 16)
                case 0xE2 where index + 2 < bytes.count && bytes[index + 1] == 0x80 && (bytes[index + 2] == 0xA8 || bytes[index + 2] == 0xA9):
                    replacement = bytes[index + 2] == 0xA8 ? "\\u2028" : "\\u2029"
                    width = 3
                default:
                    if index - runStart >= 16 << 10 && byte & 0xC0 != 0x80 {
                        emitRun(upTo: index)
                        runStart = index
                    }
                    index += 1
                    continue
                }
                emitRun(upTo: index)
                output.append(contentsOf: replacement.utf8)
                index += width
                runStart = index
            }
            emitRun(upTo: bytes.count)
        }
        output.append(UInt8(ascii: "\""))
    }
}
