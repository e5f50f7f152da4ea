/// One node of the MIME tree. Bodies are not copied: a part names its byte range in the
/// message, and is decoded only when its content is asked for.
public struct MIMEPart: Sendable {
    public var headers: Headers
    /// `type/subtype`, lower-cased; `text/plain` when missing or unreadable (RFC 2045 5.2).
    public var contentType: String
    public var parameters: ParameterList
    /// `inline`, `attachment`, or nil when there is no Content-Disposition.
    public var disposition: String?
    /// From Content-Disposition `filename`, else Content-Type `name`.
    public var filename: String?
    public var transferEncoding: TransferEncoding
    /// The encoded body's bytes in the message.
    public var bodyRange: Range<Int>
    public var children: [Int] = []
    public var parent: Int?
    public var depth: Int

    public var isMultipart: Bool { contentType.hasPrefix("multipart/") }
    public var charset: String? { parameters["charset"] }
}

/// Builds the MIME tree of a message: nested multiparts of any subtype, preamble and
/// epilogue, a missing final boundary, a boundary that never appears, parts without headers.
struct MIMETreeParser {
    let bytes: [UInt8]
    let limits: ParseLimits
    var parts: [MIMEPart] = []
    var defects: [Defect] = []

    init(bytes: [UInt8], limits: ParseLimits) {
        self.bytes = bytes
        self.limits = limits
    }

    /// Adds the part whose headers are `headers` and whose body spans `body`; returns its index.
    @discardableResult
    mutating func addPart(headers: Headers, body: Range<Int>, bodyLine: Int, parent: Int?, depth: Int, defaultType: String) -> Int {
        var contentType = defaultType
        var parameters = ParameterList()
        if let field = headers.first("content-type") {
            let parsed = ParameterizedValue.parse(field.value)
            for problem in parsed.problems {
                defects.append(Defect(kind: "content-type-parameter", line: field.line, detail: problem))
            }
            let value = parsed.value
            let pieces = value.split(separator: "/", maxSplits: 1)
            if pieces.count == 2, !pieces[0].isEmpty, !pieces[1].isEmpty,
               !pieces[0].contains(where: { $0 == " " }), !pieces[1].contains(where: { $0 == " " }) {
                contentType = value
                parameters = parsed.parameters
            } else {
                defects.append(Defect(kind: "invalid-content-type", line: field.line,
                                      detail: "Content-Type '\(value)' is not type/subtype; read as \(defaultType)"))
                parameters = parsed.parameters
            }
        }
        var disposition: String?
        var filename: String?
        if let field = headers.first("content-disposition") {
            let parsed = ParameterizedValue.parse(field.value)
            disposition = parsed.value.isEmpty ? nil : parsed.value
            filename = parsed["filename"]
            for problem in parsed.problems {
                defects.append(Defect(kind: "content-disposition-parameter", line: field.line, detail: problem))
            }
        }
        if filename == nil || filename?.isEmpty == true { filename = parameters["name"] }
        if filename?.isEmpty == true { filename = nil }
        var encoding = TransferEncoding.sevenBit
        if let field = headers.first("content-transfer-encoding") {
            let label = String(decoding: field.value, as: UTF8.self)
            if let known = TransferEncoding(label: label) {
                encoding = known
            } else {
                defects.append(Defect(kind: "unknown-transfer-encoding", line: field.line,
                                      detail: "Content-Transfer-Encoding '\(label)' is unknown; body read as is"))
            }
        }
        let index = parts.count
        parts.append(MIMEPart(headers: headers, contentType: contentType, parameters: parameters, disposition: disposition,
                              filename: filename, transferEncoding: encoding, bodyRange: body, parent: parent, depth: depth))
        if let parent { parts[parent].children.append(index) }

        guard contentType.hasPrefix("multipart/") else { return index }
        if depth >= limits.maxDepth {
            defects.append(Defect(kind: "depth-limit", line: bodyLine,
                                  detail: "MIME nesting deeper than \(limits.maxDepth); kept as one opaque part"))
            return index
        }
        guard let boundary = parameters["boundary"], !boundary.isEmpty else {
            defects.append(Defect(kind: "missing-boundary", line: headers.first("content-type")?.line,
                                  detail: "multipart without a boundary parameter; read as text/plain"))
            parts[index].contentType = "text/plain"
            return index
        }
        if encoding == .base64 || encoding == .quotedPrintable {
            defects.append(Defect(kind: "encoded-multipart", line: headers.first("content-transfer-encoding")?.line,
                                  detail: "a multipart cannot have a transfer encoding (RFC 2045 6.4); ignored"))
            parts[index].transferEncoding = .sevenBit
        }
        splitMultipart(index: index, boundary: Array(boundary.utf8), body: body, bodyLine: bodyLine, depth: depth)
        return index
    }

    private mutating func splitMultipart(index: Int, boundary: [UInt8], body: Range<Int>, bodyLine: Int, depth: Int) {
        let childDefault = parts[index].contentType == "multipart/digest" ? "message/rfc822" : "text/plain"
        var delimiters: [(lineStart: Int, next: Int, nextLine: Int, close: Bool)] = []
        var lineNumber = bodyLine - 1
        var position = body.lowerBound
        let end = body.upperBound
        var closed = false
        bytes.withUnsafeBufferPointer { buffer in
            while position < end {
                lineNumber += 1
                let lineEnd = lineFeed(in: buffer, from: position, to: end)
                let next = lineEnd < end ? lineEnd + 1 : end
                if lineEnd - position >= boundary.count + 2, buffer[position] == 0x2D, buffer[position + 1] == 0x2D {
                    var matches = true
                    for offset in 0..<boundary.count where buffer[position + 2 + offset] != boundary[offset] {
                        matches = false
                        break
                    }
                    if matches {
                        var rest = position + 2 + boundary.count
                        var close = false
                        if rest + 2 <= lineEnd && buffer[rest] == 0x2D && buffer[rest + 1] == 0x2D { close = true; rest += 2 }
                        var onlySpace = true
                        var probe = rest
                        while probe < lineEnd {
                            let byte = buffer[probe]
                            if byte != 0x20 && byte != 0x09 && byte != 0x0D { onlySpace = false; break }
                            probe += 1
                        }
                        if onlySpace {
                            delimiters.append((position, next, lineNumber + 1, close))
                            if close { closed = true; break }
                        }
                    }
                }
                position = next
            }
        }
        guard !delimiters.isEmpty else {
            defects.append(Defect(kind: "boundary-not-found", line: bodyLine,
                                  detail: "the boundary '\(String(decoding: boundary, as: UTF8.self))' never appears; body read as text/plain"))
            parts[index].contentType = "text/plain"
            return
        }
        if !closed {
            defects.append(Defect(kind: "missing-final-boundary", line: lineNumber,
                                  detail: "multipart ends without its closing boundary"))
        }
        for (number, delimiter) in delimiters.enumerated() where !delimiter.close {
            let start = delimiter.next
            var stop = number + 1 < delimiters.count ? delimiters[number + 1].lineStart : end
            if number + 1 < delimiters.count {
                // The line break before a delimiter belongs to the delimiter (RFC 2046 5.1.1).
                if stop > start && bytes[stop - 1] == 0x0A { stop -= 1 }
                if stop > start && bytes[stop - 1] == 0x0D { stop -= 1 }
            }
            if parts.count >= limits.maxParts {
                defects.append(Defect(kind: "part-limit", line: delimiter.nextLine,
                                      detail: "more than \(limits.maxParts) MIME parts; the rest is ignored"))
                return
            }
            let header = HeaderBlockParser(bytes: bytes).parse(start..<max(start, stop), startLine: delimiter.nextLine, limits: limits,
                                                               isTopLevel: false)
            var partHeaders = header.headers
            var bodyStart = header.bodyStart
            var partBodyLine = header.bodyLine
            defects.append(contentsOf: header.defects.filter { $0.kind != "missing-header-body-separator" })
            if header.limitError != nil {
                defects.append(Defect(kind: "header-limit", line: delimiter.nextLine, detail: header.limitError ?? ""))
            }
            if header.sawNoField && header.defects.contains(where: { $0.kind == "missing-header-body-separator" }) {
                // A part that starts straight with content: no headers at all.
                partHeaders = Headers()
                bodyStart = start
                partBodyLine = delimiter.nextLine
            } else if header.defects.contains(where: { $0.kind == "missing-header-body-separator" }) {
                defects.append(contentsOf: header.defects.filter { $0.kind == "missing-header-body-separator" })
            }
            addPart(headers: partHeaders, body: min(bodyStart, stop)..<max(bodyStart, stop), bodyLine: partBodyLine, parent: index,
                    depth: depth + 1,
                    defaultType: childDefault)
        }
    }
}
