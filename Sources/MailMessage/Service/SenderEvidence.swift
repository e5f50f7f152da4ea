/// Evidence from the envelope and the MIME skeleton that a message was written by a mail
/// system, not a person. None of it decides alone: a machine sender needs a bounce text or a
/// subject to go with it, a returned message needs a bounce text.
enum SenderEvidence {
    struct MachineSender: Equatable {
        /// How it reads in a signal: `from:mailer-daemon`, `return-path:<>`, `auto-submitted:auto-replied`.
        var signal: String
        /// From the From field or the X-Mailer (a daemon, a vendor), not only a null Return-Path or Auto-Submitted.
        var isDaemon: Bool { signal.hasPrefix("from") || signal.hasPrefix("x-mailer:") }
        /// A null or MAILER-DAEMON Return-Path: only a bounce or an auto-reply has one.
        var isNullReturnPath: Bool { signal.hasPrefix("return-path:") }
        /// Nothing but an Auto-Submitted field: automated, not necessarily a mail system's.
        var isAutoSubmittedOnly: Bool { signal.hasPrefix("auto-submitted:") }
    }

    /// Local parts mail systems send their notifications from.
    static let daemonLocals: Set<String> = [
        "mailer-daemon", "mailerdaemon", "mailer_daemon", "mail-daemon", "maildaemon", "mail.daemon", "mdaemon",
        "postmaster", "post_master", "double-bounce", "mail.delivery.system",
    ]
    /// Display names that are a mail system's, whole.
    static let daemonNames: Set<String> = [
        "microsoft outlook", "mail administrator", "system administrator", "mail system", "mmsc ndr administrator",
        "internet mail delivery", "interscan mss",
    ]
    /// Words in a display name (or a From without an address) that only a mail system uses.
    static let daemonNameWords = ["mailer-daemon", "mailer daemon", "mail delivery", "mail deliver system", "postmaster"]

    /// Senders of a vendor's bounce or feedback notifications that a person never writes from.
    static let vendorSenders: Set<String> = [
        "no-reply@sns.amazonaws.com",  // Amazon SES notifications through SNS
        "complaints@email-abuse.amazonses.com",  // Amazon SES complaints
        "staff@hotmail.com",  // Microsoft's junk-mail reporting program (JMRP)
    ]

    /// X-Mailer values of the bounce generators of mail servers.
    static let bounceMailers: [(prefix: String, name: String)] = [("<smtp32 ", "smtp32"), ("smtp32 ", "smtp32")]

    /// Why the message looks machine-made, if it does, strongest first: a daemon or vendor
    /// sender, a null or daemon Return-Path, Auto-Submitted other than `no`, a bouncing MTA's X-Mailer.
    static func machineSender(_ message: Message) -> MachineSender? {
        if let from = message.from.first {
            let local = from.local.lowercased()
            if daemonLocals.contains(local) { return MachineSender(signal: "from:\(local)") }
            let address = from.normalized
            if vendorSenders.contains(address) { return MachineSender(signal: "from:\(address)") }
            let name = from.name.lowercased().trimmingSpaces()
            if !name.isEmpty, daemonNames.contains(name) || daemonNameWords.contains(where: { name.containsBytes($0) }) {
                return MachineSender(signal: "from-name:\(name)")
            }
        } else if let raw = message.headers["from"]?.lowercased(),
                  let word = daemonNameWords.first(where: { raw.containsBytes($0) }) {
            // `From: MAILER-DAEMON <>` or a bare `From: mailer-daemon`: no address to parse, the words are enough.
            return MachineSender(signal: "from:\(word)")
        }
        if let returnPath = message.headers.first("return-path") {
            let value = returnPath.value.filter { !isWhitespace($0) }
            if value.elementsEqual("<>".utf8) { return MachineSender(signal: "return-path:<>") }
            let lower = String(decoding: value, as: UTF8.self).lowercased()
            if lower.hasPrefix("<mailer-daemon") || lower.hasPrefix("mailer-daemon") {
                return MachineSender(signal: "return-path:<mailer-daemon>")
            }
        }
        if let auto = message.autoSubmitted, auto != "no", !auto.isEmpty {
            return MachineSender(signal: "auto-submitted:\(auto)")
        }
        if let mailer = message.headers["x-mailer"]?.trimmingSpaces().lowercased(),
           let known = bounceMailers.first(where: { mailer.hasPrefix($0.prefix) }) {
            return MachineSender(signal: "x-mailer:\(known.name)")
        }
        return nil
    }

    /// The returned message (or its headers) as a part of its own, or a report container:
    /// `part:message/rfc822`. A person forwarding a message as an attachment has one too,
    /// which is why it only counts with a bounce text above it.
    static let returnedTypes: Set<String> = [
        "message/rfc822", "message/global", "text/rfc822-headers", "message/rfc822-headers", "message/global-headers",
        "multipart/report",
    ]

    static func returnedMessage(_ message: Message) -> String? {
        for part in message.parts.dropFirst() where returnedTypes.contains(part.contentType) {
            return "part:\(part.contentType)"
        }
        if let root = message.parts.first, root.contentType == "multipart/report" { return "part:multipart/report" }
        return nil
    }

    /// The root's Content-Type as written, when the parser had to read it as something else.
    static func declaredContentType(_ part: MIMEPart) -> (type: String, parameters: ParameterList)? {
        guard let field = part.headers.first("content-type") else { return nil }
        let parsed = ParameterizedValue.parse(field.value)
        return (parsed.value.lowercased(), parsed.parameters)
    }

    /// Feedback loops that are not RFC 5965 shaped: Microsoft's JMRP sends the reported
    /// message attached, from `staff@hotmail.com`.
    static func feedbackLoop(_ message: Message, sender: MachineSender, returned: String?) -> String? {
        if sender.signal == "from:staff@hotmail.com", let returned, returned == "part:message/rfc822" {
            return "\(sender.signal)+\(returned)"
        }
        return nil
    }
}
