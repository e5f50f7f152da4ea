/// FNV-1a, 64 bits: a fast, stable hash for cache and ledger keys (not for security). One
/// implementation, so every key built from it is computed the same way.
public struct FNV1a: Sendable {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    public init() {}

    public mutating func add<S: Sequence>(_ bytes: S) where S.Element == UInt8 {
        for byte in bytes {
            value ^= UInt64(byte)
            value &*= 0x0000_0100_0000_01b3
        }
    }

    /// A text's UTF-8 bytes, read from its contiguous storage (the generic `add` is not
    /// specialised across modules: byte by byte through a protocol, it was 2% of `batch`).
    public mutating func add(_ text: String) {
        var text = text
        let hashed = text.withUTF8 { bytes in
            var value = self.value
            for byte in bytes {
                value ^= UInt64(byte)
                value &*= 0x0000_0100_0000_01b3
            }
            return value
        }
        value = hashed
    }

    /// The value as 16 hexadecimal digits.
    public var paddedHex: String {
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
