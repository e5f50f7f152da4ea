import ArgumentParser
import MailMessage
import MailRules

/// Prints the reference tables generated from the declarations (the README embeds them).
struct Reference: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reference",
        abstract: "Print the reference of the rule language: facts, settings or lint checks, as Markdown.",
        discussion: """
        Examples:
          mailsave reference facts      every fact a rule can read, with its type
          mailsave reference settings   every org setting, its default, and whether users may choose it
          mailsave reference checks     every lint check
        """
    )

    enum Topic: String, ExpressibleByArgument, CaseIterable { case facts, settings, checks }

    @Argument(help: "facts, settings or checks.")
    var topic: Topic

    func run() {
        switch topic {
        case .facts: Terminal.out(Documentation.factsTable())
        case .settings: Terminal.out(Documentation.settingsTable())
        case .checks: Terminal.out(Documentation.checksTable())
        }
    }
}

enum LintFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json, sarif, github
}

struct Lint: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lint",
        abstract: "Check rule packs: YAML, the rule file format, expression types, and the pack-level checks.",
        discussion: """
        Each PATH is a rule pack folder (its *.yaml files, and users/*.yaml as the per-user \
        layer) or a single rule file, checked as part of the pack in its folder (a user \
        file: the pack above users/) with only its own problems shown. Every problem is reported in one pass, sorted by \
        position, as file:line:col: severity: message [check], with the source line and a \
        caret under the token.

        Formats: text (people), json (machines), sarif (SARIF 2.1.0, for GitHub code \
        scanning), github (::error annotations in a GitHub Actions log).

        Exit codes: 0 clean, 1 problems found, 2 usage error, 3 could not run (unreadable \
        path, or no rule file found: never a silent pass). Warnings alone exit 1 too.

        Examples:
          mailsave lint rules/
          mailsave lint --strict --format sarif rules/ > mailsave.sarif
          mailsave lint --format github rules/
          mailsave lint rules/users/ann@contoso.com.yaml   one file, checked within its pack
        """
    )

    @Option(help: "Output format: text, json, sarif or github.")
    var format: LintFormat = .text

    @Flag(help: "Also report unused lists and settings.")
    var strict = false

    @Argument(help: "Rule pack folders or rule files.")
    var paths: [String]

    func validate() throws {
        if paths.isEmpty { throw ValidationError("give at least one rule pack folder or rule file") }
    }

    func run() throws {
        let result: LintResult
        do {
            result = try Linter.lint(paths: paths, strict: strict)
        } catch {
            // A machine reading the output learns of the failure there too (a CI job uploads
            // the SARIF file whatever the exit code): never an empty, clean-looking report.
            switch format {
            case .text: break
            case .json: Terminal.out(JSON.object([("diagnostics", .array([])), ("error", .string(error.description))]).serialized(pretty: true))
            case .sarif: Terminal.out(LintReport.sarif([], failure: error.description).serialized(pretty: true))
            case .github: Terminal.out("::error title=mailsave lint::" + LintReport.githubData(error.description))
            }
            throw CommandFailure(status: .couldNotRun, message: error.description)
        }
        let output: String
        switch format {
        case .text: output = LintReport.text(result)
        case .json: output = LintReport.json(result).serialized(pretty: true)
        case .sarif: output = LintReport.sarif(result.diagnostics).serialized(pretty: true)
        case .github: output = LintReport.github(result)
        }
        if !output.isEmpty { Terminal.out(output) }
        if !result.diagnostics.isEmpty { throw ExitCode(ExitStatus.problems.rawValue) }
    }
}

/// Renders lint results; one function per format.
enum LintReport {
    static func text(_ result: LintResult) -> String {
        var lines: [String] = []
        var sourceLines = SourceLines()
        for diagnostic in result.diagnostics {
            lines.append("\(diagnostic.location.description): \(diagnostic.severity.rawValue): \(diagnostic.message) [\(diagnostic.check)]")
            lines.append(contentsOf: excerpt(diagnostic.location, length: diagnostic.length, files: result.files, lines: &sourceLines))
            if let related = diagnostic.related {
                lines.append("\(related.location.description): note: \(related.message)")
                lines.append(contentsOf: excerpt(related.location, length: 1, files: result.files, lines: &sourceLines))
            }
        }
        let files = result.files.count
        if result.diagnostics.isEmpty {
            lines.append("no problems in \(files) file\(files == 1 ? "" : "s")")
        } else {
            let errors = result.errorCount, warnings = result.warningCount
            lines.append("\(errors) error\(errors == 1 ? "" : "s"), \(warnings) warning\(warnings == 1 ? "" : "s") in \(files) file\(files == 1 ? "" : "s")")
        }
        return lines.map(visible).joined(separator: "\n")
    }

    /// The source line with its number, and a caret under the token.
    /// The scalars of each source line a report shows, made once per line: ten thousand
    /// diagnostics on one long line (a flow list of bad entries) made them ten thousand times,
    /// and lint's time grew with the square of the line (10,000 entries: 9 s).
    struct SourceLines {
        private var lines: [String: [Int: [Unicode.Scalar]]] = [:]

        mutating func scalars(of file: SourceFile, path: String, line: Int) -> [Unicode.Scalar] {
            if let known = lines[path]?[line] { return known }
            let scalars = Array(file.line(line).replacing("\t", with: " ").unicodeScalars)
            lines[path, default: [:]][line] = scalars
            return scalars
        }
    }

    static func excerpt(_ location: SourceLocation, length: Int, files: [String: SourceFile], lines: inout SourceLines) -> [String] {
        guard let file = files[location.path], location.line <= file.lines.count else { return [] }
        let number = String(location.line)
        let gutter = String(repeating: " ", count: number.count)
        var scalars = lines.scalars(of: file, path: location.path, line: location.line)
        var column = location.column
        // A long line (a 100,000-entry flow list, a nesting bomb) is shown around the place
        // only: 160 characters, the cut ends marked.
        let window = 160
        if scalars.count > window {
            let start = max(0, min(column - 1 - window / 3, scalars.count - window))
            let end = min(scalars.count, start + window)
            scalars = (start > 0 ? ["…"] : []) + Array(scalars[start..<end]) + (end < scalars.count ? ["…"] : [])
            column -= start - (start > 0 ? 1 : 0)
        }
        var source = ""
        source.unicodeScalars.append(contentsOf: scalars)
        let available = max(1, scalars.count - column + 1)
        let width = max(1, min(length, available))
        let marker = String(repeating: " ", count: max(0, column - 1)) + "^" + String(repeating: "~", count: width - 1)
        return [" \(number) | \(source)", " \(gutter) | \(marker)"]
    }

    static func json(_ result: LintResult) -> JSON {
        .object([
            ("diagnostics", .array(result.diagnostics.map { diagnostic in
                var members: [(String, JSON)] = [
                    ("file", .string(diagnostic.location.path)), ("line", .int(diagnostic.location.line)),
                    ("column", .int(diagnostic.location.column)), ("end_column", .int(diagnostic.location.column + diagnostic.length)),
                    ("severity", .string(diagnostic.severity.rawValue)), ("check", .string(diagnostic.check)),
                    ("message", .string(diagnostic.message)),
                ]
                if let related = diagnostic.related {
                    members.append(("related", .object([
                        ("file", .string(related.location.path)), ("line", .int(related.location.line)),
                        ("column", .int(related.location.column)), ("message", .string(related.message)),
                    ])))
                }
                return .object(members)
            })),
            ("files", .int(result.files.count)),
            ("errors", .int(result.errorCount)),
            ("warnings", .int(result.warningCount)),
        ])
    }

    static func sarifLevel(_ severity: Severity) -> String {
        switch severity {
        case .error: return "error"
        case .warning: return "warning"
        case .note: return "note"
        }
    }

    /// A file as SARIF names it: a URI reference, so a path is percent-encoded (a `#` began a
    /// fragment, a `%` an escape, a space is not allowed); a relative path is relative to the
    /// checkout (`%SRCROOT%`), an absolute one is a `file:` URI with no base.
    static func sarifArtifact(_ path: String) -> JSON {
        var encoded = ""
        for byte in path.utf8 {
            switch byte {
            // RFC 3986's unreserved characters and the path separator stay as they are.
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "/"):
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                encoded += "%" + Hexadecimal.uppercase([byte])
            }
        }
        if path.hasPrefix("/") { return .object([("uri", .string("file://" + encoded))]) }
        return .object([("uri", .string(encoded)), ("uriBaseId", .string("%SRCROOT%"))])
    }

    static func sarifLocation(_ location: SourceLocation, length: Int, message: String? = nil) -> JSON {
        var members: [(String, JSON)] = [
            ("physicalLocation", .object([
                ("artifactLocation", sarifArtifact(location.path)),
                ("region", .object([("startLine", .int(location.line)), ("startColumn", .int(location.column)),
                                    ("endColumn", .int(location.column + length))])),
            ])),
        ]
        if let message { members.append(("message", .object([("text", .string(message))]))) }
        return .object(members)
    }

    /// SARIF 2.1.0 with one rule per check, as GitHub code scanning reads it.
    /// With `failure`, the run is marked unsuccessful (`invocations`) with the reason.
    static func sarif(_ diagnostics: [Diagnostic], failure: String? = nil) -> JSON {
        let checks = LintCheck.all
        let rules: [JSON] = checks.map { check in
            .object([
                ("id", .string(check.id)),
                ("name", .string(check.id.split(separator: "-").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined())),
                ("shortDescription", .object([("text", .string(check.summary))])),
                ("fullDescription", .object([("text", .string(check.summary))])),
                ("defaultConfiguration", .object([("level", .string(sarifLevel(check.severity)))])),
                ("properties", .object([("tags", .strings(["mailsave", check.strictOnly ? "strict" : "default"]))])),
            ])
        }
        let results: [JSON] = diagnostics.map { diagnostic in
            var members: [(String, JSON)] = [
                ("ruleId", .string(diagnostic.check)),
                ("ruleIndex", .int(checks.firstIndex { $0.id == diagnostic.check } ?? 0)),
                ("level", .string(sarifLevel(diagnostic.severity))),
                ("message", .object([("text", .string(diagnostic.message))])),
                ("locations", .array([sarifLocation(diagnostic.location, length: diagnostic.length)])),
            ]
            if let related = diagnostic.related {
                members.append(("relatedLocations", .array([
                    { () -> JSON in
                        if case .object(var fields) = sarifLocation(related.location, length: 1, message: related.message) {
                            fields.insert(("id", .int(1)), at: 0)
                            return .object(fields)
                        }
                        return .null
                    }(),
                ])))
            }
            return .object(members)
        }
        return .object([
            ("$schema", .string("https://json.schemastore.org/sarif-2.1.0.json")),
            ("version", .string("2.1.0")),
            ("runs", .array([.object([
                ("tool", .object([("driver", .object([
                    ("name", .string("mailsave")),
                    ("informationUri", .string("https://github.com/mailsave/mailsave")),
                    ("semanticVersion", .string(Mailsave.version)),
                    ("rules", .array(rules)),
                ]))])),
                ("results", .array(results)),
                ("invocations", .array([.object([("executionSuccessful", .bool(failure == nil))]
                    + (failure.map { [("toolExecutionNotifications", JSON.array([.object([("level", .string("error")),
                                                                                        ("message", .object([("text", .string($0))]))])]))] } ?? []))])),
            ])])),
        ])
    }

    /// A workflow command's data, escaped as GitHub reads it.
    /// Control characters (an escape sequence in a file name or a rule id) shown escaped,
    /// as in the text format; then GitHub's own escapes.
    static func githubData(_ text: String) -> String {
        visibleLines(text).replacing("%", with: "%25").replacing("\r", with: "%0D").replacing("\n", with: "%0A")
    }

    /// GitHub Actions workflow commands (`::error file=…,line=…,col=…::message`).
    static func github(_ result: LintResult) -> String {
        func escapeProperty(_ text: String) -> String { githubData(text).replacing(":", with: "%3A").replacing(",", with: "%2C") }
        return result.diagnostics.map { diagnostic in
            let command = diagnostic.severity == .error ? "error" : diagnostic.severity == .warning ? "warning" : "notice"
            let location = diagnostic.location
            return "::\(command) file=\(escapeProperty(location.path)),line=\(location.line),col=\(location.column),"
                + "endColumn=\(location.column + diagnostic.length),title=\(escapeProperty("mailsave " + diagnostic.check))::"
                + githubData(diagnostic.message)
        }.joined(separator: "\n")
    }
}
