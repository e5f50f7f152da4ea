import Foundation
@testable import MailRules
import Testing

/// The published JSON Schemas and the loader must accept exactly the same files, and the
/// schemas must name exactly what the Swift declarations do.
@Suite struct SchemaTests {
    static let schemaDirectory = Paths.packageRoot.appendingPathComponent("schemas")

    /// Every YAML file of the shipped pack and of the lint examples.
    static func ruleFiles() throws -> [String] {
        var files: [String] = []
        for root in [Paths.packageRoot.appendingPathComponent("rules"), Paths.examples] {
            guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) else { continue }
            for case let url as URL in walker where url.pathExtension == "yaml" && !url.path.contains("/tests/") {
                files.append(url.path)
            }
        }
        return files.sorted()
    }

    /// Findings JSON Schema cannot express: anchors and aliases, duplicate keys (PyYAML keeps
    /// the last), and size limits. Files with these are left out of the comparison.
    static let invisibleToJSONSchema: Set<String> = ["yaml-alias", "yaml-duplicate-key", "yaml-limit"]

    @Test func schemaAndLoaderAcceptTheSameFiles() throws {
        let files = try Self.ruleFiles()
        #expect(files.count >= 30)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Paths.testsDirectory.appendingPathComponent("Reference/validate_schema.py").path] + files
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "validate_schema.py failed (are jsonschema and PyYAML installed? scripts/bootstrap installs them)")
        let verdicts = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        var compared = 0
        for path in files {
            var loader = PackLoader()
            let file = try PackLoader.read(path)
            if path.contains("/users/") { loader.loadUserFile(file) } else { loader.loadOrgFile(file) }
            let findings = loader.diagnostics.filter { diagnostic in
                LintCheck.all.first { $0.id == diagnostic.check }?.isSchemaLevel ?? false
            }
            if findings.contains(where: { Self.invisibleToJSONSchema.contains($0.check) }) { continue }
            let schemaError = verdicts[path] as? String
            let loaderAccepts = findings.isEmpty
            #expect(loaderAccepts == (schemaError == nil),
                    "\(path): loader \(loaderAccepts ? "accepts" : "refuses (\(findings.map(\.message)))"), schema \(schemaError ?? "accepts")")
            compared += 1
        }
        #expect(compared >= 25)
    }

    func schema(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: Self.schemaDirectory.appendingPathComponent(name))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    func keys(_ object: Any?, _ path: [String]) -> Set<String> {
        var current = object
        for key in path { current = (current as? [String: Any])?[key] }
        return Set(((current as? [String: Any]) ?? [:]).keys)
    }

    @Test func schemaNamesWhatTheLoaderKnows() throws {
        let pack = try schema("rule-pack.schema.json")
        #expect(keys(pack, ["properties"]) == Set(PackLoader.orgKeys))
        #expect(keys(pack, ["$defs", "rule", "properties"]) == Set(PackLoader.ruleKeys))
        #expect(keys(pack, ["$defs", "list", "properties"]) == Set(PackLoader.listKeys))
        #expect(keys(pack, ["$defs", "settings", "properties"]) == Set(SettingSpec.all.map(\.name)))
        #expect(keys(pack, ["$defs", "settings", "properties", "capabilities", "properties"]) == Set(PackLoader.capabilityKeys))
        let mapping = ["$defs", "settings", "properties", "mapping", "properties"]
        #expect(keys(pack, mapping + ["Task", "properties"]) == Set(SalesforceField.task.map(\.name)))
        #expect(keys(pack, mapping + ["EmailMessage", "properties"]) == Set(SalesforceField.emailMessage.map(\.name)))
        let kinds = ((pack["$defs"] as? [String: Any])?["list"] as? [String: Any]).flatMap { ($0["properties"] as? [String: Any])?["kind"] as? [String: Any] }?["enum"] as? [String]
        #expect(Set(kinds ?? []) == Set(ListKind.allCases.map(\.rawValue)))
        let user = try schema("user.schema.json")
        #expect(keys(user, ["properties"]) == Set(PackLoader.userKeys))
        #expect(keys(user, ["properties", "settings", "properties"]) == Set(SettingSpec.all.filter(\.personalAllowed).map(\.name)))
    }

    @Test func everyShippedFileNamesItsSchema() throws {
        let tests = try FileManager.default.contentsOfDirectory(atPath: Paths.rules + "/tests").filter { $0.hasSuffix(".yaml") }
        #expect(!tests.isEmpty)
        for path in try Self.ruleFiles() + tests.map({ Paths.rules + "/tests/" + $0 }) where path.contains("/rules/") {
            let firstLine = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").first ?? ""
            #expect(firstLine.hasPrefix("# yaml-language-server: $schema="), "\(path)")
            let target = firstLine.split(separator: "=").last.map(String.init) ?? ""
            let resolved = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent(target).standardized.path
            #expect(FileManager.default.fileExists(atPath: resolved), "\(path) names \(target), which does not exist")
        }
    }
}

@Suite struct YAMLSafetyTests {
    @Test func anAliasBombIsRefusedAtOnce() {
        var text = "a: &a [x, x, x, x, x, x, x, x, x]\n"
        var previous = "a"
        for level in 0..<20 {
            let name = "l\(level)"
            text += "\(name): &\(name) [" + Array(repeating: "*\(previous)", count: 9).joined(separator: ", ") + "]\n"
            previous = name
        }
        let (tree, diagnostics) = YAMLLoader.load(SourceFile(path: "bomb.yaml", text: text))
        #expect(tree == nil)
        #expect(diagnostics.map(\.check) == ["yaml-alias"])
        #expect(diagnostics.first?.location.line == 1)
    }

    @Test func nodeCountIsCapped() {
        var limits = YAMLLoader.Limits()
        limits.maxNodes = 100
        let text = "entries: [" + Array(repeating: "x", count: 200).joined(separator: ", ") + "]"
        let (_, diagnostics) = YAMLLoader.load(SourceFile(path: "big.yaml", text: text), limits: limits)
        #expect(diagnostics.map(\.check) == ["yaml-limit"])
    }

    @Test func multipleDocumentsAreRefused() {
        let (_, diagnostics) = YAMLLoader.load(SourceFile(path: "two.yaml", text: "a: 1\n---\nb: 2\n"))
        #expect(diagnostics.map(\.check) == ["yaml-syntax"])
    }
}
