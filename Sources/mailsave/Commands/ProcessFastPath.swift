/// `mailsave process` as a mail server runs it, once a message: the common command lines read
/// without swift-argument-parser's reflection, which costs more than deciding the message
/// (about 4 ms of a 10 ms run: each property wrapper type it meets is looked up in the
/// binary's 7,000 protocol conformances). swift-argument-parser stays the definition of the
/// command line: anything this does not read plainly (help, `--version`, `--`, short or
/// unknown options, a value that starts with `-`, an empty argument, an option given twice,
/// an invalid value, a validation error) returns nil and the parser reads the whole line, so
/// every message, error and exit code is the parser's. `ProcessFastPathTests` compares the two
/// readings over thousands of command lines, and the names here with the parser's.
enum ProcessFastPath {
    /// How an option takes its value.
    enum Kind { case single, repeating, flag }

    /// Every option of `process` (its option groups included), by long name.
    static let options: [String: Kind] = [
        "rules": .single, "mailbox": .single, "folder": .single, "folder-role": .single, "category": .repeating,
        "trigger": .single, "select": .repeating, "crm": .single, "store": .single, "salesforce": .flag,
        "salesforce-config": .single, "format": .single, "apply": .flag, "thread": .flag, "mbox": .single,
        "message-folder": .repeating,
    ]

    private static let dash = UInt8(ascii: "-")

    /// The command `arguments` (after `process`) make, validated; nil when the parser must read them.
    static func parse(_ arguments: [String]) -> ProcessJob? {
        var singles: [String: String] = [:]
        var repeated: [String: [String]] = [:]
        var flags: Set<String> = []
        var files: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            // Bytes, not characters: a combining mark after `-` or `=` must not change the reading.
            let bytes = argument.utf8
            guard !argument.isEmpty, argument != "help" else { return nil }
            if argument == "-" || bytes.first != dash { files.append(argument); continue }
            guard bytes.starts(with: [dash, dash]), bytes.count > 2 else { return nil }
            let body = bytes.dropFirst(2)
            let equals = body.firstIndex(of: UInt8(ascii: "="))
            guard let name = String(body[..<(equals ?? body.endIndex)]), let kind = options[name] else { return nil }
            var attached: String?
            if let equals {
                // The parser splits at the character `=`; one with a mark on it is not a split.
                guard argument.firstIndex(of: "=") == equals,
                      let value = String(body[body.index(after: equals)...]) else { return nil }
                attached = value
            }
            if kind == .flag {
                guard attached == nil, flags.insert(name).inserted else { return nil }
                continue
            }
            let value: String
            if let attached {
                value = attached
            } else {
                guard index < arguments.count else { return nil }
                value = arguments[index]
                index += 1
            }
            guard !value.isEmpty, value.utf8.first != dash, value != "help" else { return nil }
            if kind == .repeating {
                repeated[name, default: []].append(value)
            } else {
                guard singles.updateValue(value, forKey: name) == nil else { return nil }
            }
        }
        guard let mailbox = singles["mailbox"] else { return nil }
        var format = ProcessFormat.json
        if let named = singles["format"] {
            guard let chosen = ProcessFormat(rawValue: named) else { return nil }
            format = chosen
        }

        // Plain values, not the parser's structs of property wrappers (their set-up was a
        // twentieth of a per-message run).
        var salesforce = SalesforceSettings()
        salesforce.salesforce = flags.contains("salesforce")
        salesforce.salesforceConfig = singles["salesforce-config"]
        var options = DecisionSettings()
        options.rules = singles["rules"] ?? "rules"
        options.mailbox = mailbox.trimmingSpaces()
        options.folder = singles["folder"] ?? "Inbox"
        options.folderRole = singles["folder-role"]
        options.categories = repeated["category"] ?? []
        options.trigger = singles["trigger"] ?? "auto"
        options.selections = repeated["select"] ?? []
        options.crm = singles["crm"]
        options.store = singles["store"]
        options.salesforceOption = salesforce
        var command = ProcessJob()
        command.options = options
        command.format = format
        command.apply = flags.contains("apply")
        command.thread = flags.contains("thread")
        command.mbox = singles["mbox"]
        command.messageFolders = repeated["message-folder"] ?? []
        command.files = files
        do {
            // What the parser would run: the option group's validation, then the command's.
            try options.validate()
            try command.validate()
        } catch {
            return nil
        }
        return command
    }
}
