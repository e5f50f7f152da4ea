/// Bytes as lower-case hexadecimal, two digits each: the one spelling of a digest in a name
/// (the pack cache's entries, the token cache's files, long Message-ID keys).
public enum Hexadecimal {
    public static func lowercase(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
