import ArgumentParser

/// `process` runs once per message (a mail pipeline's hook), and the argument parser's
/// reflection of the commands costs a third of such a run. So the common shapes of its
/// command line are read here directly: `--name value` or `--name=value` for the options of
/// `process`, `--apply`, `-` and file names. Anything else — help, a built-in flag, an
/// unknown or repeated option, a value that starts with `-`, `--`, a word the parser treats
/// specially, a value it would refuse — returns nil, and the full parser reads the command
/// line instead, so help, errors and exit codes stay exactly the parser's. The result is
/// validated as the parser validates it. (`ProcessArgumentsTests` checks that both readings
/// agree.)
extension Process {
    static func quickParse(_ arguments: [String]) -> Process? {
        var values: [String: String] = [:]
        var categories: [String] = []
        var selections: [String] = []
        var files: [String] = []
        var apply = false
        let single: Set<String> = ["rules", "mailbox", "folder", "folder-role", "trigger", "crm", "store", "format"]
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "-" || !argument.hasPrefix("-") {
                if argument == "help" { return nil }
                files.append(argument)
                continue
            }
            guard argument.hasPrefix("--"), argument.count > 2 else { return nil }
            var name = String(argument.dropFirst(2))
            var value: String?
            if let equals = name.firstIndex(of: "=") {
                value = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            if name == "apply" {
                guard value == nil, !apply else { return nil }
                apply = true
                continue
            }
            guard single.contains(name) || name == "category" || name == "select" else { return nil }
            if value == nil {
                guard index < arguments.count else { return nil }
                value = arguments[index]
                index += 1
            }
            guard let value, !value.hasPrefix("-") else { return nil }
            switch name {
            case "category": categories.append(value)
            case "select": selections.append(value)
            default:
                guard values[name] == nil else { return nil }
                values[name] = value
            }
        }
        guard let mailbox = values["mailbox"], !files.isEmpty else { return nil }
        var format = ProcessFormat.json
        if let text = values["format"] {
            guard let named = ProcessFormat(rawValue: text) else { return nil }
            format = named
        }
        var options = DecisionOptions()
        options.rules = values["rules"] ?? "rules"
        options.mailbox = mailbox
        options.folder = values["folder"] ?? "Inbox"
        options.folderRole = values["folder-role"]
        options.categories = categories
        options.trigger = values["trigger"] ?? "auto"
        options.selections = selections
        options.crm = values["crm"]
        options.store = values["store"]
        var command = Process()
        command.options = options
        command.format = format
        command.apply = apply
        command.files = files
        do {
            try options.validate()
            try command.validate()
        } catch {
            return nil
        }
        return command
    }
}
