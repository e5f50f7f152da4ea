import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Standard input left non-blocking by whoever started mailsave (a pipe whose writer set
/// O_NONBLOCK, as some mail servers' delivery agents do): the message is waited for and read,
/// not refused with "Resource temporarily unavailable" and not spun on.
@Suite struct NonBlockingInputTests {
    @Test func aNonBlockingPipeIsWaitedFor() throws {
        let input = Pipe(), output = Pipe()
        let reading = input.fileHandleForReading.fileDescriptor
        #expect(fcntl(reading, F_SETFL, fcntl(reading, F_GETFL) | O_NONBLOCK) == 0)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Binary.path)
        process.arguments = ["inspect", "-"]
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        try process.run()
        // The message arrives after the read began.
        usleep(300_000)
        input.fileHandleForWriting.write(Data("From: Bob <bob@fabrikam.com>\nTo: ann@contoso.com\nSubject: Hello\n\nHi.\n".utf8))
        try input.fileHandleForWriting.close()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(text)")
        #expect(text.contains("bob@fabrikam.com"), "\(text)")
    }

    /// A named pipe (a FIFO, `<(zcat Contact.csv.gz)`) whose writer opens it after mailsave
    /// did: its bytes are waited for, not taken for an empty file ("no header row").
    @Test func aFIFOIsReadOnceItsWriterWrites() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mailsave-fifo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let fifo = folder.appendingPathComponent("Contact.csv").path
        #expect(mkfifo(fifo, 0o600) == 0)
        let output = Pipe()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Binary.path)
        process.arguments = ["crm", "import", "--store", folder.appendingPathComponent("crm.sqlite").path, "--object", "Contact", fifo]
        process.standardOutput = output
        process.standardError = output
        try process.run()
        // Opened for writing once mailsave holds the FIFO open for reading (before, a
        // non-blocking open for writing fails with ENXIO): the writer does come later, and a
        // mailsave that never opened it fails the test instead of hanging it.
        var writer: Int32 = -1
        let deadline = Date().addingTimeInterval(30)
        while writer < 0 && Date() < deadline {
            writer = open(fifo, O_WRONLY | O_NONBLOCK)
            if writer < 0 { #expect(errno == ENXIO); usleep(20_000) }
        }
        try #require(writer >= 0, "mailsave never opened the FIFO")
        usleep(200_000)
        let csv = Array("Id,LastName,Email\n0035e00000Aaa01,Lee,lee@fabrikam.com\n".utf8)
        #expect(write(writer, csv, csv.count) == csv.count)
        close(writer)
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(text)")
        #expect(text.contains("imported 1 Contact record"), "\(text)")
    }
}
