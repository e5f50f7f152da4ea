import Foundation
import MailRules
import Testing

/// `process --thread` (issue 9, item 12) and `edit` keeping the save rules (item 9).
@Suite(.serialized) struct ThreadAndEditTests {
    func temporaryFolder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mailsave-thread-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    func makeStore(in folder: URL, extra: [String: String] = [:]) throws -> String {
        let store = folder.appendingPathComponent("crm.sqlite").path
        for object in ["Account", "Contact", "Lead", "Opportunity", "Case", "User", "EmailMessage", "EmailMessageRelation", "Task"] {
            let result = try Binary.run(["crm", "import", "--store", store, "--object", object, "examples/crm/\(object).csv"])
            try #require(result.status == 0, "\(result.stderr)")
        }
        for (object, csv) in extra {
            let file = folder.appendingPathComponent("\(object)-extra.csv")
            try csv.write(to: file, atomically: true, encoding: .utf8)
            let result = try Binary.run(["crm", "import", "--store", store, "--object", object, file.path])
            try #require(result.status == 0, "\(result.stderr)")
        }
        return store
    }

    /// A reply to 03-outbound-reply.eml, dated before the whole thread (clocks lie): it still comes last.
    static let lateReply = """
        From: Bob Buyer <bob@fabrikam.com>\r
        To: ann@contoso.com\r
        Subject: Re: Quote for 20 licences\r
        Date: Sun, 1 Mar 2026 10:00:00 +0000\r
        Message-ID: <late-reply-1@mail.fabrikam.com>\r
        In-Reply-To: <AM0PR01-reply-1@contoso.com>\r
        References: <CAB1234567@mail.fabrikam.com> <AM0PR01-reply-1@contoso.com>\r
        \r
        Thanks.\r

        """

    func fields(_ line: String) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    @Test func aThreadIsDecidedParentsFirstEachOnceAndOnlyInboxAndSentItemsAreSaved() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let reply = folder.appendingPathComponent("late-reply.eml")
        try Self.lateReply.write(to: reply, atomically: true, encoding: .utf8)
        let store = try makeStore(in: folder)
        let arguments = ["process", "--thread", "--store", store, "--mailbox", "ann@contoso.com", "--apply",
                         "--message-folder", "Archive", "--message-folder", "Sent Items", "--message-folder", "Inbox",
                         reply.path, "examples/messages/03-outbound-reply.eml", "examples/messages/01-customer-question.eml",
                         "examples/messages/01-customer-question.eml"]
        let result = try Binary.run(arguments)
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        try #require(lines.count == 3)
        let decided = try lines.map(fields)
        #expect(decided.map { $0["file"] as? String } == ["examples/messages/01-customer-question.eml", "examples/messages/03-outbound-reply.eml", reply.path])
        #expect(decided.map { $0["verdict"] as? String } == ["save", "save", "skip"])
        #expect((decided[2]["reasons"] as? [[String: Any]])?.first?["rule"] as? String == "thread-outside-inbox-and-sent")
        #expect(decided.map { ($0["saved"] as? [String: Any])?["created"] as? Bool } == [true, true, nil])
        // The second copy of 01 is decided once, and said so.
        #expect(result.stderr.contains("the same message as examples/messages/01-customer-question.eml"))
        // Again: each message was saved once.
        let again = try Binary.run(arguments)
        #expect(again.status == 0)
        let second = try again.stdout.split(separator: "\n").map { try fields(String($0)) }
        #expect(second.map { ($0["reasons"] as? [[String: Any]])?.first?["rule"] as? String } == ["already-saved", "already-saved", "thread-outside-inbox-and-sent"])
    }

    @Test func aThreadCanBeAnMbox() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let mbox = folder.appendingPathComponent("thread.mbox")
        var text = ""
        for message in [Self.lateReply, try String(contentsOfFile: "examples/messages/01-customer-question.eml", encoding: .utf8)] {
            text += "From - Mon Mar  2 09:15:00 2026\n" + message.replacingOccurrences(of: "\r\n", with: "\n") + "\n"
        }
        try text.write(to: mbox, atomically: true, encoding: .utf8)
        let result = try Binary.run(["process", "--thread", "--crm", "examples/crm", "--mailbox", "ann@contoso.com", "--format", "table", "--mbox", mbox.path])
        #expect(result.status == 0, "\(result.stderr)")
        let rows = result.stdout.split(separator: "\n").map(String.init)
        try #require(rows.count == 3)
        #expect(rows[1].hasPrefix("thread.mbox:2 ") || rows[1].contains("thread.mbox:"))
        #expect(rows[1].contains("save") && rows[2].contains("save"))
        // The question (second in the mbox) is decided first.
        #expect(rows[1].contains("general-mode") && rows[1].contains("0065e00000Opp01"))
        #expect(try Binary.run(["process", "--crm", "examples/crm", "--mailbox", "ann@contoso.com", "--mbox", mbox.path]).status == 2)
        // More --message-folder than messages (the extra ones were ignored): a usage error,
        // for files before anything is read, for an mbox before anything is decided.
        for source in [["--mbox", mbox.path], ["examples/messages/01-customer-question.eml", "examples/messages/03-outbound-reply.eml"]] {
            let extra = try Binary.run(["process", "--thread", "--crm", "examples/crm", "--mailbox", "ann@contoso.com",
                                        "--message-folder", "Inbox", "--message-folder", "Sent", "--message-folder", "Archive"] + source)
            #expect(extra.status == 2 && extra.stdout.isEmpty, "\(source): \(extra.stderr)")
            #expect(extra.stderr.contains("--message-folder is given 3 times for 2 messages"), "\(extra.stderr)")
        }
    }

    @Test func editKeepsTheSaveRulesAndEachRefusalHasItsOwnCode() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try makeStore(in: folder, extra: [
            "EmailMessage": "Id,Subject,MessageIdentifier,FromAddress,ToAddress,Incoming,Status,OwnerId,RelatedToId\n02s5e00000Own01,Quote,<owned-1@contoso.com>,ann@contoso.com,bob@fabrikam.com,false,3,0055e00000Ann01,0015e00000Fab01\n",
            "EmailMessageRelation": "Id,EmailMessageId,RelationId,RelationType,RelationAddress\n0Rb5e00000Own01,02s5e00000Own01,0035e00000Bob01,ToAddress,bob@fabrikam.com\n",
            "Contact": "Id,FirstName,LastName,Email,AccountId\n0035e00000Nws01,News,Letter,news@newsletters.example,\n0035e00000Int01,Dan,Inside,dan@contoso.com,\n",
        ])
        func edit(_ arguments: [String], as user: String = "0055e00000Ann01", id: String = "<owned-1@contoso.com>") throws -> (status: Int32, stderr: String) {
            let result = try Binary.run(["edit", "--store", store, "--as", user, id] + arguments)
            return (result.status, result.stderr)
        }
        let missing = try edit(["--set", "Subject=x"], id: "<nobody@contoso.com>")
        #expect(missing.status == 8)
        #expect(missing.stderr.hasPrefix("mailsave: no saved EmailMessage has the Message-ID"))
        #expect(try edit(["--set", "Subject=x"], as: "0055e00000Zzz01").status == 8)
        #expect(try edit(["--set", "Subject=x"], as: "0055e00000Dan01").status == 7)
        // A value the org cannot hold: refused before anything is touched (usage, exit 2).
        let long = try edit(["--set", "Subject=" + String(repeating: "😀", count: 1_501)])
        #expect(long.status == 2)
        #expect(long.stderr.contains("--set Subject: 3002 characters; EmailMessage.Subject holds 3000"), "\(long.stderr)")
        let control = try edit(["--set", "TextBody=a\u{1}b"])
        #expect(control.status == 2)
        #expect(control.stderr.contains("--set TextBody: the value holds a control character"), "\(control.stderr)")
        let field = try edit(["--set", "FromAddress=x@y.example"])
        #expect(field.status == 9)
        #expect(field.stderr.contains("field 'FromAddress' cannot be edited"))
        let lower = try edit(["--set", "subject=x"])
        #expect(lower.status == 9)
        #expect(lower.stderr.contains("field 'subject' cannot be edited (did you mean 'Subject'?)"), "\(lower.stderr)")
        // An edit of nothing: a usage error (it deleted and re-created the record under a new id).
        let none = try edit([])
        #expect(none.status == 2)
        #expect(none.stderr.contains("nothing to edit: give --set FIELD=VALUE or --link who=ID|what=ID"), "\(none.stderr)")
        let nothing = try edit(["--link", "what=0065e00000Zzz01"])
        #expect(nothing.status == 10)
        #expect(nothing.stderr.contains("cannot link 0065e00000Zzz01: no such record"))
        let blocked = try edit(["--link", "who=0035e00000Nws01"])
        #expect(blocked.status == 10)
        #expect(blocked.stderr.contains("org blocklist"))
        let inside = try edit(["--link", "who=0035e00000Int01"])
        #expect(inside.status == 10)
        #expect(inside.stderr.contains("internal"))
        let kind = try edit(["--link", "what=0035e00000Bob01"])
        #expect(kind.status == 10)
        // A Lead excludes RelatedToId, as process does.
        let lead = try edit(["--link", "who=00Q5e00000Kim01"])
        #expect(lead.status == 10)
        #expect(lead.stderr.contains("a Lead excludes every other link"))
        // Nothing changed by any refusal; a Lead with RelatedToId cleared is fine.
        let ok = try Binary.run(["edit", "--store", store, "--as", "0055e00000Ann01", "<owned-1@contoso.com>", "--link", "who=00Q5e00000Kim01", "--link", "what="])
        #expect(ok.status == 0, "\(ok.stderr)")
        // The same edit again: RelatedToId is already empty (the store keeps no empty field), so
        // nothing changes and the id stays.
        let again = try Binary.run(["edit", "--store", store, "--as", "0055e00000Ann01", "<owned-1@contoso.com>", "--link", "who=00Q5e00000Kim01", "--link", "what="])
        #expect(again.status == 0 && again.stdout == ok.stdout, "\(ok.stdout) \(again.stdout)")
        // A person named twice (also as their 18-character id) is related once.
        let twice = try Binary.run(["edit", "--store", store, "--as", "0055e00000Ann01", "<owned-1@contoso.com>",
                                    "--link", "who=0035e00000Bob01", "--link", "who=0035e00000Bob01", "--link", "who=0035e00000Bob01AAA"])
        #expect(twice.status == 0, "\(twice.stderr)")
        let relations = try Binary.run(["crm", "export", "--store", store, "--object", "EmailMessageRelation"])
        let edited = try #require(try fields(twice.stdout.trimmingCharacters(in: .whitespacesAndNewlines))["id"] as? String)
        #expect(relations.stdout.split(separator: "\n").filter { $0.contains(edited) && $0.contains("0035e00000Bob01") }.count == 1, "\(relations.stdout)")
        // The same edit again changes nothing: the record keeps its id (it was deleted and
        // re-created under a new one each time).
        let same = try Binary.run(["edit", "--store", store, "--as", "0055e00000Ann01", "<owned-1@contoso.com>", "--link", "who=0035e00000Bob01"])
        #expect(same.status == 0, "\(same.stderr)")
        #expect(try fields(same.stdout.trimmingCharacters(in: .whitespacesAndNewlines))["id"] as? String == edited)
        let subject = try Binary.run(["edit", "--store", store, "--as", "0055e00000Ann01", "<owned-1@contoso.com>", "--set", "Subject=Quote"])
        #expect(try fields(subject.stdout.trimmingCharacters(in: .whitespacesAndNewlines))["id"] as? String == edited, "\(subject.stdout)")
        // Ids in their 18-character form (the store holds 15): the same User, the same people.
        let withSuffix = { (id: String) in id + SalesforceID.caseSafeSuffix(id) }
        let eighteen = try Binary.run(["edit", "--store", store, "--as", withSuffix("0055e00000Ann01"), "<owned-1@contoso.com>", "--link", "who=" + withSuffix("0035e00000Bob01")])
        #expect(eighteen.status == 0, "\(eighteen.stderr)")
        #expect(try fields(eighteen.stdout.trimmingCharacters(in: .whitespacesAndNewlines))["id"] as? String == edited, "\(eighteen.stdout)")
    }
}
