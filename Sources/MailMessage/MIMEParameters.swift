/// A parameterised MIME header (`Content-Type`, `Content-Disposition`): its main value
/// lower-cased, and its parameters with RFC 2231 continuations and charsets resolved.
public struct ParameterizedValue: Sendable, Equatable {
    public var value: String
    /// Parameter names lower-cased; the first occurrence of a repeated name wins.
    public var parameters: [String: String]
    public var problems: [String]

    public subscript(_ name: String) -> String? { parameters[name] }

    /// Parses a raw header value. Lenient: unquoted specials, a missing closing quote and
    /// RFC 2047 words in quoted values (common in filenames) are all read.
    public static func parse(_ raw: [UInt8]) -> ParameterizedValue {
        var problems: [String] = []
        var segments: [(bytes: [UInt8], quoted: Bool)] = []
        var current: [UInt8] = []
        var currentQuoted = false
        var index = 0
        // Split at top-level semicolons, keeping quoted strings whole and dropping comments.
        while index < raw.count {
            let byte = raw[index]
            if byte == 0x22 { // quoted string
                currentQuoted = true
                index += 1
                var closed = false
                while index < raw.count {
                    let inner = raw[index]
                    if inner == 0x5C, index + 1 < raw.count { current.append(raw[index + 1]); index += 2; continue }
                    if inner == 0x22 { closed = true; index += 1; break }
                    current.append(inner)
                    index += 1
                }
                if !closed { problems.append("a quoted parameter value has no closing quote") }
                continue
            }
            if byte == 0x28 && !currentQuoted { // comment
                var depth = 1
                index += 1
                while index < raw.count && depth > 0 {
                    if raw[index] == 0x5C { index += 2; continue }
                    if raw[index] == 0x28 { depth += 1 } else if raw[index] == 0x29 { depth -= 1 }
                    index += 1
                }
                continue
            }
            if byte == 0x3B {
                segments.append((current, currentQuoted))
                current = []
                currentQuoted = false
                index += 1
                continue
            }
            current.append(byte)
            index += 1
        }
        segments.append((current, currentQuoted))

        var first = segments.removeFirst().bytes
        trimWhitespace(&first)
        let value = String(decoding: first, as: UTF8.self).lowercased()

        struct Section { var number: Int; var extended: Bool; var bytes: [UInt8] }
        var plainValues: [(String, String)] = []
        var sectioned: [String: [Section]] = [:]
        var order: [String] = []
        for segment in segments {
            guard let equals = segment.bytes.firstIndex(of: 0x3D) else {
                if !segment.bytes.allSatisfy(isWhitespace) {
                    problems.append("parameter without '=' ignored: \(String(decoding: segment.bytes, as: UTF8.self).trimmingSpaces())")
                }
                continue
            }
            var nameBytes = Array(segment.bytes[..<equals])
            trimWhitespace(&nameBytes)
            var valueBytes = Array(segment.bytes[(equals + 1)...])
            // A quoted value was appended without its quotes; only unquoted values are trimmed.
            trimWhitespace(&valueBytes)
            let name = String(decoding: nameBytes, as: UTF8.self).lowercased()
            guard !name.isEmpty else { continue }
            if let star = name.firstIndex(of: "*") {
                let base = String(name[..<star])
                let rest = name[name.index(after: star)...]
                var number = 0
                var extended = false
                if rest.isEmpty {
                    extended = true
                } else {
                    let digits = rest.hasSuffix("*") ? rest.dropLast() : rest[...]
                    extended = rest.hasSuffix("*")
                    guard let parsed = Int(digits), parsed < 1_000 else {
                        problems.append("bad RFC 2231 section in parameter '\(name)'")
                        continue
                    }
                    number = parsed
                }
                if sectioned[base] == nil { order.append(base) }
                sectioned[base, default: []].append(Section(number: number, extended: extended, bytes: valueBytes))
            } else {
                plainValues.append((name, EncodedWords.decode(valueBytes[...])))
            }
        }

        var parameters: [String: String] = [:]
        for (name, text) in plainValues {
            if parameters[name] != nil {
                problems.append("parameter '\(name)' is repeated; the first is used")
                continue
            }
            parameters[name] = text
        }
        for base in order {
            guard let sections = sectioned[base]?.sorted(by: { $0.number < $1.number }) else { continue }
            var charset: String?
            var bytes: [UInt8] = []
            for (position, section) in sections.enumerated() {
                var part = section.bytes[...]
                if section.extended && position == 0 {
                    // charset'language'value
                    if let firstQuote = part.firstIndex(of: 0x27),
                       let secondQuote = part[(firstQuote + 1)...].firstIndex(of: 0x27) {
                        let label = String(decoding: part[..<firstQuote], as: UTF8.self)
                        charset = label.isEmpty ? nil : label
                        part = part[(secondQuote + 1)...]
                    }
                }
                bytes.append(contentsOf: section.extended ? percentDecode(part) : Array(part))
            }
            // RFC 2231 values take precedence over a plain parameter of the same name.
            parameters[base] = Charset.decode(bytes, label: charset ?? "utf-8").text
        }
        return ParameterizedValue(value: value, parameters: parameters, problems: problems)
    }

    static func percentDecode(_ text: ArraySlice<UInt8>) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(text.count)
        var index = text.startIndex
        while index < text.endIndex {
            if text[index] == 0x25, index + 2 < text.endIndex,
               let high = hexValue(text[index + 1]), let low = hexValue(text[index + 2]) {
                output.append(high << 4 | low)
                index += 3
                continue
            }
            output.append(text[index])
            index += 1
        }
        return output
    }
}
