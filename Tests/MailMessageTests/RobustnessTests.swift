import MailMessage
import Testing
import SeededRandom

/// Malformed input never traps and never hangs; limits hold.
@Suite struct RobustnessTests {

    static let interesting: [UInt8] = Array("\r\n:;<>\"()=?-@,\\ \t[]".utf8) + [0x00, 0xFF, 0xC3, 0x80]

    /// What must hold of any message the parser returns, however broken its input.
    func checkInvariants(_ message: Message, of input: [UInt8], limits: ParseLimits = ParseLimits()) {
        #expect(message.size == input.count)
        let lines = input.reduce(1) { $0 + ($1 == 0x0A ? 1 : 0) }
        for defect in message.defects {
            if let line = defect.line { #expect(line >= 1 && line <= lines + 1, "defect \(defect.kind) at line \(line) of \(lines)") }
        }
        #expect(message.parts.count <= limits.maxParts)
        for (index, part) in message.parts.enumerated() {
            #expect(part.bodyRange.lowerBound >= 0 && part.bodyRange.upperBound <= input.count)
            #expect(part.depth <= limits.maxDepth)
            for child in part.children { #expect(child > index && child < message.parts.count) }
        }
        for address in message.participants { #expect(!address.normalized.isEmpty || address.local.isEmpty) }
        // The body analysis is made on first read: read it, so hostile bodies reach it too.
        #expect(message.bodyLinks.allSatisfy { !$0.isEmpty } && message.bodyEmails.allSatisfy { $0.contains("@") })
        #expect(message.signature.map { !$0.lines.isEmpty } ?? true)
        _ = message.date?.iso8601
    }

    func mutate(_ original: [UInt8], donor: [UInt8], random: inout SplitMix, operations: Int) -> [UInt8] {
        var mutated = original
        for _ in 0..<operations where !mutated.isEmpty {
            let position = random.below(mutated.count)
            switch random.below(6) {
            case 0: mutated[position] = Self.interesting[random.below(Self.interesting.count)]
            case 1: mutated.remove(at: position)
            case 2: mutated.insert(Self.interesting[random.below(Self.interesting.count)], at: position)
            case 3:
                let end = min(mutated.count, position + random.below(64))
                mutated.insert(contentsOf: mutated[position..<end], at: position)
            case 4:
                // Splice in a piece of another message: headers and boundaries from elsewhere.
                guard !donor.isEmpty else { continue }
                let from = random.below(donor.count)
                mutated.insert(contentsOf: donor[from..<min(donor.count, from + random.below(512))], at: position)
            default:
                mutated[position] = UInt8(truncatingIfNeeded: random.next())
            }
        }
        return mutated
    }

    /// Up to 64 mutations a copy (flips, insertions, deletions, duplications, splices from
    /// other corpus messages); every copy parses or is refused, and what parses is sane.
    @Test func mutatedCorpusMessagesNeverTrap() throws {
        var random = SplitMix(state: 20_261_129)
        var parsed = 0, refused = 0
        let files = Paths.corpusFiles()
        let originals = try files.map { try bytes(of: $0) }
        for original in originals {
            for _ in 0..<40 {
                let donor = originals[random.below(originals.count)]
                let mutated = mutate(original, donor: donor, random: &random, operations: 1 + random.below(64))
                if let message = try? MessageParser.parse(mutated) {
                    parsed += 1
                    checkInvariants(message, of: mutated)
                } else {
                    refused += 1
                }
            }
        }
        #expect(parsed > refused)
    }

    /// Large inputs: a piece of a corpus message repeated until the message is megabytes
    /// long, in the headers or the body; each parses or is refused by a limit.
    @Test func largeRepetitionsNeverTrap() throws {
        var random = SplitMix(state: 42)
        let originals = try Paths.corpusFiles().map { try bytes(of: $0) }
        var parsed = 0
        for original in originals.prefix(24) where original.count > 64 {
            var large = original
            let position = random.below(large.count)
            let piece = Array(large[position..<min(large.count, position + 1 + random.below(200))])
            let times = (1 << 21) / max(piece.count, 1)
            var repeated: [UInt8] = []
            repeated.reserveCapacity(piece.count * times)
            for _ in 0..<times { repeated.append(contentsOf: piece) }
            large.insert(contentsOf: repeated, at: position)
            do {
                let message = try MessageParser.parse(large)
                parsed += 1
                checkInvariants(message, of: large)
            } catch {
                #expect(!error.reason.isEmpty)
            }
        }
        #expect(parsed > 0)
    }

    @Test func deepNestingStopsAtTheLimit() throws {
        var text = "From: a@b.example\n"
        for level in 0..<200 { text += "Content-Type: multipart/mixed; boundary=\"b\(level)\"\n\n--b\(level)\n" }
        text += "Content-Type: text/plain\n\ndeep\n"
        let message = try parse(text)
        #expect(message.parts.map(\.depth).max() == ParseLimits().maxDepth)
        #expect(message.defects.contains { $0.kind == "depth-limit" })
    }

    @Test func partCountIsCapped() throws {
        var limits = ParseLimits()
        limits.maxParts = 50
        var text = "From: a@b.example\nContent-Type: multipart/mixed; boundary=x\n\n"
        for _ in 0..<500 { text += "--x\nContent-Type: text/plain\n\nhi\n" }
        text += "--x--\n"
        let message = try MessageParser.parse(Array(text.utf8), limits: limits)
        #expect(message.parts.count == 50)
        #expect(message.defects.contains { $0.kind == "part-limit" })
    }

    @Test func headerLimitsRefuseTheMessage() {
        var limits = ParseLimits()
        limits.maxHeaderFields = 100
        let many = String(repeating: "X-A: b\n", count: 101) + "\nbody"
        #expect(throws: MessageParseError.self) { try MessageParser.parse(Array(many.utf8), limits: limits) }
        limits = ParseLimits()
        limits.maxMessageBytes = 10
        #expect(throws: MessageParseError(line: nil, reason: "message is 20 bytes, over the limit of 10")) {
            try MessageParser.parse(Array("From: a@b.example\n\nx".utf8), limits: limits)
        }
    }

    @Test func unclosedCommentsAndQuotesTerminate() throws {
        let message = try parse("From: ((((((((((\"a\nTo: \"\"\"\"<<<<>>>>@@@@,,,,\nSubject: =?utf-8?q?\n\n")
        #expect(message.subject == "=?utf-8?q?")
    }
}
