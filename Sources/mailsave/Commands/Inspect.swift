import ArgumentParser
import MailMessage

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case json, text
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
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

    @Option(help: "Output format: json or text.")
    var format: OutputFormat = .json

    @Flag(help: "Read FILE as an mbox of many messages; print one JSON object a line.")
    var mbox = false

    @Argument(help: "The message file, or - for standard input.")
    var file: String

    func run() throws {
        // An mbox is read as a stream, one message at a time (each up to the message limit).
        if mbox {
            try inspectMbox()
            return
        }
        let bytes = try readInput(file, limit: ParseLimits().maxMessageBytes)
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

    private func inspectMbox() throws {
        let source = try MboxSource(path: file, folder: "Inbox")
        var failed = 0
        while let item = try source.next() {
            guard case .line(let line) = item.position else { continue }
            do {
                let message = try MessageDecider.parse(try item.content.get(), name: file, firstLine: line + 1)
                switch format {
                case .json:
                    var json = MessageJSON.encode(message)
                    if case .object(let members) = json { json = .object([("mbox_line", .int(line))] + members) }
                    Terminal.out(json.serialized(pretty: false))
                case .text:
                    Terminal.out("== \(file):\(line)\n" + MessageText.render(message) + "\n")
                }
            } catch let failure as CommandFailure {
                failed += 1
                Terminal.err("mailsave: " + failure.message)
            } catch let error as MailboxItemError {
                failed += 1
                Terminal.err("mailsave: " + error.failure.message)
            }
        }
        if source.count == 0 {
            throw CommandFailure(status: .badMessage, message: "\(file):1: not an mbox: no 'From ' separator line")
        }
        if failed > 0 { throw ExitCode(ExitStatus.badMessage.rawValue) }
    }
}
