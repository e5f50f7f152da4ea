import Foundation
import MailMessage
import Testing

/// The enmime corpus: messages other people wrote, many of them broken on purpose.
@Suite struct CorpusTests {
    /// Files that are not messages at all, with the error they must give.
    static let refused = ["mail/erroneous.raw": "line 1: not an RFC 5322 message: no header field before the body"]

    @Test func everyMessageParsesOrIsRefusedWithOneClearError() throws {
        let files = Paths.corpusFiles()
        var parsed = 0
        for url in files {
            let name = url.pathComponents.suffix(2).joined(separator: "/")
            do {
                _ = try MessageParser.parse(bytes(of: url))
                #expect(Self.refused[name] == nil, "\(name) should have been refused")
                parsed += 1
            } catch let error as MessageParseError {
                #expect(Self.refused[name] == error.description, "\(name): \(error)")
            }
        }
        #expect(files.isEmpty || parsed >= 70, "only \(parsed) corpus messages parsed")
    }

    func corpus(_ name: String) throws -> Message { try corpusMessage(name) }

    @Test func multipartAlternativeGivesTextAndHTML() throws {
        let message = try corpus("mail/mime-alternative.raw")
        #expect(message.textBody == "Section one")  // two text/plain alternatives: the first is the body
        #expect(message.htmlBody == nil)
        let html = try corpus("mail/html-mime-inline.raw")
        #expect(html.htmlBody?.contains("<html>") == true)
        #expect(!html.textBody.isEmpty)
        #expect(message.date?.iso8601 == "2012-10-19T12:22:49-07:00")
    }

    @Test func quotedPrintableUTF8HeadersAndBodies() throws {
        let message = try corpus("mail/qp-utf8-header.raw")
        #expect(message.subject == "MIME UTF8 Test \u{A2} More Text")
        #expect(message.to.first?.name == "Mirosław Marczak")
        #expect(message.from.map(\.name) == ["James Hillyerd", "André Pirard"])
    }

    @Test func attachmentsAreDescribedNotKept() throws {
        let message = try corpus("mail/attachment.raw")
        #expect(message.attachments.count == 1)
        #expect(message.attachments.first?.filename == "test.html")
        #expect(message.attachments.first?.size == 7)
    }

    @Test func eightBitFilenameIsRead() throws {
        let message = try corpus("mail/mime-bad-8bit-filename.raw")
        #expect(message.attachments.first?.filename == "管理.doc")
    }

    @Test func missingFinalBoundaryIsADefectNotAFailure() throws {
        let message = try corpus("low-quality/bad-final-boundary.raw")
        #expect(message.defects.map(\.kind).contains("missing-final-boundary"))
        #expect(message.textBody == "A text section")
    }

    @Test func unknownCharsetIsADefect() throws {
        let message = try corpus("low-quality/unk-charset-part.raw")
        #expect(message.defects.contains { $0.kind == "charset" })
    }

    @Test func htmlCharsetFromMetaElement() throws {
        let message = try corpus("mail/non-mime-html-charset-header-only.raw")
        #expect(!message.textBody.isEmpty)
    }

    @Test func nestedMultipartsKeepTheirDepth() throws {
        let message = try corpus("parts/nestedmulti.raw")
        #expect(message.parts.map(\.depth).max() ?? 0 >= 2)
    }
}
