import MailMessage

/// A rule file's text, kept so diagnostics can quote the line they point at.
public final class SourceFile: Sendable {
    /// The path as the user gave it (relative paths stay relative in diagnostics).
    public let path: String
    public let text: String
    /// The lines, split when first asked for (diagnostics, YAML positions): a pack that comes
    /// from the compiled cache only hashes its files, once a message.
    private let splitLines = Locked<[Substring]?>(nil)

    public init(path: String, text: String) {
        self.path = path
        self.text = text
    }

    public var lines: [Substring] {
        splitLines.withLock { cached in
            if let cached { return cached }
            let lines = Self.split(text)
            cached = lines
            return lines
        }
    }

    /// The lines as libyaml counts them (its marks name them): a line ends at LF, CR, CR LF,
    /// NEL, LS or PS (a file of CR endings was one line, and its diagnostics quoted nothing).
    /// Split on UTF-8 bytes: a 3 MB blocklist file has 100,000 lines.
    static func split(_ text: String) -> [Substring] {
        let bytes = text.utf8
        var lines: [Substring] = []
        var start = bytes.startIndex
        var index = start
        while index < bytes.endIndex {
            let byte = bytes[index]
            var width = 0
            switch byte {
            case 0x0A: width = 1
            case 0x0D:
                let next = bytes.index(after: index)
                width = next < bytes.endIndex && bytes[next] == 0x0A ? 2 : 1
            case 0xC2:
                let next = bytes.index(after: index)
                if next < bytes.endIndex && bytes[next] == 0x85 { width = 2 }
            case 0xE2:
                let second = bytes.index(after: index)
                if second < bytes.endIndex, bytes[second] == 0x80 {
                    let third = bytes.index(after: second)
                    if third < bytes.endIndex, bytes[third] == 0xA8 || bytes[third] == 0xA9 { width = 3 }
                }
            default: break
            }
            if width == 0 {
                index = bytes.index(after: index)
                continue
            }
            lines.append(Substring(bytes[start..<index]))
            index = bytes.index(index, offsetBy: width)
            start = index
        }
        lines.append(Substring(bytes[start...]))
        return lines
    }

    /// The 1-based line's text, or "" past the end.
    public func line(_ number: Int) -> Substring {
        let lines = lines
        return number >= 1 && number <= lines.count ? lines[number - 1] : ""
    }
}

/// A place in a rule file: 1-based line and column (columns count Unicode scalars, as libyaml does).
public struct SourceLocation: Sendable, Equatable, Hashable, Comparable {
    public var path: String
    public var line: Int
    public var column: Int

    public init(path: String, line: Int, column: Int) {
        self.path = path
        self.line = line
        self.column = column
    }

    public static func < (left: SourceLocation, right: SourceLocation) -> Bool {
        (left.path, left.line, left.column) < (right.path, right.line, right.column)
    }

    public var description: String { "\(path):\(line):\(column)" }
}

public enum Severity: String, Sendable, Comparable {
    case error, warning, note

    public static func < (left: Severity, right: Severity) -> Bool {
        let order: [Severity] = [.error, .warning, .note]
        return (order.firstIndex(of: left) ?? 0) < (order.firstIndex(of: right) ?? 0)
    }
}

/// One finding: where, how bad, what, which check; optionally how long the bad token is
/// (for the caret line) and a related place (the earlier definition of a duplicate).
public struct Diagnostic: Sendable, Equatable {
    public var location: SourceLocation
    public var severity: Severity
    public var message: String
    /// The check that found it, e.g. `schema-unknown-key`.
    public var check: String
    /// Length of the offending token in columns (at least 1).
    public var length: Int
    public var related: (location: SourceLocation, message: String)?

    public init(_ check: LintCheck, at location: SourceLocation, length: Int = 1, _ message: String,
                related: (location: SourceLocation, message: String)? = nil) {
        self.location = location
        self.severity = check.severity
        self.message = message
        self.check = check.id
        self.length = max(1, length)
        self.related = related
    }

    public static func == (left: Diagnostic, right: Diagnostic) -> Bool {
        left.location == right.location && left.severity == right.severity && left.message == right.message
            && left.check == right.check && left.length == right.length
            && left.related?.location == right.related?.location && left.related?.message == right.related?.message
    }
}

/// Edit distance for "did you mean", bounded so a long unknown name costs little.
public enum Suggestion {
    public static func closest(to word: String, in candidates: some Sequence<String>) -> String? {
        let target = Array(word.lowercased().unicodeScalars)
        var best: (String, Int)?
        for candidate in candidates {
            // A name that is the other with a suffix (lower / lowercase) is a near miss too.
            let lowered = candidate.lowercased(), wanted = word.lowercased()
            if lowered.count >= 3 && wanted.count >= 3 && (lowered.hasPrefix(wanted) || wanted.hasPrefix(lowered)) {
                if best == nil { best = (candidate, 3) }
                continue
            }
            let distance = levenshtein(target, Array(candidate.lowercased().unicodeScalars))
            let limit = max(1, min(2, target.count / 4 + 1))
            if distance <= limit, best == nil || distance < best?.1 ?? Int.max { best = (candidate, distance) }
        }
        return best?.0
    }

    static func levenshtein(_ a: [Unicode.Scalar], _ b: [Unicode.Scalar]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }

    /// " (did you mean 'x'?)" or "".
    public static func hint(for word: String, in candidates: some Sequence<String>) -> String {
        closest(to: word, in: candidates).map { " (did you mean '\($0)'?)" } ?? ""
    }
}
