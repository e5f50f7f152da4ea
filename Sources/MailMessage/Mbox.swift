/// Splits an mbox file (mboxo / mboxrd, as Thunderbird, mutt and Google Takeout write them)
/// into messages: a message starts at a `From ` line at the top of the file or after a
/// blank line; `>From ` quoting inside messages is undone.
public enum Mbox {
    public struct Entry: Sendable {
        /// 1-based line of the `From ` separator in the mbox file.
        public var line: Int
        public var bytes: [UInt8]
    }

    public static func split(_ bytes: [UInt8]) -> [Entry] {
        var entries: [Entry] = []
        var current: [UInt8] = []
        var currentLine = 0
        var started = false
        var previousBlank = true
        var position = 0
        var lineNumber = 1
        while position < bytes.count {
            var end = position
            while end < bytes.count && bytes[end] != 0x0A { end += 1 }
            let next = end < bytes.count ? end + 1 : end
            let line = bytes[position..<next]
            if previousBlank && line.starts(with: "From ".utf8) {
                if started {
                    // The blank line before a separator belongs to the mbox format, not the message.
                    if current.last == 0x0A { current.removeLast() }
                    if current.last == 0x0D { current.removeLast() }
                    entries.append(Entry(line: currentLine, bytes: current))
                }
                current = []
                currentLine = lineNumber
                started = true
            } else if started {
                var quoteEnd = line.startIndex
                while quoteEnd < line.endIndex && line[quoteEnd] == 0x3E { quoteEnd += 1 }
                if quoteEnd > line.startIndex && line[quoteEnd...].starts(with: "From ".utf8) {
                    current.append(contentsOf: line.dropFirst())
                } else {
                    current.append(contentsOf: line)
                }
            }
            var contentEnd = end
            if contentEnd > position && bytes[contentEnd - 1] == 0x0D { contentEnd -= 1 }
            previousBlank = contentEnd == position
            position = next
            lineNumber += 1
        }
        if started { entries.append(Entry(line: currentLine, bytes: current)) }
        return entries
    }
}
