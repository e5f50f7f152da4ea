import Foundation
@testable import mailsave
import SeededRandom
import Testing

/// `batch` and `diff` hand messages to jobs in runs and read the outputs back in order.
@Suite struct PipelineTests {
    @Test(arguments: [1, 2, 3])
    func outputsComeBackInInputOrder(jobs: Int) {
        let pipeline = OrderedPipeline<Int, Int>(jobs: jobs) { input in
            // Uneven work, so later inputs often finish first.
            var spin = 0
            for step in 0..<((input * 7919) % 50_000) { spin &+= step }
            return input * 2 + (spin == -1 ? 1 : 0)
        }
        defer { pipeline.close() }
        var outputs: [Int] = []
        for input in 0..<2_000 { pipeline.submit(input, size: 1) { outputs.append($0) } }
        pipeline.finish { outputs.append($0) }
        #expect(outputs == (0..<2_000).map { $0 * 2 })
    }

    /// Each job runs its inputs inside `around`, a run at a time (a batch's shared snapshot):
    /// every input is transformed inside one, once; and where `around` does not run its body
    /// (the snapshot could not begin), every input is still transformed, without it.
    @Test(arguments: [2, 3])
    func runsOfInputsAreWrappedAndNoneIsLost(jobs: Int) {
        final class Runs: @unchecked Sendable {
            let lock = NSLock()
            var inside = Set<Int>()   // threads inside `around` now
            var wrapped = 0, outside = 0, runs = 0
        }
        for refuse in [false, true] {
            let runs = Runs()
            let pipeline = OrderedPipeline<Int, Int>(jobs: jobs, around: { body in
                runs.lock.withLock { runs.runs += 1 }
                guard !refuse else { return }
                let me = Int(bitPattern: UInt(pthread_self()))
                runs.lock.withLock { _ = runs.inside.insert(me) }
                body()
                runs.lock.withLock { _ = runs.inside.remove(me) }
            }) { input in
                let me = Int(bitPattern: UInt(pthread_self()))
                runs.lock.withLock { if runs.inside.contains(me) { runs.wrapped += 1 } else { runs.outside += 1 } }
                return input + 1
            }
            var outputs: [Int] = []
            for input in 0..<1_000 { pipeline.submit(input, size: 1) { outputs.append($0) } }
            pipeline.finish { outputs.append($0) }
            pipeline.close()
            #expect(outputs == Array(1...1_000))
            if refuse {
                #expect(runs.wrapped == 0 && runs.outside == 1_000)
            } else {
                #expect(runs.wrapped == 1_000 && runs.outside == 0)
                // In runs, not one by one (at most SharedRun.maxRun inputs each).
                #expect(runs.runs >= 1_000 / SharedRun.maxRun && runs.runs < 1_000)
            }
        }
    }

    /// A run ends at `maxRun` inputs, or once `maxSeconds` have passed since it began.
    @Test func aSharedRunIsBoundedInCountAndTime() {
        var run = SharedRun()
        var room = 1   // the run's first input needs no room
        while run.hasRoom { room += 1 }
        #expect(room == SharedRun.maxRun)
        var slow = SharedRun()
        let early = slow.hasRoom
        usleep(useconds_t(SharedRun.maxSeconds * 1.2e6))
        let late = slow.hasRoom
        #expect(early && !late)
    }

    /// The window holds the reader back: never more inputs in flight than it allows.
    @Test func theWindowBoundsTheInputsInFlight() {
        let pipeline = OrderedPipeline<Int, Int>(jobs: 2, window: 5) { input in
            usleep(200)
            return input
        }
        defer { pipeline.close() }
        var submitted = 0, drained = 0, largest = 0
        for input in 0..<300 {
            pipeline.submit(input, size: 1) { _ in drained += 1 }
            submitted += 1
            largest = max(largest, submitted - drained)
        }
        pipeline.finish { _ in drained += 1 }
        #expect(drained == 300)
        #expect(largest <= 5)
    }
}

/// Maildir++ folder names in IMAP's modified UTF-7.
@Suite struct MaildirFolderNameTests {
    @Test func modifiedUTF7IsDecodedButNeverIntoALineBreakOrASlash() {
        #expect(FileListSource.maildirFolderName(".Entw&APw-rfe") == "Entwürfe")
        #expect(FileListSource.maildirFolderName(".INBOX.Deals") == "Inbox/Deals")
        #expect(FileListSource.maildirFolderName(".a&-b") == "a&b")
        // A line feed or a "/" from the decoding: the name stays as written there.
        #expect(FileListSource.maildirFolderName(".&AAo-evil&AC8-x") == "&AAo-evil&AC8-x")
    }
}

/// The forked jobs' results taken back in input order (`ForkedResults`), whichever job sent
/// each run.
@Suite struct ForkedResultsTests {
    /// Pipes holding each job's results (indexes), closed after them.
    func merge(_ jobs: [[Int]]) -> ForkedResults {
        let readers = jobs.map { indexes -> FrameReader in
            var ends: [Int32] = [-1, -1]
            _ = pipe(&ends)
            var bytes: [UInt8] = []
            for index in indexes {
                ResultFrames.append(RenderedResult(index: index, line: "{\"n\":\(index)}", error: nil, bytesRead: index), to: &bytes)
            }
            _ = bytes.withUnsafeBytes { write(ends[1], $0.baseAddress, $0.count) }
            close(ends[1])
            return FrameReader(ends[0])
        }
        return ForkedResults(readers: readers, name: "mail")
    }

    @Test func resultsComeInInputOrderWhicheverJobTookEachRun() throws {
        let results = merge([[0, 1, 2, 6, 7, 11], [3, 4, 5, 8, 9, 10]])
        for index in 0..<12 {
            let result = try #require(try results.take(index))
            #expect(result.index == index && result.line == "{\"n\":\(index)}")
        }
        #expect(try results.take(12) == nil)
        #expect(try !results.anyLeft())
    }

    /// A result no job sends (its job stopped, or sent a later one first) ends the taking; one
    /// sent twice is refused; one left over after the last is seen.
    @Test func missingRepeatedOrExtraResultsAreCaught() throws {
        let missing = merge([[0, 1], [3, 4]])
        #expect(try missing.take(0)?.index == 0)
        #expect(try missing.take(1)?.index == 1)
        #expect(try missing.take(2) == nil)
        let repeated = merge([[0, 1], [1, 2]])
        #expect(try repeated.take(0)?.index == 0)
        #expect(throws: CommandFailure.self) {
            _ = try repeated.take(1)
            _ = try repeated.take(2)
        }
        let backwards = merge([[0, 2, 1]])
        #expect(try backwards.take(0)?.index == 0)
        #expect(try backwards.take(1) == nil)
        let extra = merge([[0], [1, 5]])
        #expect(try extra.take(0)?.index == 0)
        #expect(try extra.take(1)?.index == 1)
        #expect(try extra.anyLeft())
    }
}

/// The frames a forked job sends its results in (`batch --jobs N` over message files).
@Suite struct ResultFrameTests {
    @Test func resultsComeBackAsTheyWereSentAndDamagedFramesAreRefused() throws {
        let results = [
            RenderedResult(index: 0, line: "{\"verdict\":\"save\"}", verdict: "save", rule: "general-mode", linkKind: "Contact", saved: .created, error: nil, bytesRead: 1_234,
                           table: ["a.eml", "save", "Task", "0035e00000Bob01", "general-mode"]),
            RenderedResult(index: 1, line: "", verdict: nil, rule: nil, linkKind: nil, saved: nil,
                           error: MailboxItemError(kind: "not_a_message", failure: CommandFailure(status: .badMessage, message: "x.eml:1: not an RFC 5322 message — «é»")),
                           bytesRead: 0, table: nil),
            RenderedResult(index: 2, line: "{}", verdict: "skip", rule: "r", linkKind: nil, saved: .parked, error: nil, bytesRead: Int(Int32.max) + 5, table: []),
        ]
        var bytes: [UInt8] = []
        for result in results { ResultFrames.append(result, to: &bytes) }
        var frames: [ArraySlice<UInt8>] = []
        var offset = 0
        while offset < bytes.count {
            let length = Int(bytes[offset..<(offset + 4)].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
            frames.append(bytes[(offset + 4)..<(offset + 4 + length)])
            offset += 4 + length
        }
        #expect(frames.count == 3)
        for (frame, sent) in zip(frames, results) {
            let back = try #require(ResultFrames.read(frame))
            #expect(back.index == sent.index && back.line == sent.line && back.verdict == sent.verdict && back.rule == sent.rule)
            #expect(back.linkKind == sent.linkKind && back.saved == sent.saved && back.bytesRead == sent.bytesRead && back.table == sent.table)
            #expect(back.error?.kind == sent.error?.kind && back.error?.failure.message == sent.error?.failure.message
                    && back.error?.failure.status == sent.error?.failure.status)
        }
        // Cut short, or with a byte more, a frame is not a result.
        let first = frames[0]
        for length in 0..<first.count { #expect(ResultFrames.read(first.prefix(length)) == nil) }
        #expect(ResultFrames.read(first + [0]) == nil)
    }
}

/// A run's message files are listed into one buffer and sorted there (`PathList`).
@Suite struct PathListTests {
    /// The order is the paths' bytes (a path before the longer ones it begins), the same as
    /// sorting the byte arrays; of two equal paths, the one whose name is UTF-8 comes first;
    /// every path reads back as it went in.
    @Test func sortsByBytesAndReadsPathsBack() {
        var random = SplitMix(state: 7)
        let pieces = ["a", "b", "A", "é", "ü", "z", "日", "/", ".eml", "0", "9", "\u{FFFD}"]
        var list = PathList()
        let folder = list.addFolder("Inbox")
        var expected: [(bytes: [UInt8], undecodable: Bool)] = []
        for _ in 0..<3_000 {
            let path = (0..<(1 + random.below(6))).map { _ in pieces[random.below(pieces.count)] }.joined()
            let undecodable = random.below(10) == 0
            list.append(path: path, folder: folder, undecodable: undecodable)
            expected.append((Array(path.utf8), undecodable))
        }
        let prefix = Array("/mail/".utf8)
        "x.eml".utf8.withContiguousStorageIfAvailable { list.append(prefix: prefix, name: UnsafeRawBufferPointer($0), folder: folder) }
        expected.append((prefix + Array("x.eml".utf8), false))
        list.sortByPath()
        expected.sort { left, right in
            left.bytes.lexicographicallyPrecedes(right.bytes) || (left.bytes == right.bytes && !left.undecodable && right.undecodable)
        }
        #expect(list.entries.count == expected.count)
        #expect(list.entries.indices.map { Array(list.path(at: $0).utf8) } == expected.map(\.bytes))
        #expect(list.entries.map(\.undecodable) == expected.map(\.undecodable))
        #expect(list.folders[list.entries[0].folder] == "Inbox")
    }
}
