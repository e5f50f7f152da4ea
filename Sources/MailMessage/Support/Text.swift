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

    /// Whether `needle`'s bytes occur in the text's UTF-8: the substring test of the hot paths
    /// (`String.contains(_:)` compares Characters, with grapheme breaking, and was most of the
    /// service classifier's time). For ASCII needles it differs only where a combining mark
    /// follows the match.
    /// `prefix(maxLength)`, without walking the Characters of a text that has no more bytes
    /// than that (every Character is at least one byte): the whole text, as `prefix` gives it.
    /// `prefix` on a short body walked all of it, a twentieth of a decision.
    public func prefix(characters maxLength: Int) -> SubSequence {
        utf8.count <= maxLength ? self[...] : prefix(maxLength)
    }

    public func containsBytes(_ needle: String) -> Bool {
        let needle = Array(needle.utf8)
        guard !needle.isEmpty else { return true }
        func search(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool { bytes.firstIndex(ofBytes: needle, from: 0, to: bytes.count) != nil }
        return utf8.withContiguousStorageIfAvailable(search) ?? Array(utf8).withUnsafeBufferPointer(search)
    }

    private static func isHorizontalSpace(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.value < 0x80 { return scalar == " " || scalar == "\t" }
        return scalar.value == 0x200B || scalar.properties.generalCategory == .spaceSeparator
    }
}

extension UnsafeBufferPointer where Element == UInt8 {
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
