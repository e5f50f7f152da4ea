@testable import MailRules
import Testing

/// The shipped pack compiles cleanly and decides the way DESIGN.md says on prepared facts.
/// (End-to-end decisions from real messages are the processor's tests.)
@Suite struct ShippedPackTests {
    func pack() throws -> RulePack {
        switch try Linter.load(Paths.rules) {
        case .success(let pack): return pack
        case .failure(let result):
            Issue.record("rules/ does not lint clean: \(result.diagnostics.map(\.message))")
            throw result
        }
    }

    func decide(_ configure: (inout FactsBuilder) -> Void) throws -> RuleOutcome {
        let pack = try pack()
        var builder = FactsBuilder()
        builder.settings = pack.settings(for: "ann@contoso.com")
        builder.participants = [FactsBuilder.person("ann@contoso.com", isInternal: true, owner: true)]
        configure(&builder)
        return try pack.evaluate(try builder.build()).0
    }

    @Test func lintsCleanEvenStrict() throws {
        let result = try Linter.lint(paths: [Paths.rules], strict: true)
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics.map { "\($0.location.description): \($0.message)" })")
    }

    @Test func customerMailWithAContactIsSaved() throws {
        let outcome = try decide { $0.participants.append(FactsBuilder.person("bob@fabrikam.com", contact: "003")); $0.related = ["people": .int(1)] }
        #expect(outcome.deciding?.id == "general-mode")
        #expect(outcome.verdict == .save)
    }

    /// Without the CRM's facts the run stops at the first rule that reads one; before it, it
    /// concludes what the complete run does.
    @Test func evaluationWithoutTheCRMStopsWhereARuleNeedsIt() throws {
        let pack = try pack()
        var builder = FactsBuilder()
        builder.settings = pack.settings(for: "ann@contoso.com")
        builder.participants = [FactsBuilder.person("ann@contoso.com", isInternal: true, owner: true),
                                FactsBuilder.person("dan@contoso.com", isInternal: true)]
        let internalMail = try builder.build()
        let staged = try #require(try pack.evaluate(internalMail, within: []))
        let whole = try pack.evaluate(internalMail).0
        #expect(staged.deciding?.id == "all-internal-or-blocked")
        #expect(staged.applied.map(\.id) == whole.applied.map(\.id))
        #expect(staged.observations == whole.observations && !staged.observations.isEmpty)
        // A customer's mail reaches the Magic Anchor, which reads the CRM.
        builder.participants.append(FactsBuilder.person("bob@fabrikam.com"))
        #expect(try pack.evaluate(try builder.build(), within: []) == nil)
    }

    @Test func internalOnlyIsBlockedAndServiceMailUnsupported() throws {
        #expect(try decide { $0.participants.append(FactsBuilder.person("dan@contoso.com", isInternal: true)) }.verdict == .blocked)
        let service = try decide { $0.message["service_kind"] = .string("read_receipt") }
        #expect(service.deciding?.id == "service-email")
        #expect(service.verdict == .unsupported)
    }

    @Test func filteredParticipantsAreObserved() throws {
        let outcome = try decide {
            $0.participants.append(FactsBuilder.person("bob@fabrikam.com", contact: "003"))
            $0.participants.append(FactsBuilder.person("dan@contoso.com", isInternal: true))
            $0.related = ["people": .int(1)]
        }
        #expect(outcome.observations == ["Some not important emails were filtered: dan@contoso.com"])
    }

    @Test func foldersAndForceSync() throws {
        let other = try decide {
            $0.participants.append(FactsBuilder.person("bob@fabrikam.com"))
            $0.mailbox["folder"] = .string("Archive")
            $0.mailbox["folder_role"] = .string("other") // as the engine finds it (no role list names Archive)
        }
        #expect(other.deciding?.id == "folder-not-synchronized")
        let sub = try decide {
            $0.participants.append(FactsBuilder.person("bob@fabrikam.com", contact: "003"))
            $0.mailbox["folder"] = .string("Inbox/Deals")
            $0.related = ["people": .int(1)]
        }
        #expect(sub.verdict == .save)
        let button = try decide { $0.participants.append(FactsBuilder.person("bob@fabrikam.com")); $0.mailbox["folder"] = .string("Archive"); $0.trigger = "button" }
        #expect(button.deciding?.id == "force-sync")
        #expect(button.createRecords == false)
    }

    @Test func magicAnchorAndCaseThread() throws {
        let anchor = try decide { $0.participants.append(FactsBuilder.person("bob@fabrikam.com")); $0.thread = ["anchor_who": .string("003")] }
        #expect(anchor.deciding?.id == "magic-anchor")
        #expect(anchor.link == .magicAnchor)
        let caseThread = try decide {
            $0.participants.append(FactsBuilder.person("bob@fabrikam.com", contact: "003"))
            $0.thread = ["case": .string("500")]
            $0.related = ["people": .int(1)]
        }
        #expect(caseThread.link == .caseAndContact)
    }

    @Test func noRelatedRecordIsSkipped() throws {
        let outcome = try decide { $0.participants.append(FactsBuilder.person("kim@gmail.com")) }
        #expect(outcome.deciding?.id == "no-related-records")
        #expect(outcome.verdict == .skip)
    }

    @Test func personalSettingsOverrideTheOrgOnlyWhereAllowed() throws {
        let pack = try pack()
        #expect(pack.settings(for: "ann@contoso.com")["category"] == .string("CRM"))
        #expect(pack.settings(for: "dan@contoso.com")["category"] == .string("Salesforce"))
        #expect(pack.user("ANN@contoso.com")?.blocklist.contains("x@promo.example") == true)
    }
}
