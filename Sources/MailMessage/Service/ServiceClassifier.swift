/// Messages that are machine notifications about other messages, never saved as activities.
public enum ServiceKind: String, Sendable, CaseIterable {
    case none
    case deliveryFailure = "delivery_failure"
    case readReceipt = "read_receipt"
    case calendarResponse = "calendar_response"
}

/// The kind and the one signal that decided it, so `explain` can say why.
public struct ServiceClassification: Sendable, Equatable {
    public var kind: ServiceKind
    public var signal: String?

    public init(kind: ServiceKind, signal: String?) {
        self.kind = kind
        self.signal = signal
    }
}

/// Decides the service kind from structure first (RFC 3464/6522 reports, RFC 8098 MDNs,
/// iTIP calendar parts), then headers (Exchange Content-Class, Exim's X-Failed-Recipients),
/// then the fixed texts of non-standard bounces from a mailer daemon, and only last, as a
/// tie-breaker for a message that already looks automatic, localized subject prefixes.
public enum ServiceClassifier {
    public static func classify(_ message: Message, bytes: [UInt8]) -> ServiceClassification {
        if let structural = fromStructure(message, bytes: bytes) { return structural }
        if let header = fromHeaders(message) { return header }
        let automatic = automaticSenderSignal(message)
        if let automatic, let bounce = bounceText(message.textBody) {
            return ServiceClassification(kind: .deliveryFailure, signal: "body: \(bounce) (\(automatic))")
        }
        // Subject words decide only for a message that already looks machine-made.
        let contentClass = message.headers["content-class"]?.trimmingSpaces().lowercased()
        let weak = automatic ?? (contentClass == "urn:content-classes:calendarmessage" ? "Content-Class: \(contentClass ?? "")" : nil)
        if let weak, let subject = message.subject, let (kind, prefix) = subjectKind(subject) {
            return ServiceClassification(kind: kind, signal: "subject '\(prefix)' (\(weak))")
        }
        return ServiceClassification(kind: .none, signal: nil)
    }

    static func fromStructure(_ message: Message, bytes: [UInt8]) -> ServiceClassification? {
        for part in message.parts {
            switch part.contentType {
            case "multipart/report":
                let reportType = part.parameters["report-type"]?.lowercased()
                if reportType == "delivery-status" || reportType == "global-delivery-status" {
                    return ServiceClassification(kind: .deliveryFailure, signal: "multipart/report; report-type=\(reportType ?? "")")
                }
                if reportType == "disposition-notification" || reportType == "global-disposition-notification" {
                    return ServiceClassification(kind: .readReceipt, signal: "multipart/report; report-type=\(reportType ?? "")")
                }
            case "message/delivery-status", "message/global-delivery-status":
                return ServiceClassification(kind: .deliveryFailure, signal: "\(part.contentType) part")
            case "message/disposition-notification", "message/global-disposition-notification":
                return ServiceClassification(kind: .readReceipt, signal: "\(part.contentType) part")
            case "text/calendar", "application/ics":
                if let signal = calendarResponse(part, bytes: bytes) {
                    return ServiceClassification(kind: .calendarResponse, signal: signal)
                }
            default:
                continue
            }
        }
        return nil
    }

    static let responseMethods: Set<String> = ["reply", "counter", "declinecounter", "cancel"]

    /// iTIP (RFC 5546): REPLY, COUNTER, DECLINECOUNTER and CANCEL are responses or
    /// notifications; a REQUEST with SEQUENCE above 0 is an update of an existing meeting.
    static func calendarResponse(_ part: MIMEPart, bytes: [UInt8]) -> String? {
        if let method = part.parameters["method"]?.lowercased(), responseMethods.contains(method) {
            return "\(part.contentType); method=\(method.uppercased())"
        }
        guard part.bodyRange.count <= 1 << 20 else { return nil }
        let decoded = part.transferEncoding.decode(bytes[part.bodyRange]).bytes
        let text = Charset.decode(decoded, label: part.charset ?? "utf-8").text
        var method: String?
        var sequence = 0
        var inEvent = false
        for line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }) {
            let upper = line.uppercased()
            if upper.hasPrefix("METHOD:") { method = String(upper.dropFirst(7)).trimmingSpaces() }
            if upper.hasPrefix("BEGIN:VEVENT") { inEvent = true }
            if inEvent, upper.hasPrefix("SEQUENCE:"), let value = Int(upper.dropFirst(9).trimmingSpaces()) { sequence = value }
        }
        guard let method else { return nil }
        if responseMethods.contains(method.lowercased()) { return "\(part.contentType) METHOD:\(method)" }
        if method == "REQUEST" && sequence > 0 { return "\(part.contentType) METHOD:REQUEST SEQUENCE:\(sequence) (meeting update)" }
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

    static let daemonLocals: Set<String> = [
        "mailer-daemon", "mailerdaemon", "mail-daemon", "maildaemon", "postmaster", "mdaemon", "mail.daemon",
    ]
    static let daemonNames: Set<String> = [
        "mail delivery system", "mail delivery subsystem", "mail delivery service", "microsoft outlook", "postmaster",
        "mailer-daemon", "mail administrator",
    ]

    /// Why the message looks machine-made, if it does: a daemon sender, a null return path,
    /// or an Auto-Submitted value other than `no`.
    static func automaticSenderSignal(_ message: Message) -> String? {
        if let from = message.from.first {
            if daemonLocals.contains(from.local.lowercased()) { return "sender \(from.address)" }
            if daemonNames.contains(from.name.lowercased()) { return "sender name '\(from.name)'" }
        }
        if let returnPath = message.headers.first("return-path"),
           returnPath.value.filter({ !isWhitespace($0) }).elementsEqual("<>".utf8) {
            return "Return-Path <>"
        }
        if let auto = message.autoSubmitted, auto != "no" { return "Auto-Submitted: \(auto)" }
        return nil
    }

    /// The fixed opening texts of bounces that are not RFC 3464 reports.
    static let bounceOpenings: [(text: String, name: String)] = [
        ("hi. this is the qmail-send program", "qmail bounce"),
        ("this is the mail system at host", "Postfix bounce"),
        ("this message was created automatically by mail delivery software", "Exim bounce"),
        ("the original message was received at", "Sendmail bounce"),
        ("your message did not reach some or all of the intended recipients", "Exchange non-delivery report"),
        ("delivery has failed to these recipients or groups", "Exchange non-delivery report"),
        ("delivery to the following recipient failed permanently", "Gmail bounce"),
        ("i'm sorry to have to inform you that your message could not", "Postfix bounce"),
        ("failed to deliver to", "MDaemon bounce"),
    ]

    static func bounceText(_ body: String) -> String? {
        let head = body.prefix(600).lowercased()
        for opening in bounceOpenings where head.contains(opening.text) { return opening.name }
        return nil
    }

    static let subjectPrefixes: [(ServiceKind, [String])] = [
        (.deliveryFailure, [
            "undeliverable:", "undelivered mail returned to sender", "delivery status notification (failure)",
            "mail delivery failed", "returned mail:", "failure notice", "delivery failure", "unzustellbar:",
            "non remis :", "non remis:", "no se puede entregar:", "non recapitabile:", "onbestelbaar:",
            "não é possível entregar:", "nie można dostarczyć:", "olevererbart:",
        ]),
        (.readReceipt, [
            "read:", "not read:", "read receipt", "return receipt", "gelesen:", "ungelesen:", "lu :", "lu:", "non lu :",
            "leído:", "no leído:", "letto:", "gelezen:", "lest:", "läst:",
        ]),
        (.calendarResponse, [
            "accepted:", "declined:", "tentative:", "tentatively accepted:", "canceled:", "cancelled:",
            "angenommen:", "abgelehnt:", "mit vorbehalt angenommen:", "abgesagt:", "accepté :", "accepté:", "refusé :",
            "refusé:", "provisoire :", "annulé :", "aceptado:", "rechazado:", "provisional:", "cancelado:",
            "accettato:", "rifiutato:", "geaccepteerd:", "geweigerd:",
        ]),
    ]

    static func subjectKind(_ subject: String) -> (ServiceKind, String)? {
        let lower = subject.trimmingSpaces().lowercased()
        for (kind, prefixes) in subjectPrefixes {
            for prefix in prefixes where lower.hasPrefix(prefix) { return (kind, prefix) }
        }
        return nil
    }

    static let autoReplySubjects = [
        "automatic reply:", "auto reply:", "autoreply:", "auto:", "out of office", "abwesenheitsnotiz",
        "automatische antwort:", "réponse automatique", "respuesta automática:", "risposta automatica:",
    ]

    /// RFC 3834 Auto-Submitted, the X-Autoreply family, `Precedence: auto_reply`, then the
    /// usual out-of-office subjects. Nil for a message written by a person.
    public static func autoReplySignal(_ message: Message) -> String? {
        if let auto = message.autoSubmitted, auto != "no", !auto.isEmpty { return "Auto-Submitted: \(auto)" }
        for name in ["x-autoreply", "x-autorespond", "x-autoresponder"] where message.headers.first(name) != nil {
            return "\(message.headers.first(name)?.name ?? name) header"
        }
        if message.precedence == "auto_reply" { return "Precedence: auto_reply" }
        if let subject = message.subject?.trimmingSpaces().lowercased() {
            for prefix in autoReplySubjects where subject.hasPrefix(prefix) { return "subject '\(prefix)'" }
        }
        return nil
    }
}
