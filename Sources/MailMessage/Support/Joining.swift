extension Sequence where Element == String {
    /// The strings with `separator` between them, as `joined(separator:)` gives them. The
    /// standard library's, the first time a process calls it, resolves a generic type by its
    /// mangled name and so scans every protocol conformance of the binary (a tenth of a
    /// millisecond): code on a per-message path joins through this one instead.
    @inlinable
    public func joined(between separator: String) -> String {
        var result = ""
        var first = true
        for piece in self {
            if !first { result += separator }
            result += piece
            first = false
        }
        return result
    }
}
