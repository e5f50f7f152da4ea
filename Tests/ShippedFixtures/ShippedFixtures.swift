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
