import Foundation
@testable import MailEngine
import MailMessage
import MailRules
import Testing
import ShippedFixtures

/// The body is analysed and the CRM searched only when a rule that runs reads their facts, or
/// when the decision saves (`Engine.run`): the decision is the one the complete facts give,
/// `candidates` aside.

/// The decision as text, every field (Decision holds tuples, so it is not Equatable).
func printed(_ decision: Decision) -> String { String(describing: decision) }

@Suite struct SearchInStepsTests {
    let context = ProcessContext(mailbox: "ann@contoso.com")

    func directory(steps: Bool) throws -> RecordingDirectory {
        RecordingDirectory(InMemoryDirectory(records: try sampleRecords()), steps: steps)
    }

    @Test func aServiceEmailAsksTheLedgerAlone() throws {
        let directory = try directory(steps: true)
        let run = try Engine(pack: try shippedPack(), directory: directory).run(try sampleMessage("05-bounce-postfix.eml"), context: context)
        #expect(run.decision.verdict == .unsupported)
        #expect(!run.searchedCRM)
        #expect(directory.plans.count == 1)
        #expect(directory.plans.first?.isEmpty == true)
        #expect(directory.plans.first?.ledgerKey.isEmpty == false)
    }

    @Test func internalMailAsksTheLedgerAlone() throws {
        let directory = try directory(steps: true)
        let run = try Engine(pack: try shippedPack(), directory: directory).run(try sampleMessage("02-internal-only.eml"), context: context)
        #expect(run.decision.verdict == .blocked)
        #expect(directory.plans.count == 1 && directory.plans[0].isEmpty)
    }

    @Test func aSaveSearchesOnceMoreWithoutAskingTheLedgerTwice() throws {
        let directory = try directory(steps: true)
        let run = try Engine(pack: try shippedPack(), directory: directory).run(try sampleMessage("01-customer-question.eml"), context: context)
        #expect(run.decision.verdict == .save)
        #expect(run.searchedCRM)
        #expect(directory.plans.count == 2)
        #expect(directory.plans.last?.isEmpty == false)
        #expect(directory.plans.last?.ledgerKey == "")
        let whole = try self.directory(steps: false)
        let full = try Engine(pack: try shippedPack(), directory: whole).run(try sampleMessage("01-customer-question.eml"), context: context)
        #expect(whole.plans.count == 1)
        #expect(printed(run.decision) == printed(full.decision))
    }

    @Test func theLedgerAnswerReachesTheDecisionOfTheSecondStep() throws {
        // Saved already: rule 1 decides from the ledger alone, and its record is reported.
        let saved = CRMRecord(object: "Task", id: "00T5e00000Sav01", fields: [SalesforceSchema.taskMessageIdentifierField: "<CAB1234567@mail.fabrikam.com>"])
        let directory = RecordingDirectory(InMemoryDirectory(records: try sampleRecords() + [saved]), steps: true)
        let run = try Engine(pack: try shippedPack(), directory: directory).run(try sampleMessage("01-customer-question.eml"), context: context)
        #expect(run.facts.savedRecord == "00T5e00000Sav01")
        #expect(run.decision.reasons.first?.rule == "already-saved")
        #expect(!run.searchedCRM)
        #expect(directory.plans.count == 1)
    }

    /// A pack that reads the ledger only after a rule that needs the CRM: the first step stops
    /// there, and the second still sees the ledger's answer (it is not asked twice).
    @Test func theLedgerAnswerIsCarriedIntoTheSecondStep() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mailsave-steps-\(UInt64.random(in: 0...UInt64.max))")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.copyItem(at: packageRoot.appendingPathComponent("rules"), to: folder)
        let policy = folder.appendingPathComponent("policy.yaml")
        var text = try String(contentsOf: policy, encoding: .utf8)
        let saved = try #require(text.range(of: "  - id: already-saved\n"))
        let next = try #require(text.range(of: "  - id: service-email\n"))
        let block = String(text[saved.lowerBound..<next.lowerBound])
        text.removeSubrange(saved.lowerBound..<next.lowerBound)
        let after = try #require(text.range(of: "  - id: case-thread\n"))
        text.insert(contentsOf: block, at: after.lowerBound)
        try text.write(to: policy, atomically: true, encoding: .utf8)
        guard case .success(let pack) = try Linter.load(folder.path) else {
            Issue.record("the reordered pack does not load")
            return
        }
        #expect(pack.rules.first.map { $0.id } == "service-email")
        let task = CRMRecord(object: "Task", id: "00T5e00000Sav01", fields: [SalesforceSchema.taskMessageIdentifierField: "<CAB1234567@mail.fabrikam.com>"])
        let directory = RecordingDirectory(InMemoryDirectory(records: try sampleRecords() + [task]), steps: true)
        let run = try Engine(pack: pack, directory: directory).run(try sampleMessage("01-customer-question.eml"), context: context)
        #expect(run.searchedCRM)
        #expect(directory.plans.count == 2 && directory.plans[1].ledgerKey.isEmpty)
        #expect(run.facts.savedRecord == "00T5e00000Sav01")
        #expect(run.decision.reasons.first?.rule == "already-saved")
    }

    @Test func aSelectionOrATraceSearchesEverythingAtOnce() throws {
        let directory = try directory(steps: true)
        let engine = Engine(pack: try shippedPack(), directory: directory)
        _ = try engine.run(try sampleMessage("05-bounce-postfix.eml"), context: context, trace: true)
        #expect(directory.plans.count == 1 && directory.plans[0].ledgerKey != "")
        var selecting = context
        selecting.trigger = "button"
        selecting.selection = [(kind: "contact", id: "0035e00000Bob01")]
        _ = try? engine.run(try sampleMessage("05-bounce-postfix.eml"), context: selecting)
        #expect(directory.plans.count == 2 && !directory.plans[1].recordIDs.isEmpty)
    }

    @Test func aPackWhoseFirstRuleReadsTheCRMSearchesAtOnce() throws {
        let pack = try shippedPack()
        #expect(pack.rules.first?.cost == [], "the shipped pack starts with the ledger")
        // Which rules of the shipped pack need the search: from the Magic Anchor on, the ones
        // reading related records or the thread's links.
        #expect(pack.rules.filter { !$0.cost.isEmpty }.map(\.id) == ["magic-anchor", "case-thread", "general-mode", "general-mode-business",
                                                            "people-record-required", "forced-mode", "smart-mode", "useful-mode",
                                                            "useful-mode-needs-reference", "flexible-mode"])
    }

    /// Every message of the samples and of both corpora, decided in steps and at once over the
    /// sample CRM: the same decisions, `candidates` aside, and most of the corpus (bounces)
    /// decided from the ledger alone.
    @Test func stepsDecideWhatTheWholeSearchDecides() throws {
        // Real mail others wrote: the test fails, naming the place, when a corpus is missing.
        let files = try FileManager.default.contentsOfDirectory(at: packageRoot.appendingPathComponent("examples/messages"), includingPropertiesForKeys: nil)
            + corpusFiles("enmime", minimum: 60) + corpusFiles("sisimai", minimum: 600)
        let pack = try shippedPack()
        let records = try sampleRecords()
        var compared = 0, fromLedger = 0, saved = 0
        for file in files.sorted(by: { $0.path < $1.path }) {
            guard let message = try? MessageParser.parse(Array(try Data(contentsOf: file))) else { continue }
            for context in [context, ProcessContext(mailbox: "ann@contoso.com", folder: "Archive/2025")] {
                let steps = try Engine(pack: pack, directory: RecordingDirectory(InMemoryDirectory(records: records), steps: true)).run(message, context: context)
                let whole = try Engine(pack: pack, directory: RecordingDirectory(InMemoryDirectory(records: records), steps: false)).run(message, context: context)
                var expected = whole.decision
                if !steps.searchedCRM {
                    fromLedger += 1
                    expected.candidates = []
                    #expect(steps.decision.verdict != .save)
                }
                if steps.decision.verdict == .save { saved += 1 }
                #expect(printed(steps.decision) == printed(expected), "\(file.lastPathComponent) in \(context.folder)")
                #expect(steps.outcome.applied.map(\.id) == whole.outcome.applied.map(\.id))
                compared += 1
            }
        }
        #expect(compared > 1_400, "\(compared) decisions compared")
        #expect(fromLedger > compared / 2, "\(fromLedger) of \(compared) decided from the ledger alone")
        #expect(saved > 0)
    }
}
