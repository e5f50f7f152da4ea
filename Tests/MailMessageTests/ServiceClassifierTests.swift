import MailMessage
import Testing

/// Golden pairs: each fixture in Fixtures/service with the kind and the signal that must decide it.
@Suite struct ServiceClassifierTests {
    static let expectations: [(file: String, kind: ServiceKind, signal: String?)] = [
        ("dsn-rfc3464.eml", .deliveryFailure, "multipart/report; report-type=delivery-status"),
        ("mdn-rfc8098.eml", .readReceipt, "multipart/report; report-type=disposition-notification"),
        ("outlook-read-receipt.eml", .readReceipt, "multipart/report; report-type=disposition-notification"),
        ("outlook-not-read.eml", .readReceipt, "Content-Class: urn:content-classes:mdn"),
        ("itip-reply.eml", .calendarResponse, "text/calendar; method=REPLY"),
        ("itip-counter.eml", .calendarResponse, "text/calendar METHOD:COUNTER"),
        ("itip-cancel.eml", .calendarResponse, "text/calendar METHOD:CANCEL"),
        ("itip-request-update.eml", .calendarResponse, "text/calendar METHOD:REQUEST SEQUENCE:2 (meeting update)"),
        ("itip-request-new.eml", .none, nil),
        ("outlook-accepted-no-ics.eml", .calendarResponse, "subject 'angenommen:' (Content-Class: urn:content-classes:calendarmessage)"),
        ("exchange-dsn-content-class.eml", .deliveryFailure, "Content-Class: urn:content-classes:dsn"),
        ("exchange-ndr-header.eml", .deliveryFailure, "X-MS-Exchange-Message-Is-Ndr header"),
        ("exim-bounce.eml", .deliveryFailure, "X-Failed-Recipients header"),
        ("qmail-bounce.eml", .deliveryFailure, "body: qmail bounce (sender MAILER-DAEMON@mail.example.net)"),
        ("postfix-bounce-plain.eml", .deliveryFailure, "body: Postfix bounce (sender MAILER-DAEMON)"),
        ("sendmail-bounce.eml", .deliveryFailure, "body: Sendmail bounce (sender MAILER-DAEMON@mx.example.net)"),
        // Subject words alone never decide: a person's message stays a person's message.
        ("person-subject-undeliverable.eml", .none, nil),
        ("forwarded-bounce.eml", .none, nil),
        ("out-of-office.eml", .none, nil),
    ]

    @Test(arguments: expectations.map(\.file))
    func classifies(file: String) throws {
        let expected = try #require(Self.expectations.first { $0.file == file })
        let message = try fixture("service/" + file)
        #expect(message.service.kind == expected.kind)
        #expect(message.service.signal == expected.signal)
    }

    @Test func everyFixtureHasAnExpectation() throws {
        let files = try FileManagerListing.files(in: Paths.fixtures.appendingPathComponent("service"))
        #expect(Set(files) == Set(Self.expectations.map(\.file)))
    }

    @Test func autoRepliesAreAFlagNotAServiceKind() throws {
        let message = try fixture("service/out-of-office.eml")
        #expect(message.autoReply == "Auto-Submitted: auto-replied")
        #expect(try fixture("service/person-subject-undeliverable.eml").autoReply == nil)
        #expect(try parse("From: a@b.example\nSubject: Out of Office: back Monday\n\nx").autoReply == "subject 'out of office'")
        #expect(try parse("From: a@b.example\nX-Autoreply: yes\n\nx").autoReply == "X-Autoreply header")
        #expect(try parse("From: a@b.example\nAuto-Submitted: no\n\nx").autoReply == nil)
    }
}

import Foundation

enum FileManagerListing {
    static func files(in directory: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { !$0.hasPrefix(".") }
    }
}
