/// One HTTP exchange, as the Salesforce client needs it: the backend talks to a transport, so
/// tests can put a fake one in and the CLI libcurl (`CurlTransport`).
public protocol HTTPTransport: Sendable {
    func send(_ request: HTTPRequest) throws(HTTPFailure) -> HTTPResponse
}

public struct HTTPRequest: Sendable, Equatable {
    public var method: String
    public var url: String
    /// Header lines in order (name, value).
    public var headers: [Header]
    public var body: [UInt8]?
    /// False for a request that must not be sent twice (a create): the transport then uses a
    /// new connection, so nothing below it resends the request on a reused connection that
    /// died (libcurl does that for requests that got no answer).
    public var idempotent: Bool = true

    public struct Header: Sendable, Equatable {
        public var name: String
        public var value: String
        public init(_ name: String, _ value: String) {
            self.name = name
            self.value = value
        }
    }

    public init(method: String, url: String, headers: [Header] = [], body: [UInt8]? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }
}

public struct HTTPResponse: Sendable, Equatable {
    public var status: Int
    /// Header names lower-cased; a repeated header keeps its last value.
    public var headers: [String: String]
    public var body: [UInt8]

    public init(status: Int, headers: [String: String] = [:], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public func header(_ name: String) -> String? { headers[name.lowercased()] }
}

/// Why no HTTP response came back. What matters to the caller is whether the server may
/// have acted on the request: a write whose outcome is unknown must be checked for before
/// it is sent again.
public struct HTTPFailure: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The request never reached the server (connection refused): safe to send again.
        case notSent
        /// Connection reset, timeout, empty reply: the server may have acted on it. Retryable,
        /// but a write must be looked for first.
        case outcomeUnknown
        /// TLS, DNS, a bad URL or CA file, a response over the size cap: retrying will not help.
        case permanent
    }

    public var kind: Kind
    /// What failed, never a header value or a body (they may carry tokens).
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
