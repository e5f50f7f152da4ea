import Foundation
import MailMessage
import Testing

/// The streaming mbox split against the whole-file split it replaced (kept here as the
/// oracle), over every way of cutting the input into chunks.
@Suite struct MboxStreamTests {
    /// What a delivery agent passes is one message with its `From ` line; an mbox of several
    /// is told apart by entries that begin with a header field, not by any later `From ` line
    /// (a paragraph of a body, unquoted in a pipe, may begin with it).
    @Test func aDeliveryIsOneMessageAndAnMboxIsSeveral() {
        let one = "From bob@fabrikam.com Mon Mar  2 09:00:00 2026\nFrom: bob@fabrikam.com\nSubject: hi\n\nHello\n\nFrom the desk of Bob\nregards\n"
        #expect(Mbox.messageCount(ofDelivery: Array(one.utf8)) == 1)
        let two = one + "\nFrom carla@northwind.example Mon Mar  2 10:00:00 2026\nFrom: carla@northwind.example\nSubject: re\n\nHi\n"
        #expect(Mbox.messageCount(ofDelivery: Array(two.utf8)) == 2)
        #expect(Mbox.messageCount(ofDelivery: Array("From: bob@fabrikam.com\nSubject: hi\n\nFrom me\n".utf8)) == 1)
        #expect(Mbox.messageCount(ofDelivery: []) == 1)
        #expect(Mbox.messageCount(ofDelivery: Array("From x\n".utf8)) == 0)
        // A body paragraph "From the team" followed by a line that looks like a field (a link,
        // "Price: 100"): no separator (no time, no year), one message.
        let signed = one + "\nFrom the Fabrikam team\nhttps://fabrikam.com\nPrice: 100 USD\n"
        #expect(Mbox.messageCount(ofDelivery: Array(signed.utf8)) == 1)
        // A time and a year in a body line are no separator unless the year ends it.
        let closed = one + "\nFrom 2026-03-02 10:00 to 2026-03-05:\nNote: the office is closed.\n\nFrom Monday 09:30 the 2026 prices apply\nPrice: 100 EUR\n"
        #expect(Mbox.messageCount(ofDelivery: Array(closed.utf8)) == 1)
        // Takeout's and Thunderbird's separators, with CRLF.
        let takeout = "From 1780000000000000000@xxx Wed Jan 01 00:00:00 +0000 2025\r\nFrom: a@b.example\r\n\r\nx\r\n\r\n"
            + "From - Mon Mar 02 09:00:00 2026\r\nFrom: c@d.example\r\n\r\ny\r\n"
        #expect(Mbox.messageCount(ofDelivery: Array(takeout.utf8)) == 2)
        // An mbox saved with a byte order mark: two messages, and the first is not a preamble.
        let marked = [0xEF, 0xBB, 0xBF] + Array(two.utf8)
        #expect(Mbox.messageCount(ofDelivery: marked) == 2)
        let entries = Mbox.split(marked)
        #expect(entries.count == 3) // the split alone also cuts at the body's "From the desk" line
        #expect(entries.first?.offset == 3)
        let firstText = String(decoding: entries.first?.bytes ?? [], as: UTF8.self)
        #expect(firstText.hasPrefix("From: bob@fabrikam.com"), "\(firstText.prefix(60))")
    }

    /// The split `inspect --mbox` used before the stream: the whole file at once.
    static func referenceSplit(_ bytes: [UInt8]) -> [(line: Int, bytes: [UInt8])] {
        var entries: [(line: Int, bytes: [UInt8])] = []
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
                    if current.last == 0x0A { current.removeLast() }
                    if current.last == 0x0D { current.removeLast() }
                    entries.append((currentLine, current))
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
        if started { entries.append((currentLine, current)) }
        return entries
    }

    static func stream(_ bytes: [UInt8], chunks: [Int], limit: Int = Int.max) -> [MboxSplitter.Event] {
        var splitter = MboxSplitter(maxMessageBytes: limit)
        var events: [MboxSplitter.Event] = []
        var offset = 0
        var turn = 0
        bytes.withUnsafeBufferPointer { buffer in
            while offset < bytes.count {
                let size = min(max(1, chunks[turn % chunks.count]), bytes.count - offset)
                splitter.feed(UnsafeBufferPointer(rebasing: buffer[offset..<offset + size]), into: &events)
                offset += size
                turn += 1
            }
        }
        splitter.finish(into: &events)
        return events
    }

    static let samples: [String] = [
        "From a@b Mon Jan 1 00:00:00 2024\nSubject: one\n\nbody\n>From here\n>>From there\nFrom not after a blank\n\nFrom b@c Tue\nSubject: two\n\nlast line without newline",
        "garbage before\nthe first separator\n\nFrom x\r\nSubject: crlf\r\n\r\nbody\r\n\r\nFrom y\r\nSubject: second\r\n\r\n>From quoted\r\n",
        "From a\n\nFrom b\n\n\nFrom c\nX: y\n\n>\n>>\n>F\n>From\n> From x\n",
        "no separator at all\njust text\n",
        "From only-a-separator",
        "",
        "\nFrom after a blank first line\nSubject: s\n\nb\n\r\nFrom after a CR line\nSubject: t\n\n",
    ]

    @Test func theStreamSplitsAsTheWholeFileDidWhateverTheChunks() throws {
        var generator = SystemRandomNumberGenerator()
        for sample in Self.samples {
            let bytes = Array(sample.utf8)
            let expected = Self.referenceSplit(bytes)
            let split = Mbox.split(bytes)
            #expect(split.map(\.line) == expected.map(\.line), "\(sample)")
            #expect(split.map(\.bytes) == expected.map(\.bytes), "\(sample)")
            var plans: [[Int]] = (1...9).map { [$0] }
            for _ in 0..<20 { plans.append((0..<8).map { _ in Int.random(in: 1...16, using: &generator) }) }
            for plan in plans {
                let events = Self.stream(bytes, chunks: plan)
                let entries = events.compactMap { event -> Mbox.Entry? in if case .message(let entry) = event { return entry } else { return nil } }
                #expect(entries.map(\.line) == expected.map(\.line), "chunks \(plan): \(sample)")
                #expect(entries.map(\.bytes) == expected.map(\.bytes), "chunks \(plan): \(sample)")
                for entry in entries {
                    // The offset is the separator's; the span runs to the next separator.
                    #expect(bytes[entry.offset...].starts(with: "From ".utf8))
                    let end = entry.offset + entry.length
                    #expect(end == bytes.count || bytes[end...].starts(with: "From ".utf8))
                }
            }
        }
    }

    @Test func aMessageOverTheLimitIsReportedNotKept() throws {
        let big = "From a\nSubject: big\n\n" + String(repeating: "x", count: 5000) + "\n\nFrom b\nSubject: small\n\nok\n"
        let events = Self.stream(Array(big.utf8), chunks: [7, 300, 64], limit: 1000)
        #expect(events.count == 2)
        guard case .oversize(let line, let offset, let size) = events[0] else {
            Issue.record("expected the first message to be over the limit")
            return
        }
        #expect(line == 1)
        #expect(offset == 0)
        #expect(size > 5000)
        guard case .message(let entry) = events[1] else {
            Issue.record("expected the second message")
            return
        }
        #expect(entry.line == 6)
        #expect(String(decoding: entry.bytes, as: UTF8.self) == "Subject: small\n\nok\n")
        // Exactly at the limit is kept; one byte over is not.
        // The message is its lines with their line feeds: 99 bytes and the last line feed.
        let body = "Subject: s\n\n" + String(repeating: "y", count: 87)
        #expect(body.utf8.count == 99)
        let exact = Self.stream(Array(("From a\n" + body + "\n\nFrom b\nS: t\n\n").utf8), chunks: [3], limit: 100)
        if case .message(let kept)? = exact.first { #expect(kept.bytes.count == 100) } else { Issue.record("a message at the limit must be kept") }
        let over = Self.stream(Array(("From a\n" + body + "z\n\nFrom b\nS: t\n\n").utf8), chunks: [3], limit: 100)
        if case .oversize? = over.first {} else { Issue.record("a message one byte over the limit must be refused") }
    }

    @Test func aLineOfQuotesLongerThanAnyBufferIsKept() throws {
        let quotes = String(repeating: ">", count: 100_000)
        let text = "From a\nSubject: q\n\n" + quotes + "From x\n" + quotes + "\n"
        let entries = Mbox.split(Array(text.utf8))
        #expect(entries.count == 1)
        #expect(String(decoding: entries[0].bytes, as: UTF8.self) == "Subject: q\n\n" + quotes.dropFirst() + "From x\n" + quotes + "\n")
    }

    /// A file whose lines end in CR alone reads as one long `From ` line: the entry says so,
    /// whatever the chunks; CRLF line ends, and a CR before a line's end, do not.
    @Test func lineEndsOfACarriageReturnAloneAreNoticedInTheSeparatorLine() throws {
        let cases: [(text: String, flagged: [Bool])] = [
            ("From a Mon\rSubject: x\r\rbody\r\rFrom b Tue\rSubject: y\r\r", [true]),
            ("From a Mon\r\nSubject: x\r\n\r\nbody\r\n\r\nFrom b\r\nS: y\r\n", [false, false]),
            ("From a Mon\r", [false]),
            ("From a\nS: x\n\nb\n\nFrom b\rS: y\r\rbody\r", [false, true]),
            ("From a\nS: x\rstill the header\n\nb\n", [false]),
            // A stray CR in the separator line, then a whole message; `\r\r\n` line ends.
            ("From a Mon\rjunk\nSubject: x\n\nbody\n", [false]),
            ("From a Mon\r\r\nSubject: x\r\r\n\r\r\nbody\r\r\n", [false]),
        ]
        for (text, flagged) in cases {
            for plan in [[1], [2], [3], [7], [1024]] {
                let entries = MboxStreamTests.stream(Array(text.utf8), chunks: plan).compactMap { event -> Mbox.Entry? in
                    if case .message(let entry) = event { return entry } else { return nil }
                }
                #expect(entries.map(\.carriageReturnLineEnds) == flagged, "chunks \(plan): \(text.debugDescription)")
            }
        }
    }
}
