import MailEngine
import MailMessage
import MailRules
import MailStore

#if canImport(Glibc)
import Glibc
#endif

/// The embedded store against its targets: look-ups under 20 µs in a store of 1,000,000
/// Contacts, and at least 2,000 saved messages a second in one process.
enum StoreBench {
    static func run(contacts: Int, messages: Int) {
        let path = "/tmp/mailsave-bench-store-\(getpid()).sqlite"
        defer { for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) } }
        do {
            let store = try CRMStore(path: path)
            let t0 = now()
            var batch: [CRMRecord] = []
            batch.reserveCapacity(10_000)
            for index in 0..<contacts {
                let account = "0015e" + String(index / 10, radix: 36).leftPadded(10)
                batch.append(CRMRecord(object: "Contact", id: "0035e" + String(index, radix: 36).leftPadded(10), fields: [
                    "FirstName": "First\(index)", "LastName": "Last\(index)", "Email": "person\(index)@company\(index % 5000).example",
                    "AccountId": account,
                ]))
                if index % 10 == 0 {
                    batch.append(CRMRecord(object: "Account", id: account, fields: ["Name": "Company \(index / 10)",
                                                                                   "Website": "www.company\(index % 5000).example"]))
                }
                if batch.count >= 10_000 {
                    try store.add(batch)
                    batch.removeAll(keepingCapacity: true)
                }
            }
            try store.add(batch)
            batch.removeAll()
            try store.add([CRMRecord(object: "User", id: "0055e00000Ann01", fields: ["Email": "ann@contoso.com"])])
            let loadSeconds = now() - t0

            // Look-ups: the related-record search's main query, on random addresses.
            var generator = SplitMix(state: 42)
            let lookups = 100_000
            var found = 0
            let t1 = now()
            for _ in 0..<lookups {
                let index = Int(generator.next() % UInt64(contacts))
                found += try store.contacts(email: "person\(index)@company\(index % 5000).example").count
            }
            let lookupMicros = (now() - t1) / Double(lookups) * 1e6

            // The same look-ups as a decision makes them: ten to a snapshot.
            let t1b = now()
            for _ in 0..<(lookups / 10) {
                try store.snapshot {
                    for _ in 0..<10 {
                        let index = Int(generator.next() % UInt64(contacts))
                        found += try store.contacts(email: "person\(index)@company\(index % 5000).example").count
                    }
                }
            }
            let snapshotMicros = (now() - t1b) / Double(lookups) * 1e6

            // Decide and save, in one process: distinct messages from random Contacts.
            guard case .success(let pack) = try Linter.load("rules") else {
                printError("mailsave-bench: rules/ does not load")
                exit(3)
            }
            let engine = Engine(pack: pack, directory: store)
            let context = ProcessContext(mailbox: "ann@contoso.com")
            var inputs: [[UInt8]] = []
            for number in 0..<messages {
                let index = Int(generator.next() % UInt64(contacts))
                inputs.append(Array(("From: Person \(index) <person\(index)@company\(index % 5000).example>\r\nTo: Ann <ann@contoso.com>\r\n"
                    + "Subject: Order \(number)\r\nDate: Mon, 2 Mar 2026 09:15:00 +0000\r\nMessage-ID: <bench-\(number)@company.example>\r\n\r\n"
                    + "Please confirm order \(number).\r\n").utf8))
            }
            var saved = 0
            let t2 = now()
            for input in inputs {
                let message = try MessageParser.parse(input)
                let decision = try engine.decide(message, context: context).0
                if let result = try store.save(decision, message: message, mailbox: "ann@contoso.com"), result.created { saved += 1 }
            }
            let applySeconds = now() - t2
            let rate = Double(saved) / applySeconds
            print("{\"bench\":\"store\",\"contacts\":\(contacts),\"load_seconds\":\(RulesBench.rounded(loadSeconds)),"
                + "\"lookup_microseconds\":\(RulesBench.rounded(lookupMicros)),\"lookup_target_microseconds\":20,"
                + "\"lookup_over_target\":\(RulesBench.rounded(lookupMicros / 20)),"
                + "\"lookup_in_decision_microseconds\":\(RulesBench.rounded(snapshotMicros)),\"found\":\(found),"
                + "\"saved\":\(saved),\"saved_per_second\":\(Int(rate)),\"saved_target_per_second\":2000,"
                + "\"saved_over_target\":\(RulesBench.rounded(rate / 2000))}")
        } catch {
            printError("mailsave-bench: \(error)")
            exit(3)
        }
    }
}

struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
