import FuzzSupport
import MailMessage

/// MIME parameter lists with RFC 2231 continuations, charsets and percent-encoding.
@main
enum FuzzParameters {
    static func main() {
        runFuzzer { bytes in
            let parsed = ParameterizedValue.parse(bytes)
            _ = parsed["filename"]
        }
    }
}
