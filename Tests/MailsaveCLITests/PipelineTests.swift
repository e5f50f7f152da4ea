import Foundation
@testable import mailsave
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
