#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension StringProtocol {
    /// The text without leading and trailing whitespace, newlines included (no Foundation needed).
    public func trimmingSpaces() -> String {
        var view = Substring(self)
        while let first = view.first, first.isWhitespace { view.removeFirst() }
        while let last = view.last, last.isWhitespace { view.removeLast() }
        return String(view)
    }

    /// The text without leading and trailing tabs, space separators (Unicode category Zs) and
    /// zero-width spaces, newlines kept: what Foundation's `trimmingCharacters(in: .whitespaces)` removes, scalar
    /// by scalar, without bridging (that call was a twentieth of `batch --apply`'s time, on the
    /// hot path of every address and Message-ID normalised).
    public func trimmingHorizontalSpace() -> String {
        let scalars = unicodeScalars
        var start = scalars.startIndex, end = scalars.endIndex
        while start < end, Self.isHorizontalSpace(scalars[start]) { start = scalars.index(after: start) }
        while end > start {
            let before = scalars.index(before: end)
            guard Self.isHorizontalSpace(scalars[before]) else { break }
            end = before
        }
        return String(self[start..<end])
    }

    /// `prefix(maxLength)`, without walking the Characters of a text that has no more bytes
    /// than that (every Character is at least one byte): the whole text, as `prefix` gives it.
    /// `prefix` on a short body walked all of it, a twentieth of a decision.
    public func prefix(characters maxLength: Int) -> SubSequence {
        utf8.count <= maxLength ? self[...] : prefix(maxLength)
    }

    /// Whether every byte is ASCII: then each Character is one byte (CR LF aside), and a scan
    /// of the bytes says what a scan of the Characters says, at a fraction of the cost.
    /// Inlinable: called across modules on hot paths, it must be specialised there.
    @inlinable public var isASCII: Bool { utf8.allSatisfy { $0 < 0x80 } }

    /// Whether `needle`'s bytes occur in the text's UTF-8: the substring test of the hot paths
    /// (`String.contains(_:)` compares Characters, with grapheme breaking, and was most of the
    /// service classifier's time). For ASCII needles it differs only where a combining mark
    /// follows the match.
    public func containsBytes(_ needle: String) -> Bool {
        let needle = Array(needle.utf8)
        guard !needle.isEmpty else { return true }
        func search(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool { bytes.firstIndex(ofBytes: needle, from: 0, to: bytes.count) != nil }
        return utf8.withContiguousStorageIfAvailable(search) ?? Array(utf8).withUnsafeBufferPointer(search)
    }

    /// A tab, a space separator (Zs) or a zero-width space: what `trimmingHorizontalSpace` trims.
    public static func isHorizontalSpace(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.value < 0x80 { return scalar == " " || scalar == "\t" }
        return scalar.value == 0x200B || scalar.properties.generalCategory == .spaceSeparator
    }
}

extension UInt8 {
    /// The byte lower-cased if it is an ASCII capital letter, else itself.
    @inlinable public var asciiLowercased: UInt8 { self >= 0x41 && self <= 0x5A ? self | 0x20 : self }
}

extension UnsafeBufferPointer where Element == UInt8 {
    /// Where `byte` first occurs in `self[from..<to]` (to: the end by default), found by
    /// `memchr`: the jump of the byte scans for a rare byte (line ends, the "@" of addresses),
    /// most of whose text holds no match.
    public func firstIndex(ofByte byte: UInt8, from: Int, to: Int? = nil) -> Int? {
        let to = Swift.min(to ?? count, count)
        guard let base = baseAddress, from >= 0, from < to, let hit = memchr(base + from, Int32(byte), to - from) else { return nil }
        return base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
    }

    /// Where `needle` first starts in `self[from..<to]`: the byte search of the scans that read
    /// text as UTF-8 (thread tokens, `containsBytes`). Nil for an empty needle.
    public func firstIndex(ofBytes needle: [UInt8], from: Int, to: Int) -> Int? {
        guard let first = needle.first, from >= 0, to <= count, to - from >= needle.count else { return nil }
        var index = from
        let last = to - needle.count
        while index <= last {
            if self[index] == first {
                var matched = 1
                while matched < needle.count, self[index + matched] == needle[matched] { matched += 1 }
                if matched == needle.count { return index }
            }
            index += 1
        }
        return nil
    }
}
