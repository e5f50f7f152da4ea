import Foundation
import Testing

/// A git repository in a folder, for the tests of `diff --old-rev`: each command runs there
/// with a test identity, and a failing command fails the test.
struct GitRepository {
    let folder: URL

    /// A new repository in `folder` whose first commit holds the shipped pack as `r/`.
    @discardableResult
    static func withShippedPack(in folder: URL) throws -> GitRepository {
        let git = GitRepository(folder: folder)
        try git.run(["init", "-q", "-b", "main"])
        try FileManager.default.copyItem(at: Binary.packageRoot.appendingPathComponent("rules"), to: folder.appendingPathComponent("r"))
        try git.run(["add", "r"])
        try git.run(["commit", "-q", "-m", "pack"])
        return git
    }

    /// Runs `git ARGUMENTS` with `input` on standard input; its standard output, trimmed.
    @discardableResult
    func run(_ arguments: [String], input: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let process = Foundation.Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"] + arguments
        process.currentDirectoryURL = folder
        let out = Pipe(), feed = Pipe()
        process.standardOutput = out
        process.standardInput = feed
        process.standardError = FileHandle.nullDevice
        try process.run()
        if let input { try feed.fileHandleForWriting.write(contentsOf: Data(input.utf8)) }
        try feed.fileHandleForWriting.close()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "git \(arguments)", sourceLocation: sourceLocation)
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
