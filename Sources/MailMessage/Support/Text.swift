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
    public func containsBytes(_ needle: String) -> Bool {
        let needle = Array(needle.utf8)
        guard let first = needle.first else { return true }
        let haystack = utf8
        var index = haystack.startIndex
        while let found = haystack[index...].firstIndex(of: first) {
            if haystack[found...].starts(with: needle) { return true }
            index = haystack.index(after: found)
        }
        return false
    }

    private static func isHorizontalSpace(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.value < 0x80 { return scalar == " " || scalar == "\t" }
        return scalar.value == 0x200B || scalar.properties.generalCategory == .spaceSeparator
    }
}
