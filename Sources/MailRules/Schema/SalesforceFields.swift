/// The Salesforce fields a pack's mapping may fill, with their types and length limits:
/// mappings are checked against this, and the engine truncates to these limits.
public struct SalesforceField: Sendable {
    public let name: String
    /// Bool fields take a bool expression; every other field a string expression.
    public let isBool: Bool
    /// Maximum length in characters, or nil when the field has none that matters here.
    public let maxLength: Int?

    init(_ name: String, bool: Bool = false, max: Int? = nil) {
        self.name = name
        self.isBool = bool
        self.maxLength = max
    }

    public static let task: [SalesforceField] = [
        SalesforceField("Subject", max: 255), SalesforceField("Description", max: 32_000), SalesforceField("ActivityDate"),
        SalesforceField("Status", max: 40), SalesforceField("Priority", max: 40), SalesforceField("TaskSubtype", max: 40),
        SalesforceField("Type", max: 40), SalesforceField("Email_Message_ID__c", max: 255),
    ]

    public static let emailMessage: [SalesforceField] = [
        SalesforceField("Subject", max: 3_000), SalesforceField("TextBody", max: 32_000), SalesforceField("HtmlBody", max: 131_072),
        SalesforceField("FromAddress", max: 1_000), SalesforceField("FromName", max: 1_000), SalesforceField("ToAddress", max: 4_000),
        SalesforceField("CcAddress", max: 4_000), SalesforceField("BccAddress", max: 4_000), SalesforceField("Headers", max: 32_000),
        SalesforceField("MessageDate"), SalesforceField("MessageIdentifier", max: 255), SalesforceField("ThreadIdentifier", max: 255),
        SalesforceField("Incoming", bool: true), SalesforceField("Status", max: 40),
    ]

    public static func fields(for object: String) -> [SalesforceField]? {
        switch object {
        case "Task": return task
        case "EmailMessage": return emailMessage
        default: return nil
        }
    }
}
