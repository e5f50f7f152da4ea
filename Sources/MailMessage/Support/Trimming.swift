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
        var result = String.UnicodeScalarView()
        result.append(contentsOf: scalars[start..<end])
        return String(result)
    }

    private static func isHorizontalSpace(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.value < 0x80 { return scalar == " " || scalar == "\t" }
        return scalar.value == 0x200B || scalar.properties.generalCategory == .spaceSeparator
    }
}
