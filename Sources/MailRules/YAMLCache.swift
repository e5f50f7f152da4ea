#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A cache of parsed rule files, keyed by their path and content, so `process`, invoked once
/// per message, does not parse the same YAML every time (YAML is most of a pack's load time).
/// Entries are written atomically (temporary file, then rename); a missing, unreadable or
/// corrupt entry is simply parsed again, and a cache that cannot be written is not an error.
public struct YAMLCache: Sendable {
    public let directory: String
    static let magic: [UInt8] = Array("MSYC2".utf8)

    public init(directory: String) { self.directory = directory }

    /// `$MAILSAVE_CACHE_DIR`, else `$XDG_CACHE_HOME/mailsave`, else `~/.cache/mailsave`.
    public static func standard() -> YAMLCache? {
        func env(_ name: String) -> String? { getenv(name).map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } }
        if let explicit = env("MAILSAVE_CACHE_DIR") { return YAMLCache(directory: explicit) }
        if let xdg = env("XDG_CACHE_HOME") { return YAMLCache(directory: xdg + "/mailsave") }
        if let home = env("HOME") { return YAMLCache(directory: home + "/.cache/mailsave") }
        return nil
    }

    /// FNV-1a 64 over the path and the text: the entry's name.
    static func key(_ file: SourceFile) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in file.path.utf8 + [0] + file.text.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    func path(for file: SourceFile) -> String { directory + "/" + Self.key(file) + ".yc" }

    public func load(_ file: SourceFile) -> YNode? {
        guard let bytes = try? PackLoader.bytes(of: path(for: file)), bytes.starts(with: Self.magic) else { return nil }
        var reader = Reader(bytes: bytes, position: Self.magic.count, path: file.path)
        guard let node = reader.node(depth: 0), reader.position == bytes.count else { return nil }
        return node
    }

    public func store(_ node: YNode, for file: SourceFile) {
        var writer = Writer()
        writer.bytes = Self.magic
        writer.node(node)
        mkdirs(directory)
        let final = path(for: file)
        let temporary = final + ".\(getpid()).tmp"
        guard let handle = fopen(temporary, "wb") else { return }
        let written = writer.bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, handle) }
        let closed = fclose(handle) == 0
        if written == writer.bytes.count && closed { rename(temporary, final) } else { unlink(temporary) }
    }

    private func mkdirs(_ path: String) {
        var current = ""
        for part in path.split(separator: "/", omittingEmptySubsequences: false) {
            current += (current.isEmpty && path.hasPrefix("/") && part.isEmpty) ? "/" : (current.isEmpty || current == "/" ? "" : "/") + part
            if !current.isEmpty { mkdir(current, 0o755) }
        }
    }

    struct Writer {
        var bytes: [UInt8] = []

        mutating func varint(_ value: Int) {
            var remaining = UInt64(max(0, value))
            repeat {
                let low = UInt8(remaining & 0x7F)
                remaining >>= 7
                bytes.append(remaining == 0 ? low : low | 0x80)
            } while remaining != 0
        }

        mutating func scalar(_ scalar: YScalar) {
            let styles: [YScalar.Style] = [.plain, .singleQuoted, .doubleQuoted, .literal, .folded]
            bytes.append(UInt8(styles.firstIndex(of: scalar.style) ?? 0))
            varint(scalar.location.line)
            varint(scalar.location.column)
            varint(scalar.value.utf8.count)
            bytes.append(contentsOf: scalar.value.utf8)
        }

        mutating func node(_ node: YNode) {
            switch node {
            case .scalar(let value):
                bytes.append(0)
                scalar(value)
            case .mapping(let entries, let location):
                bytes.append(1)
                varint(location.line)
                varint(location.column)
                varint(entries.count)
                for (key, value) in entries {
                    scalar(key)
                    self.node(value)
                }
            case .sequence(let items, let location):
                bytes.append(2)
                varint(location.line)
                varint(location.column)
                varint(items.count)
                for item in items { self.node(item) }
            }
        }
    }

    struct Reader {
        let bytes: [UInt8]
        var position: Int
        let path: String

        mutating func varint() -> Int? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while position < bytes.count, shift < 63 {
                let byte = bytes[position]
                position += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return value <= UInt64(Int.max) ? Int(value) : nil }
                shift += 7
            }
            return nil
        }

        mutating func location() -> SourceLocation? {
            guard let line = varint(), let column = varint() else { return nil }
            return SourceLocation(path: path, line: line, column: column)
        }

        mutating func scalar() -> YScalar? {
            let styles: [YScalar.Style] = [.plain, .singleQuoted, .doubleQuoted, .literal, .folded]
            guard position < bytes.count, Int(bytes[position]) < styles.count else { return nil }
            let style = styles[Int(bytes[position])]
            position += 1
            guard let location = location(), let length = varint(), length <= bytes.count - position,
                  let value = String(validating: bytes[position..<position + length], as: UTF8.self) else { return nil }
            position += length
            return YScalar(value: value, location: location, style: style)
        }

        mutating func node(depth: Int) -> YNode? {
            guard depth <= 64, position < bytes.count else { return nil }
            let tag = bytes[position]
            position += 1
            switch tag {
            case 0:
                return scalar().map(YNode.scalar)
            case 1:
                guard let location = location(), let count = varint(), count <= bytes.count else { return nil }
                var entries: [(key: YScalar, value: YNode)] = []
                entries.reserveCapacity(count)
                for _ in 0..<count {
                    guard let key = scalar(), let value = node(depth: depth + 1) else { return nil }
                    entries.append((key, value))
                }
                return .mapping(entries, location)
            case 2:
                guard let location = location(), let count = varint(), count <= bytes.count else { return nil }
                var items: [YNode] = []
                items.reserveCapacity(count)
                for _ in 0..<count {
                    guard let item = node(depth: depth + 1) else { return nil }
                    items.append(item)
                }
                return .sequence(items, location)
            default:
                return nil
            }
        }
    }
}
