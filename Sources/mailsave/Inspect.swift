import ArgumentParser
import MailMessage

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case json, text
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what mailsave reads off a message: addresses, ids, service kind, signature, links.",
        discussion: """
        Reads one RFC 5322 message (a .eml file, or standard input with -) and prints it as \
        JSON or as text. With --mbox the file is an mbox and one compact JSON object is \
        printed a line, each with the mbox line its message starts at.

        Examples:
          mailsave inspect examples/messages/01-customer-question.eml
          mailsave inspect --format text examples/messages/05-bounce-postfix.eml
          cat message.eml | mailsave inspect -
          mailsave inspect --mbox archive.mbox | jq -r .service.kind | sort | uniq -c

        A message that cannot be read at all exits with 4 and one error line naming the \
        file and line; everything less is listed under "defects".
        """
    )

    /// Largest mbox `inspect --mbox` reads.
    static let maxMboxBytes = 1 << 30

    @Option(help: "Output format: json or text.")
    var format: OutputFormat = .json

    @Flag(help: "Read FILE as an mbox of many messages; print one JSON object a line.")
    var mbox = false

    @Argument(help: "The message file, or - for standard input.")
    var file: String

    func run() throws {
        // A single message stops at the parser's size limit; an mbox at a larger one until
        // it is read as a stream.
        let bytes = try readInput(file, limit: mbox ? Inspect.maxMboxBytes : ParseLimits().maxMessageBytes)
        if mbox {
            try inspectMbox(bytes)
            return
        }
        let message: Message
        do {
            message = try MessageParser.parse(bytes)
        } catch {
            throw CommandFailure(status: .badMessage, message: "\(file):\(error.line.map { "\($0):" } ?? "") \(error.reason)")
        }
        switch format {
        case .json: MessageJSON.encode(message).print(pretty: true)
        case .text: Terminal.out(MessageText.render(message))
        }
    }

    private func inspectMbox(_ bytes: [UInt8]) throws {
        let entries = Mbox.split(bytes)
        if entries.isEmpty {
            throw CommandFailure(status: .badMessage, message: "\(file):1: not an mbox: no 'From ' separator line")
        }
        var failed = 0
        for entry in entries {
            do {
                let message = try MessageParser.parse(entry.bytes)
                switch format {
                case .json:
                    var json = MessageJSON.encode(message)
                    if case .object(let members) = json { json = .object([("mbox_line", .int(entry.line))] + members) }
                    Terminal.out(json.serialized(pretty: false))
                case .text:
                    Terminal.out("== \(file):\(entry.line)\n" + MessageText.render(message) + "\n")
                }
            } catch {
                failed += 1
                let line = entry.line + (error.line ?? 1)
                Terminal.err("mailsave: \(file):\(line): \(error.reason)")
            }
        }
        if failed > 0 { throw ExitCode(ExitStatus.badMessage.rawValue) }
    }
}
