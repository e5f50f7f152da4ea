import Foundation
import MailMessage
import Testing

/// mailsave's address parser against an independent one: Python's `email` package with
/// `policy.default`. Every disagreement is listed here with the reason mailsave differs;
/// the test fails on a disagreement that is not listed, and on a listed one that went away.
@Suite struct ReferenceComparisonTests {
    static let script = Paths.testsDirectory.appendingPathComponent("Reference/python_addresses.py")

    static func runPython(_ arguments: [String], input: Data? = nil) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script.path] + arguments
        let output = Pipe()
        let stdin = Pipe()
        process.standardOutput = output
        process.standardInput = stdin
        try process.run()
        if let input { stdin.fileHandleForWriting.write(input) }
        try stdin.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ReferenceError(message: "python3 \(script.lastPathComponent) exited with \(process.terminationStatus)")
        }
        return data
    }

    struct ReferenceError: Error, CustomStringConvertible { var message: String; var description: String { message } }

    static func render(_ addresses: [Address]) -> [String] { addresses.map { "\($0.name)|\($0.address)" } }

    static func render(_ json: Any) -> [String]? {
        guard let list = json as? [[String]] else { return nil }
        return list.map { "\($0[0])|\($0[1])" }
    }

    /// Where mailsave and Python disagree over the corpus, and why mailsave is right.
    static let corpusDisagreements: [String: String] = [
        // `From: Bob Dunite <bob@extern> Bobby Dunite <bobby@extern>`: a comma is missing.
        // Python keeps the first mailbox and drops the second; both are participants, and
        // dropping one would hide a customer from the related-record search.
        "mail/malformed-multiple-address-header-values.raw from": "missing comma: both mailboxes kept",
        // The From field carries a raw CR inside an encoded word's decoded text; Python's
        // header registry raises ValueError. mailsave decodes it and keeps both mailboxes.
        "mail/qp-utf8-header-recursed.raw from": "Python raises on a CR inside a decoded name",
        // The header block starts with " From: …" (a continuation line with nothing before it).
        // Python drops the line as a defect; mailsave reads it as the From field, since a
        // message without its sender cannot be matched to anyone.
        "low-quality/bad-header-start.raw from": "a leading continuation line is read as a field",
    ]

    @Test func corpusAddressesAgreeWithPython() throws {
        let files = Paths.corpusFiles()
        guard !files.isEmpty else { return }
        let data = try Self.runPython(files.map(\.path))
        let reference = try #require(try JSONSerialization.jsonObject(with: data) as? [String: [String: Any]])
        var disagreements: Set<String> = []
        var compared = 0
        for url in files {
            let name = url.pathComponents.suffix(2).joined(separator: "/")
            guard let message = try? MessageParser.parse(bytes(of: url)), let expected = reference[url.path] else { continue }
            let ours: [(String, [Address])] = [("from", message.from), ("sender", message.sender), ("to", message.to),
                                               ("cc", message.cc), ("bcc", message.bcc), ("reply-to", message.replyTo)]
            for (header, addresses) in ours {
                compared += 1
                let theirs = expected[header].flatMap(Self.render)
                if theirs != Self.render(addresses) { disagreements.insert("\(name) \(header)") }
            }
        }
        #expect(compared > 400)
        #expect(disagreements == Set(Self.corpusDisagreements.keys), "unexplained or resolved disagreements")
    }

    /// Hand-written hard cases, each compared with Python; `nil` means both agree.
    static let cases: [(value: String, disagreement: String?)] = [
        ("Ann Smith <ann@x.example>, bob@y.example", nil),
        ("\"Smith, Ann\" <ann@x.example>", nil),
        ("=?utf-8?q?Andr=C3=A9?= <andre@x.example>", nil),
        ("=?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>", nil),
        ("Team: a@x.example, b@x.example;, c@y.example", nil),
        ("undisclosed-recipients:;", nil),
        ("Ann (work) <ann@x.example>", nil),
        ("<@relay.example,@b.example:ann@x.example>", nil),
        ("a@x.example,, b@x.example,", nil),
        ("\"john doe\"@x.example", nil),
        ("Ann <Ann@Bücher.Example>", nil),
        ("\"=?utf-8?q?Andr=C3=A9?=\" <andre@x.example>", nil),
        // RFC 5322 3.4: a comment after an addr-spec is the traditional place for the name.
        ("ann@x.example (Ann Smith)", "mailsave takes the name from the comment; Python leaves it empty"),
        // Missing angle brackets: Python's result has no usable address; mailsave recovers it.
        ("Ann Smith ann@x.example", "mailsave reads the address after a bare display name"),
        ("Bob <bob@x.example> Bobby <bobby@x.example>", "missing comma: mailsave keeps both mailboxes"),
        ("Ann <ann@x.example", nil),
        // An unclosed quote: Python makes the rest of the field one quoted local part with no
        // domain; mailsave drops the stray quote and recovers the mailbox.
        ("\"Ann <ann@x.example>", "mailsave drops an unclosed quote and keeps the mailbox"),
    ]

    @Test func hardCasesAgreeWithPythonOrSayWhyNot() throws {
        let values = Self.cases.map(\.value)
        let data = try Self.runPython(["--values"], input: try JSONSerialization.data(withJSONObject: values))
        let reference = try #require(try JSONSerialization.jsonObject(with: data) as? [Any])
        #expect(reference.count == values.count)
        for (index, item) in Self.cases.enumerated() {
            let ours = Self.render(AddressParser.parse(Array(item.value.utf8)).addresses)
            let theirs = Self.render(reference[index])
            if item.disagreement == nil {
                #expect(ours == theirs, "\(item.value): mailsave \(ours), Python \(String(describing: theirs))")
            } else {
                #expect(ours != theirs, "\(item.value): listed as a disagreement, but both now say \(ours)")
            }
        }
    }
}
