import ArgumentParser
import Foundation
import MailEngine
import MailMessage
import MailRules
import MailStore

enum BatchFormat: String, ExpressibleByArgument, CaseIterable { case jsonl, table }

struct Batch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batch",
        abstract: "Decide (and with --apply save) every message of a mailbox: an mbox, a Maildir or a folder of .eml files.",
        discussion: """
        Reads the mailbox as a stream (one message in memory per job, whatever its size), decides \
        each message exactly as `process` does, and writes one JSON decision a line in input order, \
        each with its `position` (the mbox line of its `From ` separator, or its file), then a \
        summary: counts by verdict, by deciding rule, by link kind, and errors by kind.

        A message that cannot be read (not a message, over the 64 MiB limit, an unreadable file) is \
        reported with its position and skipped; the batch goes on and exits 4 at the end (3 or 5 \
        when worse happened). A progress bar is drawn on standard error when it is a terminal.

        With --apply each saved decision is written into the store exactly once (the ledger of \
        `process --apply`), in input order except that a message replying to a later message of \
        the batch is decided after it. Interrupted (Ctrl-C, kill -9), the same command again \
        continues: saved messages are found in the ledger and saved nothing twice. With \
        --salesforce the saves go to the org together, one call for up to 200 records; a message \
        whose decision could read a waiting save (the Lead it creates, the message it replies to) \
        is decided after the batch is sent. A message the org refuses fails alone (exit 3).

        Examples:
          mailsave batch --mailbox ann@contoso.com --crm examples/crm --eml examples/messages --format table
          mailsave batch --mailbox ann@contoso.com --crm examples/crm --mbox examples/mailbox.mbox --out decisions.jsonl
          mailsave batch --mailbox ann@contoso.com --store crm.sqlite --maildir ~/Maildir --folder-from-maildir --apply
          mailsave batch --mailbox ann@contoso.com --salesforce --mbox ann.mbox --apply

        Exit codes: 0 every message decided, 2 usage, 3 unreadable mailbox, file or store, \
        4 some messages could not be read, 5 rule pack errors, 6 unreadable CRM export, 11 every message \
        decided but some saves parked in the outbox (run `mailsave retry`), 12 the Salesforce \
        configuration is missing, incomplete or unsafe, 75 retry later.
        """
    )

    @OptionGroup var options: DecisionOptions
    @OptionGroup var source: MailboxOptions

    @Flag(help: "Save each decision into the store (--store), at most once per message org-wide; a rerun continues an interrupted run.")
    var apply = false

    @Option(help: "Messages parsed and decided at once, by default as many as the machine has cores; the output is the same for any number.")
    var jobs: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: "Write the decisions to FILE (atomically: complete or not at all; a new FILE is 0600) and only the summary to standard output. FILE may not be one of the run's own files (the store, the mailbox, the pack, a CSV of --crm).")
    var out: String?

    @Option(help: "jsonl (one JSON decision a line, then a summary object) or table.")
    var format: BatchFormat = .jsonl

    @Flag(help: "No progress bar.")
    var quiet = false

    @Flag(help: .hidden)
    var reportPeakMemory = false

    /// With --apply into the store: messages decided and saved per transaction (group
    /// commit, `SaveSession`); 0 saves each in its own transaction as `process --apply` does.
    /// Hidden: for tests and measurements.
    @Option(help: .hidden)
    var saveGroupSize = 256

    /// With --apply: the longest a group stays open, in seconds (other writers wait that long at most). Hidden.
    @Option(help: .hidden)
    var saveGroupSeconds = 0.05

    /// With --apply into a remote CRM (Salesforce): saves sent together, one call for up to
    /// 200 records (see `SalesforceBackend.write(batch:)`); 1 saves each message on its own,
    /// as `process --apply` does. Hidden: for tests and measurements.
    @Option(help: .hidden)
    var saveBatchSize = 200

    @Argument(help: "- to read an mbox from standard input.")
    var input: [String] = []

    /// The files this run reads, which `--out` must not replace.
    func protectedFiles() -> [(path: String, what: String)] {
        var files: [(path: String, what: String)] = []
        if let store = options.storePath(applying: apply) {
            // Under its name and, when that is a link, its real name (SQLite's -wal is the real one's).
            let real = PackLoader.realPath(store)
            for name in Set([store, real].compactMap { $0 }) {
                files += [(name, "the store"), (name + "-wal", "the store's WAL"), (name + "-shm", "the store's WAL index"),
                          (name + "-journal", "the store's journal"), (name + ".people-lock", "the store's lock on making people")]
            }
        }
        if let mbox = source.mbox { files.append((mbox, "the mailbox")) }
        if let crm = options.crm { files += DecisionOptions.crmObjects.map { (crm + "/" + $0 + ".csv", "a CSV file of --crm") } }
        if let config = options.salesforceOption.salesforceConfig { files.append((config, "the Salesforce configuration")) }
        let packNames = try? FileManager.default.contentsOfDirectory(atPath: options.rules)
        if packNames == nil { files.append((options.rules, "the rule pack")) }
        let usersFolder = options.rules + "/users"
        for (folder, names) in [(options.rules, packNames), (usersFolder, try? FileManager.default.contentsOfDirectory(atPath: usersFolder))] {
            for name in names ?? [] { files.append((folder + "/" + name, "a file of the rule pack")) }
        }
        return files
    }

    /// The folders whose files this run reads: `--out` inside one of them is refused.
    func protectedFolders() -> [(path: String, what: String)] {
        [(source.maildir, "the Maildir"), (source.eml, "the --eml folder")].compactMap { folder in folder.0.map { ($0, folder.1) } }
    }

    func validate() throws {
        try options.validateSources()
        if input.contains(where: { $0 != "-" }) || input.count > 1 {
            throw ValidationError("give the mailbox with --mbox FILE, --maildir DIR or --eml DIR; the only argument is - (an mbox on standard input)")
        }
        try source.validate(stdin: !input.isEmpty)
        if apply && options.crm != nil { throw ValidationError("--apply saves into a store, not into --crm's CSV folder: give --store PATH or neither") }
        try Jobs.validate(jobs)
        if saveGroupSize < 0 || !(saveGroupSeconds >= 0) { throw ValidationError("--save-group-size and --save-group-seconds cannot be negative") }
        if saveBatchSize < 1 { throw ValidationError("--save-batch-size must be at least 1") }
    }

    func run() throws {
        try LineOutput.refuseOwnFile(out, protecting: protectedFiles(), folders: protectedFolders())
        let pack = try options.loadPack()
        // Several jobs over message files, deciding only: forked processes (`JobProcesses`).
        let forking = jobs > 1 && !apply && !options.salesforceOption.enabled && input.isEmpty && (source.eml != nil || source.maildir != nil)
            && JobProcesses.canFork
        let directory = try options.loadDirectory(applying: apply, concurrentReads: jobs > 1 && !forking)
        try options.checkMailbox(pack: pack, directory: directory)
        try options.checkSelection(Engine(pack: pack, directory: directory))
        let decider = try options.decider(pack: pack, directory: directory, applying: apply)
        var mailbox = try source.open(folder: options.folder, stdin: !input.isEmpty)
        let output = try LineOutput(path: out)
        Interruption.install()
        let progress = ProgressBar(totalBytes: mailbox.totalBytes, quiet: quiet)
        var summary = BatchSummary()
        let writer = BatchWriter(output: output, format: format, applying: apply)
        func emit(_ result: RenderedResult) throws {
            summary.count(result)
            if let error = result.error {
                progress.clear()
                Terminal.err("mailsave: " + error.failure.message)
            }
            try writer.write(result)
            progress.update(messages: summary.messages, bytes: result.bytesRead)
        }
        var spooled: String?
        defer { if let spooled { unlink(spooled); TemporaryPaths.forget(spooled) } }
        /// A failure that stops an --apply run says what was saved before it: the store's own
        /// message ("nothing was written") is about the last group only.
        func stopped(_ failure: CommandFailure) -> CommandFailure {
            guard apply else { return failure }
            var stopped = failure
            // The store speaks of its last transaction, a group of up to 256 saves.
            stopped.message = stopped.message.replacing("nothing was written", with: "the last group of saves was not written")
            // Counted as lines leave; every committed save's line leaves before a failure does.
            stopped.message += "; the run saved at least \(summary.created) message\(summary.created == 1 ? "" : "s") before it stopped"
                + " (run the same command again to continue: nothing is saved twice)" + (out.map { "; \($0) was not written" } ?? "")
            return stopped
        }
        do {
            try writer.start()
            if apply {
                if !mailbox.canReread {
                    // Standard input is read twice (threads first): kept in a temporary file
                    // (none when Ctrl-C came while copying: the interruption below says so).
                    spooled = try Self.spool(standardInputTo: NSTemporaryDirectory())
                    if let spooled {
                        TemporaryPaths.remember(spooled)
                        mailbox = try MboxSource(path: spooled, folder: options.folder, displayName: "-")
                    }
                }
                // A group's lines leave as soon as it commits: what standard output shows is saved.
                if !Interruption.requested { try runApplying(mailbox, decider: decider, emit: emit, committed: { try output.flush() }) }
            } else if forking, let files = mailbox as? FileListSource {
                #if os(Linux)
                try runForked(files, pack: pack, directory: directory, emit: emit)
                #else
                try runDeciding(files, decider: decider, emit: emit)
                #endif
            } else {
                try runDeciding(mailbox, decider: decider, emit: emit)
            }
            if Interruption.requested {
                progress.clear()
                // Standard output gets every line decided so far, as the count below says.
                if !output.isFile { try? output.flush() }
                output.abandon()
                Terminal.err("mailsave: interrupted after \(summary.messages) message\(summary.messages == 1 ? "" : "s")"
                             + (apply ? "; run the same command again to continue (nothing is saved twice)" : "")
                             + (out.map { "; \($0) was not written" } ?? ""))
                Interruption.reraise()
            }
            try writer.finish()
            try output.commit()
        } catch let failure as CommandFailure {
            progress.clear()
            output.abandon()
            throw stopped(failure)
        } catch let error as StoreError {
            // The store, not a message: 75 when retrying later may work, else 3.
            progress.clear()
            output.abandon()
            throw stopped(CommandFailure(error))
        } catch let error as CRMError {
            progress.clear()
            output.abandon()
            throw stopped(CommandFailure(error))
        } catch {
            progress.clear()
            output.abandon()
            throw CommandFailure(status: .couldNotRun, message: "\(mailbox.name): \(error)")
        }
        progress.clear()
        switch format {
        case .jsonl:
            let line = summary.json(applying: apply).serialized(pretty: false)
            if output.isFile { Terminal.out(line) } else { try output.line(line); try output.flush() }
        case .table:
            Terminal.out((output.isFile ? "" : "\n") + summary.text(applying: apply))
        }
        if reportPeakMemory, let peak = peakMemoryKB() { Terminal.err("mailsave: peak memory \(peak) kB") }
        // An empty mailbox is not an error (nothing new to save), but never a silent one.
        if summary.messages == 0 && !Interruption.requested { Terminal.err("mailsave: " + source.nothingFound(mailbox.name)) }
        // Ctrl-C after the last message was decided: the run is whole (every line and the
        // summary are written), and still ends by the signal, so that the shell or script that
        // started it stops too (a caught SIGINT must not look like success to a caller).
        if Interruption.requested {
            Terminal.err("mailsave: interrupted after the run had finished: all \(summary.messages) message\(summary.messages == 1 ? "" : "s") decided"
                         + (out.map { " and \($0) written" } ?? ""))
            Interruption.reraise()
        }
        if let worst = summary.worst { throw ExitCode(worst.rawValue) }
        if summary.parked > 0 { throw ExitCode(ExitStatus.parked.rawValue) }
    }

    /// Without --apply: the stream is parsed and decided on `jobs` threads, in input order.
    func runDeciding(_ mailbox: MailboxSource, decider: MessageDecider, emit: (RenderedResult) throws -> Void) throws {
        let name = mailbox.name
        let applying = apply
        let includeFolder = source.folderFromMaildir
        let table = format == .table
        let around = Self.sharedSnapshot(decider.directory)
        @Sendable func decide(_ item: MailboxItem) -> RenderedResult {
            Self.decide(item, decider: decider, source: name, applying: applying, includeFolder: includeFolder, table: table)
        }
        guard jobs == 1 else {
            let pipeline = OrderedPipeline<MailboxItem, RenderedResult>(jobs: jobs, around: around, transform: decide)
            defer { pipeline.close() }
            while !Interruption.requested, let item = try mailbox.next() {
                try pipeline.submit(item, size: (try? item.content.get().count) ?? 0, drain: emit)
            }
            try pipeline.finish(drain: emit)
            return
        }
        // One job decides on this thread. From a file or a folder, a run of messages is decided
        // in one snapshot, and their lines are written once it has ended (a slow reader of the
        // output never holds the store's read lock). Standard input can keep the reader waiting
        // for ever: each of its messages is decided and written on its own.
        guard mailbox.canReread else {
            while !Interruption.requested, let item = try mailbox.next() { try emit(decide(item)) }
            return
        }
        var next = Interruption.requested ? nil : try mailbox.next()
        var ended = next == nil
        while let first = next {
            next = nil
            var failure: (any Error)?
            var results: [RenderedResult] = []
            around {
                do {
                    var run = SharedRun()
                    results.append(decide(first))
                    while !Interruption.requested {
                        guard let item = try mailbox.next() else { ended = true; return }
                        guard run.hasRoom else { next = item; return }
                        results.append(decide(item))
                    }
                } catch { failure = error }
            }
            for result in results { try emit(result) }
            if let failure { throw failure }
            if next == nil && !ended && !Interruption.requested {
                next = try mailbox.next()
                ended = next == nil
            }
        }
    }

    #if os(Linux)
    /// Without --apply, `jobs` processes over message files. Each takes the next run of files
    /// (`SharedRun.maxRun` of them) from a counter they share, decides them as one job would,
    /// and sends the results through its pipe; this process writes them in input order. Runs
    /// taken as the jobs go, not every Nth file dealt out at the start: on this VM one core is
    /// often slower than the other for seconds, and a job dealt half the files then ended
    /// 30 to 116 ms after the other, its core idle (up to a tenth of a two-job run).
    func runForked(_ files: FileListSource, pack: RulePack, directory: CRMDirectory, emit: (RenderedResult) throws -> Void) throws {
        let count = jobs, name = files.name, includeFolder = source.folderFromMaildir, table = format == .table
        let runLength = SharedRun.maxRun
        let claims = try SharedCounter()
        // The store this process opened is closed, and each job opens its own.
        let store = directory as? CRMStore
        do { try store?.closeConnection() } catch { throw CommandFailure(status: .couldNotRun, message: "\(store?.path ?? name): cannot close the store: \(error)") }
        let started = try JobProcesses.start(count: count) { output in
            do {
                let own = store == nil ? directory : try options.loadDirectory(applying: false, concurrentReads: false)
                let decider = try options.decider(pack: pack, directory: own, applying: false)
                let around = Self.sharedSnapshot(own)
                var frames: [UInt8] = []
                while !Interruption.requested {
                    let first = claims.next().multipliedReportingOverflow(by: runLength)
                    guard !first.overflow, first.partialValue < files.count else { break }
                    var index = first.partialValue
                    let end = min(index + runLength, files.count)
                    // The run in one snapshot, unless it outlasts `SharedRun`'s bound.
                    while index < end && !Interruption.requested {
                        around {
                            var run = SharedRun()
                            repeat {
                                let result = Self.decide(files.item(at: index), decider: decider, source: name, applying: false,
                                                         includeFolder: includeFolder, table: table)
                                ResultFrames.append(result, to: &frames)
                                index += 1
                            } while index < end && !Interruption.requested && run.hasRoom
                        }
                    }
                    guard frames.withUnsafeBytes({ writeFully(output, $0) }) == nil else { return .couldNotRun }
                    frames.removeAll(keepingCapacity: true)
                }
                return .ok
            } catch let failure as CommandFailure {
                Terminal.err("mailsave: " + failure.message)
                return failure.status
            } catch {
                Terminal.err("mailsave: \(name): \(error)")
                return .couldNotRun
            }
        }
        let merge = ForkedResults(readers: started.map { FrameReader($0.pipe) }, name: name)
        var failure: (any Error)?
        var index = 0
        do {
            var read = 0
            while index < files.count && !Interruption.requested {
                guard var result = try merge.take(index) else { break }
                // Each result has its own size; the progress bar counts them in order.
                read += result.bytesRead
                result.bytesRead = read
                try emit(result)
                index += 1
            }
        } catch {
            failure = error
        }
        // Every job ends after the last run; one that has more means the jobs disagree.
        var more = false
        if failure == nil && !Interruption.requested && index == files.count {
            do { more = try merge.anyLeft() } catch { failure = error }
        }
        let stopping = failure != nil || more || Interruption.requested || index != files.count
        if stopping { for job in started { kill(job.pid, SIGTERM) } }
        let worst = JobProcesses.finish(started, stopped: stopping)
        // This process's own failure first (a full disk under --out is 75, whatever the jobs
        // it stopped said), then a job's, then results missing or extra.
        if let failure { throw failure }
        if Interruption.requested { return }
        if let worst { throw CommandFailure(status: worst.status, message: "\(name): a batch job \(worst.how)") }
        if more || index != files.count {
            throw CommandFailure(status: .couldNotRun, message: "\(name): the batch jobs sent \(index) results for \(files.count) messages")
        }
    }

    #endif

    /// Runs a run of decisions in one read snapshot of the store (each decision's own joins
    /// it): one shared lock taken and let go per run, not per message. Decisions without
    /// --apply write nothing, so a run sees what one decision would; a run is short (64
    /// messages at most, begun within 50 ms: `SharedRun`) and never waits on input or output
    /// inside it, so the WAL can still be checkpointed behind it. The body runs exactly once:
    /// where the snapshot cannot begin, without it (each decision then reports what it cannot
    /// read).
    static func sharedSnapshot(_ directory: CRMDirectory) -> @Sendable (() -> Void) -> Void {
        guard let store = directory as? CRMStore else { return { $0() } }
        return { body in
            var ran = false
            try? store.snapshot { ran = true; body() }
            if !ran { body() }
        }
    }

    /// With --apply: a first pass reads each message's Message-ID and parents; then messages
    /// are read again in thread order, parsed on `jobs` threads, and decided and saved one at a
    /// time (each decision sees every save before it); lines leave in input order.
    func runApplying(_ mailbox: MailboxSource, decider: MessageDecider, emit: (RenderedResult) throws -> Void,
                     committed: () throws -> Void = {}) throws {
        var items: [MailboxItem] = []
        var ids: [String?] = []
        var parents: [[String]] = []
        // The headers are parsed on `jobs` threads too: on one, this pass was a tenth of a run.
        let keyPipeline = OrderedPipeline<MailboxItem, (MailboxItem, (id: String?, parents: [String]))>(jobs: jobs) { item in
            guard case .success(let bytes) = item.content else { return (item, (nil, [])) }
            var kept = item
            kept.content = .success([])
            return (kept, ThreadOrder.threadKeys(bytes))
        }
        defer { keyPipeline.close() }
        func keep(_ read: (MailboxItem, (id: String?, parents: [String]))) {
            items.append(read.0)
            ids.append(read.1.id)
            parents.append(read.1.parents)
        }
        while !Interruption.requested, let item = try mailbox.next() {
            let size = (try? item.content.get().count) ?? 0
            keyPipeline.submit(item, size: size, drain: keep)
        }
        keyPipeline.finish(drain: keep)
        if Interruption.requested { return }
        let order = ThreadOrder.order(ids: ids, parents: parents)
        // Saving into the store that answers the look-ups: group commit (see `SaveSession`).
        // Any other writer (one that may park into an outbox) saves message by message.
        if saveGroupSize > 0, let store = decider.writer as? CRMStore, decider.outbox == nil, (decider.directory as? CRMStore) === store {
            try store.withSaveSession(maxGroupMessages: saveGroupSize, maxGroupSeconds: saveGroupSeconds) { session in
                try decideAndSave(mailbox, items: items, order: order, decider: decider.savingThrough(session), session: session,
                                  emit: emit, committed: committed)
            }
        } else {
            try decideAndSave(mailbox, items: items, order: order, decider: decider, session: nil, emit: emit, committed: committed)
        }
    }

    /// The second pass of `runApplying`: messages read again in `order`, parsed on `jobs`
    /// threads, decided and saved one at a time on this thread. With a `session`, a group's
    /// lines are held until the group commits, so no line claims a save that was rolled back.
    func decideAndSave(_ mailbox: MailboxSource, items: [MailboxItem], order: [Int], decider: MessageDecider,
                       session: SaveSession?, emit: (RenderedResult) throws -> Void, committed: () throws -> Void) throws {
        let name = mailbox.name
        // A short window: after Ctrl-C, what is already parsed is still decided and saved.
        let pipeline = OrderedPipeline<MailboxItem, (MailboxItem, Result<ParsedItem, MailboxItemError>)>(jobs: jobs, window: jobs * 4) { item in
            (item, Self.parse(item, source: name))
        }
        defer { pipeline.close() }
        let reorder = ReorderBuffer()
        let applying = apply
        let includeFolder = source.folderFromMaildir
        let table = format == .table
        var uncommitted: [RenderedResult] = []
        // A writer that saves in batches (Salesforce), behind an outbox: decided saves wait in
        // `batch` and go together; their lines wait with them (a line never claims a save that
        // did not happen).
        let batch = decider.writer.flatMap { $0 as? BatchActivityWriter }.flatMap { writer in
            session == nil && saveBatchSize > 1 ? SaveBatch(writer: writer, limit: saveBatchSize) : nil
        }
        func flushBatch() throws {
            guard let (pending, stop) = batch?.flush() else { return }
            for (entry, outcome) in pending {
                let result: RenderedResult
                switch outcome {
                case .saved(let outcome): result = Self.render(entry.item, outcome, applying: applying, includeFolder: includeFolder, table: table)
                // A save that failed: its message was parsed and decided, so its line names it.
                case .failed(let error): result = Self.failed(entry.item, error, messageID: entry.message.messageID)
                }
                try reorder.add(result, emit: emit)
            }
            try committed()
            if let stop { throw CommandFailure(stop) }
        }
        func commitGroup() throws {
            guard let session else { return }
            try session.commit()
            for result in uncommitted { try reorder.add(result, emit: emit) }
            uncommitted.removeAll(keepingCapacity: true)
            try committed()
        }
        func drain(_ parsed: (MailboxItem, Result<ParsedItem, MailboxItemError>)) throws {
            let item = parsed.0
            let result: RenderedResult
            switch parsed.1 {
            case .failure(let error):
                result = Self.failed(item, error)
            case .success(let parsed):
                let place = item.position.place(in: name)
                let folderDecider = decider.inFolder(item.folder)
                do {
                    if batch != nil {
                        // A decision that could read a waiting save (see `PendingSave.affects`) waits for it.
                        if batch?.affects(FactsBuilder(pack: decider.pack).plan(parsed.message, context: folderDecider.context)) == true { try flushBatch() }
                        let (decision, facts) = try folderDecider.decide(parsed.message, name: place)
                        if decision.verdict == .save, decision.record != nil {
                            batch?.add(SaveBatch.Entry(item: item, message: parsed.message, bytes: parsed.bytes, decision: decision, facts: facts,
                                                       decider: folderDecider))
                            if batch?.isFull == true { try flushBatch() }
                            return
                        }
                        var outcome = MessageDecider.Outcome(message: parsed.message, decision: decision, facts: facts)
                        // Not a save: what the ledger or the org already holds, as `run` says it.
                        outcome.saved = try folderDecider.save(decision, message: parsed.message, facts: facts)
                        result = Self.render(item, outcome, applying: applying, includeFolder: includeFolder, table: table)
                    } else {
                        let outcome = try folderDecider.run(parsed.message, bytes: parsed.bytes, name: place)
                        result = Self.render(item, outcome, applying: applying, includeFolder: includeFolder, table: table)
                    }
                } catch let failure as CommandFailure where failure.status == .badRules {
                    result = Self.failed(item, MailboxItemError(kind: "rule_budget", failure: failure))
                }
            }
            guard let session else { return try reorder.add(result, emit: emit) }
            uncommitted.append(result)
            if session.isGroupDue { try commitGroup() }
        }
        do {
            for index in order {
                if Interruption.requested { break }
                var item = items[index]
                item.content = mailbox.reread(item)
                let size = (try? item.content.get().count) ?? 0
                try pipeline.submit(item, size: size, drain: drain)
            }
            try pipeline.finish(drain: drain)
            try flushBatch()
            try commitGroup()
        } catch {
            // Every line of a save that was made leaves before the error does.
            try? reorder.release(emit)
            throw error
        }
        if Interruption.requested { try reorder.release(emit) }
    }

    /// A message and the bytes it was parsed from (what a parked save keeps).
    typealias ParsedItem = (message: Message, bytes: [UInt8])

    static func parse(_ item: MailboxItem, source: String) -> Result<ParsedItem, MailboxItemError> {
        switch item.content {
        case .failure(let error): return .failure(error)
        case .success(let bytes):
            do {
                return .success((try MessageDecider.parse(bytes, name: item.position.isLine ? source : item.position.place(in: source),
                                                          firstLine: item.firstLine), bytes))
            } catch {
                return .failure(MailboxItemError(kind: "not_a_message", failure: error))
            }
        }
    }

    /// Parse, decide, render: the work of one job without --apply.
    static func decide(_ item: MailboxItem, decider: MessageDecider, source: String, applying: Bool, includeFolder: Bool, table: Bool) -> RenderedResult {
        switch parse(item, source: source) {
        case .failure(let error):
            return failed(item, error)
        case .success(let parsed):
            do {
                return render(item, try decider.inFolder(item.folder).run(parsed.message, bytes: parsed.bytes, name: item.position.place(in: source)), applying: applying,
                              includeFolder: includeFolder, table: table)
            } catch let failure as CommandFailure {
                return failed(item, MailboxItemError(kind: failure.status == .badRules ? "rule_budget" : "failed", failure: failure))
            } catch {
                // The CRM could not be read: not this message's fault, and every other message would fail alike.
                let failure = (error as? StoreError).map { CommandFailure($0) } ?? (error as? CRMError).map { CommandFailure($0) }
                    ?? CommandFailure(status: .couldNotRun, message: "\(item.position.place(in: source)): cannot read the CRM: \(error)")
                return failed(item, MailboxItemError(kind: "crm", failure: failure))
            }
        }
    }

    static func failed(_ item: MailboxItem, _ error: MailboxItemError, messageID: String? = nil) -> RenderedResult {
        let json = JSON.object([("position", item.position.json)] + (messageID.map { [("message_id", JSON.string($0))] } ?? [])
                               + [("error", .object([("kind", .string(error.kind)), ("message", .string(error.failure.message))]))])
        return RenderedResult(index: item.index, line: json.serialized(pretty: false), error: error, bytesRead: item.bytesRead)
    }

    /// `table`: the table's row is made too (`--format table`); JSON Lines need only the line.
    static func render(_ item: MailboxItem, _ outcome: MessageDecider.Outcome, applying: Bool, includeFolder: Bool, table: Bool) -> RenderedResult {
        var json = outcome.json(applying: applying)
        if case .object(let members) = json {
            json = .object([("position", item.position.json)] + (includeFolder ? [("folder", .string(item.folder))] : []) + members)
        }
        let decision = outcome.decision
        var result = RenderedResult(index: item.index, line: json.serialized(pretty: false), verdict: decision.verdict.rawValue,
                                    rule: decision.reasons.first?.rule, linkKind: decision.verdict == .save ? BatchSummary.linkKind(decision) : nil,
                                    saved: outcome.parked != nil ? .parked : outcome.saved.map { $0.created ? .created : .alreadySaved },
                                    error: nil, bytesRead: item.bytesRead)
        guard table else { return result }
        var row = DecisionText.row(name: item.position.short, decision)
        if applying { row.insert(outcome.savedCell, at: row.count - 1) }
        result.table = row
        return result
    }

    /// Copies standard input into a temporary file (removed by the caller).
    static func spool(standardInputTo folder: String) throws(CommandFailure) -> String? {
        var template = Array((folder + "/mailsave-stdin-XXXXXX").utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else {
            throw CommandFailure(status: .couldNotRun, message: "\(folder): cannot keep standard input: \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        let path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        // Input that is not an mbox is refused once its first MiB holds no separator, as when
        // it is read directly: `cat /dev/zero | mailsave batch --apply -` filled the disk.
        var preamble: MboxSplitter? = MboxSplitter(maxMessageBytes: ParseLimits().maxMessageBytes, keepBytes: false)
        var events: [MboxSplitter.Event] = []
        while true {
            if Interruption.requested {
                // Nothing was decided yet: the copy goes; the caller ends the run as the signal says.
                unlink(path)
                return nil
            }
            let got = chunk.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
            if got < 0 && errno == EINTR { continue }
            if got < 0 { throw CommandFailure(status: .couldNotRun, message: "-: cannot read: \(String(cString: strerror(errno)))") }
            if got == 0 { break }
            if var splitter = preamble {
                do throws(CommandFailure) {
                    _ = try MboxSource.feedPreamble(&splitter, chunk, count: got, name: "-", into: &events)
                } catch {
                    unlink(path)
                    throw error
                }
                events.removeAll(keepingCapacity: true)
                preamble = splitter.hasStartedMessage ? nil : splitter
            }
            var offset = 0
            while offset < got {
                let written = chunk.withUnsafeBytes { write(descriptor, $0.baseAddress! + offset, got - offset) }
                if written < 0 && errno == EINTR { continue }
                if written <= 0 {
                    let code = errno
                    unlink(path)
                    throw CommandFailure(status: ExitStatus.ofWriting(code),
                                         message: "\(path): cannot keep standard input: \(String(cString: strerror(code)))")
                }
                offset += written
            }
        }
        return path
    }
}

extension MailboxPosition {
    var isLine: Bool { if case .line = self { return true } else { return false } }
}

/// Writes result lines as JSON Lines or as table rows (streamed: fixed column widths).
final class BatchWriter {
    let output: LineOutput
    let format: BatchFormat
    let applying: Bool
    static let widths = [34, 12, 13, 34, 20]

    init(output: LineOutput, format: BatchFormat, applying: Bool) {
        self.output = output
        self.format = format
        self.applying = applying
    }

    func start() throws {
        guard format == .table else { return }
        var header = ["MESSAGE", "VERDICT", "SAVE AS", "LINKS", "RULE"]
        if applying { header.insert("SAVED", at: 4) }
        try output.line(row(header))
    }

    func write(_ result: RenderedResult) throws {
        switch format {
        case .jsonl:
            try output.line(result.line)
        case .table:
            if let table = result.table {
                try output.line(row(table))
            } else if let error = result.error {
                try output.line(visible("ERROR " + error.failure.message))
            }
        }
    }

    func finish() throws { try output.flush() }

    func row(_ cells: [String]) -> String {
        cells.enumerated().map { index, cell in
            let shown = visible(cell)
            return index == cells.count - 1 ? shown : shown.padding(max(Self.widths[min(index, Self.widths.count - 1)], shown.count + 1))
        }.joined()
    }
}
