import Crypto
import Foundation
import MailMessage

/// An access token and where the org's data calls go, with what this session learnt of the
/// org's schema.
public struct AccessToken: Sendable, Equatable, Codable {
    public var accessToken: String
    public var instanceURL: String
    public var issuedAt: Double
    /// What `sobjects/Task/describe` says of the Task fields named here (lower-cased): a save
    /// may rely on the org's `DUPLICATE_VALUE` instead of a look-up before the create. Kept
    /// with the token, so it is learnt again at every login: an administrator who removes
    /// Unique is heeded within one session (at most the org's session timeout).
    public var taskFields: [String: FieldFacts]?

    public init(accessToken: String, instanceURL: String, issuedAt: Double, taskFields: [String: FieldFacts]? = nil) {
        self.accessToken = accessToken
        self.instanceURL = instanceURL
        self.issuedAt = issuedAt
        self.taskFields = taskFields
    }

    enum CodingKeys: String, CodingKey {
        case accessToken = "access_token", instanceURL = "instance_url", issuedAt = "issued_at", taskFields = "task_fields"
    }
}

/// A field's uniqueness, as describe gives it.
public struct FieldFacts: Sendable, Equatable, Codable {
    /// The org refuses a second record with the same value (`DUPLICATE_VALUE`).
    public var unique: Bool
    /// Values that differ only in case are different (else they are duplicates: Salesforce's default).
    public var caseSensitive: Bool

    public init(unique: Bool, caseSensitive: Bool) {
        self.unique = unique
        self.caseSensitive = caseSensitive
    }
}

/// Tokens kept between per-message runs, so each run does not log in again: one JSON file per
/// org, client, user and credential (named by a hash of the four), created 0600 atomically (a temporary
/// file renamed over it). A file with another owner, a looser mode, or that does not parse is
/// ignored, and replaced at the next login.
public struct TokenCache: Sendable {
    public let path: String

    /// `credential` is the flow's own secret (the refresh token, the client secret; the key
    /// file's path for JWT): two users of one app, or a changed secret, never share a token.
    public init(directory: String, loginURL: String, clientID: String, username: String?, credential: String = "") {
        let key = SHA256.hash(data: Array("\(loginURL)\n\(clientID)\n\(username ?? "")\n\(credential)".utf8))
        let name = Hexadecimal.lowercase(key.prefix(12))
        path = directory + "/sf-token-" + name + ".json"
    }

    public func load() -> AccessToken? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_uid == getuid(), status.st_mode & 0o077 == 0,
              (status.st_mode & S_IFMT) == S_IFREG, status.st_size < 65_536 else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(status.st_size))
        let count = bytes.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        guard count == bytes.count else { return nil }
        guard let token = try? JSONDecoder().decode(AccessToken.self, from: Data(bytes)), !token.accessToken.isEmpty,
              token.instanceURL.hasPrefix("http") else { return nil }
        return token
    }

    /// Writes the token; a cache that cannot be written only costs a login next time.
    public func store(_ token: AccessToken) {
        let directory = PathNames.folder(of: path)
        mkdir(directory, 0o700)
        let temporary = path + ".\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard descriptor >= 0 else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let bytes = (try? Array(encoder.encode(token))) ?? []
        let failed = bytes.withUnsafeBytes { writeFully(descriptor, $0) } != nil
        fchmod(descriptor, 0o600)
        let synced = fsync(descriptor) == 0
        close(descriptor)
        guard !failed, synced, rename(temporary, path) == 0 else {
            unlink(temporary)
            return
        }
    }

    public func remove() { unlink(path) }
}
