import MailEngine
import MailRules

/// A `LookupPlan` as SOQL: every question of one decision in as few queries as Salesforce
/// allows, so a typical message's look-ups are one `/composite` call (five queries):
///
/// 1. Contacts by email (or phone), with their Account (`Account.Name, Account.Website`) and
///    their Cases (a child subquery);
/// 2. non-converted Leads by email (or, any Lead, by phone);
/// 3. Users by email;
/// 4. Accounts by website (trailing-wildcard `LIKE` only, for the domain and its parents) or by
///    name, with their Opportunities (a child subquery): the Account of a Contact is usually
///    among them, so its Opportunities need no second call;
/// 5. EmailMessages by `MessageIdentifier` (the Magic Anchor's In-Reply-To and References,
///    and the message's own ledger key: the save-once check) with their relations.
///
/// Record ids of Contacts, Leads and Users (a Save dialog's selection) ride in 1 to 3. Case
/// numbers, other record ids, the Task Message-ID check and Opportunities of Accounts not found
/// by 4 are further queries (a second call when they do not fit in the first).
///
/// The Account of a domain's Contacts (`contactDomainQuery`) is asked after the first call,
/// only for the domains it makes wanted (no participant at the domain is a Contact, one is no
/// Lead either): `SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contact WHERE
/// Email LIKE '%@fabrikam.com') LIMIT 2`, one query per domain, five per call.
struct LookupQueries {
    enum Kind: Hashable {
        case contacts, leads, users, accounts, emailMessages, tasks, cases, opportunities
        case records(String)
        /// The Accounts of the Contacts at this domain (at most two: one, or several).
        case contactDomain(String)
    }

    struct Query {
        var kind: Kind
        var soql: String
    }

    let configuration: SalesforceConfiguration
    var limit: Int { configuration.maxSOQLLength }

    var emailFields: [String] { ["Email"] + configuration.extraEmailFields }

    static func fields(_ object: String, extra: [String] = []) -> [String] {
        var fields = SalesforceSchema.queryFields[object] ?? ["Id"]
        for field in extra where !fields.contains(field) { fields.append(field) }
        return fields
    }

    /// `Account.Id, Account.Name, ...` for each parent relationship of `object` the look-ups follow.
    static func parentFields(_ object: String) -> [String] {
        let relationships: [String]
        switch object {
        case "Contact", "Opportunity": relationships = ["Account"]
        case "Case": relationships = ["Account", "Contact"]
        default: relationships = []
        }
        return relationships.flatMap { relationship in
            let parent = SalesforceSchema.parentRelationships.first { $0.relationship == relationship }?.object ?? relationship
            return fields(parent).map { "\(relationship).\($0)" }
        }
    }

    static func childQuery(_ object: String) -> String? {
        guard let child = SalesforceSchema.childRelationships[object] else { return nil }
        let fields = child.object == "EmailMessageRelation" ? ["Id", "RelationId", "RelationType"] : Self.fields(child.object)
        return "(SELECT \(fields.joined(separator: ", ")) FROM \(child.relationship))"
    }

    func select(_ object: String, extra: [String] = [], parents: Bool = false, children: Bool = false) -> String {
        var columns = Self.fields(object, extra: extra)
        if parents { columns += Self.parentFields(object) }
        if children, let child = Self.childQuery(object) { columns.append(child) }
        return "SELECT " + columns.joined(separator: ", ") + " FROM " + object
    }

    // MARK: Values that can be asked

    /// An address Salesforce can hold in an Email field (80 characters, no spaces or controls).
    static func addressLiteral(_ address: String) -> String? {
        guard address.contains("@"), address.count <= 80, !address.contains(where: { $0.isWhitespace }) else { return nil }
        return SOQL.literal(address)
    }

    /// A domain: letters, digits, hyphens and dots only.
    static func isDomain(_ domain: String) -> Bool {
        domain.contains(".") && domain.count <= 253 && domain.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." }
    }

    /// The domain and each parent that is not a public suffix: mail.fabrikam.com,
    /// fabrikam.com (not `com`, nor `co.uk` for fabrikam.co.uk).
    static func domainAndParents(_ domain: String) -> [String] {
        var result: [String] = []
        var labels = domain.split(separator: ".").map(String.init)
        while labels.count >= 2 {
            let candidate = labels.joined(separator: ".")
            if !CRMDirectoryKeys.isPublicSuffix(candidate) { result.append(candidate) }
            labels.removeFirst()
        }
        return result
    }

    /// Trailing-wildcard patterns a Website holding `domain` starts with (never a leading
    /// wildcard: it would scan every Account).
    static func websitePatterns(_ domain: String) -> [String] {
        ["", "www.", "http://", "https://", "http://www.", "https://www."].compactMap { SOQL.likeLiteral(prefix: $0 + domain) }
    }

    /// A phone number's digits with a wildcard before each (`%4%9%8%9...`): Salesforce holds
    /// numbers as typed (`+49 89 1234 5678`), and Phone fields are not indexed, so the pattern
    /// costs what any Phone filter costs, and the digits are compared exactly afterwards.
    static func phonePattern(_ phone: String) -> String? {
        let digits = CRMDirectoryKeys.phoneDigits(phone)
        guard digits.count >= 6, digits.count <= 20 else { return nil }
        return "'" + digits.map { "%" + String($0) }.joined() + "'"
    }

    /// A Case number as asked, without leading zeros, and zero-padded to Salesforce's 8 digits.
    static func caseNumberLiterals(_ number: String) -> [String] {
        guard !number.isEmpty, number.count <= 30, number.allSatisfy({ $0.isASCII && $0.isNumber }) else { return [] }
        let bare = CRMDirectoryKeys.caseNumber(number)
        let padded = String(repeating: "0", count: max(0, 8 - bare.count)) + bare
        var seen = Set<String>()
        return [number, bare, padded].filter { seen.insert($0).inserted }.compactMap(SOQL.literal)
    }

    /// A Message-ID as Salesforce may store it: with and without angle brackets.
    static func messageIdentifierLiterals(_ key: String) -> [String] {
        guard !key.isEmpty, key.utf16.count <= MessageIDKey.longestKept else { return [] }
        return ["<" + key + ">", key].compactMap(SOQL.literal)
    }

    // MARK: The queries

    /// The plan's queries, most used first (the first five share one call).
    func queries(for plan: LookupPlan, taskField: String?) -> [Query] {
        var result: [Query] = []
        func add(_ kind: Kind, _ statement: SOQL.Statement) {
            result += statement.split(limit: limit).map { Query(kind: kind, soql: $0) }
        }
        let addresses = Self.unique(plan.addresses.compactMap(Self.addressLiteral))
        let phones = Self.unique(plan.phones.compactMap(Self.phonePattern))
        let phoneFields = SalesforceSchema.personPhoneFields
        // Record ids of people (a Save dialog's selection, a link in the body) ride in the
        // people's own queries (`OR Id IN (...)`) instead of queries of their own: the answers
        // by address and phone are filtered exactly afterwards, so they do not change, and a
        // selection costs no second call.
        let idsByObject = recordIDsByObject(plan)
        func ids(_ object: String) -> [String] { idsByObject.first { $0.0 == object }?.1 ?? [] }
        let byID: (String) -> [SOQL.Statement.Group] = { object in ids(object).isEmpty ? [] : [.init(.within(fields: ["Id"], and: nil), ids(object))] }
        if !addresses.isEmpty || !phones.isEmpty || !ids("Contact").isEmpty || !ids("Lead").isEmpty {
            let likePhones: [SOQL.Statement.Group] = phoneFields.map { .init(.like(field: $0), phones) }
            add(.contacts, SOQL.Statement(head: select("Contact", extra: configuration.extraEmailFields, parents: true, children: true),
                                          groups: [.init(.within(fields: emailFields, and: nil), addresses)] + likePhones + byID("Contact")))
            add(.leads, SOQL.Statement(head: select("Lead", extra: configuration.extraEmailFields),
                                       groups: [.init(.within(fields: emailFields, and: "IsConverted = false"), addresses)] + likePhones + byID("Lead")))
        }
        if !addresses.isEmpty || !ids("User").isEmpty {
            add(.users, SOQL.Statement(head: select("User"), groups: [.init(.within(fields: ["Email"], and: nil), addresses)] + byID("User")))
        }
        let domains = Self.unique(plan.websiteDomains.filter(Self.isDomain).flatMap(Self.domainAndParents))
        let names = Self.unique(plan.companyNames.compactMap { name -> String? in
            // Name is indexed: its first word as a prefix, compared exactly afterwards.
            guard let first = CRMDirectoryKeys.companyName(name).split(separator: " ").first, first.count >= 2 else { return nil }
            return SOQL.likeLiteral(prefix: String(first))
        })
        if !domains.isEmpty || !names.isEmpty {
            add(.accounts, SOQL.Statement(head: select("Account", children: true),
                                          groups: [.init(.like(field: "Website"), domains.flatMap(Self.websitePatterns)), .init(.like(field: "Name"), names)]))
        }
        var identifiers = plan.messageIdentifiers
        if !plan.ledgerKey.isEmpty { identifiers.append(plan.ledgerKey) }
        let identifierLiterals = Self.unique(identifiers.flatMap(Self.messageIdentifierLiterals))
        if !identifierLiterals.isEmpty {
            add(.emailMessages, SOQL.Statement(head: select("EmailMessage", children: true),
                                               groups: [.init(.within(fields: ["MessageIdentifier"], and: nil), identifierLiterals)]))
        }
        if let taskField, !plan.ledgerKey.isEmpty {
            add(.tasks, taskCheck(field: taskField, key: plan.ledgerKey))
        }
        let numbers = Self.unique(plan.caseNumbers.flatMap(Self.caseNumberLiterals))
        if !numbers.isEmpty {
            add(.cases, SOQL.Statement(head: select("Case", parents: true), groups: [.init(.within(fields: ["CaseNumber"], and: nil), numbers)]))
        }
        for (object, ids) in idsByObject where !Self.peopleObjects.contains(object) {
            add(.records(object), SOQL.Statement(head: select(object, parents: true), groups: [.init(.within(fields: ["Id"], and: nil), ids)]))
        }
        return result
    }

    /// The objects whose ids are asked in the people queries (`OR Id IN (...)`).
    static let peopleObjects: Set<String> = ["Contact", "Lead", "User"]

    /// The plan's record ids as SOQL literals, by object, each once, in the order asked.
    func recordIDsByObject(_ plan: LookupPlan) -> [(String, [String])] {
        var idsByObject: [(String, [String])] = []
        for id in plan.recordIDs where SalesforceID.isWellFormed(id) {
            guard let object = SalesforceID.object(of: id), SalesforceSchema.linkableObjects.contains(object), let literal = SOQL.literal(id) else { continue }
            if let index = idsByObject.firstIndex(where: { $0.0 == object }) {
                if !idsByObject[index].1.contains(literal) { idsByObject[index].1.append(literal) }
            } else {
                idsByObject.append((object, [literal]))
            }
        }
        return idsByObject
    }

    func taskCheck(field: String, key: String) -> SOQL.Statement {
        SOQL.Statement(head: "SELECT Id, \(field) FROM Task", groups: [.init(.within(fields: [field], and: nil), Self.messageIdentifierLiterals(key))])
    }

    /// The Accounts of the Contacts whose email is at exactly `domain`: at most two rows, all
    /// this needs to tell one Account from several. Contact.Email is indexed, but only for
    /// whole values and prefixes: `LIKE '%@domain'` has a leading wildcard, so Salesforce reads
    /// every Contact row for it (a scan, like the phone patterns). SOSL (`FIND {fabrikam.com}
    /// IN EMAIL FIELDS`) would use the search index, but `/composite` does not take the
    /// Search resource (only `/composite/batch`, where each subrequest counts as an API call),
    /// the index lags behind new Contacts and returns ranked matches, not all: the exact query
    /// it is. Semi-joins cannot be OR-ed with the Account query's Website filter, so it is its
    /// own query. Nil for a domain Salesforce could not hold.
    func contactDomainQuery(_ domain: String) -> Query? {
        guard Self.isDomain(domain) else { return nil }
        let patterns = emailFields.compactMap { field in SOQL.likeLiteral(suffix: "@" + domain).map { "\(field) LIKE \($0)" } }
        guard !patterns.isEmpty else { return nil }
        let soql = "SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contact WHERE " + patterns.joined(separator: " OR ") + ") LIMIT 2"
        return Query(kind: .contactDomain(domain), soql: soql)
    }

    /// Opportunities of Accounts the Account query did not return.
    func opportunities(accountIDs: [String]) -> [Query] {
        let literals = Self.unique(accountIDs.filter(SalesforceID.isWellFormed).compactMap(SOQL.literal))
        guard !literals.isEmpty else { return [] }
        return SOQL.Statement(head: select("Opportunity"), groups: [.init(.within(fields: ["AccountId"], and: nil), literals)])
            .split(limit: limit).map { Query(kind: .opportunities, soql: $0) }
    }

    /// The values without repeats, in their first order.
    static func unique(_ values: [String]) -> [String] {
        var seen = Set<String>()
        return values.filter { seen.insert($0).inserted }
    }
}
