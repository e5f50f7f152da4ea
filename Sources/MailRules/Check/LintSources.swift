extension Linter {
    /// Lints rule files already in memory (an editor's unsaved buffer, a fuzzer's input):
    /// the same checks as `lint(paths:)`, without touching the file system.
    public static func lint(org: [SourceFile], users: [SourceFile] = [], strict: Bool = false) -> LintResult {
        var loader = PackLoader()
        for file in org { loader.loadOrgFile(file) }
        for file in users { loader.loadUserFile(file) }
        var compiler = PackCompiler(strict: strict)
        let pack = compiler.compile(loader.definition)
        let diagnostics = sorted(loader.diagnostics + compiler.diagnostics)
        var files: [String: SourceFile] = [:]
        for file in loader.definition.files { files[file.path] = file }
        return LintResult(diagnostics: diagnostics, files: files,
                          packs: diagnostics.contains { $0.severity == .error } ? [] : [pack])
    }
}
