import MailMessage
#if canImport(Glibc)
import Glibc
#endif

/// The outcome of linting one or more packs.
public struct LintResult: Error, Sendable {
    /// Sorted by file, line and column.
    public var diagnostics: [Diagnostic]
    /// Every file read, by path, to quote source lines.
    public var files: [String: SourceFile]
    /// The compiled packs, one per path, when they had no errors.
    public var packs: [RulePack]

    public var errorCount: Int { diagnostics.filter { $0.severity == .error }.count }
    public var warningCount: Int { diagnostics.filter { $0.severity == .warning }.count }
}

/// Loads, checks and compiles packs: the `lint` command, and the way every other command
/// gets a `RulePack`.
public enum Linter {
    /// Lints each path as a pack (a folder) or a single rule file. Throws when a path cannot
    /// be read or no rule file is found at all: never a silent pass. Inside a pack folder only
    /// regular files whose real path is inside the folder are read.
    public static func lint(paths: [String], strict: Bool = false) throws(PackReadError) -> LintResult {
        var result = LintResult(diagnostics: [], files: [:], packs: [])
        var total = 0
        var unread: [String] = []
        var seen = Set<String>()
        for given in paths {
            // A path given twice (`org.yaml ./org.yaml`) is linted once: its problems twice
            // read as twice as many.
            if let canonical = PackLoader.realPath(given), !seen.insert(canonical).inserted { continue }
            // A single rule file is checked as part of the pack in its folder (a user file:
            // the pack above users/), and only its own problems are shown: alone, an org file
            // lacked the lists of lists.yaml and a user file the org's settings, and lint gave
            // false errors for the one file an administrator had edited.
            var path = given
            var only: String?
            if PackLoader.packRoot(of: given) == nil, let canonical = PackLoader.realPath(given) {
                var folder = PathNames.folder(of: given)
                if folder.isEmpty { folder = "." }
                // A link to a rule file: the pack is the file's own, where the link points.
                var info = stat()
                if lstat(given, &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK { folder = PathNames.folder(of: canonical) }
                // users/ as the file really is there (`lint ann@contoso.com.yaml` run in users/).
                if PathNames.name(of: PathNames.folder(of: canonical)) == "users" { folder += "/.." }
                if PackLoader.packRoot(of: folder) != nil {
                    path = folder
                    only = canonical
                }
            }
            let (orgPaths, userPaths) = try PackLoader.files(at: path)
            let root = PackLoader.packRoot(of: path)
            total += orgPaths.count + userPaths.count
            // A file whose bytes are not UTF-8 is a problem among the others (every problem in
            // one pass); a file that cannot be read at all stops the run (exit 3).
            var notUTF8: [Diagnostic] = []
            func read(_ file: String) throws(PackReadError) -> SourceFile? {
                do {
                    return try PackLoader.read(file, inside: root)
                } catch let error where error.notUTF8At != nil {
                    notUTF8.append(Diagnostic(.yamlSyntax, at: error.notUTF8At ?? SourceLocation(path: file, line: 1, column: 1), error.reason))
                    return nil
                }
            }
            var org: [SourceFile] = []
            for file in orgPaths { if let text = try read(file) { org.append(text) } }
            var users: [SourceFile] = []
            for file in userPaths { if let text = try read(file) { users.append(text) } }
            let ignored = PackLoader.ignoredFiles(at: path)
            unread += ignored
            let (pack, checked, files) = check(org: org, users: users, strict: strict)
            var diagnostics = checked + notUTF8
            for file in ignored {
                let name = file.split(separator: "/").last.map(String.init) ?? file
                diagnostics.append(Diagnostic(.ignoredFile, at: SourceLocation(path: file, line: 1, column: 1),
                                              "'\(name)' is not read: rule files end in .yaml or .yml, in lower case; rename it"))
            }
            var shown = files
            if let only {
                // The file's own problems, and those it causes elsewhere (a rule id it takes
                // from another file is reported at the other one, naming this one).
                var canonical: [String: String?] = [:]
                func isOnly(_ file: String) -> Bool {
                    if canonical[file] == nil { canonical[file] = .some(PackLoader.realPath(file)) }
                    return canonical[file] == .some(only)
                }
                diagnostics = diagnostics.filter { isOnly($0.location.path) || $0.related.map { isOnly($0.location.path) } == true }
                // Named as it was given (`org.yaml`, not `./org.yaml` or `users/../users/...`).
                diagnostics = diagnostics.map { diagnostic in
                    var diagnostic = diagnostic
                    if isOnly(diagnostic.location.path) { diagnostic.location.path = given }
                    if let related = diagnostic.related, isOnly(related.location.path) {
                        diagnostic.related = (SourceLocation(path: given, line: related.location.line, column: related.location.column), related.message)
                    }
                    return diagnostic
                }
                let quoted = Set(diagnostics.map(\.location.path))
                shown = files.filter { !isOnly($0.path) && quoted.contains($0.path) }
                if let mine = files.first(where: { isOnly($0.path) }) { result.files[given] = mine }
                total += 1 - (orgPaths.count + userPaths.count)
            }
            for file in shown { result.files[file.path] = file }
            result.diagnostics.append(contentsOf: diagnostics)
            if !diagnostics.contains(where: { $0.severity == .error && $0.check != LintCheck.ignoredFile.id }) { result.packs.append(pack) }
        }
        if total == 0 {
            let hint = unread.isEmpty ? "" : "; not read, for their upper-case extension: " + unread.joined(separator: ", ")
            throw PackReadError(path: paths.joined(separator: " "), reason: "no rule files (*.yaml, *.yml) found" + hint)
        }
        result.diagnostics = sorted(result.diagnostics)
        return result
    }

    /// Loads, checks and compiles files already read: the pack, the diagnostics, the files.
    static func check(org: [SourceFile], users: [SourceFile], strict: Bool = false) -> (RulePack, [Diagnostic], [SourceFile]) {
        var loader = PackLoader()
        for file in org { loader.loadOrgFile(file) }
        for file in users { loader.loadUserFile(file) }
        var compiler = PackCompiler(strict: strict)
        let pack = compiler.compile(loader.definition)
        return (pack, loader.diagnostics + compiler.diagnostics, loader.definition.files)
    }

    /// Loads one pack for running it: the pack, or the diagnostics that stop it. Each file is
    /// read once; the cache key is computed from, and the pack compiled from, those same bytes.
    /// With a cache, a pack whose files are unchanged is read back compiled: the org layer
    /// under the org files, each set of user layers under its user files.
    ///
    /// With `mailbox`, only the user files named after it are read (`users/ann@contoso.com.yaml`,
    /// in any case): a user file changes no other mailbox's decision, so a pack of a thousand
    /// users costs a message what a pack of one does. Without it, every user file is read.
    ///
    /// Errors in a user file (`users/X.yaml`, including one that cannot be read) stop only
    /// mailbox X: the pack loads with that mailbox in `brokenUsers` (and the user files read
    /// with it are not cached, the org layer is), and every other mailbox is decided
    /// normally. Errors anywhere else stop the pack: then, with `mailbox`, the diagnostics
    /// are those of the org files and that mailbox's files only.
    public static func load(_ path: String, cache: (any CompiledPackCache)? = nil,
                            mailbox: String? = nil) throws(PackReadError) -> Result<RulePack, LintResult> {
        let (orgPaths, userPaths) = try PackLoader.files(at: path, mailbox: mailbox)
        // Other mailboxes' files count (a pack of user files alone decides with the defaults).
        if orgPaths.isEmpty && userPaths.isEmpty {
            let others = mailbox == nil ? [] : try PackLoader.files(at: path).users
            if others.isEmpty { throw PackReadError(path: path, reason: "no rule files (*.yaml, *.yml) found") }
        }
        // User layers are cached for one mailbox's files only: a key of every user file's text
        // would make a new entry at each change of any of them.
        let userCache = mailbox == nil ? nil : cache
        let root = PackLoader.packRoot(of: path)
        var org: [SourceFile] = []
        for file in orgPaths { org.append(try PackLoader.read(file, inside: root)) }
        var users: [SourceFile] = []
        var broken: [String: [String]] = [:]
        for file in userPaths {
            do {
                users.append(try PackLoader.read(file, inside: root))
            } catch {
                if let mailbox = PackLoader.mailbox(ofUserFile: file) { broken[mailbox, default: []].append(error.description) }
            }
        }
        if let cache, let orgLayer = cache.load(org) {
            return .success(layering(users, broken: broken, onto: orgLayer, org: org, cache: userCache))
        }
        let (pack, diagnostics, files) = check(org: org, users: users)
        let userFiles = Set(users.map(\.path))
        if diagnostics.contains(where: { $0.severity == .error && !userFiles.contains($0.location.path) }) {
            return .failure(LintResult(diagnostics: sorted(diagnostics), files: Dictionary(files.map { ($0.path, $0) }) { first, _ in first },
                                       packs: []))
        }
        let orgLayer = pack.orgLayer
        cache?.store(orgLayer, for: org)
        return .success(keeping(pack, diagnostics: diagnostics, broken: broken, users: users, org: org, orgLayer: orgLayer, cache: userCache))
    }

    /// `users` over an org layer read back from the cache: their layers from the cache too,
    /// or compiled against it.
    static func layering(_ users: [SourceFile], broken: [String: [String]], onto orgLayer: RulePack, org: [SourceFile],
                         cache: (any CompiledPackCache)?) -> RulePack {
        if users.isEmpty { return broken.isEmpty ? orgLayer : orgLayer.quarantining(broken) }
        if broken.isEmpty, let layers = cache?.loadUsers(users, org: org, pack: orgLayer) { return orgLayer.withUsers(layers) }
        let (pack, diagnostics) = orgLayer.compilingUsers(users)
        return keeping(pack, diagnostics: diagnostics, broken: broken, users: users, org: org, orgLayer: orgLayer, cache: cache)
    }

    /// The pack with the mailboxes whose user file has errors quarantined; its user layers
    /// cached when none has.
    static func keeping(_ pack: RulePack, diagnostics: [Diagnostic], broken: [String: [String]], users: [SourceFile],
                        org: [SourceFile], orgLayer: RulePack, cache: (any CompiledPackCache)?) -> RulePack {
        var broken = broken
        var userErrors = false
        for diagnostic in diagnostics where diagnostic.severity == .error {
            userErrors = true
            // A user file not named after a mailbox applies to none: lint reports it, process ignores it.
            if let mailbox = PackLoader.mailbox(ofUserFile: diagnostic.location.path) {
                broken[mailbox, default: []].append("\(diagnostic.location.description): \(diagnostic.message) [\(diagnostic.check)]")
            }
        }
        if broken.isEmpty && !userErrors {
            if !users.isEmpty { cache?.storeUsers(pack.users, for: users, org: org, pack: orgLayer) }
            return pack
        }
        return pack.quarantining(broken)
    }

    static func sorted(_ diagnostics: [Diagnostic]) -> [Diagnostic] {
        diagnostics.enumerated().sorted { left, right in
            if left.element.location != right.element.location { return left.element.location < right.element.location }
            return left.offset < right.offset
        }.map(\.element)
    }
}
