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
        var output = ""
        write(into: &output, pretty: pretty, indent: 0, flush: nil)
        return output
    }

    /// Writes the serialization to standard output in 64 KiB pieces, then a line feed: a
    /// 50 MB body is never held twice as one JSON string.
    func print(pretty: Bool) {
        var output = ""
        output.reserveCapacity(JSON.flushSize + 1024)
        let flush: (inout String) -> Void = { text in
            Terminal.writeAll(1, text)
            text.removeAll(keepingCapacity: true)
        }
        write(into: &output, pretty: pretty, indent: 0, flush: flush)
        output += "\n"
        flush(&output)
    }

    static let flushSize = 1 << 16

    private func write(into output: inout String, pretty: Bool, indent: Int, flush: ((inout String) -> Void)?) {
        switch self {
        case .null: output += "null"
        case .bool(let value): output += value ? "true" : "false"
        case .int(let value): output += String(value)
        case .string(let value): JSON.escape(value, into: &output, flush: flush)
        case .array(let values):
            if values.isEmpty { output += "[]"; return }
            output += "["
            for (index, value) in values.enumerated() {
                if index > 0 { output += "," }
                if pretty { output += "\n" + String(repeating: " ", count: indent + 2) }
                value.write(into: &output, pretty: pretty, indent: indent + 2, flush: flush)
            }
            if pretty { output += "\n" + String(repeating: " ", count: indent) }
            output += "]"
        case .object(let members):
            if members.isEmpty { output += "{}"; return }
            output += "{"
            for (index, (key, value)) in members.enumerated() {
                if index > 0 { output += "," }
                if pretty { output += "\n" + String(repeating: " ", count: indent + 2) }
                JSON.escape(key, into: &output)
                output += pretty ? ": " : ":"
                value.write(into: &output, pretty: pretty, indent: indent + 2, flush: flush)
            }
            if pretty { output += "\n" + String(repeating: " ", count: indent) }
            output += "}"
        }
    }

    static func escape(_ text: String, into output: inout String, flush: ((inout String) -> Void)? = nil) {
        output += "\""
        for scalar in text.unicodeScalars {
            if let flush, output.utf8.count >= flushSize { flush(&output) }
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x2028 || scalar.value == 0x2029 {
                    let hex = String(scalar.value, radix: 16)
                    output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    output.unicodeScalars.append(scalar)
                }
            }
        }
        output += "\""
    }
}
