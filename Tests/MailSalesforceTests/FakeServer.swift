import Foundation
import MailEngine
import MailMessage
import MailRules
@testable import MailSalesforce
import Testing

let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Every test process sends its HTTP through a proxy that does not exist, except to the
/// loopback test server: libcurl must read the proxy variables, and honour NO_PROXY.
let proxyEnvironment: Void = {
    setenv("http_proxy", "http://127.0.0.1:9", 1)
    setenv("HTTPS_PROXY", "http://127.0.0.1:9", 1)
    setenv("NO_PROXY", "127.0.0.1,localhost", 1)
}()

struct FakeServerError: Error, CustomStringConvertible {
    var description: String
}

/// `Tests/FakeSalesforce/fake_salesforce.py` on a loopback port, for one test.
final class FakeServer: @unchecked Sendable {
    static let clientID = "mailsave-test-client"
    static let clientSecret = "test-client-secret-4f9a7c"
    static let refreshToken = "test-refresh-token-8b2d1e"
    static let username = "sync@contoso.com"

    let process = Process()
    let port: Int
    let folder: String
    let control = CurlTransport()
    var baseURL: String { "http://127.0.0.1:\(port)" }

    init(batchSize: Int = 200, extra: [String] = []) throws {
        _ = proxyEnvironment
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("mailsave-sf-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let publicKey = folder + "/public.pem"
        try TestKeys.shared.privateKey.publicKey.pemRepresentation.write(toFile: publicKey, atomically: true, encoding: .utf8)
        let script = packageRoot.appendingPathComponent("Tests/FakeSalesforce/fake_salesforce.py").path
        guard let python = ["/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            // Loud, not skipped: these tests are the Salesforce backend's only check against a server.
            throw FakeServerError(description: "python3 is required to run the Salesforce integration tests (apt-get install python3 python3-cryptography)")
        }
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script, "--port", "0", "--public-key", publicKey, "--client-id", Self.clientID, "--client-secret", Self.clientSecret,
                             "--refresh-token", Self.refreshToken, "--username", Self.username, "--batch-size", String(batchSize)] + extra
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        var line: [UInt8] = []
        let handle = output.fileHandleForReading
        while true {
            let byte = try handle.read(upToCount: 1) ?? Data()
            guard let first = byte.first else { break }
            if first == UInt8(ascii: "\n") { break }
            line.append(first)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard text.hasPrefix("LISTENING "), let port = Int(text.dropFirst("LISTENING ".count)) else {
            kill(process.processIdentifier, SIGKILL)
            throw FakeServerError(description: "the fake Salesforce server did not start (printed '\(text)'); is python3-cryptography installed?")
        }
        self.port = port
    }

    deinit {
        // SIGKILL: the server is a throwaway, and waiting on a SIGTERM it may not act on would hang the run.
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: folder)
    }

    @discardableResult
    func call(_ method: String, _ path: String, _ body: JSON? = nil) throws -> JSON {
        let response = try control.send(HTTPRequest(method: method, url: baseURL + path, headers: [.init("Content-Type", "application/json")], body: body?.encoded()))
        guard (200..<300).contains(response.status), let json = JSON.parse(response.body) else {
            throw FakeServerError(description: "\(method) \(path): HTTP \(response.status) \(String(decoding: response.body, as: UTF8.self))")
        }
        return json
    }

    func seed(_ records: [CRMRecord]) throws {
        let booleans: Set<String> = ["IsConverted", "IsClosed", "IsWon", "Incoming", "IsActive"]
        let json = records.map { record -> JSON in
            var fields: [String: JSON] = ["attributes": .object(["type": .string(record.object)]), "Id": .string(record.id)]
            let known = SalesforceSchema.queryFields[record.object].map { $0 + [SalesforceSchema.taskMessageIdentifierField] }
            for (name, value) in record.fields where !value.isEmpty && name != "Id" && known?.contains(name) ?? true {
                fields[name] = booleans.contains(name) ? .bool(value == "true") : .string(value)
            }
            return .object(fields)
        }
        try call("POST", "/__control/records", .object(["records": .array(json)]))
    }

    func records(_ object: String) throws -> [JSON] { try call("GET", "/__control/records?type=" + object)["records"]?.array ?? [] }

    /// Requests the server saw, OAuth and control excluded unless asked.
    func log() throws -> [JSON] {
        (try call("GET", "/__control/log")["requests"]?.array ?? []).filter { ($0["path"]?.string ?? "").hasPrefix("/services/data") }
    }

    func soql() throws -> [String] { try log().flatMap { $0["soql"]?.array?.compactMap(\.string) ?? [] } }

    func fault(_ fault: [String: JSON]) throws { try call("POST", "/__control/fault", .object(fault)) }

    func stats() throws -> JSON { try call("GET", "/__control/stats") }

    /// The environment of a backend for this server with `flow`'s variables.
    func environment(_ flow: String = "client", cache: Bool = false) throws -> [String: String] {
        var environment = ["MAILSAVE_SF_LOGIN_URL": baseURL, "MAILSAVE_SF_CLIENT_ID": Self.clientID,
                           "MAILSAVE_SF_TOKEN_CACHE": cache ? folder + "/cache" : "off", "MAILSAVE_SF_TIMEOUT": "20"]
        switch flow {
        case "jwt":
            let key = folder + "/private.pem"
            try TestKeys.shared.privateKey.pemRepresentation.write(toFile: key, atomically: true, encoding: .utf8)
            chmod(key, 0o600)
            environment["MAILSAVE_SF_KEY_FILE"] = key
            environment["MAILSAVE_SF_USERNAME"] = Self.username
        case "refresh":
            environment["MAILSAVE_SF_REFRESH_TOKEN"] = Self.refreshToken
            environment["MAILSAVE_SF_CLIENT_SECRET"] = Self.clientSecret
        default:
            environment["MAILSAVE_SF_CLIENT_SECRET"] = Self.clientSecret
        }
        return environment
    }

    func backend(_ flow: String = "client", cache: Bool = false, settings: [String: String] = [:]) throws -> SalesforceBackend {
        let configuration = try SalesforceConfiguration(environment: try environment(flow, cache: cache).merging(settings) { $1 })
        return SalesforceBackend(configuration: configuration, sleep: { _ in }, random: { 0.5 })
    }

    /// Secrets no error may contain.
    var secrets: [String] {
        [Self.clientSecret, Self.refreshToken, "BEGIN RSA PRIVATE KEY", "PRIVATE KEY-----"] + ((try? activeTokens()) ?? [])
    }

    /// The access tokens in this server's token cache folder.
    func activeTokens() throws -> [String] {
        let cache = folder + "/cache"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: cache)) ?? []
        return names.compactMap { name in
            guard let data = FileManager.default.contents(atPath: cache + "/" + name) else { return nil }
            return JSON.parse(Array(data))?["access_token"]?.string
        }
    }
}

/// The sample org in examples/crm.
func sampleRecords() throws -> [CRMRecord] {
    var records: [CRMRecord] = []
    for object in ["Account", "Contact", "Lead", "Opportunity", "Case", "User", "EmailMessage", "EmailMessageRelation", "Task"] {
        let text = try String(contentsOf: packageRoot.appendingPathComponent("examples/crm/\(object).csv"), encoding: .utf8)
        records += try InMemoryDirectory.parseCSV(text, object: object)
    }
    return records
}

func shippedPack() throws -> RulePack {
    switch try Linter.load(packageRoot.appendingPathComponent("rules").path) {
    case .success(let pack): return pack
    case .failure(let result): throw result
    }
}

func sampleMessage(_ name: String) throws -> Message {
    try MessageParser.parse(Array(try Data(contentsOf: packageRoot.appendingPathComponent("examples/messages/" + name))))
}

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
