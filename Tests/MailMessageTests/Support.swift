import Foundation
import MailMessage
import Testing

/// Where the tests find their inputs.
enum Paths {
    static let testsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    static let packageRoot = testsDirectory.deletingLastPathComponent().deletingLastPathComponent()
    static let fixtures = testsDirectory.appendingPathComponent("Fixtures")

    /// The enmime corpus from `../shared/corpus/enmime`, or `MAILSAVE_CORPUS`.
    static var corpus: URL {
        if let override = ProcessInfo.processInfo.environment["MAILSAVE_CORPUS"] { return URL(fileURLWithPath: override) }
        return packageRoot.deletingLastPathComponent().appendingPathComponent("shared/corpus/enmime")
    }

    /// Every `.raw` message of the corpus. Fails the calling test, loudly, when the corpus is missing:
    /// a green run must mean the real-world messages were read.
    static func corpusFiles(sourceLocation: SourceLocation = #_sourceLocation) -> [URL] {
        let root = corpus
        guard let enumerator = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) else {
            Issue.record("the enmime corpus is not at \(root.path); set MAILSAVE_CORPUS to its folder", sourceLocation: sourceLocation)
            return []
        }
        let files = enumerator.compactMap { $0 as? URL }.filter { $0.pathExtension == "raw" }.sorted { $0.path < $1.path }
        if files.isEmpty {
            Issue.record("the enmime corpus at \(root.path) holds no .raw files", sourceLocation: sourceLocation)
        }
        return files
    }
}

struct CorpusMissing: Error, CustomStringConvertible {
    var path: String
    var description: String { "the enmime corpus is not at \(path); set MAILSAVE_CORPUS to its folder" }
}

/// One corpus message by its path inside the corpus; a clear error when the corpus is missing.
func corpusMessage(_ name: String) throws -> Message {
    guard FileManager.default.fileExists(atPath: Paths.corpus.path) else { throw CorpusMissing(path: Paths.corpus.path) }
    return try MessageParser.parse(bytes(of: Paths.corpus.appendingPathComponent(name)))
}

func bytes(of url: URL) throws -> [UInt8] { Array(try Data(contentsOf: url)) }

func parse(_ text: String) throws -> Message { try MessageParser.parse(Array(text.utf8)) }

func fixture(_ relative: String) throws -> Message {
    try MessageParser.parse(bytes(of: Paths.fixtures.appendingPathComponent(relative)))
}
