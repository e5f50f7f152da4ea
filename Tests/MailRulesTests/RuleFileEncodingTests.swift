import Foundation
import MailRules
import Testing

/// A rule file that is not UTF-8 cannot be read; the error says where its first bad byte is.
@Suite struct RuleFileEncodingTests {
    @Test func theFirstByteThatIsNotUTF8IsPlaced() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("latin1-\(UUID().uuidString).yaml").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let bytes = Array("rules:\n  - id: café\n    description: ".utf8) + [0x63, 0x61, 0x66, 0xE9] + Array("\n".utf8)
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        #expect(throws: PackReadError(path: path + ":3:21", reason: "not UTF-8 text (byte 0xE9 here); rule files are UTF-8")) {
            _ = try PackLoader.read(path)
        }
    }
}
