import MailMessage

/// The paths of a run's message files as one buffer of UTF-8 bytes and, for each file, where
/// its path lies in it. A folder of 35,000 files is then a few allocations instead of 100,000
/// strings and arrays; it is sorted by moving plain values and comparing bytes with memcmp;
/// and the forked jobs of `batch --jobs` read it without writing reference counts into the
/// pages they share with the parent (every such write copies a page).
struct PathList {
    struct Entry {
        var start: Int
        var count: Int
        /// Index into `folders`: the CRM folder the file's messages are filed under.
        var folder: Int
        /// The name on disk was not UTF-8: the path held shows it with U+FFFD, is not the
        /// file's, and is never opened.
        var undecodable: Bool
    }

    private(set) var bytes: [UInt8] = []
    private(set) var entries: [Entry] = []
    private(set) var folders: [String] = []

    mutating func addFolder(_ name: String) -> Int {
        folders.append(name)
        return folders.count - 1
    }

    mutating func append(path: String, folder: Int, undecodable: Bool) {
        let start = bytes.count
        bytes.append(contentsOf: path.utf8)
        entries.append(Entry(start: start, count: bytes.count - start, folder: folder, undecodable: undecodable))
    }

    /// A file's path from its folder's (ending in "/") and its name's bytes, already checked
    /// to be UTF-8.
    mutating func append(prefix: [UInt8], name: UnsafeRawBufferPointer, folder: Int) {
        let start = bytes.count
        bytes.append(contentsOf: prefix)
        bytes.append(contentsOf: name)
        entries.append(Entry(start: start, count: bytes.count - start, folder: folder, undecodable: false))
    }

    func path(at index: Int) -> String {
        let entry = entries[index]
        return String(decoding: bytes[entry.start..<(entry.start + entry.count)], as: UTF8.self)
    }

    /// By the paths' bytes (a path before the longer paths it begins); of two equal paths, the
    /// file whose name is UTF-8 first.
    mutating func sortByPath() {
        bytes.withUnsafeBytes { buffer in
            entries.sort { left, right in
                let order = UTF8Text.compare(UnsafeRawBufferPointer(rebasing: buffer[left.start..<(left.start + left.count)]),
                                             UnsafeRawBufferPointer(rebasing: buffer[right.start..<(right.start + right.count)]))
                return order != 0 ? order < 0 : !left.undecodable && right.undecodable
            }
        }
    }
}
