import Foundation
import MailEngine
import MailMessage
import MailRules
@testable import MailSalesforce
import SalesforceTestServer
import Testing
import Yams
import ShippedFixtures



func parse(_ text: String) throws -> Message { try MessageParser.parse(Array(text.utf8)) }

func packWith(_ settings: [String: String]) throws -> RulePack {
    let location = MailRules.SourceLocation(path: "t", line: 1, column: 1)
    let overrides = settings.map { (key: YScalar(value: $0.key, location: location, style: .plain),
                                    value: YNode.scalar(YScalar(value: $0.value, location: location, style: .plain))) }
    return try shippedPack().overriding(overrides, file: SourceFile(path: "t", text: "")).0
}

/// Answers as text for comparison: ids in their 15-character form, each record's fields
/// limited to those the REST backend reads, lists sorted.
func canonical(_ answers: CRMAnswers) -> [String] {
    func id(_ text: String) -> String { text.count == 18 && SalesforceID.isID(Substring(text)) ? SalesforceID.canonical(text) : text }
    func record(_ record: CRMRecord) -> String {
        let fields = SalesforceSchema.queryFields[record.object] ?? []
        let shown = record.fields.filter { fields.contains($0.key) && !$0.value.isEmpty }.map { "\($0.key)=\(id($0.value))" }.sorted()
        return "\(record.object) \(id(record.id)) {\(shown.joined(separator: ", "))}"
    }
    func list(_ records: [CRMRecord]) -> String { "[" + records.map(record).sorted().joined(separator: "; ") + "]" }
    var lines: [String] = []
    for (key, value) in answers.contactsByAddress { lines.append("contact \(key): \(list(value))") }
    for (key, value) in answers.leadsByAddress { lines.append("lead \(key): \(list(value))") }
    for (key, value) in answers.usersByAddress { lines.append("user \(key): \(list(value))") }
    for (key, value) in answers.accountsByDomain { lines.append("domain \(key): \(list(value))") }
    for (key, value) in answers.accountByContactDomain {
        switch value {
        case .one(let account): lines.append("contact domain \(key): \(id(account))")
        case .several: lines.append("contact domain \(key): several")
        }
    }
    for (key, value) in answers.accountsByName { lines.append("name \(key): \(list(value))") }
    for (key, value) in answers.peopleByPhone { lines.append("phone \(key): \(list(value))") }
    for (key, value) in answers.casesByNumber { lines.append("case number \(key): \(record(value))") }
    for (key, value) in answers.records { lines.append("record \(id(key)): \(record(value))") }
    for (key, value) in answers.opportunitiesByAccount { lines.append("opportunities \(id(key)): \(list(value))") }
    for (key, value) in answers.casesByContact { lines.append("cases \(id(key)): \(list(value))") }
    for (key, value) in answers.emailMessages { lines.append("email \(key): \(record(value.record)) \(value.relations.map(id).sorted())") }
    lines.append("saved: \(answers.savedRecord.map(id) ?? "none")")
    return lines.sorted()
}

/// Every error message of a failing run, checked for secrets.
func expectNoSecret(_ message: String, _ server: FakeServer, sourceLocation: Testing.SourceLocation = #_sourceLocation) {
    for secret in server.secrets { #expect(!message.contains(secret), "a secret in: \(message)", sourceLocation: sourceLocation) }
}
