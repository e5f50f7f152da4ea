/// Reference tables generated from the declarations themselves, so the README cannot drift:
/// a test compares the README's tables with these.
public enum Documentation {
    /// Every fact a rule can read, as a Markdown table. The cost column says what a rule reading
    /// it makes the decision do beyond reading the message (`FactField.cost`).
    public static func factsTable() -> String {
        var rows = ["| fact | type | cost | meaning |", "| --- | --- | --- | --- |"]
        func add(_ object: ObjectType, prefix: String) {
            for field in object.fields {
                let path = prefix.isEmpty ? field.name : prefix + "." + field.name
                var type = field.type.description
                if case .enumeration(_, let values) = field.type.unwrapped { type = values.map { "`\($0)`" }.joined(separator: " \\| ") + (field.type.unwrapped != field.type ? " (optional)" : "") }
                rows.append("| `\(path)` | \(type.replacing("|", with: "\\|").replacing("\\\\|", with: "\\|")) | \(field.cost.contains(.crmSearch) ? "CRM search" : field.cost.contains(.bodyAnalysis) ? "body analysis" : "") | \(field.doc) |")
                switch field.type {
                case .object(let nested): add(nested, prefix: path)
                case .list(.object(let nested)): add(nested, prefix: path + "[]")
                default: break
                }
            }
        }
        add(FactsSchema.root, prefix: "")
        return rows.joined(separator: "\n")
    }

    /// Every check of `mailsave lint`, as a Markdown table.
    public static func checksTable() -> String {
        var rows = ["| check | severity | finds |", "| --- | --- | --- |"]
        for check in LintCheck.all {
            rows.append("| `\(check.id)` | \(check.severity.rawValue)\(check.strictOnly ? " (--strict)" : "") | \(check.summary) |")
        }
        return rows.joined(separator: "\n")
    }

    /// Every setting of the org layer, as a Markdown table.
    public static func settingsTable() -> String {
        var rows = ["| setting | default | personal | meaning |", "| --- | --- | --- | --- |"]
        for spec in SettingSpec.all {
            let fallback: String
            switch spec.shape {
            case .bool(let value): fallback = "`\(value)`"
            case .string(let value): fallback = "`\(value)`"
            case .choice(_, let value): fallback = "`\(value)`"
            case .folders(let values): fallback = values.isEmpty ? "none" : values.map { "`\($0)`" }.joined(separator: ", ")
            case .listName: fallback = "no list"
            case .capabilities: fallback = "both `false`"
            case .settingNames: fallback = "none"
            case .mapping: fallback = "none"
            }
            rows.append("| `\(spec.name)` | \(fallback) | \(spec.personalAllowed ? "may be" : "") | \(spec.doc) |")
        }
        return rows.joined(separator: "\n")
    }
}
