import Foundation
import MailMessage
import MailRules

/// What the shipped project gives every test target: its root, the rule pack under `rules/`
/// and the sample messages under `examples/messages/` (one copy, not one per target).
public let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The shipped rule pack, compiled (its diagnostics thrown when it has errors).
public func shippedPack() throws -> RulePack {
    switch try Linter.load(packageRoot.appendingPathComponent("rules").path) {
    case .success(let pack): return pack
    case .failure(let result): throw result
    }
}

/// A sample message of `examples/messages/`, parsed.
public func sampleMessage(_ name: String) throws -> Message {
    try MessageParser.parse(Array(try Data(contentsOf: packageRoot.appendingPathComponent("examples/messages/" + name))))
}

/// The message files (`.raw`, `.eml`) of a corpus of real mail others wrote: `enmime` or
/// `sisimai`, from `../shared/corpus`, or where `MAILSAVE_CORPUS` (enmime) or
/// `MAILSAVE_SISIMAI_CORPUS` say (as `.ci/run` sets them for a fresh clone). Throws, naming
/// the place, when fewer than `minimum` are there: a green run must mean they were read.
public func corpusFiles(_ name: String, minimum: Int) throws -> [URL] {
    let override = ProcessInfo.processInfo.environment[name == "sisimai" ? "MAILSAVE_SISIMAI_CORPUS" : "MAILSAVE_CORPUS"]
    let root = override.map { URL(fileURLWithPath: $0) }
        ?? packageRoot.deletingLastPathComponent().appendingPathComponent("shared/corpus/\(name)")
    let files = (FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)?.compactMap { $0 as? URL } ?? [])
        .filter { ["raw", "eml"].contains($0.pathExtension) }
    guard files.count >= minimum else {
        throw CorpusMissing(message: "the \(name) corpus is missing or incomplete at \(root.path) (\(files.count) message files)")
    }
    return files.sorted { $0.path < $1.path }
}

public struct CorpusMissing: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
