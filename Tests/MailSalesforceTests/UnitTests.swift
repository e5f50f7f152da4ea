import _CryptoExtras
import Crypto
import Foundation
import MailEngine
@testable import MailSalesforce
import SalesforceTestServer
import Testing

@Suite struct SOQLTests {
    @Test func literalsAreEscaped() {
        #expect(SOQL.literal("bob@fabrikam.com") == "'bob@fabrikam.com'")
        #expect(SOQL.literal(#"o'brien\x@y.z"#) == #"'o\'brien\\x@y.z'"#)
        #expect(SOQL.literal("a\"b\nc\rd\te") == #"'a\"b\nc\rd\te'"#)
        // An injection attempt stays one literal: every quote it holds is escaped.
        let attack = "x@y.z') OR Id != null OR (Email IN ('"
        let literal = SOQL.literal(attack)
        #expect(literal == #"'x@y.z\') OR Id != null OR (Email IN (\''"#)
        // A backslash before a quote cannot undo the quote's escape.
        #expect(SOQL.literal(#"a\'b"#) == #"'a\\\'b'"#)
        // Control characters SOQL has no escape for are never sent.
        #expect(SOQL.literal("a\u{0}b") == nil)
        #expect(SOQL.literal("a\u{1B}b") == nil)
    }

    @Test func likePatternsEscapeWildcards() {
        #expect(SOQL.likeLiteral(prefix: "fab_rikam.com") == #"'fab\_rikam.com%'"#)
        #expect(SOQL.likeLiteral(prefix: "100%'") == #"'100\%\'%'"#)
    }

    /// Splits `statement` and checks each piece is under the limit and every value is asked once.
    func check(_ statement: SOQL.Statement, limit: Int, values: [String]) -> [String] {
        let pieces = statement.split(limit: limit)
        for piece in pieces { #expect(piece.count <= limit, "\(piece.count) > \(limit)") }
        for value in values {
            let count = pieces.reduce(0) { $0 + $1.components(separatedBy: value).count - 1 }
            #expect(count >= 1, "\(value) not asked")
        }
        return pieces
    }

    @Test func inListsAreSplitUnderTheLimit() {
        let values = (0..<200).map { "'person\($0)@example.com'" }
        let statement = SOQL.Statement(head: "SELECT Id, Email FROM Contact", groups: [.init(.within(fields: ["Email"], and: nil), values)])
        #expect(statement.split(limit: 100_000).count == 1)
        let pieces = check(statement, limit: 1_000, values: values)
        #expect(pieces.count > 5)
        // Each value exactly once across the statements.
        #expect(pieces.joined().components(separatedBy: "@example.com'").count - 1 == 200)
        #expect(pieces.allSatisfy { $0.hasPrefix("SELECT Id, Email FROM Contact WHERE Email IN ('") })
    }

    @Test func splittingKeepsEveryGroupAndItsConditions() {
        let emails = (0..<40).map { "'p\($0)@x.example'" }
        let phones = (0..<10).map { "'%5%5%\($0)'" }
        let statement = SOQL.Statement(head: "SELECT Id FROM Lead", groups: [.init(.within(fields: ["Email", "Secondary_Email__c"], and: "IsConverted = false"), emails),
                                                                              .init(.like(field: "Phone"), phones)])
        let pieces = check(statement, limit: 400, values: emails + phones)
        for piece in pieces where piece.contains("Email IN") { #expect(piece.contains("(IsConverted = false AND (Email IN (")) }
        #expect(statement.split(limit: 100_000) == [
            "SELECT Id FROM Lead WHERE (IsConverted = false AND (Email IN (\(emails.joined(separator: ", "))) OR Secondary_Email__c IN (\(emails.joined(separator: ", "))))) OR "
                + phones.map { "Phone LIKE \($0)" }.joined(separator: " OR "),
        ])
        // A value that fits alone only past the limit gets a statement of its own (a short
        // limit dropped it, and with it the record); one past Salesforce's ceiling is dropped,
        // not sent broken.
        let long = "'" + String(repeating: "a", count: 500) + "'"
        let huge = "'" + String(repeating: "h", count: SOQL.Statement.ceiling) + "'"
        let statement2 = SOQL.Statement(head: "SELECT Id FROM Contact", groups: [.init(.within(fields: ["Email"], and: nil), [long, huge, "'b@c.d'"])])
        #expect(statement2.split(limit: 200) == ["SELECT Id FROM Contact WHERE Email IN (\(long))", "SELECT Id FROM Contact WHERE Email IN ('b@c.d')"])
        // The statement being filled goes on filling around it: no extra call.
        let around = SOQL.Statement(head: "SELECT Id FROM Contact", groups: [.init(.within(fields: ["Email"], and: nil), ["'a@c.d'", long, "'b@c.d'"])])
        #expect(around.split(limit: 200) == ["SELECT Id FROM Contact WHERE Email IN (\(long))", "SELECT Id FROM Contact WHERE Email IN ('a@c.d', 'b@c.d')"])
    }

    @Test func valuesThatCannotBeValidAreNotAsked() {
        var plan = LookupPlan()
        plan.recordIDs = ["0035e00000Bob01", "003' OR Id != '", "0035e00000Bob01XYZ", "zzz5e00000Bob01", "0035e00000Bob0"]
        plan.caseNumbers = ["00001042", "12a"]
        let configuration = try? SalesforceConfiguration(environment: ["MAILSAVE_SF_LOGIN_URL": "https://login.salesforce.com",
                                                                      "MAILSAVE_SF_CLIENT_ID": "id", "MAILSAVE_SF_CLIENT_SECRET": "s"])
        guard let configuration else { Issue.record("configuration"); return }
        let queries = LookupQueries(configuration: configuration).queries(for: plan, taskField: nil)
        let text = queries.map(\.soql).joined(separator: "\n")
        #expect(text.contains("Id IN ('0035e00000Bob01', '0035e00000Bob01XYZ')"))
        #expect(!text.contains("OR Id"))
        #expect(!text.contains("zzz"))
        #expect(text.contains("CaseNumber IN ('00001042', '1042')"))
        #expect(!text.contains("12a"))
    }

    @Test func websitesAreFoundByTrailingWildcardsOnly() {
        let patterns = LookupQueries.domainAndParents("mail.fabrikam.co.uk").flatMap(LookupQueries.websitePatterns)
        #expect(patterns.contains("'mail.fabrikam.co.uk%'"))
        #expect(patterns.contains("'https://www.fabrikam.co.uk%'"))
        // A public suffix is no one's Website: not asked (it made every co.uk Account a candidate).
        #expect(!patterns.contains("'co.uk%'"))
        #expect(!patterns.contains("'uk%'"))
        #expect(patterns.allSatisfy { !$0.hasPrefix("'%") })
    }
}

@Suite struct JWTTests {
    @Test func assertionHasTheClaimsAndAValidSignature() throws {
        let key = TestKeys.shared.privateKey
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let jwt = try JWTAssertion.make(clientID: "client-1", username: "sync@contoso.com", audience: "https://login.salesforce.com",
                                        privateKeyPEM: key.pemRepresentation, keyFile: "k.pem", now: now, lifetime: 600)
        let parts = jwt.split(separator: ".").map(String.init)
        #expect(parts.count == 3)
        #expect(parts.allSatisfy { !$0.contains("=") && !$0.contains("+") && !$0.contains("/") })
        #expect(try decode(parts[0]) == JSON.object(["alg": .string("RS256")]))
        let claims = try decode(parts[1])
        #expect(claims["iss"]?.string == "client-1")
        #expect(claims["sub"]?.string == "sync@contoso.com")
        #expect(claims["aud"]?.string == "https://login.salesforce.com")
        // exp at most 3 minutes ahead, whatever lifetime is asked for.
        let exp = try #require(claims["exp"]?.number)
        #expect(exp > now.timeIntervalSince1970 && exp <= now.timeIntervalSince1970 + 180)
        let signature = _RSA.Signing.RSASignature(rawRepresentation: try base64URLDecode(parts[2]))
        #expect(key.publicKey.isValidSignature(signature, for: Array((parts[0] + "." + parts[1]).utf8), padding: .insecurePKCS1v1_5))
    }

    @Test func aBadKeyNamesTheFileNotItsContents() {
        #expect {
            _ = try JWTAssertion.make(clientID: "c", username: "u", audience: "a", privateKeyPEM: "SECRET-KEY-TEXT", keyFile: "/x/key.pem")
        } throws: { error in
            let message = (error as? SalesforceConfigurationError)?.message ?? ""
            return message.contains("/x/key.pem") && !message.contains("SECRET-KEY-TEXT")
        }
    }

    func decode(_ part: String) throws -> JSON { try #require(JSON.parse(try base64URLDecode(part))) }
}

func base64URLDecode(_ text: String) throws -> [UInt8] {
    var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    while base64.count % 4 != 0 { base64 += "=" }
    return Array(try #require(Data(base64Encoded: base64)))
}

@Suite struct ConfigurationTests {
    let base = ["MAILSAVE_SF_LOGIN_URL": "https://login.salesforce.com/", "MAILSAVE_SF_CLIENT_ID": "client", "HOME": "/home/u"]

    @Test func theFlowIsChosenFromWhatIsSet() throws {
        let jwt = try SalesforceConfiguration(environment: base.merging(["MAILSAVE_SF_KEY_FILE": "/k.pem", "MAILSAVE_SF_USERNAME": "u@x.com"]) { $1 })
        #expect(jwt.flow == .jwtBearer(keyFile: "/k.pem", username: "u@x.com"))
        #expect(jwt.loginURL == "https://login.salesforce.com")
        #expect(jwt.apiVersion == "66.0")
        #expect(jwt.maxAPIShare == 0.5)
        #expect(jwt.tokenCacheDirectory == "/home/u/.cache/mailsave")
        let refresh = try SalesforceConfiguration(environment: base.merging(["MAILSAVE_SF_REFRESH_TOKEN": "r", "MAILSAVE_SF_CLIENT_SECRET": "s"]) { $1 })
        #expect(refresh.flow == .refreshToken)
        let client = try SalesforceConfiguration(environment: base.merging(["MAILSAVE_SF_CLIENT_SECRET": "s", "XDG_CACHE_HOME": "/c"]) { $1 })
        #expect(client.flow == .clientCredentials)
        #expect(client.tokenCacheDirectory == "/c/mailsave")
    }

    @Test func printingAConfigurationShowsNoSecret() throws {
        let configuration = try SalesforceConfiguration(environment: base.merging(["MAILSAVE_SF_REFRESH_TOKEN": "rt-secret-1", "MAILSAVE_SF_CLIENT_SECRET": "cs-secret-2"]) { $1 })
        var dumped = ""
        dump(configuration, to: &dumped)
        for text in ["\(configuration)", String(reflecting: configuration), dumped] {
            #expect(!text.contains("rt-secret-1") && !text.contains("cs-secret-2"), "\(text)")
        }
        let token = AccessToken(accessToken: "00Dxx!token-secret", instanceURL: "https://x.my.salesforce.com", issuedAt: 0)
        var tokenDump = ""
        dump(token, to: &tokenDump)
        #expect(!"\(token)".contains("token-secret") && !tokenDump.contains("token-secret"))
    }

    @Test func whatIsMissingOrAmbiguousIsNamedWithoutSecrets() {
        func message(_ environment: [String: String]) -> String {
            do {
                _ = try SalesforceConfiguration(environment: environment)
                return ""
            } catch { return error.message }
        }
        let none = message([:])
        #expect(none.contains("MAILSAVE_SF_LOGIN_URL") && none.contains("MAILSAVE_SF_CLIENT_ID") && none.contains("MAILSAVE_SF_KEY_FILE"))
        #expect(message(base.merging(["MAILSAVE_SF_KEY_FILE": "/k.pem"]) { $1 }).contains("MAILSAVE_SF_USERNAME"))
        let both = message(base.merging(["MAILSAVE_SF_KEY_FILE": "/k.pem", "MAILSAVE_SF_USERNAME": "u", "MAILSAVE_SF_CLIENT_SECRET": "hunter2-secret"]) { $1 })
        #expect(both.contains("one OAuth flow") && !both.contains("hunter2-secret"))
        #expect(message(base.merging(["MAILSAVE_SF_CLIENT_SECRET": "s", "MAILSAVE_SF_LOGIN_URL": "http://evil.example"]) { $1 }).contains("loopback"))
        #expect(message(base.merging(["MAILSAVE_SF_CLIENT_SECRET": "s", "MAILSAVE_SF_MAX_API_SHARE": "2"]) { $1 }).contains("MAILSAVE_SF_MAX_API_SHARE"))
        #expect(message(base.merging(["MAILSAVE_SF_CLIENT_SECRET": "s", "MAILSAVE_SF_API_VERSION": "v66"]) { $1 }).contains("66.0"))
    }

    @Test func aFileMustBePrivateAndWellFormed() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sf-config-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/salesforce.conf"
        let text = "# org\nMAILSAVE_SF_LOGIN_URL=https://test.salesforce.com\nMAILSAVE_SF_CLIENT_ID = abc\n\nMAILSAVE_SF_CLIENT_SECRET=\"topsecret-value\"\n"
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        chmod(path, 0o644)
        #expect {
            _ = try SalesforceConfiguration.load(file: path, environment: [:])
        } throws: { error in
            let message = (error as? SalesforceConfigurationError)?.message ?? ""
            return message.contains(path) && message.contains("0644") && !message.contains("topsecret")
        }
        chmod(path, 0o600)
        let loaded = try SalesforceConfiguration.load(file: path, environment: ["MAILSAVE_SF_CLIENT_ID": "from-env"])
        #expect(loaded.clientID == "abc")
        #expect(loaded.clientSecret == "topsecret-value")
        #expect(loaded.flow == .clientCredentials)
        try (text + "topsecret-line-without-equals\n").write(toFile: path, atomically: false, encoding: .utf8)
        chmod(path, 0o600)
        #expect {
            _ = try SalesforceConfiguration.load(file: path, environment: [:])
        } throws: { error in
            let message = (error as? SalesforceConfigurationError)?.message ?? ""
            return message.hasPrefix(path + ":6:") && !message.contains("topsecret")
        }
    }
}

@Suite struct ErrorParsingTests {
    @Test func errorArraysOfEveryShape() {
        let rest = JSON.parse(Array(#"[{"message":"Subject: data value too large: xxx (max length=255)","errorCode":"STRING_TOO_LONG","fields":["Subject"]}]"#.utf8))
        #expect(SalesforceAPIError.parse(rest) == [SalesforceAPIError(code: "STRING_TOO_LONG", message: "Subject: data value too large: xxx (max length=255)", fields: ["Subject"])])
        #expect(SalesforceAPIError.parse(rest).first?.summary == "STRING_TOO_LONG on Subject: Subject: data value too large: xxx (max length=255)")
        let collection = JSON.parse(Array(#"[{"success":false,"errors":[{"statusCode":"REQUIRED_FIELD_MISSING","message":"Required fields are missing: [LastName]","fields":["LastName"]}]}]"#.utf8))
        #expect(SalesforceAPIError.parse(collection).map(\.code) == ["REQUIRED_FIELD_MISSING"])
        let oauth = JSON.parse(Array(#"{"error":"invalid_grant","error_description":"authentication failure"}"#.utf8))
        #expect(SalesforceAPIError.parse(oauth).first?.summary == "invalid_grant: authentication failure")
        let halted = [SalesforceAPIError(code: "PROCESSING_HALTED", message: "rolled back"), SalesforceAPIError(code: "STRING_TOO_LONG", message: "x")]
        #expect(SalesforceAPIError.causes(halted).map(\.code) == ["STRING_TOO_LONG"])
        #expect(SalesforceAPIError.parse(JSON.parse(Array(#"{"records":[]}"#.utf8))).isEmpty)
    }

    /// Which refusals are for now (sent again in the same run) and which for good.
    @Test func aRefusalIsForNowOnlyWhenEveryCauseIs() {
        func refusal(_ errors: [(String, String)]) -> Bool {
            SalesforceBackend.transientRefusal(errors.map { (object: "Task", error: SalesforceAPIError(code: $0.0, message: $0.1)) }) != nil
        }
        #expect(refusal([("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record")]))
        #expect(refusal([("PROCESSING_HALTED", "rolled back"), ("SERVER_UNAVAILABLE", "")]))
        #expect(refusal([("PROCESSING_HALTED", "The transaction was rolled back since another operation in the same transaction failed.")]))
        #expect(!refusal([("UNABLE_TO_LOCK_ROW", ""), ("STRING_TOO_LONG", "Subject: data value too large")]), "a permanent cause wins")
        #expect(!refusal([("PROCESSING_HALTED", "Invalid reference specified. No value for @{lead0.id} found in lead0.")]))
        #expect(!refusal([("STRING_TOO_LONG", "x")]))
        #expect(!refusal([]))
    }

    /// A usage the org cannot have is shown capped, not converted with a trap.
    @Test func anAbsurdUsageIsACappedPercentage() {
        #expect(APIUsage(used: 7_600, max: 15_000).percent == 50)
        #expect(APIUsage.parse("api-usage=100000000000000000/1")?.percent == 1_000_000)
        #expect(APIUsage(used: Int.max, max: 1).percent == 1_000_000)
        #expect(APIUsage(used: 0, max: 0).percent == 1_000_000)
    }

    /// A composite subresult's status is read without a trap whatever number the server sends.
    @Test func compositeStatusesAreWholeHTTPCodesOrZero() throws {
        let answers: [(JSON, Int)] = [
            (.object(["httpStatusCode": .number(201)]), 201), (.object(["httpStatusCode": .number(1e300)]), 0),
            (.object(["httpStatusCode": .number(-1e300)]), 0), (.object(["httpStatusCode": .number(200.5)]), 0),
            (.object(["httpStatusCode": .string("200")]), 0), (.object([:]), 0), (.number(200), 0),
        ]
        for (answer, status) in answers { #expect(answer.httpStatus == status, "\(answer)") }
    }

    @Test func limitInfo() {
        #expect(APIUsage.parse("api-usage=25/15000") == APIUsage(used: 25, max: 15000))
        #expect(APIUsage.parse("per-app-api-usage=17/250(appName=sample), api-usage=7600/15000") == APIUsage(used: 7600, max: 15000))
        #expect(APIUsage.parse("api-usage=x/15000") == nil)
        #expect(APIUsage.parse("api-usage=1/0") == nil)
        #expect(APIUsage.parse(nil) == nil)
    }

    @Test func backoffIsBoundedAndJittered() {
        var previous = 0.0
        for attempt in 1...12 {
            let low = SalesforceConnection.backoff(attempt: attempt, random: 0)
            let high = SalesforceConnection.backoff(attempt: attempt, random: 1)
            #expect(low > 0 && low <= high && high <= 30)
            #expect(high >= previous)
            #expect(abs(high - 2 * low) < 1e-9)
            previous = high
        }
        #expect(SalesforceConnection.backoff(attempt: 1, random: 1) == 0.5)
        #expect(SalesforceConnection.backoff(attempt: 40, random: 1) == 30)
    }
}

/// One RSA key for the whole run (generating one takes a while).

/// A server that says every page has a next one: the look-ups stop, and say why.
final class EndlessPages: HTTPTransport, @unchecked Sendable {
    private let lock = NSLock()
    private(set) var calls = 0
    let records: Bool

    init(records: Bool) { self.records = records }

    func send(_ request: HTTPRequest) throws(HTTPFailure) -> HTTPResponse {
        lock.withLock { calls += 1 }
        if request.url.hasSuffix("/services/oauth2/token") {
            return HTTPResponse(status: 200, body: Array(#"{"access_token":"t0k3n-endless","instance_url":"http://127.0.0.1:9"}"#.utf8))
        }
        let count = JSON.parse(request.body ?? [])?["compositeRequest"]?.array?.count ?? 0
        // With records: every page names a new next page; without: an empty page that is "not done".
        let page = lock.withLock { calls }
        let rows = records ? #"[{"attributes":{"type":"Contact"},"Id":"0035e0000000001AAA","Email":"a@b.example"}]"# : "[]"
        let results = (0..<count).map { index in
            #"{"referenceId":"q\#(index)","httpStatusCode":200,"body":{"done":false,"records":\#(rows),"nextRecordsUrl":"/services/data/v66.0/query/01g-\#(page)-\#(index)"}}"#
        }
        return HTTPResponse(status: 200, body: Array(("{\"compositeResponse\":[" + results.joined(separator: ",") + "]}").utf8))
    }
}

@Suite struct PaginationLimitTests {
    static func backend(_ transport: HTTPTransport) throws -> SalesforceBackend {
        let configuration = try SalesforceConfiguration(environment: [
            "MAILSAVE_SF_LOGIN_URL": "http://127.0.0.1:9", "MAILSAVE_SF_CLIENT_ID": "c", "MAILSAVE_SF_CLIENT_SECRET": "s3cr3t-value",
            "MAILSAVE_SF_TOKEN_CACHE": "off",
        ])
        return SalesforceBackend(configuration: configuration, transport: transport, sleep: { _ in }, random: { 0.5 })
    }

    @Test func pagesThatNeverEndAreRefusedNotFollowedForever() throws {
        for records in [false, true] {
            let transport = EndlessPages(records: records)
            var plan = LookupPlan()
            plan.addresses = ["a@b.example"]
            #expect(throws: CRMError.self) { try Self.backend(transport).resolve(plan) }
            // An empty "not done" page stops at once; pages with records stop at the page cap.
            #expect(transport.calls <= CompositeQueryRunner.maxPages + 2, "\(transport.calls) calls")
            if !records { #expect(transport.calls <= 3) }
        }
    }
}

@Suite struct TokenCacheKeyTests {
    @Test func twoCredentialsOfOneAppNeverShareAToken() {
        let a = TokenCache(directory: "/c", loginURL: "https://login.salesforce.com", clientID: "app", username: nil, credential: "refresh-of-ann")
        let b = TokenCache(directory: "/c", loginURL: "https://login.salesforce.com", clientID: "app", username: nil, credential: "refresh-of-dan")
        let again = TokenCache(directory: "/c", loginURL: "https://login.salesforce.com", clientID: "app", username: nil, credential: "refresh-of-ann")
        #expect(a.path != b.path)
        #expect(a.path == again.path)
        // The name is a hash: no credential in the file name.
        #expect(!a.path.contains("refresh"))
    }
}

@Suite struct ConfigurationValueTests {
    let base = ["MAILSAVE_SF_LOGIN_URL": "https://login.salesforce.com", "MAILSAVE_SF_CLIENT_ID": "client", "MAILSAVE_SF_CLIENT_SECRET": "s3cr3t-x"]

    @Test func numbersArePlainDecimalsAndCountsWhole() throws {
        let good = try SalesforceConfiguration(environment: base.merging(["MAILSAVE_SF_TIMEOUT": "12.5", "MAILSAVE_SF_RETRIES": "2",
                                                                          "MAILSAVE_SF_MAX_API_SHARE": "0.8"]) { $1 })
        #expect(good.timeout == 12.5 && good.attempts == 3 && good.maxAPIShare == 0.8)
        for (name, value) in [("MAILSAVE_SF_RETRIES", "2.7"), ("MAILSAVE_SF_TIMEOUT", "0x10"), ("MAILSAVE_SF_TIMEOUT", "1e3"),
                              ("MAILSAVE_SF_MAX_API_SHARE", "nan"), ("MAILSAVE_SF_TIMEOUT", "-5"), ("MAILSAVE_SF_MAX_SOQL_LENGTH", "500.5"),
                              ("MAILSAVE_SF_MAX_SOQL_LENGTH", "1499"), ("MAILSAVE_SF_MAX_SOQL_LENGTH", "200")] {
            #expect(throws: SalesforceConfigurationError.self, "\(name)=\(value)") {
                try SalesforceConfiguration(environment: base.merging([name: value]) { $1 })
            }
        }
    }

    @Test func aLoginURLIsTheServerAlone() throws {
        for url in ["https://login.salesforce.com/path", "https://login.salesforce.com?x=1", "https://user@login.salesforce.com",
                    "http://192.0.2.1:8080", "http://127.0.0.1.evil.example"] {
            #expect(throws: SalesforceConfigurationError.self, "\(url)") {
                try SalesforceConfiguration(environment: base.merging(["MAILSAVE_SF_LOGIN_URL": url]) { $1 })
            }
        }
        #expect(try SalesforceConfiguration(environment: base.merging(["MAILSAVE_SF_LOGIN_URL": "http://127.0.0.1:8080/"]) { $1 }).loginURL
                == "http://127.0.0.1:8080")
    }
}

/// A login server whose refusal quotes the request it refused: the form's credentials come
/// back percent-encoded, and the JWT assertion (a credential for its few minutes) whole.
final class EchoingLoginServer: HTTPTransport, @unchecked Sendable {
    private let lock = NSLock()
    private(set) var bodies: [String] = []
    /// Echo the escapes as `%2b` (some servers re-encode in lower case).
    var lowerCaseEscapes = false

    func send(_ request: HTTPRequest) throws(HTTPFailure) -> HTTPResponse {
        let sent = String(decoding: request.body ?? [], as: UTF8.self)
        let body = lowerCaseEscapes ? SalesforceConnection.lowerCaseEscapes(sent) : sent
        lock.withLock { bodies.append(body) }
        let description = String(decoding: JSON.string(body).encoded(), as: UTF8.self)
        return HTTPResponse(status: 400, body: Array(#"{"error":"invalid_grant","error_description":"bad request: \#(description.dropFirst().dropLast())"}"#.utf8))
    }
}

@Suite struct LoginRefusalTests {
    func refusal(_ environment: [String: String], _ server: EchoingLoginServer) throws -> String {
        let configuration = try SalesforceConfiguration(environment: environment.merging(["MAILSAVE_SF_TOKEN_CACHE": "off"]) { $1 })
        let backend = SalesforceBackend(configuration: configuration, transport: server, sleep: { _ in }, random: { 0.5 })
        var plan = LookupPlan()
        plan.addresses = ["a@b.example"]
        do {
            _ = try backend.resolve(plan)
        } catch {
            return error.message
        }
        Issue.record("the login was not refused")
        return ""
    }

    @Test func aRefusalQuotingTheRequestShowsNoCredential() throws {
        let server = EchoingLoginServer()
        let secrets = ["5Aep861+RefTok/SECRET==x", "Cl!ent+Secret/Value="]
        let message = try refusal(["MAILSAVE_SF_LOGIN_URL": "http://127.0.0.1:9", "MAILSAVE_SF_CLIENT_ID": "test-client",
                                   "MAILSAVE_SF_REFRESH_TOKEN": secrets[0], "MAILSAVE_SF_CLIENT_SECRET": secrets[1]], server)
        #expect(message.contains("invalid_grant") && message.contains("[redacted]"), "\(message)")
        #expect(message.contains("client test-client:"), "a client id of 12 characters or fewer is shown whole: \(message)")
        for secret in secrets {
            #expect(!message.contains(secret) && !message.contains(SalesforceConnection.formEncode(secret)), "\(message)")
        }
        #expect(server.bodies.first?.contains(SalesforceConnection.formEncode(secrets[0])) == true, "the server saw the encoded form")
        let lower = EchoingLoginServer()
        lower.lowerCaseEscapes = true
        let again = try refusal(["MAILSAVE_SF_LOGIN_URL": "http://127.0.0.1:9", "MAILSAVE_SF_CLIENT_ID": "test-client",
                                 "MAILSAVE_SF_REFRESH_TOKEN": secrets[0], "MAILSAVE_SF_CLIENT_SECRET": secrets[1]], lower)
        #expect(!again.contains("%2b") && !again.contains("SECRET") && again.contains("[redacted]"), "\(again)")
    }

    @Test func aRefusalQuotingTheAssertionShowsNoAssertion() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mailsave-jwt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let key = folder.appendingPathComponent("key.pem").path
        #expect(FileManager.default.createFile(atPath: key, contents: Data(TestKeys.shared.privateKey.pemRepresentation.utf8),
                                               attributes: [.posixPermissions: 0o600]))
        let server = EchoingLoginServer()
        let message = try refusal(["MAILSAVE_SF_LOGIN_URL": "http://127.0.0.1:9", "MAILSAVE_SF_CLIENT_ID": "a-connected-app-consumer-key",
                                   "MAILSAVE_SF_USERNAME": "sync@contoso.com", "MAILSAVE_SF_KEY_FILE": key], server)
        let sent = try #require(server.bodies.first)
        let assertion = try #require(sent.split(separator: "&").first { $0.hasPrefix("assertion=") }?.dropFirst("assertion=".count))
        #expect(assertion.count > 100)
        #expect(!message.contains(assertion) && message.contains("[redacted]"), "\(message.prefix(300))")
        #expect(message.contains("client a-connected-…:"), "\(message)")
    }

    /// A page that is not JSON answered with 200 (a proxy, a captive portal) is retried and
    /// then reported as for now (exit 75), as the same answer to a data call is.
    @Test func aLoginAnsweredByAPortalIsForNow() throws {
        final class Portal: HTTPTransport, @unchecked Sendable {
            let lock = NSLock()
            var calls = 0
            func send(_ request: HTTPRequest) throws(HTTPFailure) -> HTTPResponse {
                lock.withLock { calls += 1 }
                return HTTPResponse(status: 200, body: Array("<html><body>Sign in to the hotel Wi-Fi</body></html>".utf8))
            }
        }
        let portal = Portal()
        let configuration = try SalesforceConfiguration(environment: ["MAILSAVE_SF_LOGIN_URL": "http://127.0.0.1:9", "MAILSAVE_SF_CLIENT_ID": "c",
                                                                      "MAILSAVE_SF_CLIENT_SECRET": "s3cr3t-value", "MAILSAVE_SF_TOKEN_CACHE": "off"])
        let backend = SalesforceBackend(configuration: configuration, transport: portal, sleep: { _ in }, random: { 0.5 })
        var plan = LookupPlan()
        plan.addresses = ["a@b.example"]
        do {
            _ = try backend.resolve(plan)
            Issue.record("a portal's page was taken for a login")
        } catch {
            #expect(error.kind == .retryable, "\(error.message)")
            #expect(error.message.contains("not JSON"), "\(error.message)")
        }
        #expect(portal.calls == configuration.attempts)
    }

    @Test func aLoginURLWithAPasswordIsNotQuoted() throws {
        for url in ["https://user:TopPass@login.salesforce.com", "htps://user:TopPass@login.salesforce.com/x"] {
            do {
                _ = try SalesforceConfiguration(environment: ["MAILSAVE_SF_LOGIN_URL": url, "MAILSAVE_SF_CLIENT_ID": "c", "MAILSAVE_SF_CLIENT_SECRET": "s3cr3t-x"])
                Issue.record("\(url) was taken")
            } catch {
                #expect(!error.message.contains("TopPass") && error.message.contains("…@login.salesforce.com"), "\(error.message)")
            }
        }
    }
}
