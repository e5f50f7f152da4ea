import MailMessage
import Testing

/// `PathNames` splits every path a user can type as POSIX dirname and basename do.
@Suite struct PathNamesTests {
    @Test(arguments: [
        ("x", "", "x"),
        ("./x", ".", "x"),
        ("a/b", "a", "b"),
        ("a/b/", "a", "b"),
        ("a//b", "a", "b"),
        ("a/b//", "a", "b"),
        ("/x", "/", "x"),
        ("//x", "/", "x"),
        ("/", "/", "/"),
        ("//", "/", "/"),
        ("", "", ""),
        (".", "", "."),
        ("..", "", ".."),
        ("../x", "..", "x"),
        ("/a/b/c.sqlite", "/a/b", "c.sqlite"),
        ("é/日本.jsonl", "é", "日本.jsonl"),
    ])
    func splitsAsDirnameAndBasename(_ path: String, _ folder: String, _ name: String) {
        #expect(PathNames.folder(of: path) == folder, "folder of \(path.debugDescription)")
        #expect(PathNames.name(of: path) == name, "name of \(path.debugDescription)")
        // The folder to open: the current one for a bare name.
        #expect(PathNames.openableFolder(of: path) == (folder.isEmpty ? "." : folder), "openable folder of \(path.debugDescription)")
    }
}
