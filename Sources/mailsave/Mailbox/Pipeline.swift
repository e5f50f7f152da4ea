import Foundation

/// Runs `transform` on `jobs` threads and hands the outputs back in submission order, with
/// at most `window` inputs (and, past the first, `byteBudget` bytes of them) in flight: the
/// reader is held back instead of memory growing with the mailbox. With one job the
/// transform runs on the caller's thread, in order, and nothing is queued.
final class OrderedPipeline<Input: Sendable, Output: Sendable>: @unchecked Sendable {
    private let condition = NSCondition()
    private var queue: [(sequence: Int, input: Input?)] = []
    private var queueHead = 0
    private var results: [Int: Output] = [:]
    private var sizes: [Int: Int] = [:]
    private var submitted = 0
    private var emitted = 0
    private var inFlightBytes = 0
    private var closed = false
    private let transform: @Sendable (Input) -> Output
    /// Runs each job's run of inputs (see `init`).
    private let around: @Sendable (() -> Void) -> Void
    let jobs: Int
    private let window: Int
    private let byteBudget: Int
    /// The most inputs a job takes at once: 64 switched threads 860 times a two-job run of
    /// the 8,676-message corpus where 16 switched them 1,400 times (0.37 s against 0.39 s).
    static var maxRun: Int { 64 }

    /// `around` wraps each run of inputs a job transforms at once (as long as `SharedRun`
    /// allows): a batch reads a run of decisions in one snapshot of the store. With one job,
    /// the caller runs `around` itself (`Batch.runDeciding`).
    init(jobs: Int, window: Int? = nil, byteBudget: Int = 256 << 20,
         around: @escaping @Sendable (() -> Void) -> Void = { $0() }, transform: @escaping @Sendable (Input) -> Output) {
        self.jobs = max(1, jobs)
        self.around = around
        self.window = window ?? max(1, jobs) * 4 * Self.maxRun
        self.byteBudget = byteBudget
        self.transform = transform
        guard self.jobs > 1 else { return }
        for _ in 0..<self.jobs {
            let thread = Thread { [self] in work() }
            // Parsing recurses over MIME nesting (bounded at 32 levels): the main thread's stack size.
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    deinit { close() }

    private func work() {
        while true {
            condition.lock()
            while queueHead >= queue.count && !closed { condition.wait() }
            if queueHead >= queue.count {
                condition.unlock()
                return
            }
            // A run of inputs per turn of the lock, a fair share of what is waiting: one wake-up
            // and one lock per message made the threads switch more than they worked.
            let waiting = queue.count - queueHead
            let take = min(Self.maxRun, max(1, waiting / jobs))
            var taken: [(sequence: Int, input: Input)] = []
            taken.reserveCapacity(take)
            for index in queueHead..<(queueHead + take) {
                // The queue lets go of the input now: a message is held by the job deciding it only.
                if let input = queue[index].input { taken.append((queue[index].sequence, input)) }
                queue[index].input = nil
            }
            queueHead += take
            if queueHead >= 64 && queueHead * 2 > queue.count {
                queue.removeFirst(queueHead)
                queueHead = 0
            }
            condition.unlock()
            var outputs: [(sequence: Int, output: Output)] = []
            outputs.reserveCapacity(taken.count)
            var index = 0
            while index < taken.count {
                let first = index
                around {
                    var run = SharedRun()
                    while index < taken.count && (index == first || run.hasRoom) {
                        outputs.append((taken[index].sequence, transform(taken[index].input)))
                        index += 1
                    }
                }
                // `around` did not run its body (it could not begin): this input without it.
                if index == first {
                    outputs.append((taken[index].sequence, transform(taken[index].input)))
                    index += 1
                }
            }
            taken.removeAll()
            condition.lock()
            for (sequence, output) in outputs { results[sequence] = output }
            condition.broadcast()
            condition.unlock()
        }
    }

    /// Queues `input` (of `size` bytes), first waiting for room; outputs that are ready, in
    /// order, go to `drain` on the caller's thread.
    func submit(_ input: Input, size: Int, drain: (Output) throws -> Void) rethrows {
        if jobs == 1 {
            try drain(transform(input))
            return
        }
        condition.lock()
        while true {
            let inFlight = submitted - emitted
            if inFlight < window && (inFlight == 0 || inFlightBytes + size <= byteBudget) { break }
            if let ready = takeReady() {
                condition.unlock()
                try drain(ready)
                condition.lock()
            } else {
                condition.wait()
            }
        }
        queue.append((submitted, input))
        sizes[submitted] = size
        submitted += 1
        inFlightBytes += size
        condition.broadcast()
        var ready: [Output] = []
        while let output = takeReady() { ready.append(output) }
        condition.unlock()
        for output in ready { try drain(output) }
    }

    /// Waits for every output, in order, to `drain`.
    func finish(drain: (Output) throws -> Void) rethrows {
        guard jobs > 1 else { return }
        condition.lock()
        while emitted < submitted {
            if let ready = takeReady() {
                condition.unlock()
                try drain(ready)
                condition.lock()
            } else {
                condition.wait()
            }
        }
        condition.unlock()
    }

    /// Lets the worker threads end (after the queued inputs).
    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    /// The next output in order, if it is ready (called with the lock held).
    private func takeReady() -> Output? {
        guard let output = results.removeValue(forKey: emitted) else { return nil }
        inFlightBytes -= sizes.removeValue(forKey: emitted) ?? 0
        emitted += 1
        return output
    }
}

/// How long work may share one `around` (a read snapshot of the store): at most `maxRun`
/// inputs, each begun within `maxSeconds` of the first. A decision then reads a snapshot at
/// most that old when it begins (plus the time its own message takes to parse), so a batch
/// sees another process's saves about as a decision of its own would, and the WAL can be
/// checkpointed behind it.
struct SharedRun {
    static var maxSeconds: Double { 0.05 }
    static var maxRun: Int { 64 }
    private let began = DispatchTime.now().uptimeNanoseconds
    private var count = 0

    /// Counts one more input into the run, if there is room for it.
    var hasRoom: Bool {
        mutating get {
            guard count < Self.maxRun - 1, Double(DispatchTime.now().uptimeNanoseconds - began) / 1e9 < Self.maxSeconds else { return false }
            count += 1
            return true
        }
    }
}
