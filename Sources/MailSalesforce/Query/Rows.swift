import MailEngine

/// A record as a query returns it: its fields as `CRMRecord` text, the parents read through
/// relationship fields (`Account.Name`), and the child records of subqueries (`Cases`).
struct Row {
    var record: CRMRecord
    var parents: [String: CRMRecord] = [:]
    var children: [String: [CRMRecord]] = [:]
    /// Child lists Salesforce cut short: relationship -> the URL of the rest.
    var moreChildren: [String: String] = [:]

    /// Nil for a JSON value that is not a record with an Id.
    init?(_ json: JSON, object fallback: String, child: Bool = false) {
        guard let members = json.object, let id = members["Id"]?.string ?? (child ? "" : nil) else { return nil }
        let object = members["attributes"]?["type"]?.string ?? fallback
        var fields: [String: String] = [:]
        for (name, value) in members where name != "attributes" {
            switch value {
            case .object(let nested):
                if let records = nested["records"]?.array {
                    children[name] = records.compactMap { Row($0, object: name, child: true)?.record }
                    if nested["done"]?.bool == false, let next = nested["nextRecordsUrl"]?.string { moreChildren[name] = next }
                } else if let parent = Row(value, object: name) {
                    parents[name] = parent.record
                }
            default:
                if let text = value.fieldText { fields[name] = text }
            }
        }
        record = CRMRecord(object: object, id: id, fields: fields)
    }
}
