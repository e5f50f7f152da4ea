/// The fixed texts real mail systems write in the bounces that are not RFC 3464 reports.
///
/// Each is a sentence (ASCII in lower case, other scripts as written) a mail system writes and a person has no reason to: it decides only
/// with a machine sender or the returned message attached (see `ServiceClassifier`), never
/// alone. Matching is on the first `scanLimit` bytes of the text body, ASCII-lower-cased with
/// every run of white space read as one space (bounces wrap their lines anywhere), in one
/// linear pass: no regular expression, no backtracking, whatever the body's size.
enum BounceTexts {
    /// How much of the text body is read. Bounce texts open the body; the largest preamble
    /// in Sisimai's 629 bounces (Japanese and Russian explanations before the English) is under 4 KiB.
    static let scanLimit = 16 << 10

    struct Text {
        var phrase: [UInt8]
        /// The mail system (or family of systems) that writes it, as the signal names it: `body:qmail-send`.
        var name: String
        var kind: ServiceKind
        /// Words a mail system writes but an auto-reply could quote too ("Original message follows."):
        /// they count with a daemon sender or a returned message, not with a null Return-Path or Auto-Submitted alone.
        var generic = false
        /// A sentence a mail system writes that a person writes too ("could not be delivered
        /// because of the strike", "the reason for the problem:"): it counts only with a daemon
        /// sender or a null Return-Path, never with Auto-Submitted (every ERP notification has
        /// it) or an attached message (Outlook's "attach item") alone.
        var everyday = false
    }

    /// The entries of `delivery` a person writes too (see `Text.everyday`).
    static let everydayPhrases: Set<String> = [
        "was not delivered to: ", "the reason for the problem:", "could not be delivered because of", "the message was not relayed to",
        "the following mail could not be delivered", "was blocked by our spam", "delivery failed for the following reason:",
        "the following recipients did not receive this message", "the following addresses had delivery problems",
        "your message wasn't delivered to", "delivery to the following recipients failed", "there was an error delivering your mail to",
        "your message cannot be delivered to the following recipients",
    ]

    /// Most specific first: when several match, the earliest entry names the signal.
    static let texts: [Text] = {
        let delivery: [(String, String)] = [
            // qmail and its descendants
            ("hi. this is the qmail-send program", "qmail-send"),
            ("i'm afraid i wasn't able to deliver your message to the following addresses", "qmail-send"),
            // Postfix
            ("i'm sorry to have to inform you that your message could not be delivered", "postfix"),
            ("this is the mail system at host", "postfix"),
            ("this is the postfix program at host", "postfix"),
            ("i'm sorry to have to inform you that the message returned below could not be delivered", "postfix"),
            // Exim (and the Exim-based 1&1, GMX, Zoho, MXLogic, Mail.Ru)
            ("this message was created automatically by mail delivery software", "exim"),
            ("a message that you sent could not be delivered to one or more of its recipients", "exim"),
            ("a message that you have sent could not be delivered to one or more recipients", "mxlogic"),
            ("a message that you sent contained one or more recipient addresses that were incorrectly constructed", "exim"),
            ("------ this is a copy of your message, including all the headers", "exim"),
            ("Это письмо создано автоматически сервером mail.ru", "mailru"),
            ("Это письмо отправлено почтовым сервером yandex.ru", "yandex"),
            // Sendmail and the sendmail-like
            ("----- the following addresses had permanent fatal errors -----", "sendmail"),
            ("----- transcript of session follows -----", "sendmail"),
            ("----- unsent message follows -----", "sendmail"),
            ("the following addresses had permanent delivery errors", "sendmail"),
            ("---the following addresses had delivery errors---", "sendmail"),
            ("the following addresses had delivery problems", "sendmail"),
            // Microsoft Exchange, Office 365, Outlook.com
            ("delivery has failed to these recipients or", "exchange"),
            ("your message did not reach some or all of the intended recipients", "exchange"),
            ("did not reach the following recipient(s)", "exchange"),
            ("this is an automatically generated delivery status notification", "dsn-notice"),
            // Google: Gmail, G Suite / Workspace, Groups
            ("delivery to the following recipient failed permanently", "gmail"),
            ("delivery to the following recipient has been delayed", "gmail"),
            ("delivery to the following recipients failed", "dsn-notice"),
            ("** address not found **", "gsuite"),
            ("** message not delivered **", "gsuite"),
            ("** message blocked **", "gsuite"),
            ("your message wasn't delivered to", "gsuite"),
            ("we're writing to let you know that the group you tried to contact", "googlegroups"),
            // Lotus Domino / Notes
            ("was not delivered to: ", "domino"),
            ("------- failure reasons --------", "notes"),
            // Yahoo, AOL
            ("sorry, we were unable to deliver your message to the following address", "yahoo"),
            ("--- below this line is a copy of the message.", "yahoo"),
            ("we were unable to deliver your message to the following address", "aol"),
            // MDaemon
            ("the attached message had permanent fatal delivery errors", "mdaemon"),
            ("--- session transcript ---", "mdaemon"),
            // SMTP32 / IMail
            ("body of message generated response:", "smtp32"),
            // Amazon SES and WorkMail
            ("the reason for the problem:", "amazonses"),
            ("an error occurred while trying to deliver the mail to the following recipients", "amazonworkmail"),
            ("{\"notificationtype\":\"bounce\"", "ses-notification"),
            ("{\\\"notificationtype\\\":\\\"bounce\\\"", "ses-notification"),
            ("{\"notificationtype\":\"delivery\"", "ses-notification"),
            ("{\\\"notificationtype\\\":\\\"delivery\\\"", "ses-notification"),
            // SendGrid, Courier, PowerMTA, Mimecast, MessageLabs, Barracuda, amavis, InterScan, SurfControl
            ("this is an automatically generated message from sendgrid", "sendgrid"),
            ("i'm sorry to have to tell you that your message was not able to be delivered", "sendgrid"),
            ("running the courier mail server", "courier"),
            ("i am sending you this message to inform you on the delivery status of", "powermta"),
            ("an email that you attempted to send to the following address could not be delivered", "mimecast"),
            ("this is a delivery failure notification message indicating that", "mimecast"),
            ("i was unable to deliver your message to the following addresses", "messagelabs"),
            ("was blocked by our spam", "barracuda"),
            ("this nondelivery report was generated by the program amavisd-new", "amavis"),
            ("the message was not relayed to", "amavis"),
            ("message from interscan messaging security suite", "interscan"),
            ("the following mail could not be delivered", "interscan"),
            ("sent <<< rcpt to:", "interscan"),
            ("a transcript of the attempts to send the message follows", "surfcontrol"),
            // Other MTAs and hosted senders
            ("this is the mailer-daemon, please do not reply to this e-mail", "opensmtpd"),
            ("an error has occurred while attempting to deliver a message for the following list of recipients", "opensmtpd"),
            ("this is the dragonfly mail agent", "dragonfly"),
            ("there was an error delivering your mail to", "dragonfly"),
            ("this report relates to a message you sent with the following header fields", "messagingserver"),
            ("your message cannot be delivered to the following recipients", "messagingserver"),
            ("unable to deliver message to the following address(es)", "smtp-gateway"),
            ("delivery failed for the following reason:", "mailfoundry"),
            ("could not be delivered because of", "mailmarshal"),
            ("each of the following recipients was rejected by a remote mail server", "ezweb"),
            ("the following recipients did not receive this message", "ezweb"),
            ("the user(s) account is disabled", "ezweb"),
            ("your mail sent on:", "kddi"),
            ("message could not be delivered to mobile", "verizon"),
            ("your mail message to the following address(es) could not be delivered", "smtp-gateway"),
            ("we had trouble delivering your message. full details follow:", "smtp-gateway"),
            ("failed addresses follow:", "smail"),
            ("this delivery status notification is sent from mta", "smtp-gateway"),
            ("your delivery to the following address has been failed", "smtp-gateway"),
            ("以下のメールアドレスへの送信に失敗しました", "m-filter"),
            ("this message was created automatically by facebook", "facebook"),
        ]
        // The least specific last: they name the system only when nothing better matched.
        let generic: [(String, String)] = [
            ("the original message was received at", "sendmail"),
            ("original message follows.", "smtp32"),
            ("this message could not be delivered.", "receivingses"),
            ("error message below:", "apachejames"),
            ("transcript of session follows.", "smtp-transcript"),
            ("failed to deliver to", "mdaemon"),
        ]
        let feedback: [(String, String)] = [
            ("{\"notificationtype\":\"complaint\"", "ses-notification"),
            ("{\\\"notificationtype\\\":\\\"complaint\\\"", "ses-notification"),
        ]
        return delivery.map { Text(phrase: Array($0.0.utf8), name: $0.1, kind: .deliveryFailure, everyday: everydayPhrases.contains($0.0)) }
            + generic.map { Text(phrase: Array($0.0.utf8), name: $0.1, kind: .deliveryFailure, generic: true) }
            + feedback.map { Text(phrase: Array($0.0.utf8), name: $0.1, kind: .abuseReport) }
    }()

    /// The texts laid end to end, and for each first byte the entries that start with it, so
    /// each position of the body is compared with a few texts only.
    struct Index {
        var bytes: [UInt8] = []
        var starts: [Int] = []
        var ends: [Int] = []
        /// Entries starting with byte b are `entries[bucket[b]..<bucket[b + 1]]`, in table order.
        var bucket = [Int](repeating: 0, count: 257)
        var entries: [Int] = []
    }

    static let index: Index = {
        var index = Index()
        for text in texts {
            index.starts.append(index.bytes.count)
            index.bytes.append(contentsOf: text.phrase)
            index.ends.append(index.bytes.count)
        }
        for byte in 0..<256 {
            index.bucket[byte] = index.entries.count
            index.entries.append(contentsOf: texts.indices.filter { Int(texts[$0].phrase[0]) == byte })
        }
        index.bucket[256] = index.entries.count
        return index
    }()

    /// The most specific bounce text in the first `scanLimit` bytes of `body`, if any.
    static func find(in body: String) -> Text? {
        let folded = fold(body)
        let index = Self.index
        var best = Int.max
        folded.withUnsafeBufferPointer { text in
            index.bytes.withUnsafeBufferPointer { phrases in
                index.entries.withUnsafeBufferPointer { entries in
                    let count = text.count
                    for position in 0..<count {
                        let byte = Int(text[position])
                        var slot = index.bucket[byte]
                        let stop = index.bucket[byte + 1]
                        while slot < stop {
                            let number = entries[slot]
                            slot += 1
                            if number >= best { break }
                            let start = index.starts[number], length = index.ends[number] - start
                            guard position + length <= count else { continue }
                            var offset = 1
                            while offset < length && text[position + offset] == phrases[start + offset] { offset += 1 }
                            // A sentence in quotation marks is cited (not JSON's `"{\"notificationtype\"`).
                            if offset == length && !(byte >= 0x61 && byte <= 0x7A && isQuotation(text, at: position)) { best = number }
                        }
                    }
                }
            }
        }
        return best == Int.max ? nil : texts[best]
    }

    /// Whether the text at `position` opens a quotation (`"Delivery has failed to these
    /// recipients or groups"`, “…”, „…“, «…»): a person citing a bounce, not a bounce.
    static func isQuotation(_ text: UnsafeBufferPointer<UInt8>, at position: Int) -> Bool {
        if position >= 1 && (text[position - 1] == 0x22 || text[position - 1] == 0x60) { return true }
        if position >= 2 && text[position - 2] == 0xC2 && text[position - 1] == 0xAB { return true } // «
        if position >= 3 && text[position - 3] == 0xE2 && text[position - 2] == 0x80 {
            return text[position - 1] == 0x9C || text[position - 1] == 0x9E // “ „
        }
        return false
    }

    /// The first `scanLimit` bytes, ASCII lower-cased, each run of white space one space,
    /// the typographic apostrophe (U+2019) read as `'`, quoted lines (`> ...`, a reply's
    /// quotation of an earlier message) left out: a bounce writes its sentences, a person
    /// replying about one quotes them.
    static func fold(_ body: String) -> [UInt8] {
        var body = body
        return body.withUTF8 { source in
            let count = min(source.count, scanLimit)
            return [UInt8](unsafeUninitializedCapacity: count) { output, written in
                var length = 0
                var space = false
                var position = 0
                var lineStart = true
                while position < count {
                    let byte = source[position]
                    position += 1
                    if lineStart && byte == 0x3E {
                        // A quoted line: skipped to its end, read as the space a line break is.
                        while position < count && source[position] != 0x0A { position += 1 }
                        if !space { output[length] = 0x20; length += 1 }
                        space = true
                        continue
                    }
                    if byte == 0x0A { lineStart = true } else if byte != 0x20 && byte != 0x09 { lineStart = false }
                    if byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D {
                        if !space { output[length] = 0x20; length += 1 }
                        space = true
                        continue
                    }
                    space = false
                    if byte == 0xE2, position + 1 < count, source[position] == 0x80, source[position + 1] == 0x99 {
                        output[length] = 0x27
                        length += 1
                        position += 2
                        continue
                    }
                    output[length] = byte >= 0x41 && byte <= 0x5A ? byte + 0x20 : byte
                    length += 1
                }
                written = length
            }
        }
    }
}
