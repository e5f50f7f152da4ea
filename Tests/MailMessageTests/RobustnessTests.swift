import MailMessage
import Testing

/// Malformed input never traps and never hangs; limits hold.
@Suite struct RobustnessTests {
    /// A small deterministic generator so failures reproduce.
    struct SplitMix {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(max(bound, 1))) }
    }

    static let interesting: [UInt8] = Array("\r\n:;<>\"()=?-@,\\ \t[]".utf8) + [0x00, 0xFF, 0xC3, 0x80]

    @Test func mutatedCorpusMessagesNeverTrap() throws {
        var random = SplitMix(state: 20_261_129)
        var parsed = 0
        for url in Paths.corpusFiles() {
            let original = try bytes(of: url)
            for _ in 0..<40 {
                var mutated = original
                for _ in 0...random.below(8) where !mutated.isEmpty {
                    let position = random.below(mutated.count)
                    switch random.below(4) {
                    case 0: mutated[position] = Self.interesting[random.below(Self.interesting.count)]
                    case 1: mutated.remove(at: position)
                    case 2: mutated.insert(Self.interesting[random.below(Self.interesting.count)], at: position)
                    default:
                        let end = min(mutated.count, position + random.below(64))
                        mutated.insert(contentsOf: mutated[position..<end], at: position)
                    }
                }
                if (try? MessageParser.parse(mutated)) != nil { parsed += 1 }
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
