import MailEngine
import MailMessage
import MailRules

#if canImport(Glibc)
import Glibc
#endif

/// The whole decision per message, as `process` makes it once the message is parsed: facts
/// (participants, blocklists, CRM matches, direction, related records, thread, ledger), the
/// rules, and the record mapping. The CRM is the sample export (`examples/crm`) in memory, so
/// the figure is the engine's, not the store's; the messages are the sample mailbox's
/// (`examples/messages`), parsed beforehand.
enum DecideBench {
    static func run(rules: String, messages folder: String, crm: String, seconds: Double) {
        let pack = loadPackOrExit(rules)
        var records: [CRMRecord] = []
        for object in ["Contact", "Lead", "Account", "Case", "Opportunity", "User", "EmailMessage", "EmailMessageRelation", "Task"] {
            guard let bytes = readFile(crm + "/" + object + ".csv") else { continue }
            records += (try? InMemoryDirectory.parseCSV(bytes: bytes, object: object)) ?? []
        }
        let messages = listFiles(folder).compactMap { readFile($0).flatMap { try? MessageParser.parse($0) } }
        guard !messages.isEmpty else {
            printError("mailsave-bench: no messages under \(folder)")
            exit(3)
        }
        let engine = Engine(pack: pack, directory: InMemoryDirectory(records: records))
        let context = ProcessContext(mailbox: "ann@contoso.com")
        // Which rule decides each message (the mix matters: a message decided by the first
        // rule costs less than one that reaches the last).
        var deciding: [String: Int] = [:]
        for message in messages {
            if let decision = try? engine.decide(message, context: context).0 {
                deciding[decision.reasons.first?.rule ?? "(none)", default: 0] += 1
            }
        }
        var count = 0
        var sink = 0
        let start = now()
        repeat {
            for message in messages {
                if let decision = try? engine.decide(message, context: context).0 { sink &+= decision.reasons.count }
            }
            count += messages.count
        } while now() - start < seconds
        let perMessage = (now() - start) / Double(count) * 1e6
        let mix = deciding.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",")
        print("{\"bench\":\"decide\",\"pack\":\"\(rules)\",\"rules\":\(pack.rules.count),\"messages\":\(messages.count),"
            + "\"decisions\":\(count),\"microseconds_per_message\":\(RulesBench.rounded(perMessage)),"
            + "\"deciding_rules\":{\(mix)},\"sink\":\(sink % 10)}")
    }
}
