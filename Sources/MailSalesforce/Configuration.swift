import Foundation
import MailRules

/// How to reach one Salesforce org: where to log in, with which OAuth flow, and the client's
/// own limits. Read from `MAILSAVE_SF_*` environment variables, or from a `KEY=VALUE` file
/// with the same names (mode 0600 or stricter: it holds secrets).
public struct SalesforceConfiguration: Sendable {
    /// The OAuth flow, chosen from what is set.
    public enum Flow: Sendable, Equatable {
        /// JWT bearer: a certificate on the connected app, the private key here (`MAILSAVE_SF_KEY_FILE`).
        case jwtBearer(keyFile: String, username: String)
        /// A refresh token the user granted (`MAILSAVE_SF_REFRESH_TOKEN`), with the client secret when the app has one.
        case refreshToken
        /// Client credentials: the connected app's run-as user (`MAILSAVE_SF_CLIENT_SECRET` alone).
        case clientCredentials
    }

    /// `https://login.salesforce.com`, `https://test.salesforce.com`, a My Domain, or a loopback test server.
    public var loginURL: String
    public var clientID: String
    public var username: String?
    public var keyFile: String?
    public var clientSecret: String?
    public var refreshToken: String?
    public var flow: Flow
    /// `66.0`.
    public var apiVersion: String = "66.0"
    public var caFile: String?
    /// The JWT `aud` claim: the login URL unless `MAILSAVE_SF_AUDIENCE` says otherwise
    /// (a My Domain login still signs for `https://login.salesforce.com`).
    public var audience: String
    /// Seconds for one HTTP exchange, and to connect.
    public var timeout: Double = 60
    public var connectTimeout: Double = 10
    /// Stop before more than this share of the org's daily API allowance is used (`Sforce-Limit-Info`).
    public var maxAPIShare: Double = 0.5
    /// Attempts per call, the first included (503, `UNABLE_TO_LOCK_ROW`, resets, timeouts).
    public var attempts: Int = 4
    /// Where tokens are cached between runs; nil: not cached.
    public var tokenCacheDirectory: String?
    /// Custom email fields of Contact, Lead and User to search besides `Email` (they exist only in some orgs).
    public var extraEmailFields: [String] = []
    /// The Task field that holds the Message-ID. Set (`MAILSAVE_SF_TASK_MESSAGE_ID_FIELD`): also
    /// checked in the look-up, so a message another client saved as a Task is "already saved"
    /// in the decision itself, as with the store (a sixth query: a second look-up call for most
    /// messages). Nil (the default): the pack's (`SalesforceSchema.taskMessageIdentifierField`),
    /// checked when a Task is saved. `none` (`taskMessageIDFieldDisabled`): Tasks carry none.
    public var taskMessageIDField: String?
    public var taskMessageIDFieldDisabled = false
    /// Largest SOQL statement sent (Salesforce's limit is 100,000 characters).
    public var maxSOQLLength: Int = 100_000

    /// Every variable this configuration reads.
    public static let variables = [
        "MAILSAVE_SF_LOGIN_URL", "MAILSAVE_SF_CLIENT_ID", "MAILSAVE_SF_USERNAME", "MAILSAVE_SF_KEY_FILE", "MAILSAVE_SF_CLIENT_SECRET",
        "MAILSAVE_SF_REFRESH_TOKEN", "MAILSAVE_SF_API_VERSION", "MAILSAVE_SF_CA_FILE", "MAILSAVE_SF_AUDIENCE", "MAILSAVE_SF_TIMEOUT",
        "MAILSAVE_SF_CONNECT_TIMEOUT", "MAILSAVE_SF_MAX_API_SHARE", "MAILSAVE_SF_RETRIES", "MAILSAVE_SF_TOKEN_CACHE",
        "MAILSAVE_SF_EXTRA_EMAIL_FIELDS", "MAILSAVE_SF_TASK_MESSAGE_ID_FIELD", "MAILSAVE_SF_MAX_SOQL_LENGTH",
    ]

    /// The configuration the environment describes. `environment` also gives `HOME` and
    /// `XDG_CACHE_HOME` for the token cache.
    public init(environment: [String: String]) throws(SalesforceConfigurationError) {
        try self.init(values: environment, environment: environment, source: "the environment")
    }

    /// The configuration a file describes (`KEY=VALUE` lines, `#` comments, blank lines): its
    /// values win over the environment's. Refused unless the file is the user's and no one else
    /// may read it (mode 0600 or stricter).
    public static func load(file path: String, environment: [String: String]) throws(SalesforceConfigurationError) -> SalesforceConfiguration {
        let text: String
        do {
            text = try PrivateFile.contents(of: path, what: "the Salesforce configuration")
        } catch {
            throw SalesforceConfigurationError(error.message)
        }
        var values = environment
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw SalesforceConfigurationError("\(path):\(index + 1): expected KEY=VALUE")
            }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            var value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let first = value.first, first == value.last, first == "\"" || first == "'" {
                value = String(value.dropFirst().dropLast())
            }
            guard variables.contains(key) else {
                let hint = key.hasPrefix("MAILSAVE_SF_") ? "" : " (names start with MAILSAVE_SF_)"
                throw SalesforceConfigurationError("\(path):\(index + 1): unknown setting '\(key.prefix(64))'\(hint)")
            }
            values[key] = value
        }
        return try SalesforceConfiguration(values: values, environment: environment, source: path)
    }

    init(values: [String: String], environment: [String: String], source: String) throws(SalesforceConfigurationError) {
        func value(_ name: String) -> String? {
            guard let text = values[name]?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
            return text
        }
        /// Plain decimal only (`Double` would also read `0x10` and `1e3`); `whole` for counts.
        func number(_ name: String, _ range: ClosedRange<Double>, whole: Bool = false) throws(SalesforceConfigurationError) -> Double? {
            guard let text = value(name) else { return nil }
            let digitsAndPoint = text.allSatisfy { $0.isASCII && ($0.isNumber || (!whole && $0 == ".")) } && text.filter { $0 == "." }.count <= 1
            guard digitsAndPoint, let number = Double(text), range.contains(number) else {
                throw SalesforceConfigurationError("\(source): \(name) must be a \(whole ? "whole number" : "number") from \(range.lowerBound) to \(range.upperBound), not '\(text.prefix(32))'")
            }
            return number
        }
        var missing: [String] = []
        let login = value("MAILSAVE_SF_LOGIN_URL")
        let client = value("MAILSAVE_SF_CLIENT_ID")
        if login == nil { missing.append("MAILSAVE_SF_LOGIN_URL") }
        if client == nil { missing.append("MAILSAVE_SF_CLIENT_ID") }
        let username = value("MAILSAVE_SF_USERNAME")
        let keyFile = value("MAILSAVE_SF_KEY_FILE")
        let secret = value("MAILSAVE_SF_CLIENT_SECRET")
        let refresh = value("MAILSAVE_SF_REFRESH_TOKEN")

        let flow: Flow
        switch (keyFile, refresh, secret) {
        case (let keyFile?, nil, nil):
            if username == nil { missing.append("MAILSAVE_SF_USERNAME (the JWT bearer flow signs for a user)") }
            flow = .jwtBearer(keyFile: keyFile, username: username ?? "")
        case (nil, _?, _):
            flow = .refreshToken
        case (nil, nil, _?):
            flow = .clientCredentials
        case (nil, nil, nil):
            missing.append("one of MAILSAVE_SF_KEY_FILE (JWT bearer, with MAILSAVE_SF_USERNAME), MAILSAVE_SF_REFRESH_TOKEN (refresh token) or MAILSAVE_SF_CLIENT_SECRET (client credentials)")
            flow = .clientCredentials
        case (_?, _, _):
            throw SalesforceConfigurationError("\(source): MAILSAVE_SF_KEY_FILE (JWT bearer) is set together with "
                + [refresh == nil ? nil : "MAILSAVE_SF_REFRESH_TOKEN", secret == nil ? nil : "MAILSAVE_SF_CLIENT_SECRET"].compactMap { $0 }.joined(separator: " and ")
                + "; set the variables of one OAuth flow only")
        }
        guard missing.isEmpty else {
            throw SalesforceConfigurationError("\(source): the Salesforce connection is not configured; missing: " + missing.joined(separator: "; "))
        }
        guard let login, let client else { throw SalesforceConfigurationError("\(source): the Salesforce connection is not configured") }
        var loginURL = login
        while loginURL.hasSuffix("/") { loginURL.removeLast() }
        guard let components = URLComponents(string: loginURL), let scheme = components.scheme?.lowercased(), components.host?.isEmpty == false,
              scheme == "https" || scheme == "http" else {
            throw SalesforceConfigurationError("\(source): MAILSAVE_SF_LOGIN_URL must be an https:// URL (http:// for a local test server), not '\(Self.shown(login))'")
        }
        if scheme == "http", !Self.isLoopback(loginURL) {
            throw SalesforceConfigurationError("\(source): MAILSAVE_SF_LOGIN_URL uses http:// for \(components.host ?? ""); only a loopback test server may (tokens would cross the network in clear)")
        }
        guard (components.path.isEmpty || components.path == "/"), components.query == nil, components.fragment == nil, components.user == nil else {
            throw SalesforceConfigurationError("\(source): MAILSAVE_SF_LOGIN_URL must be the server alone (https://login.salesforce.com), without a path, query or user; not '\(Self.shown(login))'")
        }
        self.loginURL = loginURL
        self.clientID = client
        self.username = username
        self.keyFile = keyFile
        self.clientSecret = secret
        self.refreshToken = refresh
        self.flow = flow
        self.audience = value("MAILSAVE_SF_AUDIENCE") ?? loginURL
        if let version = value("MAILSAVE_SF_API_VERSION") {
            let parts = version.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }) else {
                throw SalesforceConfigurationError("\(source): MAILSAVE_SF_API_VERSION must look like 66.0, not '\(version.prefix(32))'")
            }
            apiVersion = version
        }
        caFile = value("MAILSAVE_SF_CA_FILE")
        if let caFile, !FileManager.default.isReadableFile(atPath: caFile) {
            throw SalesforceConfigurationError("\(source): MAILSAVE_SF_CA_FILE \(caFile) cannot be read")
        }
        // libcurl would wait for ever on a FIFO, and read a device to its end.
        var caStatus = stat()
        if let caFile, stat(caFile, &caStatus) != 0 || caStatus.st_mode & S_IFMT != S_IFREG {
            throw SalesforceConfigurationError("\(source): MAILSAVE_SF_CA_FILE \(caFile) is not a regular file")
        }
        timeout = try number("MAILSAVE_SF_TIMEOUT", 0.1...3600) ?? timeout
        connectTimeout = try number("MAILSAVE_SF_CONNECT_TIMEOUT", 0.1...600) ?? min(connectTimeout, timeout)
        maxAPIShare = try number("MAILSAVE_SF_MAX_API_SHARE", 0.01...1) ?? maxAPIShare
        attempts = Int(try number("MAILSAVE_SF_RETRIES", 0...20, whole: true) ?? Double(attempts - 1)) + 1
        // At least 1,500: the longest statement head with one value of the longest field (255)
        // fits with room (at 200 the Contact and save-once queries never fitted, and were dropped).
        maxSOQLLength = Int(try number("MAILSAVE_SF_MAX_SOQL_LENGTH", 1_500...100_000, whole: true) ?? Double(maxSOQLLength))
        switch value("MAILSAVE_SF_TOKEN_CACHE") {
        case "off", "none": tokenCacheDirectory = nil
        case let folder?: tokenCacheDirectory = folder
        case nil:
            if let cache = environment["XDG_CACHE_HOME"], cache.hasPrefix("/") { tokenCacheDirectory = cache + "/mailsave" }
            else if let home = environment["HOME"], !home.isEmpty { tokenCacheDirectory = home + "/.cache/mailsave" }
        }
        let fieldName: (String) -> Bool = { name in
            !name.isEmpty && name.count <= 80 && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
        }
        if let extra = value("MAILSAVE_SF_EXTRA_EMAIL_FIELDS") {
            extraEmailFields = extra.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && $0 != "Email" }
            if let bad = extraEmailFields.first(where: { !fieldName($0) }) {
                throw SalesforceConfigurationError("\(source): MAILSAVE_SF_EXTRA_EMAIL_FIELDS: '\(bad.prefix(80))' is not a field name")
            }
        }
        if let field = value("MAILSAVE_SF_TASK_MESSAGE_ID_FIELD") {
            if field == "none" { taskMessageIDFieldDisabled = true } else {
                guard fieldName(field) else {
                    throw SalesforceConfigurationError("\(source): MAILSAVE_SF_TASK_MESSAGE_ID_FIELD: '\(field.prefix(80))' is not a field name")
                }
                taskMessageIDField = field
            }
        }
    }

    /// An http:// URL whose host is this machine (a test server): the only place http may go.
    static func isLoopback(_ url: String) -> Bool {
        guard let components = URLComponents(string: url), components.scheme?.lowercased() == "http", let host = components.host else { return false }
        return ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host)
    }

    /// The secrets this configuration holds: removed from every error message as a last guard.
    var secrets: [String] { [clientSecret, refreshToken].compactMap { $0 }.filter { $0.count >= 4 } }

    /// A login URL quoted in an error: its first 100 characters, and nothing before an `@`
    /// (`https://user:password@host` holds a password; a login URL never needs one).
    static func shown(_ url: String) -> String {
        guard let at = url.lastIndex(of: "@") else { return String(url.prefix(100)) }
        return "…" + String(url[at...].prefix(100))
    }
}

/// A Salesforce configuration that cannot be used: the CLI exits 12. Names the file, the line
/// and the variable; never a secret's value.
public struct SalesforceConfigurationError: Error, Sendable, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}

/// Printing a configuration (a log line, `dump`, string interpolation) never shows a secret.
extension SalesforceConfiguration: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String {
        let flowName: String
        switch flow {
        case .jwtBearer(let keyFile, let username): flowName = "JWT bearer (key \(keyFile), user \(username))"
        case .refreshToken: flowName = "refresh token"
        case .clientCredentials: flowName = "client credentials"
        }
        return "Salesforce \(loginURL), client \(clientID), \(flowName), API v\(apiVersion)"
    }

    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["description": description]) }
}

extension AccessToken: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String { "access token for \(instanceURL)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["instanceURL": instanceURL]) }
}
