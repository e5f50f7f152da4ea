/// Subjects: the localized prefixes of service emails (a tie-breaker only, for a message that
/// already has a machine sender), forwards and replies, and out-of-office replies.
enum Subjects {
    static let prefixes: [(ServiceKind, [String])] = [
        (.deliveryFailure, [
            "undeliverable:", "undeliverable mail", "undeliverable message", "undelivered mail returned to sender",
            "delivery status notification", "delivery notification: delivery has failed", "mail delivery failed",
            "mail delivery failure", "message delivery has failed", "returned mail:", "failure notice", "delivery failure",
            "failed delivery", "failure delivery", "permanent delivery failure", "mail system error - returned mail",
            "mail could not be delivered", "mail failed, returning to sender", "there was an error sending your mail",
            "[postmaster] email delivery failure", "unzustellbar:", "non remis :", "non remis:", "no se puede entregar:",
            "non recapitabile:", "onbestelbaar:", "não é possível entregar:", "nie można dostarczyć:", "olevererbart:",
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

    static func kind(_ subject: String) -> (ServiceKind, String)? {
        let lower = subject.trimmingSpaces().lowercased()
        for (kind, prefixes) in prefixes {
            for prefix in prefixes where lower.hasPrefix(prefix) { return (kind, prefix) }
        }
        return nil
    }

    /// Forward and reply prefixes in the common languages: a person passing a bounce on.
    static let forwardOrReplyPrefixes = [
        "fwd:", "fw:", "re:", "aw:", "wg:", "tr:", "rv:", "enc:", "i:", "r:", "vs:", "sv:", "doorst:", "antw:",
    ]

    static func isForwardOrReply(_ subject: String?) -> Bool {
        guard let lower = subject?.trimmingSpaces().lowercased() else { return false }
        return forwardOrReplyPrefixes.contains { lower.hasPrefix($0) }
    }

    static let autoReplySubjects = [
        "automatic reply:", "auto reply:", "autoreply:", "auto:", "out of office", "abwesenheitsnotiz",
        "automatische antwort:", "réponse automatique", "respuesta automática:", "risposta automatica:",
    ]
}

extension ServiceClassifier {
    /// RFC 3834 Auto-Submitted, the X-Autoreply family, `Precedence: auto_reply`, then the
    /// usual out-of-office subjects. Nil for a message written by a person.
    public static func autoReplySignal(_ message: Message) -> String? {
        if let auto = message.autoSubmitted, auto != "no", !auto.isEmpty { return "Auto-Submitted: \(auto)" }
        for name in ["x-autoreply", "x-autorespond", "x-autoresponder"] where message.headers.first(name) != nil {
            return "\(message.headers.first(name)?.name ?? name) header"
        }
        if message.precedence == "auto_reply" { return "Precedence: auto_reply" }
        if let subject = message.subject?.trimmingSpaces().lowercased() {
            for prefix in Subjects.autoReplySubjects where subject.hasPrefix(prefix) { return "subject '\(prefix)'" }
        }
        return nil
    }
}
