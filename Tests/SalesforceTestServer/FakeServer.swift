import Foundation
import MailEngine
import MailMessage
import MailRules
import MailSalesforce
import _CryptoExtras
import ShippedFixtures

/// The package folder (this file is Tests/SalesforceTestServer/FakeServer.swift).

/// Every test process sends its HTTP through a proxy that does not exist, except to the
/// loopback test server: libcurl must read the proxy variables, and honour NO_PROXY.
public let proxyEnvironment: Void = {
    setenv("http_proxy", "http://127.0.0.1:9", 1)
    setenv("HTTPS_PROXY", "http://127.0.0.1:9", 1)
    setenv("NO_PROXY", "127.0.0.1,localhost", 1)
}()

public struct FakeServerError: Error, CustomStringConvertible {
    public var description: String
}

/// `Tests/FakeSalesforce/fake_salesforce.py` on a loopback port, for one test.
public final class FakeServer: @unchecked Sendable {
    public static let clientID = "mailsave-test-client"
    public static let clientSecret = "test-client-secret-4f9a7c"
    public static let refreshToken = "test-refresh-token-8b2d1e"
    public static let username = "sync@contoso.com"

    let process = Process()
    public let port: Int
    public let folder: String
    let control = CurlTransport()
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    public init(batchSize: Int = 200, extra: [String] = []) throws {
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
    public func call(_ method: String, _ path: String, _ body: JSON? = nil) throws -> JSON {
        let response = try control.send(HTTPRequest(method: method, url: baseURL + path, headers: [.init("Content-Type", "application/json")], body: body?.encoded()))
        guard (200..<300).contains(response.status), let json = JSON.parse(response.body) else {
            throw FakeServerError(description: "\(method) \(path): HTTP \(response.status) \(String(decoding: response.body, as: UTF8.self))")
        }
        return json
    }

    public func seed(_ records: [CRMRecord]) throws {
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

    public func records(_ object: String) throws -> [JSON] { try call("GET", "/__control/records?type=" + object)["records"]?.array ?? [] }

    /// Requests the server saw, OAuth and control excluded unless asked.
    public func log() throws -> [JSON] {
        (try call("GET", "/__control/log")["requests"]?.array ?? []).filter { ($0["path"]?.string ?? "").hasPrefix("/services/data") }
    }

    public func soql() throws -> [String] { try log().flatMap { $0["soql"]?.array?.compactMap(\.string) ?? [] } }

    /// Declares the Task's Message-ID field (`SalesforceSchema.taskMessageIdentifierField`) in
    /// the org: by its bare name without attributes (a field that exists stays as it is), else
    /// redefined with the attributes given (the server's defaults for the others).
    public func declareTaskMessageIDField(unique: Bool? = nil, externalID: Bool? = nil, caseSensitive: Bool? = nil) throws {
        let name = SalesforceSchema.taskMessageIdentifierField
        var attributes: [String: JSON] = [:]
        if let unique { attributes["unique"] = .bool(unique) }
        if let externalID { attributes["externalId"] = .bool(externalID) }
        if let caseSensitive { attributes["caseSensitive"] = .bool(caseSensitive) }
        let field: JSON = attributes.isEmpty ? .string(name) : .object(attributes.merging(["name": .string(name)]) { $1 })
        try call("POST", "/__control/fields", .object(["object": .string("Task"), "fields": .array([field])]))
    }

    public func fault(_ fault: [String: JSON]) throws { try call("POST", "/__control/fault", .object(fault)) }

    public func stats() throws -> JSON { try call("GET", "/__control/stats") }

    /// The environment of a backend for this server with `flow`'s variables.
    public func environment(_ flow: String = "client", cache: Bool = false) throws -> [String: String] {
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

    public func backend(_ flow: String = "client", cache: Bool = false, settings: [String: String] = [:]) throws -> SalesforceBackend {
        let configuration = try SalesforceConfiguration(environment: try environment(flow, cache: cache).merging(settings) { $1 })
        return SalesforceBackend(configuration: configuration, sleep: { _ in }, random: { 0.5 })
    }

    /// Secrets no error may contain.
    public var secrets: [String] {
        [Self.clientSecret, Self.refreshToken, "BEGIN RSA PRIVATE KEY", "PRIVATE KEY-----"] + ((try? activeTokens()) ?? [])
    }

    /// The access tokens in this server's token cache folder.
    public func activeTokens() throws -> [String] {
        let cache = folder + "/cache"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: cache)) ?? []
        return names.compactMap { name in
            guard let data = FileManager.default.contents(atPath: cache + "/" + name) else { return nil }
            return JSON.parse(Array(data))?["access_token"]?.string
        }
    }
}

/// The sample org in examples/crm.
public func sampleRecords() throws -> [CRMRecord] {
    var records: [CRMRecord] = []
    for object in ["Account", "Contact", "Lead", "Opportunity", "Case", "User", "EmailMessage", "EmailMessageRelation", "Task"] {
        let text = try String(contentsOf: packageRoot.appendingPathComponent("examples/crm/\(object).csv"), encoding: .utf8)
        records += try InMemoryDirectory.parseCSV(text, object: object)
    }
    return records
}

/// One RSA key per test process, generated (no key is committed).
public final class TestKeys: Sendable {
    public static let shared = TestKeys()
    public let privateKey: _RSA.Signing.PrivateKey
    init() {
        do {
            privateKey = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        } catch {
            preconditionFailure("cannot generate an RSA test key: \(error)")
        }
    }
}
