import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The progress bar of `batch` and `diff` on standard error: messages, messages per second,
/// and the ETA from the bytes read against the mailbox's size. Drawn only when standard
/// error is a terminal (never into a log or a pipe), at most ten times a second.
final class ProgressBar {
    private let total: Int?
    private let enabled: Bool
    private let start = Date()
    private var lastDraw = Date.distantPast
    private var drawn = false

    /// `totalBytes` is asked only when the bar is drawn (a folder's total is a `stat` a file).
    init(totalBytes: @autoclosure () -> Int?, quiet: Bool) {
        enabled = !quiet && isatty(2) == 1
        total = enabled ? totalBytes() : nil
    }

    func update(messages: Int, bytes: Int, force: Bool = false) {
        guard enabled else { return }
        let now = Date()
        guard force || now.timeIntervalSince(lastDraw) >= 0.1 else { return }
        lastDraw = now
        let elapsed = max(now.timeIntervalSince(start), 0.001)
        let rate = Double(messages) / elapsed
        var line = "\(messages) messages  \(Self.number(rate))/s"
        if let total, total > 0 {
            let fraction = min(1, Double(bytes) / Double(total))
            let width = 24
            let filled = Int(fraction * Double(width))
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            line = "[\(bar)] \(Int(fraction * 100))%  " + line
            if fraction > 0.001 {
                let remaining = elapsed * (1 - fraction) / fraction
                line += "  ETA " + Self.duration(remaining)
            }
        }
        Terminal.writeAll(2, "\r\u{1B}[K" + line)
        drawn = true
    }

    /// Clears the bar (before the summary and any error line).
    func clear() {
        guard enabled, drawn else { return }
        Terminal.writeAll(2, "\r\u{1B}[K")
        drawn = false
    }

    static func number(_ value: Double) -> String {
        value >= 100 ? String(Int(value.rounded())) : String(format: "%.1f", value)
    }

    static func duration(_ seconds: Double) -> String {
        let total = Int(seconds.rounded())
        let (hours, minutes, rest) = (total / 3600, total / 60 % 60, total % 60)
        return hours > 0 ? String(format: "%d:%02d:%02d", hours, minutes, rest) : String(format: "%d:%02d", minutes, rest)
    }
}

/// Ctrl-C and SIGTERM during `batch`: the run stops between two messages (a save under way
/// finishes or rolls back whole), removes its unfinished `--out` file, says how to go on,
/// and dies of the same signal so the shell sees an interruption.
enum Interruption {
    nonisolated(unsafe) static var signalNumber: Int32 = 0

    static func install() {
        var set = sigset_t()
        sigemptyset(&set)
        for number in [SIGINT, SIGTERM] {
            #if os(Linux)
            // Without SA_RESTART (which signal() sets): a read blocked on an idle pipe or a
            // terminal returns EINTR, and the loop around it sees the request.
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { received in Interruption.signalNumber = received }
            sigemptyset(&action.sa_mask)
            action.sa_flags = 0
            sigaction(number, &action, nil)
            #else
            signal(number) { received in Interruption.signalNumber = received }
            #endif
            sigaddset(&set, number)
        }
        // A parent may have started us with them blocked (inherited masks): they must arrive.
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    static var requested: Bool { signalNumber != 0 }

    /// Dies of the signal that was received, and nothing else: a forked job, whose
    /// temporary files are its parent's.
    static func endBySignal() -> Never {
        let number = signalNumber
        signal(number, SIG_DFL)
        raise(number)
        _exit(128 + number)
    }

    /// Dies of the signal that was received, with its default action.
    /// Dying of the signal skips every deferred clean-up: the run's temporary files go first.
    static func reraise() -> Never {
        TemporaryPaths.removeAll()
        let number = signalNumber
        signal(number, SIG_DFL)
        raise(number)
        exit(128 + number)
    }
}
