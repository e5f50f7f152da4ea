import FuzzSupport
import MailMessage

/// RFC 5322 dates with the obsolete and broken forms; every date read must print.
@main
enum FuzzDate {
    static func main() {
        runFuzzer { bytes in
            let text = String(decoding: bytes, as: UTF8.self)
            _ = DateParser.parse(text).date?.iso8601
        }
    }
}
