import CCurl
import Foundation

/// HTTP over libcurl's easy API. URLSession on Linux cannot trust a custom CA bundle (which
/// TLS-inspecting corporate proxies need); libcurl can, reads `HTTPS_PROXY`/`NO_PROXY` from
/// the environment itself (nothing here sets a proxy, so that stays on), and decodes gzip.
///
/// Easy handles are pooled: a finished handle keeps its connection open for the next request
/// (login, look-up and save of one message reuse one TLS session).
public final class CurlTransport: HTTPTransport, @unchecked Sendable {
    public struct Options: Sendable {
        /// Seconds to establish a connection.
        public var connectTimeout: Double = 10
        /// Seconds for the whole exchange.
        public var timeout: Double = 60
        /// A PEM bundle of CA certificates to trust instead of the system's.
        public var caFile: String?
        /// The transfer is aborted past this many body bytes.
        public var maxResponseBytes: Int = 64 << 20
        public init() {}
    }

    public let options: Options
    private let lock = NSLock()
    private var idle: [UnsafeMutableRawPointer] = []


    public init(options: Options = Options()) {
        self.options = options
    }

    deinit {
        for handle in idle { mailsave_curl_easy_cleanup(handle) }
    }

    public func send(_ request: HTTPRequest) throws(HTTPFailure) -> HTTPResponse {
        guard mailsave_curl_load() == 1 else {
            throw HTTPFailure(.permanent, "libcurl (libcurl.so.4) cannot be loaded or initialised; install it (Debian: apt install libcurl4)")
        }
        guard let handle = takeHandle() else { throw HTTPFailure(.permanent, "libcurl could not create a handle") }
        var reusable = true
        defer {
            if reusable { giveBack(handle) } else { mailsave_curl_easy_cleanup(handle) }
        }
        do {
            return try perform(request, on: handle)
        } catch {
            reusable = false
            throw error
        }
    }

    private func takeHandle() -> UnsafeMutableRawPointer? {
        lock.lock()
        let handle = idle.popLast()
        lock.unlock()
        if let handle {
            mailsave_curl_easy_reset(handle)
            return handle
        }
        return mailsave_curl_easy_init()
    }

    private func giveBack(_ handle: UnsafeMutableRawPointer) {
        lock.lock()
        defer { lock.unlock() }
        if idle.count < 8 { idle.append(handle) } else { mailsave_curl_easy_cleanup(handle) }
    }

    /// What the callbacks fill during one transfer.
    final class Transfer {
        var body: [UInt8] = []
        var headers: [String: String] = [:]
        let cap: Int
        var tooLarge = false
        init(cap: Int) { self.cap = cap }
    }

    private func perform(_ request: HTTPRequest, on handle: UnsafeMutableRawPointer) throws(HTTPFailure) -> HTTPResponse {
        let transfer = Transfer(cap: options.maxResponseBytes)
        let context = Unmanaged.passUnretained(transfer).toOpaque()
        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        defer { errorBuffer.deallocate() }
        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { if let headerList { mailsave_curl_slist_free_all(headerList) } }

        var code = CURLE_OK
        func set(_ result: CURLcode) { if code == CURLE_OK { code = result } }
        set(mailsave_curl_setopt_string(handle, CURLOPT_URL, request.url))
        set(mailsave_curl_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https"))
        set(mailsave_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1))
        set(mailsave_curl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0))
        if !request.idempotent { set(mailsave_curl_setopt_long(handle, CURLOPT_FRESH_CONNECT, 1)) }
        set(mailsave_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, Int(options.connectTimeout * 1000)))
        set(mailsave_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, Int(options.timeout * 1000)))
        // "" = every encoding libcurl can decode (gzip, deflate), decoded transparently.
        set(mailsave_curl_setopt_string(handle, CURLOPT_ACCEPT_ENCODING, ""))
        if let caFile = options.caFile { set(mailsave_curl_setopt_string(handle, CURLOPT_CAINFO, caFile)) }
        set(mailsave_curl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, errorBuffer))
        set(mailsave_curl_setopt_callback(handle, CURLOPT_WRITEFUNCTION, curlWriteBody))
        set(mailsave_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, context))
        set(mailsave_curl_setopt_callback(handle, CURLOPT_HEADERFUNCTION, curlWriteHeader))
        set(mailsave_curl_setopt_pointer(handle, CURLOPT_HEADERDATA, context))

        // No "Expect: 100-continue" round trip before a body.
        for header in request.headers + [HTTPRequest.Header("Expect", "")] {
            let line = header.value.isEmpty ? "\(header.name):" : "\(header.name): \(header.value)"
            headerList = mailsave_curl_slist_append(headerList, line)
        }
        set(mailsave_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, headerList))

        switch request.method {
        case "GET": set(mailsave_curl_setopt_long(handle, CURLOPT_HTTPGET, 1))
        case "POST": set(mailsave_curl_setopt_long(handle, CURLOPT_POST, 1))
        default: set(mailsave_curl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, request.method))
        }
        if let body = request.body {
            set(mailsave_curl_setopt_off(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count)))
            body.withUnsafeBytes { raw in
                // COPYPOSTFIELDS copies: the body need not outlive this call.
                if let base = raw.baseAddress, !raw.isEmpty {
                    set(mailsave_curl_setopt_pointer(handle, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: base)))
                } else {
                    set(mailsave_curl_setopt_string(handle, CURLOPT_COPYPOSTFIELDS, ""))
                }
            }
        }
        guard code == CURLE_OK else {
            throw HTTPFailure(.permanent, "cannot set up the request to \(Self.hostDescription(request.url)): \(String(cString: mailsave_curl_easy_strerror(code)))")
        }

        let result = mailsave_curl_easy_perform(handle)
        if transfer.tooLarge {
            throw HTTPFailure(.permanent, "the response from \(Self.hostDescription(request.url)) is larger than \(options.maxResponseBytes) bytes; aborted")
        }
        guard result == CURLE_OK else {
            let detail = String(cString: errorBuffer)
            let reason = detail.isEmpty ? String(cString: mailsave_curl_easy_strerror(result)) : detail
            throw HTTPFailure(Self.kind(of: result), "\(request.method) \(Self.hostDescription(request.url)): \(reason) (curl \(result.rawValue))")
        }
        var status = 0
        _ = mailsave_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        return HTTPResponse(status: status, headers: transfer.headers, body: transfer.body)
    }

    /// Whether the server may have acted on a request that failed with `code`.
    static func kind(of code: CURLcode) -> HTTPFailure.Kind {
        switch code {
        case CURLE_COULDNT_CONNECT: return .notSent
        case CURLE_OPERATION_TIMEDOUT, CURLE_GOT_NOTHING, CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_PARTIAL_FILE, CURLE_HTTP2,
             CURLE_HTTP2_STREAM:
            return .outcomeUnknown
        default:
            // DNS (6, 5), TLS (35, 51, 58, 59, 60, 77, 83, 90, 91), a bad URL or protocol (1, 3).
            return .permanent
        }
    }

    /// `https://host:port` of a URL, for errors (never its path or query: no ids in errors about the network).
    static func hostDescription(_ url: String) -> String {
        guard let components = URLComponents(string: url), let host = components.host else { return "the server" }
        return "\(components.scheme ?? "https")://\(host)\(components.port.map { ":\($0)" } ?? "")"
    }
}

private func curlWriteBody(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ context: UnsafeMutableRawPointer?) -> Int {
    guard let data, let context else { return 0 }
    let transfer = Unmanaged<CurlTransport.Transfer>.fromOpaque(context).takeUnretainedValue()
    let length = size * count
    guard transfer.body.count + length <= transfer.cap else {
        transfer.tooLarge = true
        return 0
    }
    data.withMemoryRebound(to: UInt8.self, capacity: length) { transfer.body.append(contentsOf: UnsafeBufferPointer(start: $0, count: length)) }
    return length
}

private func curlWriteHeader(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ context: UnsafeMutableRawPointer?) -> Int {
    guard let data, let context else { return 0 }
    let transfer = Unmanaged<CurlTransport.Transfer>.fromOpaque(context).takeUnretainedValue()
    let length = size * count
    let line = data.withMemoryRebound(to: UInt8.self, capacity: length) {
        String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
    }
    // A new status line (after a 100 Continue) starts a new header block.
    if line.hasPrefix("HTTP/") { transfer.headers = [:]; return length }
    if let colon = line.firstIndex(of: ":") {
        let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
        let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
        transfer.headers[name] = value
    }
    return length
}
