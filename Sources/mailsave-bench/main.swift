// mailsave-bench: parse throughput of the message layer on a corpus held in memory.
//
//   swift run -c release mailsave-bench parse DIR...   (scripts/bench runs it beside Python)
//
// Prints one line of JSON: messages, bytes, seconds, messages_per_second, mb_per_second.
//
//   mailsave-bench lint        lint of a generated pack: 100,000 blocklist entries, 200 rules
//   mailsave-bench evaluate    the shipped pack's evaluation time per message on prepared facts
//   mailsave-bench decide      the whole decision per parsed sample message: facts, rules, record
import MailMessage
import MailRules

#if canImport(Glibc)
import Glibc
#endif

func printError(_ text: String) {
    let line = text + "\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
}

func readFile(_ path: String) -> [UInt8]? { try? PackLoader.bytes(of: path) }

/// The compiled pack at `rules`, or exit 3 saying why: a benchmark measures clean packs only.
func loadPackOrExit(_ rules: String) -> RulePack {
    do {
        switch try Linter.load(rules) {
        case .success(let pack): return pack
        case .failure(let result):
            printError("mailsave-bench: \(rules) does not lint clean (\(result.errorCount) errors)")
            exit(3)
        }
    } catch {
        printError("mailsave-bench: \(error)")
        exit(3)
    }
}

/// Every .raw and .eml file under `directory` (or `directory` itself when it is a file).
func listFiles(_ directory: String) -> [String] {
    guard let names = try? PackLoader.entries(of: directory) else { return [directory] }
    var files: [String] = []
    for name in names {
        let path = directory + "/" + name
        var info = stat()
        if stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR {
            files += listFiles(path)
        } else if name.hasSuffix(".raw") || name.hasSuffix(".eml") {
            files.append(path)
        }
    }
    return files.sorted()
}

let arguments = Array(CommandLine.arguments.dropFirst())
let mode = arguments.first ?? ""
if mode == "lint" {
    RulesBench.lint(runs: 5)
    exit(0)
}
if mode == "store" {
    let contacts = arguments.count > 1 ? Int(arguments[1]) ?? 1_000_000 : 1_000_000
    StoreBench.run(contacts: contacts, messages: 5_000)
    exit(0)
}
if mode == "load" {
    // Loading the shipped pack as `process` does per message: read, YAML, check, compile.
    let path = arguments.count > 1 ? arguments[1] : "rules"
    let runs = 200
    let start = now()
    for _ in 0..<runs { _ = try? Linter.load(path) }
    var read = 0.0, yaml = 0.0, format = 0.0, compile = 0.0
    for _ in 0..<runs {
        guard let (org, users) = try? PackLoader.files(at: path) else { break }
        let t0 = now()
        let sources = (org + users).compactMap { try? PackLoader.read($0) }
        let t1 = now()
        for source in sources { _ = YAMLLoader.load(source) }
        let t2 = now()
        var loader = PackLoader()
        for source in sources.prefix(org.count) { loader.loadOrgFile(source) }
        for source in sources.dropFirst(org.count) { loader.loadUserFile(source) }
        let t3 = now()
        var compiler = PackCompiler()
        _ = compiler.compile(loader.definition)
        let t4 = now()
        read += t1 - t0; yaml += t2 - t1; format += (t3 - t2) - (t2 - t1); compile += t4 - t3
    }
    // A cached load decodes the compiled pack instead of reading YAML (plus reading and
    // hashing the files, which `process` does in either case).
    if case .success(let pack)? = try? Linter.load(path) {
        let encoded = CompiledPackFormat.encode(pack)
        let tc = now()
        for _ in 0..<runs { _ = CompiledPackFormat.decode(encoded) }
        let decoded = (now() - tc) / Double(runs) * 1000
        print("{\"bench\":\"load-decode\",\"pack\":\"\(path)\",\"milliseconds_per_load\":\(RulesBench.rounded(decoded))}")
    }
    let scale = 1000 / Double(runs)
    print("{\"bench\":\"load-phases\",\"read_ms\":\(RulesBench.rounded(read * scale)),\"yaml_ms\":\(RulesBench.rounded(yaml * scale)),"
        + "\"format_ms\":\(RulesBench.rounded(format * scale)),\"compile_ms\":\(RulesBench.rounded(compile * scale))}")
    print("{\"bench\":\"load\",\"pack\":\"\(path)\",\"milliseconds_per_load\":\(RulesBench.rounded((now() - start) / Double(runs) * 1000))}")
    exit(0)
}
if mode == "decide" {
    // mailsave-bench decide [RULES [MESSAGES [CRM]]]: the whole decision per parsed message.
    DecideBench.run(rules: arguments.count > 1 ? arguments[1] : "rules",
                    messages: arguments.count > 2 ? arguments[2] : "examples/messages",
                    crm: arguments.count > 3 ? arguments[3] : "examples/crm", seconds: 2)
    exit(0)
}
if mode == "evaluate" {
    RulesBench.evaluate(rules: arguments.count > 1 ? arguments[1] : "rules", seconds: 2)
    exit(0)
}
// (No structure-only mode: Python's compat32 also parses message/rfc822 and
// message/delivery-status parts, which MessageParser.parseStructure does not, so no ratio
// between them would compare the same work.)
guard mode == "parse", arguments.count >= 2 else {
    printError("usage: mailsave-bench parse DIR... [--seconds N] [--used-files F] | lint | evaluate [RULES] | decide [RULES [MESSAGES [CRM]]] | load [RULES] | store [CONTACTS]")
    exit(2)
}
var seconds = 3.0
var directories: [String] = []
var usedFilesPath: String?
var index = 1
while index < arguments.count {
    if arguments[index] == "--seconds", index + 1 < arguments.count, let value = Double(arguments[index + 1]) {
        seconds = value
        index += 2
        continue
    }
    if arguments[index] == "--used-files", index + 1 < arguments.count {
        usedFilesPath = arguments[index + 1]
        index += 2
        continue
    }
    directories.append(arguments[index])
    index += 1
}
// Only the files mailsave reads as messages count: one it refuses is not "parsed" (and,
// with --used-files, the anchor is given exactly the same list).
let readable = directories.flatMap(listFiles).compactMap { path -> (String, [UInt8])? in
    guard let bytes = readFile(path), (try? MessageParser.parse(bytes)) != nil else { return nil }
    return (path, bytes)
}
if let usedFilesPath {
    let list = readable.map(\.0).joined(separator: "\n") + "\n"
    let descriptor = open(usedFilesPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    if descriptor >= 0 {
        _ = list.withCString { write(descriptor, $0, strlen($0)) }
        close(descriptor)
    }
}
let corpus = readable.map(\.1)
let corpusBytes = corpus.reduce(0) { $0 + $1.count }
guard !corpus.isEmpty else {
    printError("mailsave-bench: no .raw or .eml files under \(directories)")
    exit(3)
}

// Warm up, then run whole passes over the corpus until the time is spent.
var sink = 0
func run(_ message: [UInt8]) -> Int {
    // The whole parse: the body analysis (signature, addresses and links in the body) is made
    // on first read, so it is read here.
    guard let parsed = try? MessageParser.parse(message) else { return 0 }
    return parsed.parts.count &+ parsed.bodyLinks.count &+ (parsed.signature == nil ? 0 : 1)
}
for message in corpus { sink &+= run(message) }
let clock = ContinuousClock()
let start = clock.now
var passes = 0
var elapsed = Duration.zero
repeat {
    for message in corpus { sink &+= run(message) }
    passes += 1
    elapsed = clock.now - start
} while elapsed < .seconds(seconds)
let total = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
let messages = passes * corpus.count
let rate = Double(messages) / total
let megabytes = Double(passes * corpusBytes) / 1_000_000 / total
print("{\"parser\":\"mailsave-\(mode)\",\"files\":\(corpus.count),\"messages\":\(messages),\"bytes\":\(passes * corpusBytes),"
    + "\"seconds\":\(total),\"messages_per_second\":\(Int(rate)),\"mb_per_second\":\(Double(Int(megabytes * 100)) / 100),\"sink\":\(sink % 10)}")
