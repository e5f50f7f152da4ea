import FuzzSupport
import MailMessage

/// RFC 5322 address lists with every obsolete and broken form.
@main
enum FuzzAddress {
    static func main() {
        runFuzzer { bytes in
            let result = AddressParser.parse(bytes)
            for address in result.addresses { _ = address.normalized }
        }
    }
}
