/// Every check the loader, the type checker and the linter perform: one id, one severity,
/// one sentence. SARIF rule metadata and the README's table come from this list; each id has
/// an example pack under Tests/MailRulesTests/Lint/bad/<id>/ with its expected output.
public struct LintCheck: Sendable, Hashable {
    public let id: String
    public let severity: Severity
    public let summary: String
    /// Only reported with `--strict`.
    public let strictOnly: Bool

    init(_ id: String, _ severity: Severity, _ summary: String, strictOnly: Bool = false) {
        self.id = id
        self.severity = severity
        self.summary = summary
        self.strictOnly = strictOnly
    }

    public static let yamlSyntax = LintCheck("yaml-syntax", .error, "The file is not valid YAML.")
    public static let yamlAlias = LintCheck("yaml-alias", .error, "YAML anchors and aliases are not allowed in rule files.")
    public static let yamlDuplicateKey = LintCheck("yaml-duplicate-key", .error, "A mapping has the same key twice.")
    public static let yamlLimit = LintCheck("yaml-limit", .error, "The file is too large, too deep or has too many nodes.")
    public static let schemaUnknownKey = LintCheck("schema-unknown-key", .error, "A key that the rule file format does not have.")
    public static let schemaMissingKey = LintCheck("schema-missing-key", .error, "A required key is missing.")
    public static let schemaType = LintCheck("schema-type", .error, "A value has the wrong YAML type (scalar, list or mapping).")
    public static let schemaValue = LintCheck("schema-value", .error, "A value is not one of those allowed.")
    public static let exprSyntax = LintCheck("expr-syntax", .error, "An expression does not parse.")
    public static let exprType = LintCheck("expr-type", .error, "An expression has the wrong type, or an operand does.")
    public static let exprUnknownName = LintCheck("expr-unknown-name", .error, "An expression names a fact, field or list that does not exist.")
    public static let exprUnknownFunction = LintCheck("expr-unknown-function", .error, "An expression calls a function that does not exist.")
    public static let exprArity = LintCheck("expr-arity", .error, "A function is called with the wrong number of arguments.")
    public static let exprAbsent = LintCheck("expr-absent", .error, "An optional fact is used without has() guarding it.")
    public static let exprUnknownValue = LintCheck("expr-unknown-value", .error, "A string is compared with a fact that can never have that value.")
    public static let exprBudget = LintCheck("expr-budget", .error,
                                             "An expression takes more steps than a message's evaluation budget each time it runs, whatever the message.")
    public static let duplicateRule = LintCheck("duplicate-rule-id", .error, "Two rules have the same id.")
    public static let duplicateList = LintCheck("duplicate-list", .error, "Two named lists have the same name.")
    public static let duplicateSettings = LintCheck("duplicate-settings", .error, "More than one file of the org layer sets 'settings'.")
    public static let listReference = LintCheck("list-reference", .error, "A setting names a list that is not declared, or a list of the wrong kind.")
    public static let invalidDomain = LintCheck("invalid-domain", .error, "A list entry is not a valid domain name.")
    public static let invalidAddress = LintCheck("invalid-address", .error, "A list entry is not a valid email address.")
    public static let corporateBlocklisted = LintCheck("corporate-blocklisted", .warning,
                                                       "An entry is both a corporate domain and on the org blocklist.")
    public static let shadowedRule = LintCheck("shadowed-rule", .warning, "A rule can never decide: an earlier rule always decides first.")
    public static let constantCondition = LintCheck("constant-condition", .warning, "A rule's condition is always true or always false.")
    public static let caseCapabilities = LintCheck("case-capabilities", .error,
                                                   "Case + Contact linking needs both Email-to-Case and Email Drafts for Cases declared.")
    public static let userOverstep = LintCheck("user-overstep", .error, "A per-user file does something the org layer does not allow.")
    public static let unusedList = LintCheck("unused-list", .warning, "A named list is never used.", strictOnly: true)
    public static let unusedSetting = LintCheck("unused-setting", .warning, "A setting is set but no rule reads it.", strictOnly: true)
    public static let ignoredFile = LintCheck("ignored-file", .warning,
                                              "A file of the pack folder or users/ ends in .YAML or .Yml: rule files are read only by a lower-case .yaml or .yml.")

    public static let all: [LintCheck] = [
        yamlSyntax, yamlAlias, yamlDuplicateKey, yamlLimit, schemaUnknownKey, schemaMissingKey, schemaType, schemaValue,
        exprSyntax, exprType, exprUnknownName, exprUnknownFunction, exprArity, exprAbsent, exprUnknownValue, exprBudget,
        duplicateRule, duplicateList, duplicateSettings, listReference, invalidDomain, invalidAddress, corporateBlocklisted,
        shadowedRule, constantCondition, caseCapabilities, userOverstep, unusedList, unusedSetting, ignoredFile,
    ]

    /// Checks whose findings mean the file does not match the published JSON Schema.
    public var isSchemaLevel: Bool {
        id.hasPrefix("yaml-") || id.hasPrefix("schema-")
    }
}
