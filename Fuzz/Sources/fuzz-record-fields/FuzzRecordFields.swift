import Foundation
import FuzzSupport
@_spi(RecordFormat) import MailStore

/// The store's reader of record fields (a damaged or hostile store is input too): it must read
/// exactly what JSONSerialization reads as an object of strings, and what it reads must be
/// written and read back unchanged.
@main
enum FuzzRecordFields {
    static func main() {
        runFuzzer { bytes in
            let ours = bytes.withUnsafeBytes { RecordFields.decode($0) }
            if let fields = ours {
                let again = Array(RecordFields.encode(fields).utf8).withUnsafeBytes { RecordFields.decode($0) }
                // Empty values are not written (the store leaves them out).
                if again != fields.filter({ !$0.value.isEmpty }) { fatalError("written and read back differently: \(fields)") }
            }
            // Foundation detects UTF-16 and UTF-32 (NUL bytes near the start, byte order
            // marks) and reads a UTF-8 byte order mark; a store's fields are plain UTF-8.
            if bytes.prefix(4).contains(0) || bytes.starts(with: [0xEF, 0xBB, 0xBF]) || bytes.starts(with: [0xFE, 0xFF])
                || bytes.starts(with: [0xFF, 0xFE]) { return }
            let reference = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: String]
            if ours != reference {
                fatalError("differs from JSONSerialization: ours \(String(describing: ours)), reference \(String(describing: reference))")
            }
        }
    }
}
