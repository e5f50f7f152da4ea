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
    /// be read or no rule file is found at all: never a silent pass.
    public static func lint(paths: [String], strict: Bool = false) throws(PackReadError) -> LintResult {
        var result = LintResult(diagnostics: [], files: [:], packs: [])
        var total = 0
        for path in paths {
            let (orgPaths, userPaths) = try PackLoader.files(at: path)
            total += orgPaths.count + userPaths.count
            var loader = PackLoader()
            for file in orgPaths { loader.loadOrgFile(try PackLoader.read(file)) }
            for file in userPaths { loader.loadUserFile(try PackLoader.read(file)) }
            var compiler = PackCompiler(strict: strict)
            let pack = compiler.compile(loader.definition)
            let diagnostics = loader.diagnostics + compiler.diagnostics
            for file in loader.definition.files { result.files[file.path] = file }
            result.diagnostics.append(contentsOf: diagnostics)
            if !diagnostics.contains(where: { $0.severity == .error }) { result.packs.append(pack) }
        }
        if total == 0 {
            throw PackReadError(path: paths.joined(separator: " "), reason: "no rule files (*.yaml, *.yml) found")
        }
        result.diagnostics = sorted(result.diagnostics)
        return result
    }

    /// Loads one pack for running it: the pack, or the diagnostics that stop it.
    /// Loads one pack for running it: the pack, or the diagnostics that stop it. With a cache,
    /// a pack whose files are unchanged is read back compiled, neither parsed nor checked again.
    public static func load(_ path: String, cache: PackCache? = nil) throws(PackReadError) -> Result<RulePack, LintResult> {
        var sources: [SourceFile] = []
        if let cache {
            let (orgPaths, userPaths) = try PackLoader.files(at: path)
            for file in orgPaths + userPaths { sources.append(try PackLoader.read(file)) }
            if let pack = cache.load(sources) { return .success(pack) }
        }
        let result = try lint(paths: [path])
        if let pack = result.packs.first, result.errorCount == 0 {
            if let cache, !sources.isEmpty { cache.store(pack, for: sources) }
            return .success(pack)
        }
        return .failure(result)
    }

    static func sorted(_ diagnostics: [Diagnostic]) -> [Diagnostic] {
        diagnostics.enumerated().sorted { left, right in
            if left.element.location != right.element.location { return left.element.location < right.element.location }
            return left.offset < right.offset
        }.map(\.element)
    }
}
