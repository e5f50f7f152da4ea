import _CryptoExtras
import Crypto
import Foundation

/// The JWT bearer flow's assertion: `{"alg":"RS256"}`, claims iss (client id), sub (username),
/// aud (login URL), exp (at most 3 minutes ahead, as Salesforce requires), signed RS256 with
/// the connected app's certificate key. Built here rather than with a JWT library: three
/// claims and one signature do not need one.
public enum JWTAssertion {
    /// The signed assertion. Throws with a message naming the key file, never its contents.
    public static func make(clientID: String, username: String, audience: String, privateKeyPEM: String, keyFile: String,
                            now: Date = Date(), lifetime: TimeInterval = 170) throws(SalesforceConfigurationError) -> String {
        let key: _RSA.Signing.PrivateKey
        do {
            key = try _RSA.Signing.PrivateKey(pemRepresentation: privateKeyPEM)
        } catch {
            throw SalesforceConfigurationError("\(keyFile): not an RSA private key in PEM form (BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY)")
        }
        let header = base64URL(Array(#"{"alg":"RS256"}"#.utf8))
        let claims: JSON = .object([
            "iss": .string(clientID), "sub": .string(username), "aud": .string(audience),
            "exp": .number((now.timeIntervalSince1970 + min(lifetime, 180)).rounded(.down)),
        ])
        let input = header + "." + base64URL(claims.encoded())
        let signature: _RSA.Signing.RSASignature
        do {
            signature = try key.signature(for: Array(input.utf8), padding: .insecurePKCS1v1_5)
        } catch {
            throw SalesforceConfigurationError("\(keyFile): cannot sign with this key")
        }
        return input + "." + base64URL(Array(signature.rawRepresentation))
    }

    /// Base64url without padding (RFC 7515).
    public static func base64URL(_ bytes: [UInt8]) -> String {
        var text = Data(bytes).base64EncodedString()
        text = text.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        while text.hasSuffix("=") { text.removeLast() }
        return text
    }
}
