import Foundation
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
