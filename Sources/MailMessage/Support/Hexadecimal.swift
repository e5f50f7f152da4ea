/// Bytes as hexadecimal, two digits each: lower case is the one spelling of a digest in a
/// name (the pack cache's entries, the token cache's files, long Message-ID keys); upper case
/// is a URI's percent-encoding (RFC 3986 2.1).
///
/// Inlinable, so that each caller gets a copy made for its own byte sequence: an unspecialized
/// generic asks the runtime for the sequence's iterator type, whose first look-up scans every
/// protocol conformance in the binary (a tenth of a millisecond of `process`'s start-up).
public enum Hexadecimal {
    @inlinable
    public static func lowercase(_ bytes: some Sequence<UInt8>) -> String { spelled(bytes, digits: "0123456789abcdef") }

    @inlinable
    public static func uppercase(_ bytes: some Sequence<UInt8>) -> String { spelled(bytes, digits: "0123456789ABCDEF") }

    @inlinable
    static func spelled(_ bytes: some Sequence<UInt8>, digits alphabet: String) -> String {
        let digits = Array(alphabet.utf8)
        var text: [UInt8] = []
        text.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
