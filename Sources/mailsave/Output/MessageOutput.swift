import MailMessage

/// The `inspect` JSON: the contract in DESIGN.md, plus the MIME tree and bodies for debugging.
enum MessageJSON {
    static func address(_ address: Address) -> JSON {
        .object([("name", .string(address.name)), ("address", .string(address.address)),
                 ("local", .string(address.local)), ("domain", .string(address.domain))])
    }

    static func addresses(_ list: [Address]) -> JSON { .array(list.map(address)) }

    static func encode(_ message: Message) -> JSON {
        var signature = JSON.null
        if let found = message.signature {
            signature = .object([
                ("name", .optional(found.name)), ("title", .optional(found.title)), ("company", .optional(found.company)),
                ("phones", .strings(found.phones)), ("website", .optional(found.website)),
            ])
        }
        return .object([
            ("message_id", .optional(message.messageID)),
            ("date", .optional(message.date?.iso8601)),
            ("subject", .optional(message.subject)),
            ("from", addresses(message.from)),
            ("sender", addresses(message.sender)),
            ("to", addresses(message.to)),
            ("cc", addresses(message.cc)),
            ("bcc", addresses(message.bcc)),
            ("reply_to", addresses(message.replyTo)),
            ("in_reply_to", .strings(message.inReplyTo)),
            ("references", .strings(message.references)),
            ("service", .object([("kind", .string(message.service.kind.rawValue)), ("signal", .optional(message.service.signal))])),
            ("auto_submitted", .optional(message.autoSubmitted)),
            ("auto_reply", message.autoReply.map { .object([("signal", .string($0))]) } ?? .null),
            ("precedence", .optional(message.precedence)),
            ("list_id", .optional(message.listID)),
            ("attachments", .array(message.attachments.map { attachment in
                .object([("filename", .optional(attachment.filename)), ("content_type", .string(attachment.contentType)),
                         ("size", .int(attachment.size)), ("disposition", .optional(attachment.disposition))])
            })),
            ("signature", signature),
            ("body_emails", .strings(message.bodyEmails)),
            ("body_links", .strings(message.bodyLinks)),
            ("text_body", .string(message.textBody)),
            ("has_html_body", .bool(message.htmlBody != nil)),
            ("parts", .array(message.parts.map { part in
                .object([("content_type", .string(part.contentType)), ("depth", .int(part.depth)),
                         ("disposition", .optional(part.disposition)), ("filename", .optional(part.filename)),
                         ("encoded_size", .int(part.bodyRange.count))])
            })),
            ("size", .int(message.size)),
            ("defects", .array(message.defects.map { defect in
                .object([("kind", .string(defect.kind)), ("line", defect.line.map(JSON.int) ?? .null), ("detail", .string(defect.detail))])
            })),
        ])
    }
}

/// The `inspect --format text` view, for people.
enum MessageText {
    static func render(_ message: Message) -> String {
        var lines: [String] = []
        func row(_ label: String, _ value: String) {
            lines.append(label.padding(13) + value)
        }
        func list(_ addresses: [Address]) -> String {
            addresses.map { $0.name.isEmpty ? $0.address : "\($0.name) <\($0.address)>" }.joined(separator: ", ")
        }
        row("Message-ID", message.messageID ?? "(none)")
        row("Date", message.date?.iso8601 ?? "(none)")
        row("Subject", message.subject ?? "(none)")
        row("From", list(message.from))
        if !message.sender.isEmpty { row("Sender", list(message.sender)) }
        if !message.to.isEmpty { row("To", list(message.to)) }
        if !message.cc.isEmpty { row("Cc", list(message.cc)) }
        if !message.bcc.isEmpty { row("Bcc", list(message.bcc)) }
        if !message.replyTo.isEmpty { row("Reply-To", list(message.replyTo)) }
        if !message.inReplyTo.isEmpty { row("In-Reply-To", message.inReplyTo.joined(separator: " ")) }
        if !message.references.isEmpty { row("References", "\(message.references.count) ids") }
        row("Service", message.service.kind.rawValue + (message.service.signal.map { " (\($0))" } ?? ""))
        row("Auto-reply", message.autoReply.map { "yes (\($0))" } ?? "no")
        for attachment in message.attachments {
            row("Attachment", "\(attachment.filename ?? "(no name)")  \(attachment.contentType)  \(attachment.size) bytes")
        }
        if let signature = message.signature {
            let parts = [signature.name, signature.title, signature.company, signature.website].compactMap { $0 } + signature.phones
            row("Signature", parts.joined(separator: " | "))
        }
        if !message.bodyEmails.isEmpty { row("Body emails", message.bodyEmails.joined(separator: ", ")) }
        if !message.bodyLinks.isEmpty { row("Body links", message.bodyLinks.joined(separator: " ")) }
        row("Body", "\(message.textBody.count) characters" + (message.htmlBody != nil ? ", HTML too" : ""))
        for defect in message.defects {
            row("Defect", (defect.line.map { "line \($0): " } ?? "") + defect.detail + " [\(defect.kind)]")
        }
        return lines.map(visible).joined(separator: "\n")
    }
}

extension String {
    func padding(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}
