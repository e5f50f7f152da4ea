/// Splits an mbox file (mboxo / mboxrd, as Thunderbird, mutt and Google Takeout write them)
/// into messages: a message starts at a `From ` line at the top of the file or after a
/// blank line; `>From ` quoting inside messages is undone.
public enum Mbox {
    public struct Entry: Sendable {
        /// 1-based line of the `From ` separator in the mbox file.
        public var line: Int
        public var bytes: [UInt8]
        /// Byte offset of the `From ` separator line in the mbox file.
        public var offset: Int = 0
        /// Bytes of the mbox the entry spans, from its `From ` line to the next one (or the end).
        public var length: Int = 0
        /// The entry is empty and its `From ` line holds a carriage return that no line feed
        /// follows: the file's lines end in CR alone (classic Mac OS, Eudora), so the whole
        /// file read as this one line. Said so, rather than "empty message". (A stray CR in a
        /// separator line followed by a message, or `\r\r\n` line ends, are not this.)
        public var carriageReturnLineEnds = false
    }

    /// The error for an entry whose `From ` line shows CR-only line ends.
    public static let carriageReturnLineEndsProblem =
        "the mbox's lines end in a carriage return alone (classic Mac OS); convert them first: tr '\\r' '\\n' < IN > OUT"

    /// How many messages `bytes` hold when they begin with a `From ` separator line, as a
    /// delivery agent passes one message (procmail, Postfix's `local`): an entry counts when
    /// its first line is a header field, so that a paragraph of the body beginning "From "
    /// after a blank line (not quoted in a pipe) does not count as a second message. 1 when
    /// `bytes` do not begin with `From `.
    public static func messageCount(ofDelivery bytes: [UInt8]) -> Int {
        let start = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        guard bytes[start...].starts(with: Array("From ".utf8)) else { return 1 }
        return split(bytes).count { entry in
            // The separator as mailers write it (`From sender Mon Mar  2 09:00:00 2026`,
            // Takeout's `... 09:00:00 +0000 2026`): a time, and a year that ends the line,
            // which a body's "From the Fabrikam team" or "From 2026-03-02 10:00 to ...:" has not.
            var end = entry.offset
            while end < bytes.count, bytes[end] != 0x0A { end += 1 }
            while end > entry.offset, bytes[end - 1] == 0x0D || bytes[end - 1] == 0x20 { end -= 1 }
            let line = bytes[entry.offset..<end]
            guard line.count >= 4, line.suffix(4).allSatisfy(isDigit), line.count == 4 || !isDigit(line[line.endIndex - 5]) else { return false }
            let hasTime = line.indices.dropLast(4).contains { index in
                isDigit(line[index]) && isDigit(line[index + 1]) && line[index + 2] == UInt8(ascii: ":") && isDigit(line[index + 3]) && isDigit(line[index + 4])
            }
            let hasYear = line.indices.dropLast(3).contains { index in
                (line[index] == UInt8(ascii: "1") || line[index] == UInt8(ascii: "2")) && line[(index + 1)...(index + 3)].allSatisfy(isDigit)
                    && (index == line.startIndex || !isDigit(line[index - 1])) && (index + 4 == line.endIndex || !isDigit(line[index + 4]))
            }
            guard hasTime && hasYear else { return false }
            // Then a header field: printable ASCII but the colon, then a colon.
            var index = entry.bytes.startIndex
            while index < entry.bytes.endIndex, (33...126).contains(entry.bytes[index]), entry.bytes[index] != UInt8(ascii: ":") { index += 1 }
            return index > entry.bytes.startIndex && index < entry.bytes.endIndex && entry.bytes[index] == UInt8(ascii: ":")
        }
    }

    private static func isDigit(_ byte: UInt8) -> Bool { (0x30...0x39).contains(byte) }

    /// The whole file at once (`inspect --mbox` on small files, tests). `MboxSplitter` is the
    /// same split over a stream, in bounded memory.
    public static func split(_ bytes: [UInt8]) -> [Entry] {
        var splitter = MboxSplitter()
        var events: [MboxSplitter.Event] = []
        bytes.withUnsafeBufferPointer { splitter.feed($0, into: &events) }
        splitter.finish(into: &events)
        return events.compactMap { if case .message(let entry) = $0 { return entry } else { return nil } }
    }
}

/// The mbox split over a stream: feed it chunks of any size, it hands back each message as
/// soon as the next `From ` separator (or the end) is seen. It holds one message at most, and
/// a message over `maxMessageBytes` is reported as `.oversize` without being accumulated: a
/// 1 GB mbox costs the largest message it keeps, never the file.
///
/// The rules are `Mbox.split`'s: a separator is a `From ` line at the top of the file or after
/// a blank line; the blank line before a separator belongs to the format, not the message;
/// `>From `, `>>From `… lose one `>`; anything before the first separator is ignored.
public struct MboxSplitter: Sendable {
    public enum Event: Sendable {
        case message(Mbox.Entry)
        /// A message larger than the limit: where it starts and how large it is; its bytes were dropped.
        case oversize(line: Int, offset: Int, size: Int)
    }

    public let maxMessageBytes: Int
    /// False: entries carry no bytes, only where they are (`offset`, `length`), for a caller
    /// that reads them from the file itself; nothing of a message is ever held.
    public let keepBytes: Bool

    // The current message.
    private var current: [UInt8] = []
    private var currentSize = 0
    private var currentLine = 0
    private var currentOffset = 0
    private var started = false
    private var oversize = false
    private var carriageReturnLineEnds = false
    /// The separator line's last byte fed so far was a carriage return.
    private var separatorEndsInCarriageReturn = false

    // The current line: how far it has been decided.
    private enum LineState { case head, separator, body }
    private var lineState = LineState.head
    /// `>` characters at the start of the current line (not yet written).
    private var quotes = 0
    /// Bytes after the quotes, while they may still spell `From ` (at most 5, not yet written).
    private var head: [UInt8] = []
    /// Bytes of the current line before its line feed, and its first byte.
    private var lineLength = 0
    private var lineFirst: UInt8 = 0
    private var previousBlank = true
    private var lineNumber = 1
    /// Bytes fed so far.
    public private(set) var offset = 0
    private var lineOffset = 0

    public init(maxMessageBytes: Int = Int.max, keepBytes: Bool = true) {
        self.maxMessageBytes = maxMessageBytes
        self.keepBytes = keepBytes
    }

    private static let from: [UInt8] = Array("From ".utf8)

    /// Whether a `From ` separator has been seen: until then, what was fed is a preamble.
    public var hasStartedMessage: Bool { started }

    /// Splits what `bytes` adds; completed messages are appended to `events`.
    public mutating func feed(_ bytes: UnsafeBufferPointer<UInt8>, into events: inout [Event]) {
        var index = 0
        let count = bytes.count
        // A UTF-8 byte order mark before the first `From ` (an mbox saved by a Windows
        // editor): skipped, where it made the first line no separator and the first message a
        // preamble, dropped without a word.
        if offset == 0 && lineLength == 0 && count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF {
            index = 3
            lineOffset = 3
        }
        while index < count {
            if lineState == .head {
                // Decide the line from its first bytes: a separator, a quoted From, or body.
                let byte = bytes[index]
                if byte == 0x0A {
                    finishHead()
                    append(UnsafeBufferPointer(rebasing: bytes[index..<index + 1]))
                    endLine(at: index)
                    index += 1
                    continue
                }
                if lineLength == 0 { lineFirst = byte }
                lineLength += 1
                index += 1
                if byte == 0x3E && head.isEmpty {
                    quotes += 1
                    continue
                }
                head.append(byte)
                if head[head.count - 1] != Self.from[head.count - 1] {
                    finishHead()
                } else if head.count == Self.from.count {
                    if quotes == 0 && previousBlank {
                        startMessage(events: &events)
                        lineState = .separator
                    } else {
                        // `>From ` loses one `>`; a `From ` not after a blank line stays as it is.
                        quotes = max(0, quotes - 1)
                        finishHead()
                    }
                }
                continue
            }
            // The rest of the line, up to and including its line feed, in one piece.
            var end = index
            while end < count && bytes[end] != 0x0A { end += 1 }
            let through = end < count ? end + 1 : end
            if lineState == .separator { noteCarriageReturns(bytes, from: index, to: end, chunkEnds: end == count) }
            if lineState == .body { append(UnsafeBufferPointer(rebasing: bytes[index..<through])) }
            lineLength += end - index
            index = through
            if end < count { endLine(at: end) }
        }
        offset += count
    }

    /// The end of the input: the last message.
    public mutating func finish(into events: inout [Event]) {
        if lineState == .head { finishHead() }
        if started { emit(stripBlank: false, events: &events) }
        started = false
    }

    /// The head of the line is not a separator: write the quotes and bytes held back.
    private mutating func finishHead() {
        lineState = .body
        if quotes > 0 {
            let quoteBytes = [UInt8](repeating: 0x3E, count: quotes)
            quoteBytes.withUnsafeBufferPointer { append($0) }
        }
        if !head.isEmpty {
            let held = head
            held.withUnsafeBufferPointer { append($0) }
        }
        quotes = 0
        head.removeAll(keepingCapacity: true)
    }

    /// A carriage return inside the separator line with no line feed after it (across chunks too).
    private mutating func noteCarriageReturns(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int, chunkEnds: Bool) {
        if separatorEndsInCarriageReturn && start < end { carriageReturnLineEnds = true }
        separatorEndsInCarriageReturn = false
        var index = start
        while index < end {
            if bytes[index] == 0x0D {
                if index + 1 < end { carriageReturnLineEnds = true } else if chunkEnds { separatorEndsInCarriageReturn = true }
            }
            index += 1
        }
    }

    /// The line feed at `index` of the chunk being fed ends the line.
    private mutating func endLine(at index: Int) {
        // Blank: nothing before the line feed, or a lone carriage return.
        previousBlank = lineLength == 0 || (lineLength == 1 && lineFirst == 0x0D)
        lineNumber += 1
        lineLength = 0
        lineState = .head
        lineOffset = offset + index + 1
    }

    private mutating func startMessage(events: inout [Event]) {
        if started { emit(stripBlank: true, events: &events) }
        started = true
        current = []
        currentSize = 0
        oversize = false
        currentLine = lineNumber
        currentOffset = lineOffset
        carriageReturnLineEnds = false
        separatorEndsInCarriageReturn = false
        quotes = 0
        head.removeAll(keepingCapacity: true)
    }

    private mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard started, !bytes.isEmpty else { return }
        currentSize += bytes.count
        if oversize || !keepBytes { return }
        // Two bytes of slack: the blank line before the next separator is not the message's.
        if currentSize - 2 > maxMessageBytes {
            oversize = true
            current = []
            return
        }
        current.append(contentsOf: bytes)
    }

    private mutating func emit(stripBlank: Bool, events: inout [Event]) {
        let length = (stripBlank ? lineOffset : offset) - currentOffset
        if oversize || currentSize - 2 > maxMessageBytes {
            events.append(.oversize(line: currentLine, offset: currentOffset, size: currentSize))
        } else if !keepBytes {
            events.append(.message(Mbox.Entry(line: currentLine, bytes: [], offset: currentOffset, length: length,
                                              carriageReturnLineEnds: carriageReturnLineEnds && currentSize == 0)))
        } else {
            var bytes = current
            if stripBlank {
                if bytes.last == 0x0A { bytes.removeLast() }
                if bytes.last == 0x0D { bytes.removeLast() }
            }
            if bytes.count > maxMessageBytes {
                events.append(.oversize(line: currentLine, offset: currentOffset, size: bytes.count))
            } else {
                events.append(.message(Mbox.Entry(line: currentLine, bytes: bytes, offset: currentOffset, length: length,
                                                  carriageReturnLineEnds: carriageReturnLineEnds && currentSize == 0)))
            }
        }
        current = []
    }
}
