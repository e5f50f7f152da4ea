import Foundation
import MailEngine
import MailStore
#if os(Linux)
import Synchronization
#endif
#if canImport(Glibc)
import Glibc
#endif

/// `batch --jobs N` over message files without `--apply`: N processes forked from this one
/// once the pack is loaded and the folder listed, each taking runs of files from a counter
/// they share (`SharedCounter`), deciding them with `Batch.decide` as one job does, and
/// sending its results through a pipe; this process writes them in input order
/// (`ForkedResults`).
///
/// Processes, not threads: threads share reference counts, the allocator and the messages
/// handed between them, and on this VM a two-thread run reached 1.61x–1.85x of one job as
/// its two cores drifted apart, where two processes reached 1.93–1.99x in the same minutes.
/// Nothing is shared after the fork but the pack's pages (copied on write) and the counter
/// the jobs take runs of files from: each process opens the store itself (an SQLite
/// connection must not cross a fork), and the store this process opened is closed first.
/// Linux only (the counter is an atomic of the Synchronization module, which needs macOS 15
/// where the package builds for macOS 13); elsewhere `batch --jobs` uses threads.
enum JobProcesses {
    /// Whether a run can fork its jobs: only while this process has a single thread (a fork
    /// copies only the thread that calls it).
    static var canFork: Bool {
        #if os(Linux)
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task"))?.count ?? 0) == 1
        #else
        false
        #endif
    }

    /// F_SETPIPE_SZ (Linux's fcntl.h defines it only under _GNU_SOURCE, which Glibc's module
    /// does not import).
    static let setPipeSize: Int32 = 1031

    /// Forks `count` jobs; each runs `work(output)`, its pipe's write end, and ends with its
    /// status. Returns the read end of each job's pipe and its process id.
    static func start(count: Int, work: (Int32) -> ExitStatus) throws -> [(pid: pid_t, pipe: Int32)] {
        var jobs: [(pid: pid_t, pipe: Int32)] = []
        for _ in 0..<count {
            var ends: [Int32] = [-1, -1]
            guard pipe(&ends) == 0 else {
                stop(jobs)
                throw CommandFailure(status: .couldNotRun, message: "cannot start the jobs: \(String(cString: strerror(errno)))")
            }
            // A larger pipe lets a job run ahead of the others by a few thousand results instead
            // of about 150: the results are read in input order, and a job whose pipe is full
            // waits, its core idle, until the others have caught up. 1 MiB each, 16 MiB in all
            // (a user's pipes past 64 MiB are cut to one page each, other programs' too), never
            // below the default 64 KiB; where the system refuses, the pipe keeps its size.
            #if os(Linux)
            _ = fcntl(ends[1], Self.setPipeSize, Int32(clamping: max(1 << 16, min(1 << 20, (16 << 20) / max(count, 1)))))
            #endif
            let pid = fork()
            if pid == 0 {
                // A job whose reader is gone dies of SIGPIPE (a shell may have left it ignored).
                signal(SIGPIPE, SIG_DFL)
                close(ends[0])
                for job in jobs { close(job.pipe) }
                let status = work(ends[1])
                // Stopped by a signal: the job ends by it, so that the run can tell a job it
                // stopped itself from one that stopped on its own.
                if Interruption.requested { Interruption.endBySignal() }
                _exit(status.rawValue)
            }
            close(ends[1])
            guard pid > 0 else {
                close(ends[0])
                stop(jobs)
                throw CommandFailure(status: .couldNotRun, message: "cannot start the jobs: \(String(cString: strerror(errno)))")
            }
            jobs.append((pid, ends[0]))
        }
        return jobs
    }

    /// Stops the jobs that are still running and waits for them.
    static func stop(_ jobs: [(pid: pid_t, pipe: Int32)]) {
        for job in jobs { kill(job.pid, SIGTERM) }
        _ = finish(jobs, stopped: true)
    }

    /// Waits for every job; the first failure one of them ended with, and how (a signal
    /// counts as 3, except SIGTERM, or SIGPIPE from writing to the pipe closed here, when the
    /// caller `stopped` the jobs itself).
    static func finish(_ jobs: [(pid: pid_t, pipe: Int32)], stopped: Bool) -> (status: ExitStatus, how: String)? {
        var worst: (status: ExitStatus, how: String)?
        for job in jobs {
            // Closed first: a job still writing to a full pipe gets EPIPE instead of waiting.
            close(job.pipe)
            var status: Int32 = 0
            while waitpid(job.pid, &status, 0) < 0 && errno == EINTR {}
            let signal = status & 0x7F
            if stopped && (signal == SIGTERM || signal == SIGPIPE) { continue }
            if signal != 0 {
                if worst == nil { worst = (.couldNotRun, "was ended by signal \(signal)") }
            } else if case let code = (status >> 8) & 0xFF, code != 0, worst == nil {
                worst = (ExitStatus(rawValue: code) ?? .couldNotRun, "stopped (exit \(code)); its error is above")
            }
        }
        return worst
    }
}

#if os(Linux)
/// A counter the forked jobs share: an atomic integer in a shared anonymous mapping, made
/// before the fork. Each job takes the next number from it (the next run of files), so the
/// job on the faster core takes more runs and the jobs end together.
final class SharedCounter: @unchecked Sendable {
    private let counter: UnsafeMutablePointer<Atomic<Int>>

    init() throws {
        let raw = mmap(nil, MemoryLayout<Atomic<Int>>.size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)
        guard let raw, Int(bitPattern: raw) != -1 else {
            throw CommandFailure(status: .couldNotRun, message: "cannot start the jobs: \(String(cString: strerror(errno)))")
        }
        counter = raw.bindMemory(to: Atomic<Int>.self, capacity: 1)
        counter.initialize(to: Atomic(0))
    }

    deinit { munmap(counter, MemoryLayout<Atomic<Int>>.size) }

    /// 0, 1, 2, ... across all the processes that share it, each number once.
    func next() -> Int { counter.pointee.wrappingAdd(1, ordering: .relaxed).oldValue }
}
#endif

/// The forked jobs' results, taken in input order. A job's results come in increasing order
/// (it takes runs in increasing order), so this holds at most one result read ahead per job;
/// a job whose next result is not yet wanted is not read, and waits once its pipe is full.
final class ForkedResults {
    private let readers: [FrameReader]
    private var ahead: [RenderedResult?]
    private var ended: [Bool]
    /// The mailbox, which every error names.
    private let name: String

    init(readers: [FrameReader], name: String) {
        self.readers = readers
        self.name = name
        ahead = Array(repeating: nil, count: readers.count)
        ended = Array(repeating: false, count: readers.count)
    }

    /// The result of message `index`; nil when no job can send it any more (a job stopped
    /// early: its exit status says why) or the run is interrupted.
    func take(_ index: Int) throws -> RenderedResult? {
        while true {
            if let job = ahead.firstIndex(where: { $0?.index == index }), let result = ahead[job] {
                ahead[job] = nil
                return result
            }
            if ahead.contains(where: { ($0?.index ?? Int.max) < index }) {
                throw CommandFailure(status: .couldNotRun, message: "\(name): two batch jobs sent the result of the same message")
            }
            // The jobs that may send it: those with nothing read ahead that have not ended.
            let waiting = readers.indices.filter { ahead[$0] == nil && !ended[$0] }
            guard !waiting.isEmpty, !Interruption.requested else { return nil }
            var ready = waiting.filter { readers[$0].hasFrame }
            if ready.isEmpty {
                var polled = waiting.map { pollfd(fd: readers[$0].descriptor, events: Int16(POLLIN), revents: 0) }
                if poll(&polled, nfds_t(polled.count), -1) < 0 {
                    if errno == EINTR { continue }
                    throw CommandFailure(status: .couldNotRun, message: "\(name): cannot read a batch job's results: \(String(cString: strerror(errno)))")
                }
                ready = zip(waiting, polled).filter { $0.1.revents != 0 }.map(\.0)
            }
            for job in ready {
                guard let frame = try read(job) else {
                    ended[job] = true
                    continue
                }
                guard let result = ResultFrames.read(frame) else {
                    throw CommandFailure(status: .couldNotRun, message: "\(name): a batch job sent a result that cannot be read")
                }
                guard result.index >= index else {
                    throw CommandFailure(status: .couldNotRun, message: "\(name): a batch job sent the result of a message already written")
                }
                ahead[job] = result
            }
        }
    }

    /// Whether any job has a result left after the last message's.
    func anyLeft() throws -> Bool {
        if ahead.contains(where: { $0 != nil }) { return true }
        for job in readers.indices where !ended[job] {
            if try read(job) != nil { return true }
        }
        return false
    }

    /// A job's next frame; its errors name the mailbox.
    private func read(_ job: Int) throws -> ArraySlice<UInt8>? {
        do {
            return try readers[job].next()
        } catch let failure as CommandFailure {
            throw CommandFailure(status: failure.status, message: "\(name): " + failure.message)
        }
    }
}

/// A job's results as frames on its pipe: a 4-byte length, then the fields of a
/// `RenderedResult`, each string with a 4-byte length (nil as 0xFFFFFFFF).
struct ResultFrames {
    static func append(_ result: RenderedResult, to bytes: inout [UInt8]) {
        var body: [UInt8] = []
        func int(_ value: Int) { withUnsafeBytes(of: Int64(value).littleEndian) { body.append(contentsOf: $0) } }
        func count(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { body.append(contentsOf: $0) } }
        func string(_ value: String?) {
            guard let value else { return count(.max) }
            count(UInt32(value.utf8.count))
            body.append(contentsOf: value.utf8)
        }
        int(result.index)
        int(result.bytesRead)
        string(result.line)
        string(result.verdict)
        string(result.rule)
        string(result.linkKind)
        switch result.saved {
        case nil: body.append(0)
        case .created: body.append(1)
        case .alreadySaved: body.append(2)
        case .parked: body.append(3)
        }
        if let error = result.error {
            body.append(1)
            string(error.kind)
            int(Int(error.failure.status.rawValue))
            string(error.failure.message)
        } else {
            body.append(0)
        }
        if let table = result.table {
            count(UInt32(table.count))
            for cell in table { string(cell) }
        } else {
            count(.max)
        }
        withUnsafeBytes(of: UInt32(body.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: body)
    }

    /// A little-endian 4-byte integer (a frame's length, a string's), the same on any machine.
    static func uint32(_ bytes: ArraySlice<UInt8>) -> UInt32 { bytes.reversed().reduce(0) { $0 << 8 | UInt32($1) } }

    /// The result in `body`, or nil when the frame is not one `append` wrote.
    static func read(_ body: ArraySlice<UInt8>) -> RenderedResult? {
        var offset = body.startIndex
        func bytes(_ count: Int) -> ArraySlice<UInt8>? {
            guard count >= 0, body.endIndex - offset >= count else { return nil }
            defer { offset += count }
            return body[offset..<(offset + count)]
        }
        // Little-endian bytes, assembled into the value (so the same on any machine).
        func int() -> Int? { bytes(8).map { Int($0.reversed().reduce(Int64(0)) { $0 << 8 | Int64($1) }) } }
        func count() -> UInt32? { bytes(4).map(Self.uint32) }
        func string() -> String?? {
            guard let length = count() else { return nil }
            if length == .max { return .some(nil) }
            guard let text = bytes(Int(length)) else { return nil }
            return .some(String(decoding: text, as: UTF8.self))
        }
        guard let index = int(), let bytesRead = int(), let line = string() ?? nil, let verdict = string(), let rule = string(),
              let linkKind = string(), let savedByte = bytes(1)?.first else { return nil }
        var result = RenderedResult(index: index, line: line, verdict: verdict, rule: rule, linkKind: linkKind, error: nil, bytesRead: bytesRead)
        switch savedByte {
        case 0: result.saved = nil
        case 1: result.saved = .created
        case 2: result.saved = .alreadySaved
        case 3: result.saved = .parked
        default: return nil
        }
        guard let hasError = bytes(1)?.first else { return nil }
        if hasError == 1 {
            guard let kind = string() ?? nil, let status = int(), let message = string() ?? nil,
                  let exit = ExitStatus(rawValue: Int32(truncatingIfNeeded: status)) else { return nil }
            result.error = MailboxItemError(kind: kind, failure: CommandFailure(status: exit, message: message))
        } else if hasError != 0 {
            return nil
        }
        guard let cells = count() else { return nil }
        if cells != .max {
            var table: [String] = []
            for _ in 0..<cells {
                guard let cell = string() ?? nil else { return nil }
                table.append(cell)
            }
            result.table = table
        }
        return offset == body.endIndex ? result : nil
    }
}

/// Reads a job's frames from its pipe, in order.
final class FrameReader {
    let descriptor: Int32
    private var buffer: [UInt8] = []
    private var start = 0
    private var ended = false
    /// What one read takes from the pipe, kept between reads (made and zeroed for every read,
    /// 64 KiB, it was the merge's own work as often as a job's pipe was read).
    private var chunk = [UInt8](repeating: 0, count: 1 << 16)

    init(_ descriptor: Int32) { self.descriptor = descriptor }

    /// Whether `next()` returns without reading the pipe: a whole frame is already read.
    var hasFrame: Bool {
        guard let length = frameLength else { return ended }
        return buffer.count - start >= 4 + length || ended
    }

    /// The length of the frame at `start`, when its 4 bytes are read.
    private var frameLength: Int? {
        guard buffer.count - start >= 4 else { return nil }
        return Int(ResultFrames.uint32(buffer[start..<(start + 4)]))
    }

    /// The next frame's body; nil at the end of the pipe (or when the run is interrupted).
    func next() throws -> ArraySlice<UInt8>? {
        while true {
            if let length = frameLength {
                if buffer.count - start >= 4 + length {
                    defer { start += 4 + length }
                    return buffer[(start + 4)..<(start + 4 + length)]
                }
            }
            if ended {
                guard start == buffer.count else { throw CommandFailure(status: .couldNotRun, message: "a batch job ended in the middle of a result") }
                return nil
            }
            if start > 0 {
                buffer.removeFirst(start)
                start = 0
            }
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR {
                    if Interruption.requested { return nil }
                    continue
                }
                throw CommandFailure(status: .couldNotRun, message: "cannot read a batch job's results: \(String(cString: strerror(errno)))")
            }
            if count == 0 { ended = true } else { buffer.append(contentsOf: chunk[0..<count]) }
        }
    }
}
