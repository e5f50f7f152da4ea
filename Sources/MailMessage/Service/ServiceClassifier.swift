/// Messages that are machine notifications about other messages, never saved as activities.
public enum ServiceKind: String, Sendable, CaseIterable {
    case none
    case deliveryFailure = "delivery_failure"
    case readReceipt = "read_receipt"
    case calendarResponse = "calendar_response"
    /// An abuse or feedback-loop report about a message (RFC 5965 ARF and the vendor loops).
    case abuseReport = "abuse_report"
}

/// The kind and the evidence that decided it, so `explain` can say why.
///
/// `signal` names one decisive piece of evidence (`multipart/report; report-type=delivery-status`,
/// `X-Failed-Recipients header`) or, for the non-standard bounces, the pieces that decided
/// together joined by `+`: `from:mailer-daemon+body:qmail-send`,
/// `part:message/rfc822+body:kddi`, `return-path:<>+subject:'undeliverable:'`.
public struct ServiceClassification: Sendable, Equatable {
    public var kind: ServiceKind
    public var signal: String?

    public init(kind: ServiceKind, signal: String?) {
        self.kind = kind
        self.signal = signal
    }
}

/// Decides the service kind, strongest evidence first:
///
/// 1. structure: RFC 3464/6522 delivery reports, RFC 8098 MDNs, RFC 5965 feedback reports,
///    iTIP calendar responses: each decides alone;
/// 2. headers only bouncing MTAs write (Exchange Content-Class, X-Failed-Recipients,
///    X-MS-Exchange-Message-Is-Ndr): each decides alone;
/// 3. a bounce text a real MTA writes (qmail, Exim, Sendmail, Postfix, Exchange, Domino...),
///    decided only together with a machine sender (MAILER-DAEMON, postmaster, a null
///    Return-Path, Auto-Submitted...) or with the returned message attached as a part: a
///    person quoting a bounce in a message of their own is not a bounce. Quoted lines
///    (`> `) and sentences in quotation marks are not read; a sentence people write too
///    ("could not be delivered because of") needs a daemon sender or a null Return-Path;
/// 4. a read notice a client writes as plain text (`readNotice`): its opening words, its
///    closing sentence and a read-receipt subject together;
/// 5. a localized subject prefix, only for a message that already has a machine sender
///    other than an Auto-Submitted field alone (every ERP notification has one).
///
/// Cost: steps 1, 2 and 5 read headers and the MIME skeleton; step 3 reads at most the first
/// `BounceTexts.scanLimit` bytes of the text body, once, in one linear pass, and only for a
/// message with a machine sender or a returned message, never for ordinary mail; step 4
/// looks at the text body's first 64 bytes, and reads on only when they open a read notice.
public enum ServiceClassifier {
    public static func classify(_ message: Message, bytes: [UInt8]) -> ServiceClassification {
        if let structural = fromStructure(message, bytes: bytes) { return structural }
        if let header = fromHeaders(message) { return header }
        let sender = SenderEvidence.machineSender(message)
        let returned = SenderEvidence.returnedMessage(message)
        if sender != nil || returned != nil, let text = BounceTexts.find(in: message.textBody) {
            // A machine sender and a bounce text; or a bounce text above the returned message
            // itself, in a message that is not a person forwarding it. A sentence people write
            // too counts only with the strongest senders.
            if let sender, sender.isDaemon || (!text.generic && (!text.everyday || sender.isNullReturnPath)) {
                return ServiceClassification(kind: text.kind, signal: "\(sender.signal)+body:\(text.name)")
            }
            if let returned, !text.everyday, !Subjects.isForwardOrReply(message.subject) {
                return ServiceClassification(kind: text.kind, signal: "\(returned)+body:\(text.name)")
            }
        }
        if let sender, let feedback = SenderEvidence.feedbackLoop(message, sender: sender, returned: returned) {
            return ServiceClassification(kind: .abuseReport, signal: feedback)
        }
        if let read = readNotice(message) { return read }
        // Subject words decide only for a message that already looks machine-made: not by
        // Auto-Submitted alone, which every ERP, ticketing or CRM notification carries
        // ("Accepted: Purchase Order 4500012345", "Delivery failure for order 4711").
        let contentClass = message.headers["content-class"]?.trimmingSpaces().lowercased()
        let weak = sender.flatMap { $0.isAutoSubmittedOnly ? nil : $0.signal }
            ?? (contentClass == "urn:content-classes:calendarmessage" ? "content-class:calendarmessage" : nil)
        if let weak, let subject = message.subject, let (kind, prefix) = Subjects.kind(subject) {
            return ServiceClassification(kind: kind, signal: "\(weak)+subject:'\(prefix)'")
        }
        return ServiceClassification(kind: .none, signal: nil)
    }

    /// A read receipt that is no RFC 8098 report but the text the reader's client writes, from
    /// the reader's address with no machine sender (Outlook's "Your message … was read on …",
    /// Notes' "Your document: … was received by: …"): the body opens with the client's words,
    /// holds its closing words, and the subject is a read receipt's. Ordinary mail costs a
    /// look at the body's first bytes.
    static func readNotice(_ message: Message) -> ServiceClassification? {
        let opening = BounceTexts.fold(String(message.textBody.prefix(64)))
        let start = opening.first == 0x20 ? opening.dropFirst() : opening[...]
        guard let notice = readNoticeTexts.first(where: { start.starts(with: $0.opening.utf8) }),
              let subject = message.subject, let (kind, prefix) = Subjects.kind(subject), kind == .readReceipt else { return nil }
        let text = BounceTexts.fold(String(message.textBody.prefix(2_048)))
        let words = Array(notice.closing.utf8)
        guard text.withUnsafeBufferPointer({ $0.firstIndex(ofBytes: words, from: 0, to: $0.count) != nil }) else { return nil }
        return ServiceClassification(kind: .readReceipt, signal: "subject:'\(prefix)'+body:\(notice.name)")
    }

    /// The words a client's read notice opens with, and a sentence of it further on.
    static let readNoticeTexts: [(opening: String, closing: String, name: String)] = [
        ("your message", "was read on", "outlook-read"),
        ("ihre nachricht", " wurde am ", "outlook-read"),
        ("your document:", "was received by:", "notes-receipt"),
    ]

    static func fromStructure(_ message: Message, bytes: [UInt8]) -> ServiceClassification? {
        for part in message.parts {
            switch part.contentType {
            case "multipart/report":
                if let decided = report(part.parameters["report-type"]) { return decided }
            case "message/delivery-status", "message/global-delivery-status":
                return ServiceClassification(kind: .deliveryFailure, signal: "\(part.contentType) part")
            case "message/disposition-notification", "message/global-disposition-notification":
                return ServiceClassification(kind: .readReceipt, signal: "\(part.contentType) part")
            case "message/feedback-report":
                return ServiceClassification(kind: .abuseReport, signal: "\(part.contentType) part")
            case "text/calendar", "application/ics":
                if let signal = calendarResponse(part, bytes: bytes) {
                    return ServiceClassification(kind: .calendarResponse, signal: signal)
                }
            default:
                continue
            }
        }
        // A report whose boundary never appears is read as text/plain; its declared type still says what it is.
        if let root = message.parts.first, root.contentType != "multipart/report",
           let declared = SenderEvidence.declaredContentType(root), declared.type == "multipart/report",
           let decided = report(declared.parameters["report-type"]) {
            return ServiceClassification(kind: decided.kind, signal: (decided.signal ?? "") + " (declared; its boundary never appears)")
        }
        return nil
    }

    static func report(_ reportType: String?) -> ServiceClassification? {
        let reportType = reportType?.lowercased()
        switch reportType {
        case "delivery-status", "global-delivery-status":
            return ServiceClassification(kind: .deliveryFailure, signal: "multipart/report; report-type=\(reportType ?? "")")
        case "disposition-notification", "global-disposition-notification":
            return ServiceClassification(kind: .readReceipt, signal: "multipart/report; report-type=\(reportType ?? "")")
        case "feedback-report":
            return ServiceClassification(kind: .abuseReport, signal: "multipart/report; report-type=feedback-report")
        default:
            return nil
        }
    }

    static let responseMethods: Set<String> = ["reply", "counter", "declinecounter", "cancel"]

    /// iTIP (RFC 5546): REPLY, COUNTER, DECLINECOUNTER and CANCEL are responses or
    /// notifications (the design's list). A REQUEST is an invitation, new or updated (SEQUENCE
    /// above 0): the organizer's own message (a customer moving a meeting), saved like the first.
    static func calendarResponse(_ part: MIMEPart, bytes: [UInt8]) -> String? {
        if let method = part.parameters["method"]?.lowercased(), responseMethods.contains(method) {
            return "\(part.contentType); method=\(method.uppercased())"
        }
        guard part.bodyRange.count <= 1 << 20 else { return nil }
        let decoded = part.transferEncoding.decode(bytes[part.bodyRange]).bytes
        let text = Charset.decode(decoded, label: part.charset ?? "utf-8").text
        var method: String?
        for line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }) {
            let upper = line.uppercased()
            if upper.hasPrefix("METHOD:") { method = String(upper.dropFirst(7)).trimmingSpaces() }
        }
        guard let method else { return nil }
        if responseMethods.contains(method.lowercased()) { return "\(part.contentType) METHOD:\(method)" }
        return nil
    }

    static func fromHeaders(_ message: Message) -> ServiceClassification? {
        let headers = message.headers
        if let contentClass = headers["content-class"]?.trimmingSpaces().lowercased() {
            if contentClass == "urn:content-classes:dsn" {
                return ServiceClassification(kind: .deliveryFailure, signal: "Content-Class: urn:content-classes:dsn")
            }
            if contentClass == "urn:content-classes:mdn" {
                return ServiceClassification(kind: .readReceipt, signal: "Content-Class: urn:content-classes:mdn")
            }
        }
        if headers.first("x-failed-recipients") != nil {
            return ServiceClassification(kind: .deliveryFailure, signal: "X-Failed-Recipients header")
        }
        if let ndr = headers["x-ms-exchange-message-is-ndr"], ndr.trimmingSpaces().lowercased() != "false" {
            return ServiceClassification(kind: .deliveryFailure, signal: "X-MS-Exchange-Message-Is-Ndr header")
        }
        return nil
    }
}
