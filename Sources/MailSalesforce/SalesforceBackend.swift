import Foundation
import MailEngine
import MailMessage
import MailRules

/// A Salesforce org as a CRM backend: `resolve` answers a decision's whole look-up plan in
/// (usually) one `/composite` call; `write` saves a decision in one `allOrNone` composite
/// call, at most once per message across retries, processes and lost responses.
///
/// Thread-safe: `batch --jobs` shares one backend between threads.
public final class SalesforceBackend: CRMDirectory, ActivityWriter, @unchecked Sendable {
    public let configuration: SalesforceConfiguration
    let connection: SalesforceConnection
    let queries: LookupQueries
    private let lock = NSLock()
    /// Ledger keys this backend's `resolve` looked for in the org (EmailMessage and, when
    /// configured, Task) and did not find: the save skips its own check for them.
    private var knownAbsent: Set<String> = []
    /// Addresses of the people `resolve` found, by canonical id, and Users by address: a save
    /// needs them for the recipient lists and the owner.
    private var addressOfPerson: [String: String] = [:]
    private var userByAddress: [String: String] = [:]

    /// A backend over `transport` (`CurlTransport` for a real org). `sleep` waits between
    /// retries (tests pass one that does not wait); `random` gives the jitter, in 0...1.
    public init(configuration: SalesforceConfiguration, transport: HTTPTransport? = nil,
                sleep: @escaping @Sendable (Double) -> Void = { seconds in if seconds > 0 { usleep(UInt32(min(seconds, 60) * 1_000_000)) } },
                random: @escaping @Sendable () -> Double = { Double.random(in: 0...1) }) {
        self.configuration = configuration
        var options = CurlTransport.Options()
        options.timeout = configuration.timeout
        options.connectTimeout = configuration.connectTimeout
        options.caFile = configuration.caFile
        connection = SalesforceConnection(configuration: configuration, transport: transport ?? CurlTransport(options: options),
                                          sleep: sleep, random: random)
        queries = LookupQueries(configuration: configuration)
    }

    /// The calls made so far.
    public var statistics: SalesforceStatistics { connection.statistics }

    /// Where the token cache file is, when tokens are cached.
    public var tokenCachePath: String? { connection.cache?.path }

    // MARK: CRMDirectory

    /// One composite request answers a whole plan: searching the ledger first and the records
    /// after would cost every message that needs records a second round trip.
    public var searchesInSteps: Bool { false }

    public func resolve(_ plan: LookupPlan) throws(CRMError) -> CRMAnswers {
        let runner = CompositeQueryRunner(connection: connection)
        let taskField = configuration.taskMessageIDFieldDisabled ? nil : configuration.taskMessageIDField
        var rows: [LookupQueries.Kind: [Row]]
        // Whether the Task's Message-ID field is Unique decides whether a Task save needs a
        // look-up first: asked once a session, riding in this call (no call of its own).
        let savedField = taskMessageIDField()
        let riders = savedField.map { connection.taskFieldFacts($0) == nil } == true ? [describeTaskPath] : []
        do {
            let first = try runner.run(queries.queries(for: plan, taskField: taskField), kind: "lookup", riders: riders)
            rows = first.rows
            if let savedField, let describe = first.riders[describeTaskPath] { learnTaskField(savedField, from: describe) }
            // Opportunities of Contacts' Accounts the Account query did not bring.
            let loaded = Set((rows[.accounts] ?? []).map { SalesforceID.canonical($0.record.id) })
            let contacts = Self.contactsFound(plan, rows: rows, emailFields: queries.emailFields)
            var missing: [String] = []
            for contact in contacts {
                guard let account = contact["AccountId"], !loaded.contains(SalesforceID.canonical(account)), !missing.contains(account) else { continue }
                missing.append(account)
            }
            // And the Accounts of the Contacts of the domains the first answers leave wanted
            // (a stranger whose colleagues on the message are not Contacts): in the same second call.
            let byAddress = assemble(plan, rows: rows)
            let domains = plan.contactDomains.filter { $0.isWanted(given: byAddress) }.compactMap { queries.contactDomainQuery($0.domain) }
            let followUp = queries.opportunities(accountIDs: missing) + domains
            if !followUp.isEmpty {
                let more = try runner.run(followUp, kind: "lookup")
                if !missing.isEmpty { rows[.opportunities] = more[.opportunities] ?? [] }
                for query in domains { rows[query.kind] = more[query.kind] ?? [] }
            }
        } catch {
            throw error.error
        }
        let answers = assemble(plan, rows: rows)
        lock.withLock {
            if answers.savedRecord == nil, !plan.ledgerKey.isEmpty, taskField != nil || configuration.taskMessageIDFieldDisabled {
                knownAbsent.insert(plan.ledgerKey)
            } else if answers.savedRecord == nil, !plan.ledgerKey.isEmpty {
                // Checked for EmailMessages; Tasks are checked by the save when it writes one.
                knownAbsent.insert("EmailMessage:" + plan.ledgerKey)
            }
            for (address, people) in answers.contactsByAddress { for person in people { addressOfPerson[SalesforceID.canonical(person.id)] = address } }
            for (address, people) in answers.leadsByAddress { for person in people { addressOfPerson[SalesforceID.canonical(person.id)] = address } }
            for (address, people) in answers.usersByAddress {
                for person in people { addressOfPerson[SalesforceID.canonical(person.id)] = address }
                if let user = people.first(where: { $0["IsActive"] != "false" }) ?? people.first { userByAddress[address] = user.id }
            }
        }
        return answers
    }

    static func emailMatches(_ record: CRMRecord, _ address: String, fields: [String]) -> Bool {
        fields.contains { field in record[field].map(CRMDirectoryKeys.address) == address }
    }

    static func contactsFound(_ plan: LookupPlan, rows: [LookupQueries.Kind: [Row]], emailFields: [String]) -> [CRMRecord] {
        var found: [CRMRecord] = []
        for address in plan.addresses {
            found += (rows[.contacts] ?? []).map(\.record).filter { emailMatches($0, address, fields: emailFields) }
        }
        return found
    }

    /// The rows as `RecordLookups.answer` would answer the plan: each question's records
    /// filtered with the same normalisation the local backends use.
    func assemble(_ plan: LookupPlan, rows: [LookupQueries.Kind: [Row]]) -> CRMAnswers {
        var answers = CRMAnswers()
        let fields = queries.emailFields
        let contactRows = rows[.contacts] ?? []
        let leadRows = rows[.leads] ?? []
        let accountRows = rows[.accounts] ?? []
        var contactsFound: [Row] = []
        for address in plan.addresses {
            let contacts = contactRows.filter { Self.emailMatches($0.record, address, fields: fields) }
            answers.contactsByAddress[address] = contacts.map(\.record)
            contactsFound += contacts
            answers.leadsByAddress[address] = leadRows.map(\.record).filter { Self.emailMatches($0, address, fields: fields) && !$0.flag("IsConverted") }
            answers.usersByAddress[address] = (rows[.users] ?? []).map(\.record).filter { Self.emailMatches($0, address, fields: ["Email"]) }
        }
        for contact in contactsFound {
            answers.casesByContact[contact.record.id] = contact.children["Cases"] ?? []
            guard let account = contact.record["AccountId"], answers.opportunitiesByAccount[account] == nil else { continue }
            let key = SalesforceID.canonical(account)
            if let row = accountRows.first(where: { SalesforceID.canonical($0.record.id) == key }) {
                answers.opportunitiesByAccount[account] = row.children["Opportunities"] ?? []
            } else {
                answers.opportunitiesByAccount[account] = (rows[.opportunities] ?? []).map(\.record).filter {
                    $0["AccountId"].map(SalesforceID.canonical) == key
                }
            }
            if let parent = contact.parents["Account"] { answers.remember(parent) }
        }
        for domain in plan.websiteDomains {
            answers.accountsByDomain[domain] = accountRows.map(\.record).filter { account in
                guard let website = account["Website"], let host = CRMDirectoryKeys.domain(ofWebsite: website) else { return false }
                return host == domain || domain.hasSuffix("." + host)
            }
        }
        for question in plan.contactDomains {
            guard let found = rows[.contactDomain(question.domain)], let first = found.first else { continue }
            answers.accountByContactDomain[question.domain] = found.count > 1 ? .several : .one(first.record.id)
        }
        for name in plan.companyNames {
            let key = CRMDirectoryKeys.companyName(name)
            answers.accountsByName[key] = key.isEmpty ? [] : accountRows.map(\.record).filter { CRMDirectoryKeys.companyName($0["Name"] ?? "") == key }
        }
        for phone in plan.phones {
            let digits = CRMDirectoryKeys.phoneDigits(phone)
            answers.peopleByPhone[phone] = (contactRows + leadRows).map(\.record).filter { person in
                SalesforceSchema.personPhoneFields.contains { person[$0].map(CRMDirectoryKeys.phoneDigits) == digits }
            }
        }
        for number in plan.caseNumbers {
            let key = CRMDirectoryKeys.caseNumber(number)
            if let found = (rows[.cases] ?? []).first(where: { CRMDirectoryKeys.caseNumber($0.record["CaseNumber"] ?? "") == key }) {
                answers.casesByNumber[key] = found.record
            }
        }
        var byID: [String: Row] = [:]
        for (kind, list) in rows {
            switch kind {
            case .records, .contacts, .leads, .users: for row in list { byID[SalesforceID.canonical(row.record.id)] = row }
            default: continue
            }
        }
        for id in plan.recordIDs {
            guard let found = byID[SalesforceID.canonical(id)] else { continue }
            answers.remember(found.record)
            for (field, relationship, _) in SalesforceSchema.parentRelationships where found.record[field] != nil {
                if let parent = found.parents[relationship] { answers.remember(parent) }
            }
        }
        let emailRows = rows[.emailMessages] ?? []
        func email(_ key: String) -> Row? {
            emailRows.first { MessageIDKey.normalize($0.record["MessageIdentifier"] ?? "") == key }
        }
        for identifier in plan.messageIdentifiers {
            let key = MessageIDKey.normalize(identifier)
            if let found = email(key) {
                let relations = (found.children["EmailMessageRelations"] ?? []).compactMap { $0["RelationId"] }
                answers.emailMessages[key] = EmailMessageAnswer(record: found.record, relations: relations)
            }
        }
        if !plan.ledgerKey.isEmpty {
            let key = MessageIDKey.normalize(plan.ledgerKey)
            let taskField = configuration.taskMessageIDField ?? SalesforceSchema.taskMessageIdentifierField
            answers.savedRecord = email(key)?.record.id
                ?? (rows[.tasks] ?? []).first { MessageIDKey.normalize($0.record[taskField] ?? "") == key }?.record.id
        }
        return answers
    }

    // MARK: State the save reads

    var describeTaskPath: String { connection.dataPath + "/sobjects/Task/describe" }

    /// Keeps what describe says of the field (one describe does not list is not unique).
    func learnTaskField(_ field: String, from describe: JSON) {
        let spec = (describe["fields"]?.array ?? []).first { $0["name"]?.string?.lowercased() == field.lowercased() }
        connection.rememberTaskField(field, FieldFacts(unique: spec?["unique"]?.bool == true, caseSensitive: spec?["caseSensitive"]?.bool == true))
    }

    /// What the org says of the Task field: what the session learnt, else one describe call.
    /// Any doubt (describe refused or unreadable) is "not unique": the save then looks first.
    func taskFieldFacts(_ field: String) -> FieldFacts {
        if let known = connection.taskFieldFacts(field) { return known }
        guard let describe = try? connection.call("GET", path: describeTaskPath, body: nil, kind: "describe", write: false) else {
            // Kept for the session, so a batch does not ask again for each of its messages.
            connection.rememberTaskField(field, FieldFacts(unique: false, caseSensitive: false))
            return FieldFacts(unique: false, caseSensitive: false)
        }
        learnTaskField(field, from: describe)
        return connection.taskFieldFacts(field) ?? FieldFacts(unique: false, caseSensitive: false)
    }

    func isKnownAbsent(_ key: String, object: String) -> Bool {
        lock.withLock { knownAbsent.contains(key) || (object == "EmailMessage" && knownAbsent.contains("EmailMessage:" + key)) }
    }

    func forgetAbsent(_ key: String) {
        lock.withLock {
            knownAbsent.remove(key)
            knownAbsent.remove("EmailMessage:" + key)
        }
    }

    func address(ofPerson id: String) -> String? { lock.withLock { addressOfPerson[SalesforceID.canonical(id)] } }
    func user(address: String) -> String? { lock.withLock { userByAddress[address] } }
}
