/// Something wrong in a message that parsing worked around. Real mail is full of these;
/// they are reported, never fatal.
public struct Defect: Sendable, Equatable, Hashable {
    /// A stable identifier, e.g. `missing-final-boundary`, for tests and filters.
    public var kind: String
    /// 1-based line in the message where the problem was seen, when it has one.
    public var line: Int?
    public var detail: String

    public init(kind: String, line: Int? = nil, detail: String) {
        self.kind = kind
        self.line = line
        self.detail = detail
    }
}

/// One header field, unfolded, with its raw bytes kept so that structured parsers
/// (addresses, MIME parameters) tokenize before any RFC 2047 decoding.
public struct HeaderField: Sendable {
    /// The name as written.
    public let name: String
    /// Lower-cased name, for case-insensitive lookup.
    public let key: String
    /// Unfolded value bytes, leading and trailing whitespace removed.
    public let raw: [UInt8]
    /// 1-based line of the field's first line.
    public let line: Int

    /// The value with RFC 2047 encoded words decoded and UTF-8 (RFC 6532) read.
    public var text: String { EncodedWords.decode(raw[...]) }
}

/// The header fields of a message or MIME part in their original order; lookups are
/// case-insensitive and repeated fields are kept.
public struct Headers: Sendable {
    public private(set) var fields: [HeaderField] = []

    public init(fields: [HeaderField] = []) { self.fields = fields }

    /// The first field with this name (any case).
    public func first(_ name: String) -> HeaderField? {
        let key = name.lowercased()
        return fields.first { $0.key == key }
    }

    /// Every field with this name, in order.
    public func all(_ name: String) -> [HeaderField] {
        let key = name.lowercased()
        return fields.filter { $0.key == key }
    }

    /// The decoded text of the first field with this name.
    public subscript(_ name: String) -> String? { first(name)?.text }

    mutating func append(_ field: HeaderField) { fields.append(field) }
}

/// Limits that keep a hostile message from costing more than its size.
public struct ParseLimits: Sendable {
    /// Largest message accepted, in bytes.
    public var maxMessageBytes = 64 << 20
    /// Largest header block (of the message or of one MIME part), in bytes.
    public var maxHeaderBytes = 1 << 20
    /// Most header fields in one header block.
    public var maxHeaderFields = 2_000
    /// Deepest MIME nesting; deeper parts are kept as opaque leaves.
    public var maxDepth = 32
    /// Most MIME parts in one message; the rest is kept as the last part's content.
    public var maxParts = 2_000

    public init() {}
}

/// Splits a header block into fields: unfolding (RFC 5322 2.2.3), obsolete whitespace
/// before the colon, a leading mbox `From ` line, bare LF or CRLF line ends.
struct HeaderBlockParser {
    let bytes: [UInt8]
    let lineIndex: LineIndex

    struct Result {
        var headers: Headers
        /// Where the body starts (after the blank line), or the end of the range.
        var bodyStart: Int
        var defects: [Defect]
        /// Set when the block broke a hard limit: the message should be refused.
        var limitError: String?
        /// True when not a single valid field line was seen.
        var sawNoField: Bool
    }

    func parse(_ range: Range<Int>, limits: ParseLimits, isTopLevel: Bool) -> Result {
        var headers = Headers()
        var defects: [Defect] = []
        var position = range.lowerBound
        let end = range.upperBound
        var current: (name: String, start: Int, value: [UInt8])?
        var sawNoField = true

        func flush() {
            guard let field = current else { return }
            var value = field.value
            trimWhitespace(&value)
            let name = field.name
            headers.append(HeaderField(name: name, key: name.lowercased(), raw: value, line: lineIndex.line(of: field.start)))
            current = nil
        }

        var first = true
        while position < end {
            let lineStart = position
            var lineEnd = position
            while lineEnd < end && bytes[lineEnd] != 0x0A { lineEnd += 1 }
            let next = lineEnd < end ? lineEnd + 1 : end
            var contentEnd = lineEnd
            if contentEnd > lineStart && bytes[contentEnd - 1] == 0x0D { contentEnd -= 1 }

            if lineStart - range.lowerBound > limits.maxHeaderBytes {
                return Result(headers: headers, bodyStart: end, defects: defects,
                              limitError: "header block is larger than \(limits.maxHeaderBytes) bytes (line \(lineIndex.line(of: lineStart)))",
                              sawNoField: sawNoField)
            }
            if contentEnd == lineStart {
                // The blank line: end of the header block.
                flush()
                return Result(headers: headers, bodyStart: next, defects: defects, limitError: nil, sawNoField: sawNoField)
            }
            let firstByte = bytes[lineStart]
            if first && isTopLevel && contentEnd - lineStart >= 5 && bytes[lineStart..<lineStart + 5].elementsEqual("From ".utf8) {
                // An mbox envelope line left on a single message.
                first = false
                position = next
                continue
            }
            first = false
            if firstByte == 0x20 || firstByte == 0x09 {
                if current != nil {
                    current?.value.append(contentsOf: bytes[lineStart..<contentEnd])
                    position = next
                    continue
                }
                defects.append(Defect(kind: "first-line-is-continuation", line: lineIndex.line(of: lineStart),
                                      detail: "the header block starts with a continuation line; read as a field"))
                var start = lineStart
                while start < contentEnd && (bytes[start] == 0x20 || bytes[start] == 0x09) { start += 1 }
                if let (name, valueStart) = fieldName(start..<contentEnd) {
                    current = (name, lineStart, Array(bytes[valueStart..<contentEnd]))
                    sawNoField = false
                }
                position = next
                continue
            }
            if let (name, valueStart) = fieldName(lineStart..<contentEnd) {
                flush()
                if headers.fields.count >= limits.maxHeaderFields {
                    return Result(headers: headers, bodyStart: end, defects: defects,
                                  limitError: "more than \(limits.maxHeaderFields) header fields (line \(lineIndex.line(of: lineStart)))",
                                  sawNoField: false)
                }
                current = (name, lineStart, Array(bytes[valueStart..<contentEnd]))
                sawNoField = false
                position = next
                continue
            }
            // A parameter list wrapped without indentation (`Content-Type: a/b;` then `name="x"`):
            // read as a continuation, as mail readers do.
            if let field = current, let last = field.value.last(where: { !isWhitespace($0) }), last == 0x3B,
               bytes[lineStart..<contentEnd].contains(0x3D) {
                defects.append(Defect(kind: "unindented-continuation", line: lineIndex.line(of: lineStart),
                                      detail: "a continuation line of '\(field.name)' is not indented; read as part of it"))
                current?.value.append(0x20)
                current?.value.append(contentsOf: bytes[lineStart..<contentEnd])
                position = next
                continue
            }
            // Not a field and not a continuation: the header block ended without its blank line.
            flush()
            defects.append(Defect(kind: "missing-header-body-separator", line: lineIndex.line(of: lineStart),
                                  detail: "line is not a header field; the body is taken to start here"))
            return Result(headers: headers, bodyStart: lineStart, defects: defects, limitError: nil, sawNoField: sawNoField)
        }
        flush()
        return Result(headers: headers, bodyStart: end, defects: defects, limitError: nil, sawNoField: sawNoField)
    }

    /// `name:` at the start of the line (printable ASCII, obsolete spaces before the colon allowed).
    private func fieldName(_ range: Range<Int>) -> (String, Int)? {
        var index = range.lowerBound
        while index < range.upperBound {
            let byte = bytes[index]
            if byte == 0x3A { break }
            if byte <= 0x20 || byte >= 0x7F {
                // Allow `Name   :` (obs-optional), nothing else.
                var probe = index
                while probe < range.upperBound && (bytes[probe] == 0x20 || bytes[probe] == 0x09) { probe += 1 }
                if probe < range.upperBound && bytes[probe] == 0x3A && index > range.lowerBound {
                    let name = String(decoding: bytes[range.lowerBound..<index], as: UTF8.self)
                    return (name, probe + 1)
                }
                return nil
            }
            index += 1
        }
        guard index < range.upperBound, index > range.lowerBound else { return nil }
        return (String(decoding: bytes[range.lowerBound..<index], as: UTF8.self), index + 1)
    }
}

func isWhitespace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0A }

func trimWhitespace(_ value: inout [UInt8]) {
    var start = 0
    while start < value.count && isWhitespace(value[start]) { start += 1 }
    var end = value.count
    while end > start && isWhitespace(value[end - 1]) { end -= 1 }
    if start > 0 || end < value.count { value = Array(value[start..<end]) }
}

/// Byte offset to 1-based line number, for defects and errors that name a place.
struct LineIndex {
    private var starts: [Int] = [0]

    init(_ bytes: [UInt8]) {
        starts.reserveCapacity(bytes.count / 40 + 1)
        bytes.withUnsafeBufferPointer { buffer in
            for index in 0..<buffer.count where buffer[index] == 0x0A { starts.append(index + 1) }
        }
    }

    func line(of offset: Int) -> Int {
        var low = 0
        var high = starts.count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if starts[middle] <= offset { low = middle } else { high = middle - 1 }
        }
        return low + 1
    }
}
