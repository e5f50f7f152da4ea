import ArgumentParser
import Foundation
import MailEngine
import MailMessage
import MailRules

enum DiffFormat: String, ExpressibleByArgument, CaseIterable { case text, json, markdown }
enum DiffFailOn: String, ExpressibleByArgument, CaseIterable { case verdict, any }

struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Preview a rule change: decide a mailbox with two versions of a pack and list the messages whose decision changes.",
        discussion: """
        Each message is decided with the old and the new pack (the same CRM, the same context) and \
        listed when its verdict, save_as, links or category changes, with the deciding rule on each \
        side; then a summary of verdicts, from → to. Nothing is ever saved.

        --old-rev REV takes the old pack from a git revision: the same folder as --new (or --old \
        PATH, relative to the repository) as it is at REV, so CI compares a pull request's pack with \
        its base's. --format markdown is ready for a pull-request comment or $GITHUB_STEP_SUMMARY.

        Examples:
          mailsave diff --old rules-before --new rules --mailbox ann@contoso.com --crm examples/crm --eml examples/messages
          mailsave diff --old-rev origin/main --new rules --mailbox ann@contoso.com --crm examples/crm --eml examples/messages --format markdown
          mailsave diff --old-rev HEAD~1 --new rules --mailbox ann@contoso.com --mbox sample.mbox --fail-on verdict

        Exit codes: 0 done (changes or not), 1 with --fail-on: a change of that kind, 2 usage (an \
        unknown revision too), 3 unreadable mailbox, store or repository, 4 some messages could not \
        be read, 5 a pack has errors, 6 unreadable CRM export, 75 store locked, retry later.
        """
    )

    @Option(help: "The old rule pack folder (with --old-rev: its path in the repository, default --new's).")
    var old: String?

    @Option(name: .customLong("old-rev"), help: "Take the old pack from this git revision (a branch, tag or commit).")
    var oldRevision: String?

    @Option(help: "The new rule pack folder.")
    var new: String

    @Option(help: "The mailbox owner's address.", transform: { $0.trimmingSpaces() })
    var mailbox: String

    @Option(help: "The folder the messages are in (with --folder-from-maildir: the top folder's).")
    var folder: String = "Inbox"

    @Option(help: "The folder's role when the caller knows it: inbox, sent, salesforce or other (as process).")
    var folderRole: String?

    @Option(name: .customLong("category"), help: "A category or label on the messages; repeatable.")
    var categories: [String] = []

    @Option(help: "What asked for the decisions: auto, category, folder or button.")
    var trigger: String = "auto"

    @Option(help: "A folder of Salesforce data export CSVs: the CRM to search.")
    var crm: String?

    @Option(help: "The embedded CRM store to search (read only: diff never saves).")
    var store: String?

    @OptionGroup var source: MailboxOptions

    @Option(help: "text, json, or markdown (for a pull-request comment or $GITHUB_STEP_SUMMARY).")
    var format: DiffFormat = .text

    @Option(name: .customLong("fail-on"), help: "Exit 1 when a decision changes this way: verdict (a verdict changes) or any (anything listed).")
    var failOn: DiffFailOn?

    @Option(help: "Messages decided at once, by default as many as the machine has cores.")
    var jobs: Int = ProcessInfo.processInfo.activeProcessorCount

    @Flag(help: "No progress bar.")
    var quiet = false

    func validate() throws {
        if old == nil && oldRevision == nil { throw ValidationError("give the old pack: --old DIR or --old-rev REV") }
        if store != nil && crm != nil { throw ValidationError("give --store or --crm, not both") }
        try source.validate(stdin: false)
        try Jobs.validate(jobs)
    }

    /// `process`'s options for one pack: the pack, the context and the CRM are read the same way.
    func decisionOptions(rules: String) throws -> DecisionOptions {
        var arguments = ["--rules", rules, "--mailbox", mailbox, "--folder", folder, "--trigger", trigger]
        for category in categories { arguments += ["--category", category] }
        if let folderRole { arguments += ["--folder-role", folderRole] }
        if let crm { arguments += ["--crm", crm] }
        if let store { arguments += ["--store", store] }
        return try DecisionOptions.parse(arguments)
    }

    func run() throws {
        var temporary: String?
        defer { if let temporary { try? FileManager.default.removeItem(atPath: temporary); TemporaryPaths.forget(temporary) } }
        // Ctrl-C or SIGTERM ends the run by the signal, the pack copied from git removed first
        // (dying of the signal at once left it in the temporary folder).
        Interruption.install()
        let oldPath: String
        if let oldRevision {
            let checkout = try GitPack.checkout(revision: oldRevision, path: old ?? new)
            temporary = checkout.folder
            TemporaryPaths.remember(checkout.folder)
            oldPath = checkout.pack
            if Interruption.requested { Interruption.reraise() }
        } else {
            oldPath = old!
        }
        let oldOptions = try decisionOptions(rules: oldPath)
        let newOptions = try decisionOptions(rules: new)
        if let store, !FileManager.default.fileExists(atPath: store) {
            throw CommandFailure(status: .couldNotRun, message: "\(store): no such store")
        }
        let oldPack: RulePack
        do {
            oldPack = try oldOptions.loadPack(caching: oldRevision == nil)
        } catch let failure as CommandFailure where oldRevision != nil {
            throw CommandFailure(status: failure.status, message: failure.message + " (the pack at \(oldRevision!))")
        }
        let newPack = try newOptions.loadPack()
        let directory = try newOptions.loadDirectory(applying: false)
        // The mailbox must be the org's in the pack that will run (a change may add its domain).
        try newOptions.checkMailbox(pack: newPack, directory: directory)
        let context = newOptions.context
        let oldDecider = MessageDecider(pack: oldPack, directory: directory, context: context, writer: nil)
        let newDecider = MessageDecider(pack: newPack, directory: directory, context: context, writer: nil)
        let mailboxSource = try source.open(folder: folder, stdin: false)
        let name = mailboxSource.name
        let progress = ProgressBar(totalBytes: mailboxSource.totalBytes, quiet: quiet)
        var report = DiffReport()
        let pipeline = OrderedPipeline<MailboxItem, DiffResult>(jobs: jobs) { item in
            DiffResult.compare(item, old: oldDecider, new: newDecider, source: name)
        }
        defer { pipeline.close() }
        func collect(_ result: DiffResult) {
            if let error = result.error {
                progress.clear()
                Terminal.err("mailsave: " + error.failure.message)
            }
            report.add(result)
            progress.update(messages: report.messages, bytes: result.bytesRead)
        }
        while !Interruption.requested, let item = try mailboxSource.next() {
            pipeline.submit(item, size: (try? item.content.get().count) ?? 0, drain: collect)
        }
        pipeline.finish(drain: collect)
        progress.clear()
        if Interruption.requested {
            Terminal.err("mailsave: interrupted after \(report.messages) message\(report.messages == 1 ? "" : "s"); nothing compared is shown")
            Interruption.reraise()
        }
        // A preview of nothing is no preview: a CI job given the wrong folder must not pass.
        if report.messages == 0 {
            throw CommandFailure(status: .couldNotRun, message: source.nothingFound(name) + "; nothing to compare")
        }
        let oldLabel = oldRevision.map { "\(old ?? new) at \($0)" } ?? oldPath
        switch format {
        case .text: Terminal.out(report.text(old: oldLabel, new: new))
        case .json: Terminal.out(report.json(old: oldLabel, new: new).serialized(pretty: true))
        case .markdown: Terminal.out(report.markdown(old: oldLabel, new: new))
        }
        if let worst = report.worst { throw ExitCode(worst.rawValue) }
        switch failOn {
        case .verdict where report.verdictChanges > 0: throw ExitCode(ExitStatus.problems.rawValue)
        case .any where !report.changes.isEmpty: throw ExitCode(ExitStatus.problems.rawValue)
        default: break
        }
    }
}

/// One side of a message's comparison.
struct DiffSide: Sendable, Equatable {
    var verdict: String
    var saveAs: String?
    var who: [String]
    var what: String?
    var category: String?
    var rule: String

    init(_ decision: Decision) {
        verdict = decision.verdict.rawValue
        saveAs = decision.saveAs
        who = decision.who
        what = decision.what
        category = decision.category
        rule = decision.reasons.first?.rule ?? "(none)"
    }

    var links: String {
        let all = who + [what].compactMap { $0 }
        return all.isEmpty ? "-" : all.joined(separator: " ")
    }

    var json: JSON {
        .object([("verdict", .string(verdict)), ("save_as", .optional(saveAs)),
                 ("links", .object([("who", .strings(who)), ("what", .optional(what))])),
                 ("category", .optional(category)), ("rule", .string(rule))])
    }
}

/// A message decided with both packs.
struct DiffResult: Sendable {
    var index: Int
    var position: MailboxPosition
    var messageID: String?
    var subject: String?
    var old: DiffSide?
    var new: DiffSide?
    var error: MailboxItemError?
    var bytesRead: Int

    /// The fields that differ: verdict, save_as, links, category.
    var changed: [String] {
        guard let old, let new else { return [] }
        var fields: [String] = []
        if old.verdict != new.verdict { fields.append("verdict") }
        if old.saveAs != new.saveAs { fields.append("save_as") }
        if old.who != new.who || old.what != new.what { fields.append("links") }
        if old.category != new.category { fields.append("category") }
        return fields
    }

    static func compare(_ item: MailboxItem, old: MessageDecider, new: MessageDecider, source: String) -> DiffResult {
        var result = DiffResult(index: item.index, position: item.position, bytesRead: item.bytesRead)
        switch Batch.parse(item, source: source) {
        case .failure(let error):
            result.error = error
        case .success(let (message, _)):
            result.messageID = message.messageID
            result.subject = message.subject
            let place = item.position.place(in: source)
            do {
                // Decided only: diff never saves.
                result.old = DiffSide(try old.inFolder(item.folder).decide(message, name: place + " (old pack)").0)
                result.new = DiffSide(try new.inFolder(item.folder).decide(message, name: place + " (new pack)").0)
            } catch let failure as CommandFailure {
                result.error = MailboxItemError(kind: failure.status == .badRules ? "rule_budget" : "failed", failure: failure)
            } catch {
                result.error = MailboxItemError(kind: "crm", failure: CommandFailure(status: .couldNotRun, message: "\(place): cannot read the CRM: \(error)"))
            }
        }
        return result
    }
}

/// The changes and the from → to counts.
struct DiffReport {
    var messages = 0
    var changes: [DiffResult] = []
    var errors: [DiffResult] = []
    var transitions: [String: Int] = [:]
    var verdictChanges = 0
    var worst: ExitStatus?

    mutating func add(_ result: DiffResult) {
        messages += 1
        if let error = result.error {
            errors.append(result)
            let rank: [ExitStatus] = [.couldNotRun, .temporary, .badCRMData, .badRules, .badMessage]
            if worst == nil || (rank.firstIndex(of: error.failure.status) ?? 9) < (rank.firstIndex(of: worst!) ?? 9) { worst = error.failure.status }
            return
        }
        guard let old = result.old, let new = result.new else { return }
        transitions[old.verdict + "\u{0}" + new.verdict, default: 0] += 1
        if old.verdict != new.verdict { verdictChanges += 1 }
        if !result.changed.isEmpty { changes.append(result) }
    }

    /// from, to, count: changed verdicts first (most first), then the unchanged.
    var transitionRows: [(from: String, to: String, count: Int)] {
        transitions.map { key, count in
            let parts = key.split(separator: "\u{0}", omittingEmptySubsequences: false).map(String.init)
            return (parts[0], parts[1], count)
        }.sorted { a, b in
            let aChanged = a.from != a.to, bChanged = b.from != b.to
            if aChanged != bChanged { return aChanged }
            if a.count != b.count { return a.count > b.count }
            return (a.from, a.to) < (b.from, b.to)
        }
    }

    var headline: String {
        "\(changes.count) of \(messages) message\(messages == 1 ? "" : "s") change (\(verdictChanges) verdict\(verdictChanges == 1 ? "" : "s"))"
            + (errors.isEmpty ? "" : ", \(errors.count) could not be read")
    }

    static func arrow(_ old: String, _ new: String) -> String { old == new ? old : "\(old) → \(new)" }

    func text(old oldName: String, new newName: String) -> String {
        var lines = ["old  \(oldName)", "new  \(newName)", ""]
        for change in changes {
            guard let old = change.old, let new = change.new else { continue }
            lines.append("\(change.position.short)  \(change.messageID ?? "(no Message-ID)")  \(change.subject ?? "")")
            lines.append("  verdict   " + Self.arrow(old.verdict, new.verdict))
            lines.append("  rule      " + Self.arrow(old.rule, new.rule))
            if change.changed.contains("save_as") { lines.append("  save as   " + Self.arrow(old.saveAs ?? "-", new.saveAs ?? "-")) }
            if change.changed.contains("links") { lines.append("  links     " + Self.arrow(old.links, new.links)) }
            if change.changed.contains("category") { lines.append("  category  " + Self.arrow(old.category ?? "-", new.category ?? "-")) }
            lines.append("")
        }
        lines.append(headline)
        let rows = transitionRows
        if !rows.isEmpty {
            let width = max(4, rows.map(\.from.count).max() ?? 0) + 2
            lines.append("")
            lines.append("FROM".padding(width) + "TO".padding(width) + "MESSAGES")
            for row in rows { lines.append(row.from.padding(width) + row.to.padding(width) + String(row.count)) }
        }
        // Every line shown as text: a subject, a pack's name, a category a pull request's pack
        // sets or a record id from the CRM could hold a terminal escape, a line feed starting
        // a line of its own (`::error::` in a GitHub Actions log), a direction override.
        return lines.map(visible).joined(separator: "\n")
    }

    func json(old oldName: String, new newName: String) -> JSON {
        .object([
            ("old", .string(oldName)),
            ("new", .string(newName)),
            ("changes", .array(changes.map { change in
                .object([("position", change.position.json), ("message_id", .optional(change.messageID)), ("subject", .optional(change.subject)),
                         ("changed", .strings(change.changed)), ("old", change.old?.json ?? .null), ("new", change.new?.json ?? .null)])
            })),
            ("errors", .array(errors.map { result in
                .object([("position", result.position.json), ("kind", .string(result.error?.kind ?? "")),
                         ("message", .string(result.error?.failure.message ?? ""))])
            })),
            ("summary", .object([
                ("messages", .int(messages)), ("changed", .int(changes.count)), ("verdicts_changed", .int(verdictChanges)),
                ("errors", .int(errors.count)),
                ("verdicts", .array(transitionRows.map { .object([("from", .string($0.from)), ("to", .string($0.to)), ("count", .int($0.count))]) })),
            ])),
        ])
    }

    /// A table cell of text a sender may have written (a Subject): shown as text, never read
    /// as markup. Control characters shown; every ASCII punctuation mark Markdown or HTML
    /// reads (`<!--` hid the rest of the comment, `[x](url)` made a link, `|` ended the
    /// cell) escaped with a backslash; a zero-width space after `@`, `#`, `://` and `www`, so
    /// that no one is mentioned, no issue referenced and no address made a link.
    static func cell(_ text: String) -> String {
        var output = ""
        for character in visible(text) {
            switch character {
            case "\\", "`", "*", "_", "[", "]", "<", ">", "(", ")", "#", "!", "|", "~", "&":
                output.append("\\")
                output.append(character)
            default:
                output.append(character)
            }
            if character == "@" || character == "#" { output.append("\u{200B}") }
        }
        return output.replacing("://", with: ":\u{200B}//").replacing("www.", with: "www\u{200B}.")
    }

    /// The text of a code span (a file name, a pack's name): literal there, so only its
    /// backticks (which would end it) and pipes (which end a table cell) change.
    static func code(_ text: String) -> String {
        visible(text).replacing("`", with: "'").replacing("|", with: "\\|")
    }

    func markdown(old oldName: String, new newName: String) -> String {
        var lines = ["### mailsave diff: \(headline)", "", "Old pack `\(Self.code(oldName))`, new pack `\(Self.code(newName))`.", ""]
        if !changes.isEmpty {
            lines.append("| message | subject | verdict | rule | save as | links | category |")
            lines.append("| --- | --- | --- | --- | --- | --- | --- |")
            for change in changes {
                guard let old = change.old, let new = change.new else { continue }
                func shown(_ field: String, _ a: String, _ b: String) -> String {
                    change.changed.contains(field) ? "\(Self.cell(a)) → **\(Self.cell(b))**" : Self.cell(a)
                }
                let subject = change.subject.map { $0.count > 60 ? String($0.prefix(57)) + "..." : $0 } ?? ""
                lines.append("| `\(Self.code(change.position.short))` | \(Self.cell(subject)) | \(shown("verdict", old.verdict, new.verdict)) | "
                             + "\(old.rule == new.rule ? Self.cell(old.rule) : "\(Self.cell(old.rule)) → \(Self.cell(new.rule))") | "
                             + "\(shown("save_as", old.saveAs ?? "-", new.saveAs ?? "-")) | \(shown("links", old.links, new.links)) | "
                             + "\(shown("category", old.category ?? "-", new.category ?? "-")) |")
            }
            lines.append("")
        }
        lines.append("| from | to | messages |")
        lines.append("| --- | --- | ---: |")
        for row in transitionRows {
            lines.append(row.from == row.to ? "| \(row.from) | \(row.to) | \(row.count) |" : "| **\(row.from)** | **\(row.to)** | \(row.count) |")
        }
        if !errors.isEmpty {
            lines.append("")
            lines.append("Not read: " + errors.map { "`\(Self.code($0.position.short))` (\($0.error?.kind ?? ""))" }.joined(separator: ", "))
        }
        return lines.joined(separator: "\n")
    }
}

/// A rule pack as it is at a git revision, copied into a temporary folder.
enum GitPack {
    static func git(_ arguments: [String], in folder: String) throws -> (status: Int32, stdout: Data, stderr: String) {
        let process = Foundation.Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["git"] + arguments
        process.currentDirectoryURL = URL(fileURLWithPath: folder)
        // Paths are paths: a pack folder named `:rules` or `:(top)x` is not pathspec magic.
        var environment = ProcessInfo.processInfo.environment
        environment["GIT_LITERAL_PATHSPECS"] = "1"
        process.environment = environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch {
            throw CommandFailure(status: .couldNotRun, message: "cannot run git: \(error.localizedDescription)")
        }
        // Standard output is read while git runs (a blob can be larger than a pipe); these
        // commands write a line or two to standard error at most.
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errorData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        if process.terminationStatus == 127 {
            throw CommandFailure(status: .couldNotRun, message: "--old-rev needs git, which is not installed")
        }
        return (process.terminationStatus, outData, String(decoding: errorData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// The pack at `path` (relative to the current folder, inside a git work tree) as it is at
    /// `revision`: (the temporary folder to remove, the pack folder in it). The repository is
    /// the pack's, whatever the current folder: git runs in the nearest folder of `path` that
    /// exists (the pack may be gone from the work tree).
    static func checkout(revision: String, path: String) throws -> (folder: String, pack: String) {
        let here = FileManager.default.currentDirectoryPath
        var probe = URL(fileURLWithPath: path.hasPrefix("/") ? path : here + "/" + path).standardizedFileURL.path
        var isFolder: ObjCBool = false
        while !(FileManager.default.fileExists(atPath: probe, isDirectory: &isFolder) && isFolder.boolValue) && probe != "/" {
            probe = PathNames.folder(of: probe)
        }
        let top = try git(["rev-parse", "--show-toplevel"], in: probe)
        guard top.status == 0 else {
            throw CommandFailure(status: .couldNotRun, message: "\(path): not inside a git repository, so --old-rev \(revision) cannot be read (\(top.stderr))")
        }
        let root = String(decoding: top.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        // `:/text` (the newest commit whose message has it) names a commit already, and takes
        // no `^{commit}`: that would become part of the text searched for.
        let verify = try git(["rev-parse", "--verify", "--quiet", "--end-of-options", revision.hasPrefix(":/") ? revision : revision + "^{commit}"], in: root)
        guard verify.status == 0 else {
            throw CommandFailure(status: .usage, message: "--old-rev \(revision): no such revision in \(root)")
        }
        let commit = String(decoding: verify.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        // The pack's path in the repository.
        let absolute = path.hasPrefix("/") ? path : here + "/" + path
        let resolvedRoot = URL(fileURLWithPath: root).resolvingSymlinksInPath().path
        var components: [String] = []
        for part in URL(fileURLWithPath: absolute).standardizedFileURL.path.split(separator: "/") {
            components.append(String(part))
        }
        var standardized = "/" + components.joined(separator: "/")
        // Resolve the part that exists (the folder may be gone from the work tree).
        var existing = standardized
        var rest = ""
        while !FileManager.default.fileExists(atPath: existing) && existing != "/" {
            rest = "/" + PathNames.name(of: existing) + rest
            existing = PathNames.folder(of: existing)
        }
        standardized = URL(fileURLWithPath: existing).resolvingSymlinksInPath().path + rest
        guard standardized == resolvedRoot || standardized.hasPrefix(resolvedRoot + "/") else {
            throw CommandFailure(status: .couldNotRun, message: "\(path): not inside the git repository \(root)")
        }
        let relative = String(standardized.dropFirst(resolvedRoot.count)).trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        let listing = try git(["ls-tree", "-r", "-z", "-l", "--full-tree", commit, "--", relative.isEmpty ? "." : relative], in: root)
        guard listing.status == 0 else {
            throw CommandFailure(status: .couldNotRun, message: "\(relative): cannot list it at \(revision): \(listing.stderr)")
        }
        let entries = listing.stdout.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        guard !entries.isEmpty else {
            throw CommandFailure(status: .couldNotRun, message: "\(relative.isEmpty ? "." : relative): no such folder at revision \(revision)")
        }
        // The pack folder's files and links, read by one git process; files too large for
        // any rule file are left out.
        let files = try packFiles(entries, relative: relative, revision: revision)
        let blobs = try contents(of: Set(files.map(\.object)), in: root, revision: revision)
        let folder = NSTemporaryDirectory() + "/mailsave-diff-\(getpid())-\(UUID().uuidString.prefix(8))"
        let pack = folder + "/" + (relative.isEmpty ? "pack" : PathNames.name(of: relative))
        guard mkdir(folder, 0o700) == 0 else {
            throw CommandFailure(status: .couldNotRun, message: "\(folder): cannot write the pack at \(revision): \(String(cString: strerror(errno)))")
        }
        do {
            try Self.makeFolder(pack, for: relative, at: revision)
            for entry in files {
                let file = entry.path
                // Each entry is written where its path says and nowhere else: plain names only,
                // folders made one by one (never through a link: a tree may hold a link and a
                // folder of the same name), files and links created new, never followed.
                var target = pack
                for part in entry.parts.dropLast() {
                    target += "/" + part
                    try Self.makeFolder(target, for: file, at: revision)
                }
                target += "/" + entry.parts[entry.parts.count - 1]
                guard let blob = blobs[entry.object] else {
                    throw CommandFailure(status: .couldNotRun, message: "\(file): cannot read it at \(revision): git gave no object \(entry.object)")
                }
                if entry.isLink {
                    // A link stays a link: the pack loader refuses the ones that leave the pack.
                    guard symlink(String(decoding: blob, as: UTF8.self), target) == 0 else {
                        throw Self.writeFailure(file, at: revision)
                    }
                } else {
                    let descriptor = open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
                    guard descriptor >= 0 else { throw Self.writeFailure(file, at: revision) }
                    defer { close(descriptor) }
                    var offset = 0
                    while offset < blob.count {
                        let written = blob.withUnsafeBytes { write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
                        if written < 0 && errno == EINTR { continue }
                        guard written > 0 else { throw Self.writeFailure(file, at: revision) }
                        offset += written
                    }
                }
            }
        } catch let failure as CommandFailure {
            try? FileManager.default.removeItem(atPath: folder)
            throw failure
        } catch {
            try? FileManager.default.removeItem(atPath: folder)
            throw CommandFailure(status: .couldNotRun, message: "\(folder): cannot write the pack at \(revision): \(error.localizedDescription)")
        }
        return (folder, pack)
    }

    /// A pack file at a revision: its path in the repository, its parts under the pack, its
    /// blob, and whether it is a link.
    struct PackFile {
        var path: String
        var parts: [Substring]
        var object: String
        var isLink: Bool
    }

    /// The most a revision's pack may hold, all files together: what the diff reads whole.
    static let maxPackBytes = 256 << 20

    /// The entries of `ls-tree -r -z -l` ("<mode> <type> <object> <size>\t<path>") to copy:
    /// every file and link of the pack folder (a link may lead to another of its files, or be
    /// `users` itself), each a plain path. A rule file (`*.yaml`, `*.yml`, in the pack or in
    /// `users/`) over the loader's limit is refused, unread, as the loader refuses it; any other
    /// file over it is not copied (the loader never reads it; a 1 GB file was held whole);
    /// all together within `maxPackBytes`.
    static func packFiles(_ entries: [String], relative: String, revision: String) throws(CommandFailure) -> [PackFile] {
        var files: [PackFile] = []
        var total = 0
        for entry in entries {
            guard let tab = entry.firstIndex(of: "\t") else { continue }
            let fields = entry[..<tab].split(separator: " ", omittingEmptySubsequences: true)
            let file = String(entry[entry.index(after: tab)...])
            guard fields.count == 4, fields[1] == "blob" else { continue }
            // Every entry listed must be under the pack's folder; its path inside is what follows.
            guard relative.isEmpty || file.hasPrefix(relative + "/") else {
                throw CommandFailure(status: .couldNotRun, message: "\(file): listed for \(relative) at \(revision), but not inside it")
            }
            let inside = relative.isEmpty ? file : String(file.dropFirst(relative.count + 1))
            let parts = inside.split(separator: "/", omittingEmptySubsequences: false)
            guard !parts.isEmpty, parts.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }) else {
                throw CommandFailure(status: .couldNotRun, message: "\(file): not a plain path inside the pack at \(revision)")
            }
            let name = parts[parts.count - 1]
            let ruleFile = (name.hasSuffix(".yaml") || name.hasSuffix(".yml")) && (parts.count == 1 || (parts.count == 2 && parts[0] == "users"))
            let size = Int(fields[3]) ?? Int.max
            if size > PackLoader.maxFileBytes {
                guard ruleFile else { continue }
                throw CommandFailure(status: .couldNotRun, message: "\(file): \(fields[3]) bytes at \(revision), over the \(PackLoader.maxFileBytes) a rule file may have")
            }
            total += size
            if total > maxPackBytes {
                throw CommandFailure(status: .couldNotRun, message: "\(relative.isEmpty ? "." : relative): its files at \(revision) hold over \(maxPackBytes) bytes; not read")
            }
            files.append(PackFile(path: file, parts: parts, object: String(fields[2]), isLink: fields[0] == "120000"))
        }
        return files
    }

    /// The blobs `objects`, read by one `git cat-file --batch` (one process, not one a file:
    /// 5,000 files took 259 s that way). The object names are written from another thread:
    /// git answers while it reads, and a list longer than a pipe holds would wait on it.
    static func contents(of objects: Set<String>, in root: String, revision: String) throws -> [String: Data] {
        guard !objects.isEmpty else { return [:] }
        let process = Foundation.Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["git", "cat-file", "--batch"]
        process.currentDirectoryURL = URL(fileURLWithPath: root)
        let input = Pipe(), out = Pipe(), err = Pipe()
        process.standardInput = input
        process.standardOutput = out
        process.standardError = err
        do { try process.run() } catch {
            throw CommandFailure(status: .couldNotRun, message: "cannot run git: \(error.localizedDescription)")
        }
        let names = Data(objects.sorted().map { $0 + "\n" }.joined().utf8)
        let writer = Thread {
            try? input.fileHandleForWriting.write(contentsOf: names)
            try? input.fileHandleForWriting.close()
        }
        writer.start()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw CommandFailure(status: .couldNotRun, message: "cannot read the pack at \(revision): git cat-file: \(errors.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        // "<object> blob <size>\n<content>\n" for each.
        var blobs: [String: Data] = [:]
        var index = data.startIndex
        while index < data.endIndex, let newline = data[index...].firstIndex(of: 0x0A) {
            let header = String(decoding: data[index..<newline], as: UTF8.self).split(separator: " ")
            guard header.count == 3, header[1] == "blob", let size = Int(header[2]), size >= 0, data.distance(from: newline, to: data.endIndex) >= size + 2 else {
                throw CommandFailure(status: .couldNotRun, message: "cannot read the pack at \(revision): git cat-file said '\(header.joined(separator: " "))'")
            }
            let start = data.index(after: newline)
            let end = data.index(start, offsetBy: size)
            blobs[String(header[0])] = Data(data[start..<end])
            index = data.index(after: end)
        }
        return blobs
    }

    /// Makes a folder of a revision's pack; one that exists must be a real folder (an entry
    /// made it), never a link nor a file of the same name.
    static func makeFolder(_ path: String, for file: String, at revision: String) throws(CommandFailure) {
        if mkdir(path, 0o700) == 0 { return }
        let code = errno
        var info = stat()
        guard code == EEXIST, lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            throw CommandFailure(status: .couldNotRun, message: code == EEXIST
                ? "\(file): the revision \(revision) names a link or a file and a folder alike; refusing to write through it"
                : "\(file): cannot write it at \(revision): \(String(cString: strerror(code)))")
        }
    }

    static func writeFailure(_ file: String, at revision: String) -> CommandFailure {
        let code = errno
        return CommandFailure(status: .couldNotRun, message: code == EEXIST
            ? "\(file): the revision \(revision) has two entries of this name; refusing to overwrite one with the other"
            : "\(file): cannot write it at \(revision): \(String(cString: strerror(code)))")
    }
}
