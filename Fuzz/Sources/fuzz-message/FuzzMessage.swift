import FuzzSupport
import MailMessage

/// The whole message parser: headers, MIME tree, bodies, addresses, dates, service kind,
/// signature. Any input must parse or throw `MessageParseError`; never trap or hang.
@main
enum FuzzMessage {
    static func main() {
        runFuzzer { bytes in
            if let message = try? MessageParser.parse(bytes) {
                _ = message.participants
                _ = message.date?.iso8601
                // The body analysis is made on first read: read it, or the fuzzer never reaches it.
                _ = message.signature
                _ = message.bodyLinks
            }
        }
    }
}
