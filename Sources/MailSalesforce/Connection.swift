import Foundation
import MailEngine

/// API calls made, by kind, and logins: what a decision and a save cost the org's daily allowance.
public struct SalesforceStatistics: Sendable, Equatable {
    /// Data API calls (each counts against the org's daily allowance; a composite is one).
    public var calls = 0
    /// OAuth token requests (they do not count against the allowance).
    public var logins = 0
    /// Calls by kind: `lookup`, `query-more`, `save-check`, `save`, `delete`.
    public var byKind: [String: Int] = [:]
    /// Retries after 503, 429, `UNABLE_TO_LOCK_ROW`, resets and timeouts.
    public var retries = 0
    /// The last `Sforce-Limit-Info` seen.
    public var usage: APIUsage?

    public init() {}
}

/// Why a call failed, and whether the server may have acted on it anyway (a write then has to
/// be looked for before it is sent again).
struct CallFailure: Error {
    var error: CRMError
    var outcomeUnknown = false
}

/// A logged-in session with one org: sends data API calls with the access token, logs in (or
/// takes the cached token) when needed, logs in again once on an expired session, retries what
/// Salesforce says to retry with exponential backoff and jitter, and stops before the org's
/// daily API allowance is used past the configured share.
final class SalesforceConnection: @unchecked Sendable {
    let configuration: SalesforceConfiguration
    let transport: HTTPTransport
    let sleep: @Sendable (Double) -> Void
    let random: @Sendable () -> Double
    let cache: TokenCache?
    private let lock = NSLock()
    /// Held while logging in, never while calling the data API.
    private let loginLock = NSLock()
    private var token: AccessToken?
    private var stats = SalesforceStatistics()
    /// The private key's text, once read (JWT): removed from errors with the other secrets.
    private var keyText: String?
    /// The last JWT bearer assertion sent: a credential for its few minutes, which a login
    /// server's error may quote back.
    private var assertion: String?

    init(configuration: SalesforceConfiguration, transport: HTTPTransport, sleep: @escaping @Sendable (Double) -> Void,
         random: @escaping @Sendable () -> Double) {
        self.configuration = configuration
        self.transport = transport
        self.sleep = sleep
        self.random = random
        cache = configuration.tokenCacheDirectory.map {
            TokenCache(directory: $0, loginURL: configuration.loginURL, clientID: configuration.clientID, username: configuration.username,
                       credential: configuration.refreshToken ?? configuration.keyFile ?? configuration.clientSecret ?? "")
        }
    }

    var statistics: SalesforceStatistics { lock.withLock { stats } }

    var dataPath: String { "/services/data/v\(configuration.apiVersion)" }

    // MARK: Backoff

    /// Seconds before attempt `attempt + 1` (attempt counts from 1): 0.5 s doubled each time,
    /// at most 30 s, the upper half randomised ("equal jitter"), so parallel workers spread out.
    static func backoff(attempt: Int, random: Double) -> Double {
        let ceiling = min(30, 0.5 * pow(2, Double(max(0, attempt - 1))))
        return ceiling / 2 + ceiling / 2 * min(max(random, 0), 1)
    }

    // MARK: Calls

    /// One data API call. `write`: the call creates or deletes, so an unknown outcome is
    /// reported (`CallFailure.outcomeUnknown`) instead of retried. `inspect` returns the errors a
    /// successful response carries inside (composite subrequests): transient ones are retried
    /// like a 503, `REQUEST_LIMIT_EXCEEDED` stops.
    /// Hooks run before each request sent from their thread (`observingCalls`).
    private let callHooks = PerThread<() -> Void>()

    /// Runs `body`, calling `hook` before each request this thread sends meanwhile (a batch's
    /// claims are refreshed before each of its calls and retries, however slow the org is).
    func observingCalls<T>(_ hook: @escaping () -> Void, _ body: () -> T) -> T {
        callHooks.with(hook, body)
    }

    func call(_ method: String, path: String, body: JSON?, kind: String, write: Bool,
              inspect: (JSON) -> [SalesforceAPIError] = { _ in [] }) throws(CallFailure) -> JSON {
        var relogged = false
        var attempt = 0
        let hook = callHooks.current
        while true {
            attempt += 1
            hook?()
            try checkAllowance()
            let session = try currentToken()
            guard path.hasPrefix("/services/") else { throw failure(.permanent, "Salesforce named a resource outside /services/; refused") }
            var headers = [HTTPRequest.Header("Authorization", "Bearer " + session.accessToken), HTTPRequest.Header("Accept", "application/json")]
            if body != nil { headers.append(HTTPRequest.Header("Content-Type", "application/json")) }
            var request = HTTPRequest(method: method, url: session.instanceURL + path, headers: headers, body: body?.encoded())
            request.idempotent = !write
            lock.withLock {
                stats.calls += 1
                stats.byKind[kind, default: 0] += 1
            }
            let response: HTTPResponse
            do {
                response = try transport.send(request)
            } catch {
                switch error.kind {
                case .permanent: throw failure(.permanent, "Salesforce: \(error.message)")
                case .outcomeUnknown where write:
                    throw CallFailure(error: redacted(CRMError(.retryable, "Salesforce: \(error.message); the save may or may not have been made")),
                                      outcomeUnknown: true)
                case .outcomeUnknown, .notSent:
                    try pause(after: attempt, "Salesforce: \(error.message)")
                    continue
                }
            }
            if let usage = APIUsage.parse(response.header("Sforce-Limit-Info")) { lock.withLock { stats.usage = usage } }
            let json = JSON.parse(response.body)
            let errors = SalesforceAPIError.parse(json)
            let what = "Salesforce (\(kind))"
            switch response.status {
            case 200..<300:
                guard let json else {
                    if response.status == 204 { return .null }
                    let message = "\(what) answered \(response.status) with a body that is not JSON (\(response.body.count) bytes"
                        + (response.header("Content-Type").map { ", \($0.prefix(60))" } ?? "") + ")"
                    if write { throw CallFailure(error: redacted(CRMError(.retryable, message + "; the save may or may not have been made")), outcomeUnknown: true) }
                    try pause(after: attempt, message)
                    continue
                }
                let inner = inspect(json)
                if inner.contains(where: { $0.code == "REQUEST_LIMIT_EXCEEDED" }) { throw limitExceeded() }
                if let transient = inner.first(where: { SalesforceAPIError.transientCodes.contains($0.code) }) {
                    try pause(after: attempt, "\(what): \(summary(transient))")
                    continue
                }
                return json
            case 401:
                let error = errors.first
                let restRefused = error?.message.contains("not valid for use with the REST API") ?? false
                if error?.code == "INVALID_SESSION_ID" && !relogged && !restRefused {
                    // Expired or revoked: one new login, one replay; never a loop.
                    relogged = true
                    dropToken(session)
                    attempt -= 1
                    continue
                }
                let reason = error.map(summary) ?? "401 Unauthorized"
                throw failure(.permanent, "\(what): the session was refused (\(reason))"
                              + (restRefused ? "; give the connected app the 'api' scope" : relogged ? " again after a new login" : ""))
            default:
                if errors.contains(where: { $0.code == "REQUEST_LIMIT_EXCEEDED" }) { throw limitExceeded() }
                let reason = SalesforceAPIError.causes(errors).first.map(summary) ?? "HTTP \(response.status)"
                // 429 (Too Many Requests, from Salesforce's edge or a proxy) is refused before
                // any work, like 503: waited for and sent again, never a refusal for good.
                let transient = response.status == 503 || response.status == 429 || errors.contains { SalesforceAPIError.transientCodes.contains($0.code) }
                if transient {
                    try pause(after: attempt, "\(what): \(reason)")
                    continue
                }
                if [500, 502, 504].contains(response.status) {
                    if write { throw CallFailure(error: redacted(CRMError(.retryable, "\(what): \(reason); the save may or may not have been made")), outcomeUnknown: true) }
                    try pause(after: attempt, "\(what): \(reason)")
                    continue
                }
                throw failure(.permanent, "\(what): \(reason)")
            }
        }
    }

    /// Waits before the next attempt, or throws when the attempts are used up.
    private func pause(after attempt: Int, _ reason: String) throws(CallFailure) {
        guard attempt < configuration.attempts else {
            throw failure(.retryable, "\(reason) (gave up after \(attempt) attempt\(attempt == 1 ? "" : "s"))")
        }
        backOff(after: attempt)
    }

    /// Counts a retry a caller makes itself (a batch's saves sent again) and waits the same
    /// back-off as a call's own retry.
    func backOff(after attempt: Int) {
        lock.withLock { stats.retries += 1 }
        sleep(Self.backoff(attempt: attempt, random: random()))
    }

    private func limitExceeded() -> CallFailure {
        failure(.retryable, "Salesforce: REQUEST_LIMIT_EXCEEDED: the org's daily API allowance is used up; try again once it renews (with --apply, the save is parked in the outbox)")
    }

    private func checkAllowance() throws(CallFailure) {
        guard let usage = statistics.usage, usage.share >= configuration.maxAPIShare else { return }
        let percent = usage.percent
        throw failure(.retryable, "Salesforce: \(usage.used) of the org's \(usage.max) daily API calls are used (\(percent)%), at or past the "
                      + "\(Int(configuration.maxAPIShare * 100))% mailsave may use (MAILSAVE_SF_MAX_API_SHARE); stopped (with --apply, the save is parked in the outbox)")
    }

    func failure(_ kind: CRMError.Kind, _ message: String) -> CallFailure { CallFailure(error: redacted(CRMError(kind, message))) }

    /// The message with every secret this connection knows replaced: a last guard, the
    /// messages are built not to hold any, but a login server's error may quote the request
    /// it refused (form-encoded: a refresh token's `+`, `/` and `=` as `%2B`, `%2F`, `%3D`).
    func redacted(_ error: CRMError) -> CRMError { CRMError(error.kind, redacted(error.message)) }

    /// An error's one-line summary with every secret redacted first: `summary` cuts a long
    /// message, and a secret cut in two would no longer be found whole.
    func summary(_ error: SalesforceAPIError) -> String {
        var error = error
        error.message = redacted(error.message)
        return error.summary
    }

    func redacted(_ text: String) -> String {
        var message = text
        var secrets = configuration.secrets
        lock.withLock {
            if let token { secrets.append(token.accessToken) }
            if let keyText { secrets.append(keyText) }
            if let assertion { secrets.append(assertion) }
        }
        for secret in secrets where secret.count >= 4 {
            let encoded = Self.formEncode(secret)
            for form in [secret, encoded, Self.lowerCaseEscapes(encoded)] {
                message = message.replacingOccurrences(of: form, with: "[redacted]")
            }
        }
        return message
    }

    // MARK: Login

    static let keyFileName = "the JWT private key (MAILSAVE_SF_KEY_FILE)"

    /// The token cache's token, its key checked as if logging in (JWT): a cached token does
    /// not outlive a key that has become readable by others, or was removed.
    private func cachedToken() throws(CallFailure) -> AccessToken? {
        guard let cached = cache?.load() else { return nil }
        if case .jwtBearer(let keyFile, _) = configuration.flow {
            do {
                try PrivateFile.check(path: keyFile, what: Self.keyFileName)
            } catch {
                throw failure(.permanent, error.message)
            }
        }
        return cached
    }

    private func currentToken() throws(CallFailure) -> AccessToken {
        if let token = lock.withLock({ token }) { return token }
        // One login for all threads (`batch --jobs`): the others wait for its token.
        loginLock.lock()
        defer { loginLock.unlock() }
        if let token = lock.withLock({ token }) { return token }
        if let cached = try cachedToken() {
            lock.withLock { token = cached }
            return cached
        }
        let fresh = try login()
        lock.withLock { token = fresh }
        cache?.store(fresh)
        return fresh
    }

    // MARK: What the session learnt of the org

    /// What this session's describe said of the Task field; nil when not asked yet (in this
    /// process or, through the token cache, an earlier one with the same token).
    func taskFieldFacts(_ field: String) -> FieldFacts? {
        let known = lock.withLock { token }
        // A cached token whose key fails its check is not taken: the call that needs it says why.
        let current = known ?? ((try? cachedToken()) ?? nil)
        if known == nil, let current { lock.withLock { if token == nil { token = current } } }
        return current?.taskFields?[field.lowercased()]
    }

    /// Keeps what describe said with the current token (and in its cache file); nothing when
    /// there is no token (the fact is then asked again). The file is written only while it
    /// still holds this token: another process may have logged in since and cached a newer
    /// one, which must not be replaced by this older one (that would cost it a login; leaving
    /// the facts out costs one describe).
    func rememberTaskField(_ field: String, _ facts: FieldFacts) {
        let updated: AccessToken? = lock.withLock {
            guard var current = token else { return nil }
            current.taskFields = (current.taskFields ?? [:]).merging([field.lowercased(): facts]) { $1 }
            token = current
            return current
        }
        guard let updated, let cache else { return }
        if (cache.load()?.accessToken ?? updated.accessToken) == updated.accessToken { cache.store(updated) }
    }

    private func dropToken(_ stale: AccessToken) {
        lock.withLock { if token?.accessToken == stale.accessToken { token = nil } }
        if cache?.load()?.accessToken == stale.accessToken { cache?.remove() }
    }

    /// The OAuth token request of the configured flow, retried like a data call on 503, resets and timeouts.
    func login() throws(CallFailure) -> AccessToken {
        var form: [(String, String)]
        switch configuration.flow {
        case .jwtBearer(let keyFile, let username):
            let pem: String
            do {
                pem = try PrivateFile.contents(of: keyFile, what: Self.keyFileName)
            } catch {
                throw failure(.permanent, error.message)
            }
            lock.withLock { keyText = pem }
            let assertion: String
            do {
                assertion = try JWTAssertion.make(clientID: configuration.clientID, username: username, audience: configuration.audience,
                                                  privateKeyPEM: pem, keyFile: keyFile)
            } catch {
                throw failure(.permanent, error.message)
            }
            lock.withLock { self.assertion = assertion }
            form = [("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", assertion)]
        case .refreshToken:
            form = [("grant_type", "refresh_token"), ("client_id", configuration.clientID), ("refresh_token", configuration.refreshToken ?? "")]
            if let secret = configuration.clientSecret { form.append(("client_secret", secret)) }
        case .clientCredentials:
            form = [("grant_type", "client_credentials"), ("client_id", configuration.clientID), ("client_secret", configuration.clientSecret ?? "")]
        }
        let body = Array(form.map { Self.formEncode($0.0) + "=" + Self.formEncode($0.1) }.joined(separator: "&").utf8)
        let request = HTTPRequest(method: "POST", url: configuration.loginURL + "/services/oauth2/token",
                                  headers: [HTTPRequest.Header("Content-Type", "application/x-www-form-urlencoded"),
                                            HTTPRequest.Header("Accept", "application/json")], body: body)
        let flowName: String
        switch configuration.flow {
        case .jwtBearer: flowName = "JWT bearer"
        case .refreshToken: flowName = "refresh token"
        case .clientCredentials: flowName = "client credentials"
        }
        var attempt = 0
        while true {
            attempt += 1
            lock.withLock { stats.logins += 1 }
            let response: HTTPResponse
            do {
                response = try transport.send(request)
            } catch {
                if error.kind == .permanent { throw failure(.permanent, "Salesforce login (\(flowName)) at \(configuration.loginURL): \(error.message)") }
                try pause(after: attempt, "Salesforce login (\(flowName)): \(error.message)")
                continue
            }
            let json = JSON.parse(response.body)
            if response.status == 200, let json, let access = json["access_token"]?.string, let instance = json["instance_url"]?.string {
                var instanceURL = instance
                while instanceURL.hasSuffix("/") { instanceURL.removeLast() }
                // http only from a loopback test server to itself: a bearer token never crosses a network in clear.
                guard instanceURL.hasPrefix("https://") || (SalesforceConfiguration.isLoopback(instanceURL) && SalesforceConfiguration.isLoopback(configuration.loginURL)) else {
                    throw failure(.permanent, "Salesforce login (\(flowName)): the instance URL is not https (nor the loopback test server); refused")
                }
                let issued = json["issued_at"]?.string.flatMap(Double.init).map { $0 / 1000 } ?? Date().timeIntervalSince1970
                return AccessToken(accessToken: access, instanceURL: instanceURL, issuedAt: issued)
            }
            if response.status == 429 || response.status >= 500 {
                try pause(after: attempt, "Salesforce login (\(flowName)): HTTP \(response.status)")
                continue
            }
            // A 200 that is not JSON is no OAuth server's answer but something between (a proxy's
            // or a captive portal's page): for now, as the same answer to a data call is.
            if response.status == 200 && json == nil {
                try pause(after: attempt, "Salesforce login (\(flowName)): HTTP 200 with an answer that is not JSON (a proxy or a captive portal?)")
                continue
            }
            let reason = SalesforceAPIError.parse(json).first.map(summary)
                ?? (response.status == 200 ? "the answer has no access_token or instance_url" : "HTTP \(response.status)")
            let client = configuration.clientID.count > 12 ? configuration.clientID.prefix(12) + "…" : configuration.clientID
            throw failure(.permanent, "Salesforce login (\(flowName)) refused for client \(client): \(reason)")
        }
    }

    /// A percent-encoded text with its escapes' hex digits in lower case (`%2b`), as some
    /// servers echo them.
    static func lowerCaseEscapes(_ encoded: String) -> String {
        var out = ""
        var hexLeft = 0
        for character in encoded {
            if character == "%" { hexLeft = 2; out.append(character); continue }
            if hexLeft > 0 { hexLeft -= 1; out += character.lowercased(); continue }
            out.append(character)
        }
        return out
    }

    /// `application/x-www-form-urlencoded`: everything but unreserved characters percent-encoded.
    static func formEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }

    /// A query string parameter value (the SOQL of a query URL).
    static func queryEncode(_ text: String) -> String { formEncode(text) }
}
