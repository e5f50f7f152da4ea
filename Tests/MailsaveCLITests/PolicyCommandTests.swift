import Foundation
import MailRules
import Testing

/// Issue 9 end to end: the command line's side of the policy (exit codes, options).
@Suite struct PolicyCommandTests {
    static let base = ["process", "--mailbox", "ann@contoso.com", "--crm", "examples/crm"]

    @Test func anInvalidSelectionIsAUsageErrorNamingTheId() throws {
        for (selection, reason) in [("contact=0035e00000Zzz01", "no such record in the CRM"),
                                    ("contact=5005e00000Cas01", "is a Case, not a Contact"),
                                    ("account=0015e00000Zzz01", "no such record")] {
            for command in ["process", "explain"] {
                let result = try Binary.run([command] + Self.base.dropFirst() + ["--trigger", "button", "--select", selection,
                                                                                 "examples/messages/01-customer-question.eml"])
                #expect(result.status == 2, "\(command) \(selection): \(result.stderr)")
                #expect(result.stdout.isEmpty)
                #expect(result.stderr.contains(String(selection.split(separator: "=")[1])) && result.stderr.contains(reason), "\(result.stderr)")
            }
        }
    }

    /// A Lead chosen with another record (an Opportunity, a Contact) made a Task Salesforce
    /// refuses (a Lead's WhoId with a WhatId) or an EmailMessage related to both: refused
    /// as `edit` refuses it; the Lead alone is fine.
    @Test func aLeadSelectedWithAnotherRecordIsRefused() throws {
        for others in [["--select", "opportunity=0065e00000Opp01"], ["--select", "contact=0035e00000Bob01"]] {
            let result = try Binary.run(Self.base + ["--trigger", "button", "--select", "lead=00Q5e00000Kim01"] + others
                                        + ["examples/messages/01-customer-question.eml"])
            #expect(result.status == 2, "\(others): \(result.stderr)")
            #expect(result.stderr.contains("a Lead excludes every other link"), "\(result.stderr)")
        }
        let alone = try Binary.run(Self.base + ["--trigger", "button", "--select", "lead=00Q5e00000Kim01", "examples/messages/01-customer-question.eml"])
        #expect(alone.status == 0, "\(alone.stderr)")
    }

    @Test func anInvalidSelectionSavesNothing() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mailsave-select-\(getpid())")
        try? FileManager.default.removeItem(at: folder)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = folder.appendingPathComponent("crm.sqlite").path
        for object in ["Account", "Contact", "Case"] {
            let result = try Binary.run(["crm", "import", "--store", store, "--object", object, "examples/crm/\(object).csv"])
            #expect(result.status == 0, "\(result.stderr)")
        }
        let result = try Binary.run(["process", "--store", store, "--mailbox", "ann@contoso.com", "--trigger", "button",
                                     "--select", "contact=0035e00000Zzz01", "--apply", "examples/messages/01-customer-question.eml"])
        #expect(result.status == 2)
        let tasks = try Binary.run(["crm", "export", "--store", store, "--object", "Task"])
        #expect(tasks.stdout.split(separator: "\n").count <= 1, "\(tasks.stdout)")
    }
}

@Suite struct FolderRoleCommandTests {
    static let base = ["process", "--mailbox", "ann@contoso.com", "--crm", "examples/crm"]

    func verdict(_ arguments: [String]) throws -> (Int32, String) {
        let result = try Binary.run(Self.base + arguments + ["examples/messages/03-outbound-reply.eml"])
        let object = try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let rule = ((object?["reasons"] as? [[String: Any]])?.first?["rule"] as? String) ?? result.stderr
        return (result.status, "\(object?["verdict"] as? String ?? "-") \(rule)")
    }

    @Test func theRoleComesFromTheCallerOrTheName() throws {
        #expect(try verdict(["--folder", "Sent Items"]) == (0, "save general-mode"))
        #expect(try verdict(["--folder", "Verschickt", "--folder-role", "sentitems"]) == (0, "save general-mode"))
        #expect(try verdict(["--folder", "Verschickt"]) == (0, "skip folder-not-synchronized"))
        #expect(try verdict(["--folder", "Sent", "--folder-role", "\\Archive"]) == (0, "skip folder-not-synchronized"))
        let (status, text) = try verdict(["--folder-role", "postbox"])
        #expect(status == 2)
        #expect(text.contains("--folder-role must be one of inbox, sent, salesforce, other"))
    }
}

@Suite struct NoMessageIDCommandTests {
    /// Saved once by its fingerprint: the second --apply is skipped by already-saved and
    /// reports the first run's record, created false.
    @Test func aMessageWithoutMessageIDIsSavedOnce() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mailsave-noid-\(getpid())")
        try? FileManager.default.removeItem(at: folder)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = folder.appendingPathComponent("crm.sqlite").path
        for object in ["Account", "Contact", "User"] {
            #expect(try Binary.run(["crm", "import", "--store", store, "--object", object, "examples/crm/\(object).csv"]).status == 0)
        }
        let file = folder.appendingPathComponent("no-id.eml")
        try Data("From: bob@fabrikam.com\r\nTo: ann@contoso.com\r\nSubject: Signed form\r\nDate: Fri, 6 Mar 2026 10:00:00 +0000\r\n\r\nAttached.\r\n".utf8)
            .write(to: file)
        var outcomes: [String] = []
        for _ in 0..<2 {
            let result = try Binary.run(["process", "--store", store, "--mailbox", "ann@contoso.com", "--apply", file.path])
            #expect(result.status == 0, "\(result.stderr)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
            let rule = (object["reasons"] as? [[String: Any]])?.first?["rule"] as? String ?? "-"
            let saved = object["saved"] as? [String: Any]
            outcomes.append("\(object["verdict"] as? String ?? "-") \(rule) \(saved?["created"] as? Bool ?? false)")
        }
        #expect(outcomes == ["save general-mode true", "skip already-saved false"])
        let tasks = try Binary.run(["crm", "export", "--store", store, "--object", "Task"])
        #expect(tasks.stdout.components(separatedBy: "\n00T").count == 2, "one Task: \(tasks.stdout)")
    }
}

@Suite struct ExplainFactsCommandTests {
    /// explain --format json has every fact a rule can read, under the name the rules use.
    @Test func everyFactTheRulesReadIsThere() throws {
        let result = try Binary.run(["explain", "--format", "json", "--mailbox", "ann@contoso.com", "--crm", "examples/crm",
                                     "--trigger", "button", "--select", "contact=0035e00000Bob01", "examples/messages/01-customer-question.eml"])
        #expect(result.status == 0, "\(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let facts = try #require(object["facts"] as? [String: Any])
        for field in FactsSchema.root.fields {
            #expect(facts[field.name] != nil, "facts.\(field.name)")
            var nested: [String: Any]?
            var type: ObjectType?
            switch field.type {
            case .object(let objectType): nested = facts[field.name] as? [String: Any]; type = objectType
            case .list(.object(let objectType)): nested = (facts[field.name] as? [[String: Any]])?.first; type = objectType
            default: break
            }
            for inner in type?.fields ?? [] { #expect(nested?[inner.name] != nil, "facts.\(field.name).\(inner.name)") }
        }
        #expect(facts["trigger"] as? String == "button")
        #expect((facts["selection"] as? [String: Any])?["who"] as? [String] == ["0035e00000Bob01"])
        #expect((facts["mailbox"] as? [String: Any])?["folder_role"] as? String == "inbox")
    }

    @Test func theTextSaysWhichAccountADomainMatched() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mailsave-explain-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("domain.eml")
        try Data("From: someone@northwind.example\nTo: ann@contoso.com\nSubject: Hi\n\nHi.\n".utf8).write(to: file)
        let result = try Binary.run(["explain", "--mailbox", "ann@contoso.com", "--crm", "examples/crm", file.path])
        // Carla is a Contact of Northwind: her Account comes before the website match.
        #expect(result.stdout.contains("someone@northwind.example         Account 0015e00000Nor01 (the Account of the Contacts at northwind.example)"), "\(result.stdout)")
        // No Contact at lee-consulting.example: the website decides.
        try Data("From: someone@lee-consulting.example\nTo: ann@contoso.com\nSubject: Hi\n\nHi.\n".utf8).write(to: file)
        let byWebsite = try Binary.run(["explain", "--mailbox", "ann@contoso.com", "--crm", "examples/crm", file.path])
        #expect(byWebsite.stdout.contains("Account 0015e00000Lee01 (by website domain lee-consulting.example)"), "\(byWebsite.stdout)")
    }
}
