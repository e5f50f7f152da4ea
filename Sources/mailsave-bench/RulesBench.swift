import MailRules

#if canImport(Glibc)
import Glibc
#endif

/// Seconds on the monotonic clock.
func now() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
}

func writeFile(_ path: String, _ text: String) -> Bool {
    guard let handle = fopen(path, "wb") else { return false }
    defer { fclose(handle) }
    return text.withCString { fputs($0, handle) } >= 0
}

enum RulesBench {
    /// Writes a pack with a `blocklist`-entry blocklist and `rules` rules into `directory`.
    static func generatePack(in directory: String, blocklist: Int, rules: Int) -> Bool {
        mkdir(directory, 0o755)
        var lists = "lists:\n  corporate:\n    kind: domains\n    entries: [contoso.com, contoso.co.uk]\n"
        lists += "  blocked:\n    kind: addresses_and_domains\n    entries:\n"
        lists.reserveCapacity(blocklist * 32)
        for index in 0..<blocklist {
            lists += index % 2 == 0 ? "      - sender\(index)@vendor\(index % 977).example\n" : "      - spam\(index).example\n"
        }
        let settings = "settings:\n  corporate_domains: corporate\n  org_blocklist: blocked\n  auto_save_mode: general\n"
        var text = "rules:\n"
        for index in 0..<rules {
            let condition: String
            switch index % 4 {
            case 0: condition = "participants.any(p, p.domain == \"d\(index).example\" and not p.blocked)"
            case 1: condition = "message.from in lists.blocked and trigger == \"auto\" and message.size > \(index)"
            case 2: condition = "has(thread.case) and starts_with(thread.case, \"500\(index)\")"
            default: condition = "participants.count(p, p.address in lists.blocked) > \(index % 7) and direction == \"inbound\""
            }
            text += "  - id: rule-\(index)\n    description: Generated rule \(index).\n    when: '\(condition)'\n    then: \(index % 3 == 0 ? "save" : "skip")\n"
        }
        text += "  - id: fallback\n    description: Everything else.\n    then: skip\n"
        return writeFile(directory + "/settings.yaml", settings) && writeFile(directory + "/lists.yaml", lists)
            && writeFile(directory + "/rules.yaml", text)
    }

    static func lint(runs: Int) {
        let directory = "/tmp/mailsave-bench-pack-\(getpid())"
        guard generatePack(in: directory, blocklist: 100_000, rules: 200) else {
            printError("mailsave-bench: cannot write \(directory)")
            exit(3)
        }
        defer {
            for name in ["settings.yaml", "lists.yaml", "rules.yaml"] { unlink(directory + "/" + name) }
            rmdir(directory)
        }
        // Where the time goes, once: reading and YAML, the loader's format checks, compiling.
        do {
            let files = ["settings.yaml", "lists.yaml", "rules.yaml"].map { directory + "/" + $0 }
            let t0 = now()
            let sources = try files.map { path throws(PackReadError) in try PackLoader.read(path) }
            let t1 = now()
            for source in sources { _ = YAMLLoader.load(source) }
            let t2 = now()
            var loader = PackLoader()
            for source in sources { loader.loadOrgFile(source) }
            let t3 = now()
            var compiler = PackCompiler()
            _ = compiler.compile(loader.definition)
            let t4 = now()
            print("{\"bench\":\"lint-phases\",\"read\":\(rounded(t1 - t0)),\"yaml\":\(rounded(t2 - t1)),"
                + "\"yaml_and_format\":\(rounded(t3 - t2)),\"compile_and_checks\":\(rounded(t4 - t3))}")
        } catch {
            printError("mailsave-bench: \(error)")
        }
        var times: [Double] = []
        var problems = 0
        var errors = 0
        var sample = ""
        for _ in 0..<runs {
            let start = now()
            do {
                let result = try Linter.lint(paths: [directory])
                problems = result.diagnostics.count
                errors = result.errorCount
                sample = result.diagnostics.first.map { "\($0.check): \($0.message)" } ?? ""
            } catch {
                printError("mailsave-bench: \(error)")
                exit(3)
            }
            times.append(now() - start)
        }
        times.sort()
        let median = times[times.count / 2]
        print("{\"bench\":\"lint\",\"blocklist_entries\":100000,\"rules\":201,\"runs\":\(runs),\"min_seconds\":\(rounded(times[0])),"
            + "\"median_seconds\":\(rounded(median)),\"target_seconds\":0.5,\"median_over_target\":\(rounded(median / 0.5)),\"diagnostics\":\(problems),\"errors\":\(errors),\"first\":\"\(sample)\"}")
    }

    static func rounded(_ value: Double) -> Double { (value * 10_000).rounded() / 10_000 }

    /// Facts for a typical mix of messages, as the engine would build them.
    static func sampleFacts(_ pack: RulePack) throws -> [FactObject] {
        func person(_ address: String, isInternal: Bool = false, contact: String? = nil, owner: Bool = false) throws -> Value {
            var fields: [String: Value] = ["address": .string(address), "domain": .string(String(address.split(separator: "@").last ?? "")),
                                           "role": .string("to"), "internal": .bool(isInternal), "blocked": .bool(isInternal),
                                           "owner": .bool(owner)]
            if isInternal { fields["blocked_by"] = .string("internal") }
            if let contact { fields["contact"] = .string(contact) }
            return .object(try FactObject(FactsSchema.participant, fields))
        }
        func facts(participants: [Value], service: String = "none", folder: String = "Inbox", people: Int = 0) throws -> FactObject {
            try FactObject(FactsSchema.root, [
                "message": .object(try FactObject(FactsSchema.message, ["subject": .string("Quote for 20 licences"), "service_kind": .string(service)])),
                "participants": .list(participants),
                "mailbox": .object(try FactObject(FactsSchema.mailbox, ["address": .string("ann@contoso.com"), "folder": .string(folder)])),
                "trigger": .string("auto"), "direction": .string("inbound"),
                "related": .object(try FactObject(FactsSchema.related, ["people": .int(people)])),
                "thread": .object(FactObject(defaultsOf: FactsSchema.thread)),
                "ledger": .object(FactObject(defaultsOf: FactsSchema.ledger)),
                "selection": .object(FactObject(defaultsOf: FactsSchema.selection)),
                "settings": .object(pack.settings(for: "ann@contoso.com")),
            ])
        }
        let owner = try person("ann@contoso.com", isInternal: true, owner: true)
        return [
            try facts(participants: [owner, try person("bob@fabrikam.com", contact: "0035000000AbCdE"), try person("carla@northwind.example")], people: 1),
            try facts(participants: [owner, try person("dan@contoso.com", isInternal: true)]),
            try facts(participants: [owner, try person("bob@fabrikam.com")], service: "read_receipt"),
            try facts(participants: [owner, try person("kim@gmail.com")], folder: "Archive"),
        ]
    }

    static func evaluate(rules: String, seconds: Double) {
        let pack = loadPackOrExit(rules)
        guard let samples = try? sampleFacts(pack) else {
            printError("mailsave-bench: cannot build the sample facts")
            exit(3)
        }
        var decided = 0
        let start = now()
        var count = 0
        repeat {
            for facts in samples {
                if let outcome = try? pack.evaluate(facts).0, outcome.deciding != nil { decided += 1 }
            }
            count += samples.count
        } while now() - start < seconds
        let elapsed = now() - start
        let perMessage = elapsed / Double(count) * 1e6
        print("{\"bench\":\"evaluate\",\"pack\":\"\(rules)\",\"rules\":\(pack.rules.count),\"messages\":\(count),"
            + "\"microseconds_per_message\":\(rounded(perMessage)),\"target_microseconds\":2,\"over_target\":\(rounded(perMessage / 2)),"
            + "\"decided\":\(decided == count)}")
    }
}
