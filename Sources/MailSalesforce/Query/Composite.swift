import MailEngine

/// Runs queries through `/composite` (at most five query operations per call, Salesforce's
/// limit), following `nextRecordsUrl` of every result and of every child subquery until each
/// query is complete.
struct CompositeQueryRunner {
    let connection: SalesforceConnection
    /// Query operations per composite call (Salesforce allows 5, "query more" included).
    var perCall = 5

    private enum Pending {
        case query(LookupQueries.Kind, String)
        case more(LookupQueries.Kind, String)
        case children(LookupQueries.Kind, parent: String, relationship: String, url: String)

        var kind: LookupQueries.Kind {
            switch self {
            case .query(let kind, _), .more(let kind, _), .children(let kind, _, _, _): return kind
            }
        }
    }

    /// Pages followed per look-up at most: a message's look-ups fit in a few pages of 2,000
    /// rows; a server whose pages never end must not spend the org's API allowance.
    static let maxPages = 100

    func run(_ queries: [LookupQueries.Query], kind callKind: String) throws(CallFailure) -> [LookupQueries.Kind: [Row]] {
        try run(queries, kind: callKind, riders: []).rows
    }

    /// The queries, and `riders` (GET URLs that are not queries, such as a describe) in the
    /// first call: a composite holds 25 subrequests of which 5 queries, so they cost no call of
    /// their own. A rider's answer is its body when it succeeded; a refused rider is left out
    /// (the caller does without it).
    func run(_ queries: [LookupQueries.Query], kind callKind: String, riders: [String]) throws(CallFailure)
        -> (rows: [LookupQueries.Kind: [Row]], riders: [String: JSON]) {
        var riderAnswers: [String: JSON] = [:]
        var unsentRiders = riders
        var rows: [LookupQueries.Kind: [Row]] = [:]
        for query in queries where rows[query.kind] == nil { rows[query.kind] = [] }
        var pending = queries.map { Pending.query($0.kind, $0.soql) }
        let base = connection.dataPath
        // A next page already followed, or a page without records that says it is not the
        // last, would loop: both are refused.
        var followed = Set<String>()
        var pages = 0
        while !pending.isEmpty || !unsentRiders.isEmpty {
            pages += 1
            guard pages <= Self.maxPages else {
                throw connection.failure(.permanent, "Salesforce's answers to the look-ups went on past \(Self.maxPages) pages; refused")
            }
            let batch = Array(pending.prefix(perCall))
            pending.removeFirst(batch.count)
            var subrequests: [JSON] = []
            for (index, item) in batch.enumerated() {
                let url: String
                switch item {
                case .query(_, let soql): url = base + "/query?q=" + SalesforceConnection.queryEncode(soql)
                case .more(_, let next), .children(_, _, _, let next): url = next
                }
                guard url.hasPrefix("/services/data/") else {
                    throw connection.failure(.permanent, "Salesforce named a next page outside /services/data/; refused")
                }
                subrequests.append(.object(["method": .string("GET"), "url": .string(url), "referenceId": .string("q\(index)")]))
            }
            let riding = unsentRiders
            unsentRiders = []
            for (index, url) in riding.enumerated() {
                subrequests.append(.object(["method": .string("GET"), "url": .string(url), "referenceId": .string("r\(index)")]))
            }
            let body = JSON.object(["allOrNone": .bool(false), "compositeRequest": .array(subrequests)])
            let response = try connection.call("POST", path: base + "/composite", body: body, kind: callKind, write: false,
                                               inspect: SalesforceAPIError.subrequestErrors)
            guard let results = response["compositeResponse"]?.array, results.count == batch.count + riding.count else {
                throw connection.failure(.retryable, "Salesforce answered the look-ups with \(response["compositeResponse"]?.array?.count ?? 0) results for \(batch.count + riding.count) requests")
            }
            for (index, url) in riding.enumerated() {
                guard let result = results.first(where: { $0["referenceId"]?.string == "r\(index)" }),
                      (200..<300).contains(result.httpStatus), let body = result["body"] else { continue }
                riderAnswers[url] = body
            }
            for (index, item) in batch.enumerated() {
                let result = results.first { $0["referenceId"]?.string == "q\(index)" } ?? results[index]
                let status = result.httpStatus
                guard (200..<300).contains(status) else {
                    let reason = SalesforceAPIError.causes(SalesforceAPIError.parse(result["body"])).first.map(connection.summary) ?? "HTTP \(status)"
                    throw connection.failure(.permanent, "Salesforce refused a look-up (\(Self.describe(item.kind))): \(reason)")
                }
                let body = result["body"] ?? .null
                let found = (body["records"]?.array ?? []).compactMap { Row($0, object: Self.object(of: item.kind)) }
                switch item {
                case .query, .more:
                    rows[item.kind, default: []] += found
                    for row in found {
                        for (relationship, url) in row.moreChildren {
                            pending.append(.children(item.kind, parent: row.record.id, relationship: relationship, url: url))
                        }
                    }
                case .children(let kind, let parent, let relationship, _):
                    if let position = rows[kind]?.firstIndex(where: { $0.record.id == parent }) {
                        rows[kind]?[position].children[relationship, default: []] += found.map(\.record)
                    }
                }
                if body["done"]?.bool == false, let next = body["nextRecordsUrl"]?.string {
                    guard !found.isEmpty, followed.insert(next).inserted else {
                        throw connection.failure(.permanent, "Salesforce named a next page that does not go on (\(found.isEmpty ? "a page without records" : "a page already read")); refused")
                    }
                    switch item {
                    case .children(let kind, let parent, let relationship, _):
                        pending.append(.children(kind, parent: parent, relationship: relationship, url: next))
                    default:
                        pending.append(.more(item.kind, next))
                    }
                }
            }
        }
        return (rows, riderAnswers)
    }

    static func object(of kind: LookupQueries.Kind) -> String {
        switch kind {
        case .contacts: return "Contact"
        case .leads: return "Lead"
        case .users: return "User"
        case .accounts: return "Account"
        case .emailMessages: return "EmailMessage"
        case .tasks: return "Task"
        case .cases: return "Case"
        case .opportunities: return "Opportunity"
        case .records(let object): return object
        case .contactDomain: return "Account"
        }
    }

    static func describe(_ kind: LookupQueries.Kind) -> String {
        switch kind {
        case .contacts: return "Contacts by email"
        case .leads: return "Leads by email"
        case .users: return "Users by email"
        case .accounts: return "Accounts by website or name"
        case .emailMessages: return "EmailMessages by MessageIdentifier"
        case .tasks: return "Tasks by Message-ID"
        case .cases: return "Cases by number"
        case .opportunities: return "Opportunities by Account"
        case .records(let object): return "\(object) by id"
        case .contactDomain(let domain): return "Accounts of the Contacts at \(domain)"
        }
    }
}
