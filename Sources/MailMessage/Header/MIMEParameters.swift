/// MIME parameters in the order written; names lower-cased. A short list searched linearly:
/// parts have one to three parameters, where a hash table costs more than it saves.
public struct ParameterList: Sendable, Equatable {
    public private(set) var pairs: [(name: String, value: String)] = []

    public init() {}

    /// The first value under `name` (lower-case).
    public subscript(_ name: String) -> String? {
        for pair in pairs where pair.name == name { return pair.value }
        return nil
    }

    public var isEmpty: Bool { pairs.isEmpty }

    mutating func set(_ name: String, _ value: String) {
        if let index = pairs.firstIndex(where: { $0.name == name }) {
            pairs[index].value = value
        } else {
            pairs.append((name, value))
        }
    }

    public static func == (left: ParameterList, right: ParameterList) -> Bool {
        left.pairs.count == right.pairs.count && zip(left.pairs, right.pairs).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }
}

/// A parameterised MIME header (`Content-Type`, `Content-Disposition`): its main value
/// lower-cased, and its parameters with RFC 2231 continuations and charsets resolved.
public struct ParameterizedValue: Sendable, Equatable {
    public var value: String
    public var parameters: ParameterList
    public var problems: [String]

    public subscript(_ name: String) -> String? { parameters[name] }

    public static func parse(_ raw: [UInt8]) -> ParameterizedValue { parse(raw[...]) }

    /// Parses a raw header value in one pass. Lenient: unquoted specials, a missing closing
    /// quote, comments anywhere and RFC 2047 words in quoted values (common in filenames).
    public static func parse(_ raw: ArraySlice<UInt8>) -> ParameterizedValue {
        var problems: [String] = []
        var index = raw.startIndex
        let end = raw.endIndex

        func skipComment() {
            var depth = 0
            while index < end {
                let byte = raw[index]
                if byte == 0x5C { index += 2; continue }
                if byte == 0x28 { depth += 1 } else if byte == 0x29 { depth -= 1 }
                index += 1
                if depth == 0 { return }
            }
        }
        func skipWhitespace() {
            while index < end && (isWhitespace(raw[index]) || raw[index] == 0x28) {
                if raw[index] == 0x28 { skipComment() } else { index += 1 }
            }
        }

        // The main value, up to the first top-level ';'.
        skipWhitespace()
        var valueBytes: [UInt8] = []
        while index < end && raw[index] != 0x3B {
            let byte = raw[index]
            if byte == 0x28 { skipComment(); continue }
            if byte == 0x22 { index += 1; continue }
            if !isWhitespace(byte) { valueBytes.append(byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte) }
            index += 1
        }
        let value = String(decoding: valueBytes, as: UTF8.self)

        var parameters = ParameterList()
        struct Section { var base: String; var number: Int; var extended: Bool; var bytes: [UInt8] }
        var sections: [Section] = []
        // Real headers carry a handful of parameters; a hostile one carries tens of thousands.
        // Past the cap the rest is skipped with a problem, so every step below stays linear.
        var parameterCount = 0
        while index < end {
            if parameterCount == maxParameters {
                problems.append("more than \(maxParameters) parameters; the rest are ignored")
                break
            }
            parameterCount += 1
            index += 1 // the ';'
            skipWhitespace()
            guard index < end else { break }
            // Name, up to '=' (or a stray ';').
            var nameBytes: [UInt8] = []
            while index < end && raw[index] != 0x3D && raw[index] != 0x3B {
                let byte = raw[index]
                if !isWhitespace(byte) { nameBytes.append(byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte) }
                index += 1
            }
            guard index < end, raw[index] == 0x3D else {
                if !nameBytes.isEmpty {
                    problems.append("parameter without '=' ignored: \(String(decoding: nameBytes, as: UTF8.self))")
                }
                continue
            }
            index += 1
            skipWhitespace()
            var valueBytes: [UInt8] = []
            var wasQuoted = false
            if index < end && raw[index] == 0x22 {
                wasQuoted = true
                index += 1
                var closed = false
                while index < end {
                    let byte = raw[index]
                    if byte == 0x5C, index + 1 < end { valueBytes.append(raw[index + 1]); index += 2; continue }
                    if byte == 0x22 { closed = true; index += 1; break }
                    valueBytes.append(byte)
                    index += 1
                }
                if !closed { problems.append("a quoted parameter value has no closing quote") }
                // Anything up to the next ';' after a quoted value is noise.
                while index < end && raw[index] != 0x3B { index += 1 }
            } else {
                while index < end && raw[index] != 0x3B {
                    let byte = raw[index]
                    if byte == 0x28 { skipComment(); continue }
                    valueBytes.append(byte)
                    index += 1
                }
                while let last = valueBytes.last, isWhitespace(last) { valueBytes.removeLast() }
            }
            let name = String(decoding: nameBytes, as: UTF8.self)
            guard !name.isEmpty else { continue }
            if let star = nameBytes.firstIndex(of: 0x2A) {
                // RFC 2231: name*, name*N, name*N*
                let base = String(decoding: nameBytes[..<star], as: UTF8.self)
                let rest = nameBytes[(star + 1)...]
                var number = 0
                var extended = true
                if !rest.isEmpty {
                    extended = rest.last == 0x2A
                    let digits = extended ? rest.dropLast() : rest[...]
                    guard let parsed = Int(String(decoding: digits, as: UTF8.self)), parsed < 1_000 else {
                        problems.append("bad RFC 2231 section in parameter '\(name)'")
                        continue
                    }
                    number = parsed
                }
                sections.append(Section(base: base, number: number, extended: extended && !wasQuoted, bytes: valueBytes))
                continue
            }
            if parameters[name] != nil {
                problems.append("parameter '\(name)' is repeated; the first is used")
                continue
            }
            parameters.set(name, EncodedWords.decode(valueBytes[...]))
        }

        if !sections.isEmpty {
            var bases: [String] = []
            var byBase: [String: [Section]] = [:]
            for section in sections {
                if byBase[section.base] == nil { bases.append(section.base) }
                byBase[section.base, default: []].append(section)
            }
            for base in bases {
                let ordered = (byBase[base] ?? []).sorted { $0.number < $1.number }
                var charset: String?
                var bytes: [UInt8] = []
                for (position, section) in ordered.enumerated() {
                    var part = section.bytes[...]
                    if section.extended && position == 0,
                       let firstQuote = part.firstIndex(of: 0x27),
                       let secondQuote = part[(firstQuote + 1)...].firstIndex(of: 0x27) {
                        let label = String(decoding: part[..<firstQuote], as: UTF8.self)
                        charset = label.isEmpty ? nil : label
                        part = part[(secondQuote + 1)...]
                    }
                    bytes.append(contentsOf: section.extended ? percentDecode(part) : Array(part))
                }
                // RFC 2231 values take precedence over a plain parameter of the same name.
                parameters.set(base, Charset.decode(bytes, label: charset ?? "utf-8").text)
            }
        }
        return ParameterizedValue(value: value, parameters: parameters, problems: problems)
    }

    /// Most parameters read from one header value.
    public static let maxParameters = 256

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
