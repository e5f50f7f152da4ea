#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

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
    /// Unfolded value bytes, leading and trailing whitespace removed. A slice of the message
    /// itself when the field was not folded, so reading headers copies nothing.
    public let value: ArraySlice<UInt8>
    /// 1-based line of the field's first line.
    public let line: Int

    /// The value bytes as an array, for the structured-field parsers.
    public var raw: [UInt8] { Array(value) }

    /// The value with RFC 2047 encoded words decoded and UTF-8 (RFC 6532) read.
    public var text: String { EncodedWords.decode(value) }

    /// Case-insensitive comparison with a lower-case ASCII name.
    func hasName(_ lowercaseKey: String.UTF8View) -> Bool {
        let own = name.utf8
        guard own.count == lowercaseKey.count else { return false }
        for (byte, expected) in zip(own, lowercaseKey) where byte != expected {
            if byte >= 0x41 && byte <= 0x5A && byte | 0x20 == expected { continue }
            return false
        }
        return true
    }
}

/// The header fields of a message or MIME part in their original order; lookups are
/// case-insensitive and repeated fields are kept.
public struct Headers: Sendable {
    public private(set) var fields: [HeaderField] = []

    public init(fields: [HeaderField] = []) { self.fields = fields }

    /// The first field with this name (any case).
    public func first(_ name: String) -> HeaderField? {
        let key = asciiLowercased(name).utf8
        return fields.first { $0.hasName(key) }
    }

    /// Every field with this name, in order.
    public func all(_ name: String) -> [HeaderField] {
        let key = asciiLowercased(name).utf8
        return fields.filter { $0.hasName(key) }
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

    struct Result {
        var headers: Headers
        /// Where the body starts (after the blank line), or the end of the range.
        var bodyStart: Int
        /// The 1-based line of `bodyStart`.
        var bodyLine: Int
        var defects: [Defect]
        /// Set when the block broke a hard limit: the message should be refused.
        var limitError: String?
        /// True when not a single valid field line was seen.
        var sawNoField: Bool
    }

    /// `startLine` is the 1-based line of `range.lowerBound`; lines are counted from there.
    func parse(_ range: Range<Int>, startLine: Int, limits: ParseLimits, isTopLevel: Bool) -> Result {
        var headers = Headers()
        var defects: [Defect] = []
        var position = range.lowerBound
        let end = range.upperBound
        /// The field being read: its value is a range of the message until a continuation
        /// line makes it an unfolded copy, kept apart (`folded`) so each continuation line
        /// appends in place: folding costs the size of the field, not its square.
        var current: (name: String, line: Int, start: Int, end: Int)?
        var folded: [UInt8]?
        var lineNumber = startLine - 1
        var sawNoField = true

        func flush() {
            guard let field = current else { return }
            let value: ArraySlice<UInt8> = folded.map { $0[...] } ?? bytes[field.start..<field.end]
            var start = value.startIndex
            var end = value.endIndex
            while start < end && isWhitespace(value[start]) { start += 1 }
            while end > start && isWhitespace(value[end - 1]) { end -= 1 }
            headers.append(HeaderField(name: field.name, value: value[start..<end], line: field.line))
            current = nil
            folded = nil
        }

        var first = true
        while position < end {
            let lineStart = position
            lineNumber += 1
            // The budget holds on every byte, not only at line starts: a line is searched no
            // further than the budget allows, so one endless line costs no more than it.
            let budgetEnd = min(end, range.lowerBound + limits.maxHeaderBytes + 1)
            let lineEnd = bytes.withUnsafeBufferPointer { lineFeed(in: $0, from: position, to: budgetEnd) }
            if lineEnd - range.lowerBound > limits.maxHeaderBytes {
                return Result(headers: headers, bodyStart: end, bodyLine: lineNumber, defects: defects,
                              limitError: "header block is larger than \(limits.maxHeaderBytes) bytes (line \(lineNumber))",
                              sawNoField: sawNoField)
            }
            let next = lineEnd < end ? lineEnd + 1 : end
            var contentEnd = lineEnd
            if contentEnd > lineStart && bytes[contentEnd - 1] == 0x0D { contentEnd -= 1 }

            if lineStart - range.lowerBound > limits.maxHeaderBytes {
                return Result(headers: headers, bodyStart: end, bodyLine: lineNumber, defects: defects,
                              limitError: "header block is larger than \(limits.maxHeaderBytes) bytes (line \(lineNumber))",
                              sawNoField: sawNoField)
            }
            if contentEnd == lineStart {
                // The blank line: end of the header block.
                flush()
                return Result(headers: headers, bodyStart: next, bodyLine: lineNumber + 1, defects: defects, limitError: nil,
                              sawNoField: sawNoField)
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
                if let field = current {
                    if folded == nil { folded = Array(bytes[field.start..<field.end]) }
                    folded?.append(contentsOf: bytes[lineStart..<contentEnd])
                    position = next
                    continue
                }
                defects.append(Defect(kind: "first-line-is-continuation", line: lineNumber,
                                      detail: "the header block starts with a continuation line; read as a field"))
                var start = lineStart
                while start < contentEnd && (bytes[start] == 0x20 || bytes[start] == 0x09) { start += 1 }
                if let (name, valueStart) = fieldName(start..<contentEnd) {
                    current = (name, lineNumber, valueStart, contentEnd)
                    sawNoField = false
                }
                position = next
                continue
            }
            if let (name, valueStart) = fieldName(lineStart..<contentEnd) {
                flush()
                if headers.fields.count >= limits.maxHeaderFields {
                    return Result(headers: headers, bodyStart: end, bodyLine: lineNumber, defects: defects,
                                  limitError: "more than \(limits.maxHeaderFields) header fields (line \(lineNumber))",
                                  sawNoField: false)
                }
                current = (name, lineNumber, valueStart, contentEnd)
                sawNoField = false
                position = next
                continue
            }
            // A parameter list wrapped without indentation (`Content-Type: a/b;` then `name="x"`):
            // read as a continuation, as mail readers do.
            if let field = current,
               let last = (folded.map { $0[...] } ?? bytes[field.start..<field.end]).last(where: { !isWhitespace($0) }),
               last == 0x3B,
               bytes[lineStart..<contentEnd].contains(0x3D) {
                defects.append(Defect(kind: "unindented-continuation", line: lineNumber,
                                      detail: "a continuation line of '\(field.name)' is not indented; read as part of it"))
                if folded == nil { folded = Array(bytes[field.start..<field.end]) }
                folded?.append(0x20)
                folded?.append(contentsOf: bytes[lineStart..<contentEnd])
                position = next
                continue
            }
            // Not a field and not a continuation: the header block ended without its blank line.
            flush()
            defects.append(Defect(kind: "missing-header-body-separator", line: lineNumber,
                                  detail: "line is not a header field; the body is taken to start here"))
            return Result(headers: headers, bodyStart: lineStart, bodyLine: lineNumber, defects: defects, limitError: nil,
                          sawNoField: sawNoField)
        }
        flush()
        return Result(headers: headers, bodyStart: end, bodyLine: lineNumber + 1, defects: defects, limitError: nil, sawNoField: sawNoField)
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

/// The index of the next LF in `buffer[start..<end]`, or `end` (memchr: this is the parser's
/// innermost loop).
@inline(__always)
func lineFeed(in buffer: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int) -> Int {
    buffer.firstIndex(ofByte: 0x0A, from: start, to: end) ?? end
}

/// ASCII lower-casing without Unicode tables: header names and MIME tokens are ASCII.
func asciiLowercased(_ text: String) -> String {
    if !text.utf8.contains(where: { $0 >= 0x41 && $0 <= 0x5A }) { return text }
    return String(decoding: text.utf8.map(\.asciiLowercased), as: UTF8.self)
}
