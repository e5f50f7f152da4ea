#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The folder and the name of a file path, as POSIX `dirname` and `basename` split it, for
/// every string a user can type: Foundation's `NSString.deletingLastPathComponent` traps on a
/// one-character path ("x"), which crashed `--out x` and `--store x`.
public enum PathNames {
    /// The folder part: "" for a bare name ("x", meaning the current folder), "/" for a name
    /// at the root; trailing slashes are not a name ("a/b/" is in "a").
    public static func folder(of path: String) -> String {
        var bytes = Array(path.utf8)
        while bytes.count > 1 && bytes.last == UInt8(ascii: "/") { bytes.removeLast() }
        guard let slash = bytes.lastIndex(of: UInt8(ascii: "/")) else { return "" }
        var end = slash
        while end > 0 && bytes[end - 1] == UInt8(ascii: "/") { end -= 1 }
        return end == 0 ? "/" : String(decoding: bytes[..<end], as: UTF8.self)
    }

    /// The folder to stat or open for the file at `path`: its `folder(of:)`, or "." for a bare
    /// name (in the current folder).
    public static func openableFolder(of path: String) -> String {
        let folder = folder(of: path)
        return folder.isEmpty ? "." : folder
    }

    /// The last name in the path ("b" for "a/b" and "a/b/"; "/" for "/"; "" for "").
    public static func name(of path: String) -> String {
        var bytes = Array(path.utf8)
        while bytes.count > 1 && bytes.last == UInt8(ascii: "/") { bytes.removeLast() }
        guard bytes.count > 1, let slash = bytes.lastIndex(of: UInt8(ascii: "/")) else { return String(decoding: bytes, as: UTF8.self) }
        return String(decoding: bytes[(slash + 1)...], as: UTF8.self)
    }
}

extension stat {
    /// When the file's content last changed (`st_mtim` here, `st_mtimespec` on Darwin): one
    /// place for the platforms' two names.
    public var modified: timespec {
        #if canImport(Darwin)
        st_mtimespec
        #else
        st_mtim
        #endif
    }

    /// When the file's status last changed (`st_ctim`, `st_ctimespec` on Darwin).
    public var statusChanged: timespec {
        #if canImport(Darwin)
        st_ctimespec
        #else
        st_ctim
        #endif
    }
}
