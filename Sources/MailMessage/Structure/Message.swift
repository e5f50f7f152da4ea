/// Why a message could not be read at all. Everything less than this is a `Defect`.
public struct MessageParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// 1-based line, when the problem has a place.
    public var line: Int?
    public var reason: String

    public var description: String { line.map { "line \($0): \(reason)" } ?? reason }

    public init(line: Int?, reason: String) {
        self.line = line
        self.reason = reason
    }
}

/// An attachment as the decision needs it: described, never held decoded in memory.
public struct Attachment: Sendable, Equatable {
    public var filename: String?
    public var contentType: String
    /// Decoded size in bytes.
    public var size: Int
    public var disposition: String?
}

/// A parsed message: headers, addresses, ids, the MIME tree, the bodies, and what the
/// policy reads off them (service kind, auto-reply, signature, addresses and links in the body).
public struct Message: Sendable {
    public var headers: Headers
    public var messageID: String?
    public var date: MailDate?
    public var subject: String?
    public var from: [Address] = []
    public var sender: [Address] = []
    public var to: [Address] = []
    public var cc: [Address] = []
    public var bcc: [Address] = []
    public var replyTo: [Address] = []
    public var inReplyTo: [String] = []
    public var references: [String] = []
    /// The Auto-Submitted value (RFC 3834), lower-cased, when present.
    public var autoSubmitted: String?
    public var precedence: String?
    public var listID: String?
    public var parts: [MIMEPart] = []
    /// The text body: text/plain when there is one, else text derived from the HTML.
    public var textBody: String = ""
    public var htmlBody: String?
    public var attachments: [Attachment] = []
    public var service = ServiceClassification(kind: .none, signal: nil)
    /// Set when the message is an automatic reply (out-of-office and the like); says which signal.
    public var autoReply: String?
    /// The sender's signature block, the addresses and the links in the body: read on first
    /// use (`BodyAnalysis`), so a decision that never needs them never pays for them.
    public var signature: Signature? {
        get { bodyAnalysis.result.signature }
        set { bodyAnalysis = bodyAnalysis.replacing { $0.signature = newValue } }
    }
    public var bodyEmails: [String] {
        get { bodyAnalysis.result.emails }
        set { bodyAnalysis = bodyAnalysis.replacing { $0.emails = newValue } }
    }
    public var bodyLinks: [String] {
        get { bodyAnalysis.result.links }
        set { bodyAnalysis = bodyAnalysis.replacing { $0.links = newValue } }
    }
    var bodyAnalysis = BodyAnalysis(BodyAnalyzer.Result(signature: nil, emails: [], links: []))
    public var defects: [Defect] = []
    /// Size of the raw message in bytes.
    public var size: Int = 0

    /// Every From, To, Cc and Bcc address in order, each once (by normalised address).
    public var participants: [Address] {
        var seen = Set<String>()
        return (from + to + cc + bcc).filter { seen.insert($0.normalized).inserted }
    }
}

/// The MIME skeleton of a message: what a structural parser (Python's compat32 parser, say)
/// builds. `MessageParser.parse` reads everything else off it.
public struct MessageStructure: Sendable {
    public var headers: Headers
    public var parts: [MIMEPart]
    public var defects: [Defect]
}

/// Bytes to `Message`. Never traps and never loops without progress: malformed input gives a
/// `Message` with defects, and only input that is not a message at all, or breaks a limit in
/// `ParseLimits`, throws.
public enum MessageParser {
    /// Header block and MIME tree only, nothing decoded.
    public static func parseStructure(_ bytes: [UInt8], limits: ParseLimits = ParseLimits()) throws(MessageParseError) -> MessageStructure {
        guard !bytes.isEmpty, !bytes.allSatisfy(isWhitespace) else {
            throw MessageParseError(line: nil, reason: "empty input: no message")
        }
        guard bytes.count <= limits.maxMessageBytes else {
            throw MessageParseError(line: nil, reason: "message is \(bytes.count) bytes, over the limit of \(limits.maxMessageBytes)")
        }
        // A byte order mark (a message saved by a Windows editor) is not the first field's name.
        let start = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        let headerResult = HeaderBlockParser(bytes: bytes).parse(start..<bytes.count, startLine: 1, limits: limits, isTopLevel: true)
        if let error = headerResult.limitError { throw MessageParseError(line: nil, reason: error) }
        if headerResult.sawNoField {
            throw MessageParseError(line: headerResult.defects.first?.line ?? 1,
                                    reason: "not an RFC 5322 message: no header field before the body")
        }
        var tree = MIMETreeParser(bytes: bytes, limits: limits)
        tree.addPart(headers: headerResult.headers, body: headerResult.bodyStart..<bytes.count, bodyLine: headerResult.bodyLine,
                     parent: nil, depth: 0, defaultType: "text/plain")
        return MessageStructure(headers: headerResult.headers, parts: tree.parts, defects: headerResult.defects + tree.defects)
    }

    public static func parse(_ bytes: [UInt8], limits: ParseLimits = ParseLimits()) throws(MessageParseError) -> Message {
        // The size refused before a bare-CR message would be copied.
        let converted = bytes.count <= limits.maxMessageBytes ? lineEndingsOfBareCR(bytes) : nil
        let bytes = converted ?? bytes
        let structure = try parseStructure(bytes, limits: limits)
        var defects = structure.defects
        if converted != nil {
            defects.append(Defect(kind: "bare-cr-line-endings", line: 1, detail: "lines end in CR alone (classic Mac OS); read as line ends"))
        }
        let headers = structure.headers
        var message = Message(headers: headers)
        message.size = bytes.count
        message.parts = structure.parts

        func addresses(_ name: String) -> [Address] {
            var result: [Address] = []
            for field in headers.all(name) {
                let parsed = AddressParser.parse(field.raw)
                result.append(contentsOf: parsed.addresses)
                // A field of a million stray ';' is one problem a million times: the first few,
                // then how many more (a megabyte header made 320 MB of defects).
                for problem in parsed.problems.prefix(Self.maxProblemsPerField) {
                    defects.append(Defect(kind: "address", line: field.line, detail: "\(field.name): \(problem)"))
                }
                if parsed.problems.count > Self.maxProblemsPerField {
                    let more = parsed.problems.count - Self.maxProblemsPerField
                    defects.append(Defect(kind: "address", line: field.line, detail: "\(field.name): \(more) more problems like these"))
                }
            }
            return result
        }
        // Fields RFC 5322 (3.6) allows once: a second one is read too (each From counts as a
        // participant), and said. One pass over the fields (a message has a few dozen): how
        // often each such name appears and where it does a second time.
        var seen = [Int](repeating: 0, count: Self.onceFields.count)
        var second = [HeaderField?](repeating: nil, count: Self.onceFields.count)
        for field in headers.fields where field.name.utf8.count <= Self.longestOnceField {
            guard let index = Self.onceFields.firstIndex(where: { field.hasName($0.utf8) }) else { continue }
            seen[index] += 1
            if seen[index] == 2 { second[index] = field }
        }
        for (index, field) in second.enumerated() {
            guard let field else { continue }
            defects.append(Defect(kind: "repeated-field", line: field.line, detail: "\(field.name) appears \(seen[index]) times; RFC 5322 allows one"))
        }
        message.from = addresses("from")
        message.sender = addresses("sender")
        message.to = addresses("to")
        message.cc = addresses("cc")
        message.bcc = addresses("bcc")
        message.replyTo = addresses("reply-to")

        func ids(_ name: String) -> [String] {
            var result: [String] = []
            for field in headers.all(name) {
                let parsed = MessageIDParser.parse(field.raw)
                result.append(contentsOf: parsed.ids)
                if let problem = parsed.problem {
                    defects.append(Defect(kind: "message-id", line: field.line, detail: "\(field.name): \(problem)"))
                }
            }
            return result
        }
        message.messageID = ids("message-id").first
        message.inReplyTo = ids("in-reply-to")
        message.references = ids("references")

        if let field = headers.first("date") {
            let parsed = DateParser.parse(field.text)
            message.date = parsed.date
            if let problem = parsed.problem { defects.append(Defect(kind: "date", line: field.line, detail: problem)) }
        }
        message.subject = headers.first("subject").map { $0.text }
        message.autoSubmitted = headers.first("auto-submitted").map { $0.text.trimmingSpaces().lowercased() }
        message.precedence = headers.first("precedence").map { $0.text.trimmingSpaces().lowercased() }
        message.listID = headers.first("list-id").map { $0.text.trimmingSpaces() }

        let bodies = BodyExtractor(bytes: bytes, parts: structure.parts)
        let extracted = bodies.extract()
        message.textBody = extracted.text
        message.htmlBody = extracted.html
        message.attachments = extracted.attachments
        defects.append(contentsOf: extracted.defects)

        message.service = ServiceClassifier.classify(message, bytes: bytes)
        message.autoReply = ServiceClassifier.autoReplySignal(message)
        message.bodyAnalysis = BodyAnalysis(text: message.textBody, html: message.htmlBody, htmlLinks: extracted.htmlLinks,
                                            senderDomain: message.from.first?.domain)
        // Stable order by line so the list reads top to bottom; at most `maxDefects`, then a
        // count of the rest.
        let sorted = defects.enumerated().sorted { left, right in
            (left.element.line ?? Int.max, left.offset) < (right.element.line ?? Int.max, right.offset)
        }.map(\.element)
        message.defects = Array(sorted.prefix(Self.maxDefects))
        if sorted.count > Self.maxDefects {
            message.defects.append(Defect(kind: "too-many-defects", detail: "\(sorted.count - Self.maxDefects) more defects not listed"))
        }
        return message
    }

    /// A message whose lines end in CR alone (no LF in its first MiB, but a CR): the same
    /// bytes with each CR an LF, as Python's parser reads it. Otherwise nil: a lone CR in a
    /// message of LF or CRLF lines is content. Same length, so every offset still holds.
    static func lineEndingsOfBareCR(_ bytes: [UInt8]) -> [UInt8]? {
        let head = bytes.prefix(1 << 20)
        guard !head.contains(0x0A), head.contains(0x0D) else { return nil }
        return bytes.map { $0 == 0x0D ? 0x0A : $0 }
    }

    /// The fields RFC 5322 (3.6) allows once, lower case.
    static let onceFields = ["from", "sender", "to", "cc", "bcc", "reply-to", "subject", "date", "message-id", "in-reply-to", "references"]
    static let longestOnceField = onceFields.map(\.utf8.count).max() ?? 0

    /// The problems listed for one address field, and for a whole message.
    static let maxProblemsPerField = 10
    static let maxDefects = 200
}

/// Picks the text and HTML bodies and lists the attachments.
struct BodyExtractor {
    let bytes: [UInt8]
    let parts: [MIMEPart]

    struct Output {
        var text: String
        var html: String?
        /// The HTML's links, when the text was rendered from it (one pass gives both).
        var htmlLinks: [String]?
        var attachments: [Attachment]
        var defects: [Defect]
    }

    static func isAttachment(_ part: MIMEPart) -> Bool {
        if part.isMultipart { return false }
        if part.disposition == "attachment" { return true }
        if part.contentType != "text/plain" && part.contentType != "text/html" { return true }
        return part.filename != nil && part.disposition != "inline"
    }

    func extract() -> Output {
        var defects: [Defect] = []
        var text: String?
        var html: String?
        var attachments: [Attachment] = []
        for part in parts where !part.isMultipart {
            if Self.isAttachment(part) {
                attachments.append(Attachment(filename: part.filename, contentType: part.contentType,
                                              size: part.transferEncoding.decodedSize(bytes[part.bodyRange]),
                                              disposition: part.disposition))
                continue
            }
            if part.contentType == "text/plain" && text == nil {
                text = decodeText(part, defects: &defects)
            } else if part.contentType == "text/html" && html == nil {
                html = decodeText(part, defects: &defects)
            }
        }
        var rendered: (text: String, links: [String])?
        if text == nil, let html { rendered = HTMLText.render(html) }
        let body = normalizedLineEnds(text ?? rendered?.text ?? "")
        return Output(text: body, html: html, htmlLinks: rendered?.links, attachments: attachments, defects: defects)
    }

    /// LF line ends, trailing blank lines and spaces removed, on the UTF-8 bytes in place
    /// (no copy of a large body but the one result).
    func normalizedLineEnds(_ text: String) -> String {
        var text = text
        return text.withUTF8 { bytes -> String? in
            var end = bytes.count
            while end > 0 && (bytes[end - 1] == 0x0A || bytes[end - 1] == 0x0D || bytes[end - 1] == 0x20 || bytes[end - 1] == 0x09) { end -= 1 }
            let hasCR = UnsafeBufferPointer(rebasing: bytes[0..<end]).contains(0x0D)
            if !hasCR && end == bytes.count { return nil }
            if !hasCR { return String(decoding: UnsafeBufferPointer(rebasing: bytes[0..<end]), as: UTF8.self) }
            return String(unsafeUninitializedCapacity: end) { output in
                var count = 0
                for index in 0..<end where !(bytes[index] == 0x0D && index + 1 < end && bytes[index + 1] == 0x0A) {
                    output[count] = bytes[index]
                    count += 1
                }
                return count
            }
        } ?? text
    }

    /// Valid UTF-8 `body` as text with LF line ends and no trailing whitespace, written
    /// straight into the String's storage.
    static func normalizedText(_ body: ArraySlice<UInt8>) -> String {
        var end = body.endIndex
        while end > body.startIndex && isWhitespace(body[end - 1]) { end -= 1 }
        let trimmed = body[body.startIndex..<end]
        guard trimmed.contains(0x0D) else { return String(decoding: trimmed, as: UTF8.self) }
        return String(unsafeUninitializedCapacity: trimmed.count) { output in
            var count = 0
            var index = trimmed.startIndex
            while index < trimmed.endIndex {
                let byte = trimmed[index]
                if !(byte == 0x0D && index + 1 < trimmed.endIndex && trimmed[index + 1] == 0x0A) {
                    output[count] = byte
                    count += 1
                }
                index += 1
            }
            return count
        }
    }

    func decodeText(_ part: MIMEPart, defects: inout [Defect]) -> String {
        let line = part.headers.first("content-transfer-encoding")?.line ?? part.headers.first("content-type")?.line
        var label = part.charset
        if part.transferEncoding.isIdentity {
            // 7bit, 8bit, binary: decode the charset straight from the message, no copy.
            let body = bytes[part.bodyRange]
            if part.contentType == "text/plain", Charset.readsAsUTF8(label), UTF8Text.isValid(body) {
                // The common case, made in one copy: trailing blank lines dropped and CRLF
                // turned into LF while the bytes are copied into the String.
                return Self.normalizedText(body)
            }
            if label == nil && part.contentType == "text/html" { label = HTMLText.metaCharset(Array(body.prefix(4096))) }
            let text = Charset.decode(body, label: label)
            if let problem = text.problem {
                defects.append(Defect(kind: "charset", line: part.headers.first("content-type")?.line, detail: problem))
            }
            return text.text
        }
        let decoded = part.transferEncoding.decode(bytes[part.bodyRange])
        if let problem = decoded.problem {
            defects.append(Defect(kind: "transfer-encoding", line: line, detail: problem))
        }
        if label == nil && part.contentType == "text/html" { label = HTMLText.metaCharset(decoded.bytes) }
        let text = Charset.decode(decoded.bytes, label: label)
        if let problem = text.problem {
            defects.append(Defect(kind: "charset", line: part.headers.first("content-type")?.line, detail: problem))
        }
        return text.text
    }
}
