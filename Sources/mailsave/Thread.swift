import ArgumentParser
import MailEngine
import MailMessage
import MailStore

/// `process --thread`: the messages of one thread (files, or an mbox) decided together, in
/// thread order, each message once, each marked `thread.whole` so the pack can keep its rule
/// that saving a thread applies only to the Inbox and Sent items.
struct ThreadMessage {
    /// The file, or `archive.mbox:LINE`.
    var name: String
    var folder: String
    var message: Message
    /// The bytes it was parsed from (what a parked save keeps).
    var bytes: [UInt8]
    /// Input order (0-based).
    var index: Int
}

extension ThreadOrder {
    /// Thread order for `process --thread`: by Date (undated messages last, then input
    /// order), except that a message comes after the message its In-Reply-To or References
    /// name when that message is in the thread (parents first, as `batch --apply` orders).
    static func sorted(_ messages: [ThreadMessage]) -> [ThreadMessage] {
        let byDate = messages.sorted { a, b in
            switch (a.message.date?.secondsSinceEpoch, b.message.date?.secondsSinceEpoch) {
            case let (x?, y?) where x != y: return x < y
            case (.some, nil): return true
            case (nil, .some): return false
            default: return a.index < b.index
            }
        }
        let ids = byDate.map { $0.message.messageID.map(MessageIDKey.normalize) }
        let parents = byDate.map { item in (item.message.inReplyTo + item.message.references.reversed()).map(MessageIDKey.normalize) }
        return order(ids: ids, parents: parents).map { byDate[$0] }
    }
}

extension ProcessJob {
    /// The thread's messages, read and parsed: files (with `--message-folder` per file) or
    /// `--mbox`. A message that cannot be read is reported and left out (exit code kept).
    func readThread(firstFailure: inout ExitStatus?) throws -> [ThreadMessage] {
        var messages: [ThreadMessage] = []
        func folder(_ index: Int) -> String { index < messageFolders.count ? messageFolders[index] : options.folder }
        // More folders than messages is a command line that says something other than meant
        // (the extra folders were ignored): refused before anything is decided.
        func tooManyFolders(_ count: Int) -> CommandFailure {
            CommandFailure(status: .usage, message: "--message-folder is given \(messageFolders.count) times for \(count) message\(count == 1 ? "" : "s"); "
                           + "at most one a message, in input order (messages without one are in --folder)")
        }
        if mbox == nil && messageFolders.count > files.count { throw tooManyFolders(files.count) }
        func failed(_ failure: CommandFailure) {
            Terminal.err("mailsave: " + failure.message)
            firstFailure = firstFailure ?? failure.status
        }
        if let mbox {
            let source = try MboxSource(path: mbox, folder: options.folder)
            var entries = 0
            while let item = try source.next() {
                entries = max(entries, item.index + 1)
                let name = item.position.place(in: mbox)
                do {
                    let bytes = try item.content.get()
                    let message = try MessageDecider.parse(bytes, name: name, firstLine: item.firstLine)
                    messages.append(ThreadMessage(name: name, folder: folder(item.index), message: message, bytes: bytes, index: item.index))
                } catch let error as MailboxItemError {
                    failed(error.failure)
                } catch let failure as CommandFailure {
                    failed(failure)
                }
            }
            if messageFolders.count > entries { throw tooManyFolders(entries) }
        } else {
            for (index, file) in files.enumerated() {
                do {
                    let bytes = try readInput(file, limit: ParseLimits().maxMessageBytes)
                    messages.append(ThreadMessage(name: file, folder: folder(index), message: try MessageDecider.parse(bytes, name: file),
                                                  bytes: bytes, index: index))
                } catch {
                    failed(error)
                }
            }
        }
        return messages
    }

    /// Decides (and with `--apply` saves) the thread in thread order, one decision a line.
    func runThread(decider: MessageDecider) throws {
        var firstFailure: ExitStatus?
        let messages = ThreadOrder.sorted(try readThread(firstFailure: &firstFailure))
        var seen: [String: String] = [:]
        var rows: [[String]] = []
        var parked = false
        for item in messages {
            // The same message twice (two copies, or the Inbox and Sent copies of a message to
            // oneself) is decided once: the first copy in thread order.
            let key = MessageIDKey.ledgerKey(item.message)
            if let first = seen[key] {
                Terminal.err("mailsave: \(item.name): the same message as \(first) (\(key)); decided once")
                continue
            }
            seen[key] = item.name
            var thread = decider.inFolder(item.folder)
            thread.context.wholeThread = true
            let outcome: MessageDecider.Outcome
            do {
                outcome = try thread.run(item.message, bytes: item.bytes, name: item.name)
            } catch let error as StoreError {
                throw CommandFailure(error)
            } catch let error as CRMError {
                throw CommandFailure(error)
            } catch let failure as CommandFailure {
                Terminal.err("mailsave: " + failure.message)
                firstFailure = firstFailure ?? failure.status
                continue
            }
            parked = parked || outcome.parked != nil
            output(outcome, file: item.name, several: true, rows: &rows)
        }
        if format == .table { Terminal.out(DecisionText.table(rows, saved: apply)) }
        if let firstFailure { throw ExitCode(firstFailure.rawValue) }
        if parked { throw ExitCode(ExitStatus.parked.rawValue) }
    }
}
