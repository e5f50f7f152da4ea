import FuzzSupport
import MailMessage

/// RFC 2047 encoded words, any charset label the input names (iconv included).
@main
enum FuzzEncodedWords {
    static func main() {
        runFuzzer { bytes in
            _ = EncodedWords.decode(bytes[...])
        }
    }
}
