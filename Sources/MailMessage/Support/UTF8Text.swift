#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Text from bytes that must be UTF-8, or nil when they are not: one implementation for
/// every place that reads text it must not repair (rule files, CRM fields, headers).
///
/// Not the standard library's `String(validating:as:)`: it is generic over the encoding,
/// and its first call in a process resolves the encoding's associated types by mangled name
/// and instantiates their metadata, 0.4% of a per-message `process`. This decodes with the
/// decoder specialised for UTF-8, which replaces each invalid sequence with U+FFFD, and keeps
/// the text only when its bytes are the input's: a replaced sequence (one to three bytes
/// that are not valid UTF-8) never reads back as the three valid bytes of U+FFFD.
public enum UTF8Text {
    public static func valid(_ bytes: UnsafeRawBufferPointer) -> String? {
        let buffer = UnsafeBufferPointer(start: bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), count: bytes.count)
        var text = String(decoding: buffer, as: UTF8.self)
        let same = text.withUTF8 { decoded in
            decoded.count == buffer.count && (buffer.isEmpty || memcmp(decoded.baseAddress!, buffer.baseAddress!, buffer.count) == 0)
        }
        return same ? text : nil
    }

    /// Whether the bytes are UTF-8, without building a string (a large body is checked before
    /// its one copy); ASCII, which most names, list entries and bodies are, checked first.
    /// Inlinable, so each caller's collection is scanned by code specialised for it.
    @inlinable
    public static func isValid<Bytes: Collection>(_ bytes: Bytes) -> Bool where Bytes.Element == UInt8 {
        if bytes.allSatisfy({ $0 < 0x80 }) { return true }
        return !transcode(bytes.makeIterator(), from: UTF8.self, to: UTF32.self, stoppingOnError: true) { _ in }
    }

    /// The order of two byte strings: memcmp's over the bytes they share, then the shorter
    /// first. UTF-8 sorted this way is in code point order. Negative, zero or positive.
    public static func compare(_ left: UnsafeRawBufferPointer, _ right: UnsafeRawBufferPointer) -> Int {
        let common = min(left.count, right.count)
        if common > 0, let a = left.baseAddress, let b = right.baseAddress {
            let order = memcmp(a, b, common)
            if order != 0 { return Int(order) }
        }
        return left.count - right.count
    }

    @inlinable
    public static func valid<Bytes: Collection>(_ bytes: Bytes) -> String? where Bytes.Element == UInt8 {
        if let text = bytes.withContiguousStorageIfAvailable({ valid(UnsafeRawBufferPointer($0)) }) { return text }
        return Array(bytes).withUnsafeBytes { valid($0) }
    }
}
