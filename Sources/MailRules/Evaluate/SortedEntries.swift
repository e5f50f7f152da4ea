import MailMessage

/// A list's entries as their UTF-8 bytes, sorted, in one buffer, looked up by binary search
/// with memcmp. A cached pack's list is read into it without hashing or allocating anything
/// per entry: as sets of strings, a 100,000-entry blocklist was rebuilt by every per-message
/// `process`, about 30 ms of each.
struct SortedEntries: Sendable {
    private var bytes: [UInt8] = []
    /// Where each entry ends in `bytes` (it starts where the one before it ends).
    private var ends: [Int] = []

    init() {}

    /// From entries in any order; duplicates are kept once.
    init(_ entries: [String]) {
        let sorted = entries.map { Array($0.utf8) }.sorted { left, right in
            left.withUnsafeBytes { a in right.withUnsafeBytes { b in UTF8Text.compare(a, b) < 0 } }
        }
        // A repeated entry is not after the one before it: left out.
        for entry in sorted { _ = entry.withUnsafeBytes { append(inOrder: $0) } }
    }

    var count: Int { ends.count }
    var isEmpty: Bool { ends.isEmpty }

    private func start(_ index: Int) -> Int { index == 0 ? 0 : ends[index - 1] }

    /// Appends `entry`, which must sort after every entry already in (a cached pack's are
    /// sorted); false, and nothing appended, when it does not.
    mutating func append(inOrder entry: UnsafeRawBufferPointer) -> Bool {
        if let lastEnd = ends.last {
            let lastStart = start(ends.count - 1)
            let ordered = bytes.withUnsafeBytes { UTF8Text.compare(UnsafeRawBufferPointer(rebasing: $0[lastStart..<lastEnd]), entry) < 0 }
            guard ordered else { return false }
        }
        // As typed bytes: appending a raw buffer went a byte at a time (140 instructions an
        // entry of a 100,000-entry list).
        bytes.append(contentsOf: entry.bindMemory(to: UInt8.self))
        ends.append(bytes.count)
        return true
    }

    func contains(_ key: String) -> Bool {
        var key = key
        return key.withUTF8 { contains(UnsafeRawBufferPointer($0)) }
    }

    func contains(_ key: UnsafeRawBufferPointer) -> Bool {
        bytes.withUnsafeBytes { buffer in
            var low = 0, high = ends.count
            while low < high {
                let middle = low + (high - low) / 2
                let order = UTF8Text.compare(UnsafeRawBufferPointer(rebasing: buffer[start(middle)..<ends[middle]]), key)
                if order == 0 { return true }
                if order < 0 { low = middle + 1 } else { high = middle }
            }
            return false
        }
    }

    /// The entries, in their order (by bytes).
    var entries: [String] {
        ends.indices.map { String(decoding: bytes[start($0)..<ends[$0]], as: UTF8.self) }
    }
}
