import Foundation
import MailMessage
import MailRules

/// One rule test: a message, its context, the CRM records it needs, and the expected parts
/// of the decision. Written in YAML beside the pack (`<pack>/tests/*.yaml`), like `opa test`.
public struct RuleTestCase: Sendable {
    public var name: String
    public var location: SourceLocation
    public var message: Message?
    public var context: ProcessContext
    public var settings: [(key: YScalar, value: YNode)]
    public var records: [CRMRecord]
    public var crmFolder: String?
    public var expect: [(key: YScalar, value: YNode)]
}

/// The result of one test: its failures as `expected … got …` lines.
public struct RuleTestResult: Sendable {
    public var test: RuleTestCase
    public var failures: [String]
    /// Ids of the rules that applied (for coverage).
    public var applied: [String]
    public var passed: Bool { failures.isEmpty }
}

/// Loads and runs rule tests.
///
/// The files a test names (its message, its CRM folder) are confined to the project: paths
/// are relative to the test file, absolute paths are refused, and a path whose real location
/// (`..` and symbolic links resolved) is outside the project root is refused with a
/// diagnostic at the test's line. The root is the folder that contains the pack (the shipped
/// tests in `rules/tests/` read `../../examples/...` in the repository), given to `init` or,
/// when not given, the folder three levels above the test file (`<root>/<pack>/tests/x.yaml`).
public struct RuleTestRunner {
    public let pack: RulePack
    public let root: String?
    public private(set) var diagnostics: [Diagnostic] = []
    /// Tests with a problem in their own definition (a typo in `expect`, a message that cannot
    /// be read): not run, each one failed test, whatever the number of its problems.
    public private(set) var brokenTests: [(location: SourceLocation, name: String)] = []
    /// Problems of a test file outside its tests (its shape, `crm`, an unknown field): each
    /// one failure.
    public var fileProblemCount: Int { diagnostics.count - brokenTestProblems }
    /// How many of `diagnostics` belong to `brokenTests`.
    private var brokenTestProblems = 0

    public init(pack: RulePack, root: String? = nil) {
        self.pack = pack
        self.root = root
    }

    /// The project root of a rule test file when none was given: `<root>/<pack>/tests/file.yaml`.
    public static func defaultRoot(forTestFile path: String) -> String {
        var folder = path
        for _ in 0..<3 { folder = PathNames.folder(of: folder) }
        return folder.isEmpty ? "." : folder
    }

    /// The real path of `written` (relative to `directory`), or nil after a diagnostic saying why
    /// it is refused: absolute, missing, or outside the project root.
    mutating func confined(_ scalar: YScalar, directory: String, root: String, what: String) -> String? {
        let written = scalar.value
        if written.hasPrefix("/") {
            problem(scalar.location, length: written.count,
                    "\(what) '\(written)' is an absolute path; give a path relative to the test file, inside the project (\(root))")
            return nil
        }
        let path = directory.isEmpty ? written : directory + "/" + written
        guard let real = PackLoader.realPath(path) else {
            problem(scalar.location, length: written.count, "cannot read \(what) '\(written)': \(String(cString: strerror(errno)))")
            return nil
        }
        guard let realRoot = PackLoader.realPath(root), PackLoader.isInside(real, root: realRoot) else {
            problem(scalar.location, length: written.count,
                    "\(what) '\(written)' is outside the project (\(root)); rule tests read only files inside it")
            return nil
        }
        return real
    }

    static let testKeys = ["name", "message", "context", "settings", "records", "crm", "expect"]
    static let contextKeys = ["mailbox", "folder", "folder_role", "trigger", "categories", "select", "whole_thread"]
    public static let expectKeys = ["verdict", "rule", "save_as", "who", "what", "category", "observations", "record", "create_records_for",
                                    "reasons", "candidates"]

    mutating func problem(_ location: SourceLocation, length: Int = 1, _ message: String) {
        diagnostics.append(Diagnostic(.schemaValue, at: location, length: length, message))
    }

    /// Reads a test file; problems with it are diagnostics, not failures.
    public mutating func load(_ file: SourceFile) -> [RuleTestCase] {
        let (root, yamlDiagnostics) = YAMLLoader.load(file)
        diagnostics.append(contentsOf: yamlDiagnostics)
        guard case .mapping(let top, _)? = root else {
            if yamlDiagnostics.isEmpty {
                problem(SourceLocation(path: file.path, line: 1, column: 1), "a rule test file is a mapping with 'tests'")
            }
            return []
        }
        let directory = PathNames.folder(of: file.path)
        let projectRoot = self.root ?? Self.defaultRoot(forTestFile: file.path)
        var sharedCRM: String?
        var tests: [RuleTestCase] = []
        for (key, value) in top {
            switch key.value {
            case "crm":
                guard case .scalar(let scalar) = value else {
                    problem(value.location, "'crm' must be a folder path (a string)")
                    return []
                }
                sharedCRM = confined(scalar, directory: directory, root: projectRoot, what: "the CRM folder")
                if sharedCRM == nil { return [] }
            case "tests":
                guard case .sequence(let items, _) = value else {
                    problem(key.location, "'tests' must be a list")
                    continue
                }
                for item in items {
                    // A test with a problem of its own is not run: it would pass expecting
                    // nothing, or fail for another reason than the one shown.
                    let before = diagnostics.count
                    let test = loadTest(item, file: file, directory: directory, root: projectRoot)
                    if diagnostics.count > before {
                        brokenTestProblems += diagnostics.count - before
                        brokenTests.append((test?.location ?? item.location, test?.name ?? Self.name(of: item)))
                    } else if let test {
                        tests.append(test)
                    }
                }
            default:
                problem(key.location, length: key.value.count,
                        "unknown field '\(key.value)'\(Suggestion.hint(for: key.value, in: ["crm", "tests"])); a test file has crm and tests")
            }
        }
        return tests.map { test in
            var test = test
            if test.crmFolder == nil { test.crmFolder = sharedCRM }
            return test
        }
    }

    /// A test's `name` as written, or "".
    static func name(of node: YNode) -> String {
        guard case .mapping(let fields, _) = node else { return "" }
        for (key, value) in fields where key.value == "name" { if case .scalar(let scalar) = value { return scalar.value } }
        return ""
    }

    mutating func loadTest(_ node: YNode, file: SourceFile, directory: String, root: String) -> RuleTestCase? {
        guard case .mapping(let fields, let location) = node else {
            problem(node.location, "a test must be a mapping")
            return nil
        }
        var test = RuleTestCase(name: "", location: location, message: nil, context: ProcessContext(mailbox: "ann@contoso.com"),
                                settings: [], records: [], crmFolder: nil, expect: [])
        // A message or CRM folder that was given but refused (already diagnosed): no test.
        var refused = false
        for (key, value) in fields {
            switch key.value {
            case "name":
                if case .scalar(let scalar) = value { test.name = scalar.value }
            case "message":
                test.message = loadMessage(value, directory: directory, root: root)
                if test.message == nil { refused = true }
            case "context":
                guard case .mapping(let entries, _) = value else { problem(value.location, "'context' must be a mapping"); continue }
                for (name, setting) in entries {
                    switch (name.value, setting) {
                    case ("mailbox", .scalar(let scalar)): test.context.mailbox = scalar.value
                    case ("whole_thread", .scalar(let scalar)) where ["true", "false"].contains(scalar.value):
                        test.context.wholeThread = scalar.value == "true"
                    case ("folder", .scalar(let scalar)): test.context.folder = scalar.value
                    case ("folder_role", .scalar(let scalar)):
                        if ProcessContext.folderRoles.contains(scalar.value) { test.context.folderRole = scalar.value } else {
                            problem(scalar.location, length: scalar.value.count,
                                    "folder_role '\(scalar.value)' is not one of \(ProcessContext.folderRoles.joined(separator: ", "))")
                        }
                    case ("trigger", .scalar(let scalar)):
                        if ProcessContext.triggers.contains(scalar.value) { test.context.trigger = scalar.value } else {
                            problem(scalar.location, length: scalar.value.count,
                                    "trigger '\(scalar.value)' is not one of \(ProcessContext.triggers.joined(separator: ", "))")
                        }
                    case ("categories", .sequence(let items, _)):
                        test.context.categories = items.compactMap { if case .scalar(let s) = $0 { return s.value } else { return nil } }
                    case ("select", .mapping(let choices, _)):
                        test.context.selection = choices.compactMap { choice in
                            if case .scalar(let id) = choice.value { return (choice.key.value, id.value) } else { return nil }
                        }
                    default:
                        problem(name.location, length: name.value.count,
                                "unknown or malformed context field '\(name.value)'; context has \(Self.contextKeys.joined(separator: ", "))")
                    }
                }
            case "settings":
                guard case .mapping(let entries, _) = value else { problem(value.location, "'settings' must be a mapping"); continue }
                test.settings = entries
            case "records":
                guard case .mapping(let objects, _) = value else { problem(value.location, "'records' must be a mapping of object to list"); continue }
                for (object, list) in objects {
                    guard case .sequence(let items, _) = list else { problem(list.location, "records of \(object.value) must be a list"); continue }
                    for item in items {
                        guard case .mapping(let recordFields, _) = item else { continue }
                        var values: [String: String] = [:]
                        for (name, field) in recordFields { if case .scalar(let scalar) = field { values[name.value] = scalar.value } }
                        guard let id = values["Id"] else { problem(item.location, "a record needs an Id"); continue }
                        test.records.append(CRMRecord(object: object.value, id: id, fields: values))
                    }
                }
            case "crm":
                guard case .scalar(let scalar) = value else {
                    // A list or a mapping was ignored, and the test ran against another CRM.
                    problem(value.location, "'crm' must be a folder path (a string)")
                    refused = true
                    continue
                }
                test.crmFolder = confined(scalar, directory: directory, root: root, what: "the CRM folder")
                if test.crmFolder == nil { refused = true }
            case "expect":
                guard case .mapping(let entries, _) = value else { problem(value.location, "'expect' must be a mapping"); continue }
                for entry in entries where !Self.expectKeys.contains(entry.key.value) {
                    problem(entry.key.location, length: entry.key.value.count,
                            "unknown expectation '\(entry.key.value)'\(Suggestion.hint(for: entry.key.value, in: Self.expectKeys))")
                }
                test.expect = entries.filter { Self.expectKeys.contains($0.key.value) }
            default:
                problem(key.location, length: key.value.count,
                        "unknown field '\(key.value)' in a test\(Suggestion.hint(for: key.value, in: Self.testKeys)); a test has \(Self.testKeys.joined(separator: ", "))")
            }
        }
        if test.name.isEmpty { problem(location, "a test needs a 'name'") }
        if test.message == nil && !refused { problem(location, "test '\(test.name)' needs a 'message' (a file path, or headers and body)") }
        if test.expect.isEmpty { problem(location, "test '\(test.name)' expects nothing; give 'expect'") }
        return test.message == nil || refused ? nil : test
    }

    /// A message file (relative to the test file), or `{headers: {...}, body: ...}` inline.
    mutating func loadMessage(_ node: YNode, directory: String, root: String) -> Message? {
        var bytes: [UInt8]
        switch node {
        case .scalar(let scalar):
            guard let path = confined(scalar, directory: directory, root: root, what: "the message file") else { return nil }
            do {
                // A regular file (never a FIFO or a device), read up to the message size limit.
                bytes = try PackLoader.bytes(of: path, limit: ParseLimits().maxMessageBytes, inside: root)
            } catch {
                problem(scalar.location, length: scalar.value.count, "cannot read the message file '\(scalar.value)': \(error.reason)")
                return nil
            }
        case .mapping(let fields, _):
            var text = ""
            var body = ""
            for (key, value) in fields {
                switch (key.value, value) {
                case ("headers", .mapping(let headers, _)):
                    for (name, header) in headers { if case .scalar(let scalar) = header { text += "\(name.value): \(scalar.value)\r\n" } }
                case ("body", .scalar(let scalar)): body = scalar.value
                default: problem(key.location, "an inline message has 'headers' (a mapping) and 'body'")
                }
            }
            bytes = Array((text + "\r\n" + body).utf8)
        case .sequence:
            problem(node.location, "'message' is a file path or a mapping with headers and body")
            return nil
        }
        do {
            return try MessageParser.parse(bytes)
        } catch {
            problem(node.location, "the message cannot be read: \(error)")
            return nil
        }
    }

    /// Runs one test.
    public func run(_ test: RuleTestCase, loadCRM: (String) throws -> [CRMRecord]) -> RuleTestResult {
        var failures: [String] = []
        guard let message = test.message else { return RuleTestResult(test: test, failures: ["no message"], applied: []) }
        if let problems = pack.userFileProblems(for: test.context.mailbox) {
            return RuleTestResult(test: test, failures: ["the user file of \(test.context.mailbox) has errors, so no decision is made:"] + problems,
                                  applied: [])
        }
        let directory = InMemoryDirectory()
        do {
            if let folder = test.crmFolder { for record in try loadCRM(folder) { directory.add(record) } }
        } catch {
            return RuleTestResult(test: test, failures: ["the CRM folder cannot be read: \(error)"], applied: [])
        }
        for record in test.records { directory.add(record) }
        var pack = self.pack
        if !test.settings.isEmpty {
            let file = SourceFile(path: test.location.path, text: "")
            let (overridden, problems) = pack.overriding(test.settings, file: file)
            if !problems.isEmpty { return RuleTestResult(test: test, failures: problems.map(\.message), applied: []) }
            pack = overridden
        }
        // `process` refuses a mailbox outside the corporate domains that is no User of the CRM
        // (exit 2): a test of one would pass for a decision no run ever makes.
        if pack.isCorporate(test.context.mailbox) == false && directory.users(email: test.context.mailbox.lowercased()).isEmpty {
            return RuleTestResult(test: test, failures: ["the mailbox \(test.context.mailbox) is not in the corporate domains nor a User of the test's CRM: "
                                                         + "process refuses it (exit 2), so no decision is made"], applied: [])
        }
        let engine = Engine(pack: pack, directory: directory)
        let decision: Decision
        let applied: [String]
        do {
            // The path `process` takes, searching the CRM only when a rule reads it.
            let run = try engine.run(message, context: test.context)
            decision = run.decision
            applied = run.outcome.applied.map(\.id)
        } catch {
            return RuleTestResult(test: test, failures: ["the decision failed: \(error)"], applied: [])
        }
        for (key, expected) in test.expect {
            func compare(_ actual: String?) {
                let wanted: String? = { if case .scalar(let scalar) = expected, !scalar.isNull { return scalar.value } else { return nil } }()
                if wanted != actual {
                    failures.append("\(key.value): expected \(wanted.map { "\"\($0)\"" } ?? "null"), got \(actual.map { "\"\($0)\"" } ?? "null")")
                }
            }
            func compareList(_ actual: [String]) {
                var wanted: [String] = []
                if case .sequence(let items, _) = expected {
                    wanted = items.compactMap { if case .scalar(let s) = $0 { return s.value } else { return nil } }
                }
                if wanted != actual { failures.append("\(key.value): expected \(wanted), got \(actual)") }
            }
            switch key.value {
            case "verdict": compare(decision.verdict.rawValue)
            case "rule": compare(decision.reasons.first?.rule)
            case "save_as": compare(decision.saveAs)
            case "who": compareList(decision.who)
            case "what": compare(decision.what)
            case "category": compare(decision.category)
            case "observations": compareList(decision.observations)
            case "reasons": compareList(decision.reasons.map(\.rule))
            case "create_records_for": compareList(decision.createFor)
            case "candidates": compareList(decision.candidates.map { "\($0.id) \($0.via)" })
            case "record":
                guard case .mapping(let fields, _) = expected else { failures.append("record: expected a mapping of fields"); continue }
                let actual = decision.record?.fields ?? []
                for (name, value) in fields {
                    let wanted: String? = { if case .scalar(let s) = value, !s.isNull { return s.value } else { return nil } }()
                    let got: String? = actual.first { $0.name == name.value }.flatMap { field in
                        switch field.value {
                        case .string(let text): return text
                        case .bool(let flag): return flag ? "true" : "false"
                        case .int(let number): return String(number)
                        case .absent: return nil
                        default: return field.value.description
                        }
                    }
                    if wanted != got {
                        failures.append("record.\(name.value): expected \(wanted.map { "\"\($0)\"" } ?? "blank"), got \(got.map { "\"\($0)\"" } ?? "blank")")
                    }
                }
            default: break
            }
        }
        return RuleTestResult(test: test, failures: failures, applied: applied)
    }
}

