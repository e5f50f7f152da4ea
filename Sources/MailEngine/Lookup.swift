import MailRules

/// Every CRM question one decision asks, computed from the message, its context and the
/// pack alone, before anything is looked up. A backend answers the whole plan in one
/// `resolve`: the embedded store in one read transaction, Salesforce REST in one `/composite`
/// call, where asking per participant would cost an HTTP round trip each.
///
/// The plan names what the message names; the backend also follows what the answers name
/// (see `CRMAnswers`): the Account, open Opportunities and Cases of every Contact found, and
/// the parents of every record found by id.
public struct LookupPlan: Sendable, Equatable {
    /// Normalised addresses: Contacts, non-converted Leads and Users by email (participants
    /// that are neither internal nor blocked, body addresses, the mailbox itself).
    public var addresses: [String] = []
    /// Domains whose Account is wanted by website (participants' domains, the signature's website).
    public var websiteDomains: [String] = []
    /// Domains whose Contacts' Account is wanted (the Account of other people of the sender's
    /// company), each with the participants' addresses at it: the domains of participants that
    /// are neither internal, blocked nor free mail, exactly as written (no parent domain).
    /// A domain is answered only when it is wanted (`ContactDomainQuestion.isWanted`): only an
    /// unknown address needs it, and Salesforce spends a second call on it (a leading-wildcard
    /// search), so every backend applies the same condition and gives the same answers.
    public var contactDomains: [ContactDomainQuestion] = []
    /// Company names from the signature (Accounts by name).
    public var companyNames: [String] = []
    /// E.164 phone numbers from the signature (Contacts and Leads by phone).
    public var phones: [String] = []
    /// Case numbers named in the subject or body.
    public var caseNumbers: [String] = []
    /// Record ids: thread tokens, record links in the body, the Save dialog's selection.
    public var recordIDs: [String] = []
    /// In-Reply-To and References ids, newest first (the Magic Anchor), normalised.
    public var messageIdentifiers: [String] = []
    /// The message's save-once key (`MessageIDKey.ledgerKey`).
    public var ledgerKey: String = ""

    public init() {}

    /// Whether the plan asks nothing but the save-once check.
    public var isEmpty: Bool {
        addresses.isEmpty && websiteDomains.isEmpty && contactDomains.isEmpty && companyNames.isEmpty && phones.isEmpty && caseNumbers.isEmpty
            && recordIDs.isEmpty && messageIdentifiers.isEmpty
    }

    /// The plan's lists of keys, by name (not by key path: a key path literal is made at run
    /// time on its first use in a process, a hundredth of a per-message `process`).
    enum List: Hashable {
        case addresses, websiteDomains, companyNames, phones, caseNumbers, recordIDs, messageIdentifiers
    }

    /// Runs `body` on the list `list` names, in place.
    private mutating func with<T>(_ list: List, _ body: (inout [String], inout AskedIndex) -> T) -> T {
        switch list {
        case .addresses: return body(&addresses, &asked)
        case .websiteDomains: return body(&websiteDomains, &asked)
        case .companyNames: return body(&companyNames, &asked)
        case .phones: return body(&phones, &asked)
        case .caseNumbers: return body(&caseNumbers, &asked)
        case .recordIDs: return body(&recordIDs, &asked)
        case .messageIdentifiers: return body(&messageIdentifiers, &asked)
        }
    }

    /// Appends a key once, keeping the order keys were first asked in (answers do not depend
    /// on it, but the requests a backend sends are then the same on every run).
    mutating func ask(_ key: String, in list: List) {
        guard !key.isEmpty else { return }
        with(list) { keys, asked in
            if keys.count < AskedIndex.scanLimit {
                guard !keys.contains(key) else { return }
            } else {
                guard asked.insert(key, in: list, of: keys) else { return }
            }
            keys.append(key)
        }
    }

    /// Asks for the Account of the Contacts at `domain` on behalf of `address`.
    mutating func ask(contactDomain domain: String, for address: String) {
        guard !domain.isEmpty, !address.isEmpty else { return }
        if let index = asked.domainIndex(domain, in: contactDomains) {
            // No copy of the list is held while it grows (appending would copy it each time).
            let isNew = contactDomains[index].addresses.count < AskedIndex.scanLimit
                ? !contactDomains[index].addresses.contains(address)
                : asked.insert(address, atDomain: domain, of: contactDomains[index].addresses)
            if isNew { contactDomains[index].addresses.append(address) }
        } else {
            asked.noteDomain(domain, at: contactDomains.count)
            contactDomains.append(ContactDomainQuestion(domain: domain, addresses: [address]))
        }
        ask(address, in: .addresses)
    }

    /// What the plan's lists hold, hashed, once a list is too long to scan for each new key (a
    /// message may name 100,000 addresses: checking each against the list was quadratic, 47 s).
    /// An index of the plan's value, not part of it: equal plans stay equal.
    private var asked = AskedIndex()
}

struct AskedIndex: @unchecked Sendable, Equatable {
    /// Lists shorter than this are scanned: cheaper than hashing for a message's few keys.
    static let scanLimit = 32

    /// The keys of each long list.
    private var keys: [LookupPlan.List: Set<String>] = [:]
    /// `contactDomains`: each domain's index, and the addresses of each long question.
    private var domains: [String: Int] = [:]
    private var domainAddresses: [String: Set<String>] = [:]

    static func == (_: AskedIndex, _: AskedIndex) -> Bool { true }

    /// Adds `key` to the index of `list` (built from `current` the first time, or when the
    /// list was changed behind the index); false when it was there already.
    mutating func insert(_ key: String, in list: LookupPlan.List, of current: [String]) -> Bool {
        if keys[list]?.count != current.count { keys[list] = Set(current) }
        return keys[list, default: []].insert(key).inserted
    }

    mutating func insert(_ address: String, atDomain domain: String, of current: [String]) -> Bool {
        if domainAddresses[domain]?.count != current.count { domainAddresses[domain] = Set(current) }
        return domainAddresses[domain, default: []].insert(address).inserted
    }

    /// The index of `domain`'s question in `questions`, or nil.
    func domainIndex(_ domain: String, in questions: [ContactDomainQuestion]) -> Int? {
        if domains.count == questions.count { return domains[domain] }
        return questions.firstIndex { $0.domain == domain }
    }

    mutating func noteDomain(_ domain: String, at index: Int) {
        if domains.count == index { domains[domain] = index }
    }
}

/// One `LookupPlan.contactDomains` question: the Account of the Contacts whose email is at
/// `domain`, wanted for the participants `addresses` (all of them also in `LookupPlan.addresses`).
public struct ContactDomainQuestion: Sendable, Equatable {
    public var domain: String
    public var addresses: [String]

    public init(domain: String, addresses: [String]) {
        self.domain = domain
        self.addresses = addresses
    }

    /// Whether the question is answered, given the answers by address: no address at the
    /// domain is a Contact (a known colleague's Account is then the domain's, for free) and
    /// one is not a non-converted Lead either (an unknown address: the facts' Account when no
    /// participant is a Contact or Lead, the Account a created Contact goes under).
    public func isWanted(given answers: CRMAnswers) -> Bool {
        addresses.allSatisfy { answers.contacts(email: $0).isEmpty } && addresses.contains { answers.leads(email: $0).isEmpty }
    }
}

/// What the Contacts of one email domain say about its Account.
public enum DomainAccount: Sendable, Equatable {
    /// Every Contact of the domain that has an Account has this one (its id as the CRM holds
    /// the Account, or as the Contacts name it when the Account itself is not known).
    case one(String)
    /// The domain's Contacts belong to several Accounts: no Account is chosen by domain (a
    /// shared domain, a group's subsidiaries, a reseller), the website match decides.
    case several
}

/// A backend's answer to a `LookupPlan`: plain values, so fact assembly is pure and a test
/// can write an answer by hand. A question the plan did not ask has no answer (empty).
public struct CRMAnswers: Sendable, Equatable {
    public var contactsByAddress: [String: [CRMRecord]] = [:]
    public var leadsByAddress: [String: [CRMRecord]] = [:]
    public var usersByAddress: [String: [CRMRecord]] = [:]
    public var accountsByDomain: [String: [CRMRecord]] = [:]
    /// The Account of the Contacts at each `LookupPlan.contactDomains` domain that is wanted;
    /// no entry when no Contact of the domain has an Account (or the question was not wanted).
    public var accountByContactDomain: [String: DomainAccount] = [:]
    /// Keyed by `CRMDirectoryKeys.companyName` of the name asked.
    public var accountsByName: [String: [CRMRecord]] = [:]
    /// Keyed by the phone number as asked.
    public var peopleByPhone: [String: [CRMRecord]] = [:]
    /// Keyed by `CRMDirectoryKeys.caseNumber`.
    public var casesByNumber: [String: CRMRecord] = [:]
    /// Records by canonical (15-character) id: those the plan named, the Accounts of the
    /// Contacts found, and the Account and Contact each Opportunity or Case found by id belongs to.
    public var records: [String: CRMRecord] = [:]
    /// The Opportunities of every Account of a Contact found (keyed by the AccountId as the Contact holds it).
    public var opportunitiesByAccount: [String: [CRMRecord]] = [:]
    /// The Cases of every Contact found (keyed by the Contact's id as found).
    public var casesByContact: [String: [CRMRecord]] = [:]
    /// EmailMessages by normalised MessageIdentifier, with the ids related to each.
    public var emailMessages: [String: EmailMessageAnswer] = [:]
    /// The activity the message was saved as, when the ledger or the CRM holds one.
    public var savedRecord: String?

    public init() {}

    public func contacts(email address: String) -> [CRMRecord] { contactsByAddress[address] ?? [] }
    public func leads(email address: String) -> [CRMRecord] { leadsByAddress[address] ?? [] }
    public func users(email address: String) -> [CRMRecord] { usersByAddress[address] ?? [] }
    public func accounts(websiteDomain domain: String) -> [CRMRecord] { accountsByDomain[domain] ?? [] }
    public func account(contactDomain domain: String) -> DomainAccount? { accountByContactDomain[domain] }
    public func accounts(name: String) -> [CRMRecord] { accountsByName[CRMDirectoryKeys.companyName(name)] ?? [] }
    public func people(phone: String) -> [CRMRecord] { peopleByPhone[phone] ?? [] }
    public func opportunities(accountID: String) -> [CRMRecord] { opportunitiesByAccount[accountID] ?? [] }
    public func cases(contactID: String) -> [CRMRecord] { casesByContact[contactID] ?? [] }
    public func caseRecord(number: String) -> CRMRecord? { casesByNumber[CRMDirectoryKeys.caseNumber(number)] }
    public func record(id: String) -> CRMRecord? { records[SalesforceID.canonical(id)] }
    public func emailMessage(messageIdentifier: String) -> EmailMessageAnswer? { emailMessages[MessageIDKey.normalize(messageIdentifier)] }

    /// Adds a record to `records` under its canonical id.
    public mutating func remember(_ record: CRMRecord) { records[SalesforceID.canonical(record.id)] = record }
}

/// An EmailMessage and the Contact, Lead and User ids its relations name.
public struct EmailMessageAnswer: Sendable, Equatable {
    public var record: CRMRecord
    public var relations: [String]

    public init(record: CRMRecord, relations: [String]) {
        self.record = record
        self.relations = relations
    }
}

/// Why a CRM could not answer or save. `retryable` failures (a busy database, a network
/// fault, a server asking to come back later) are worth trying again and exit 75; the rest
/// exit 3. `parked` says the work was kept to be done later (the retry outbox).
public struct CRMError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Kind: Sendable, Equatable {
        /// Try again later: nothing was written, or what was written is found again by the save-once check.
        case retryable
        /// Trying again will not help (a bad configuration, a refused record, a missing permission).
        case permanent
    }

    public var kind: Kind
    /// One line naming the backend, the record and the field where known. Never a secret.
    public var message: String
    /// Whether every other save to this backend would fail the same way until later (an org's
    /// daily API allowance used up): `mailsave retry` stops draining instead of spending
    /// an attempt on each entry.
    public var stopsBatch: Bool

    public init(_ kind: Kind, _ message: String, stopsBatch: Bool = false) {
        self.kind = kind
        self.message = message
        self.stopsBatch = stopsBatch
    }

    public var description: String { message }
    public var isRetryable: Bool { kind == .retryable }
}

/// An error a backend throws that says whether it is worth retrying (the store's busy
/// database, Salesforce's 503): `CRMDirectory`'s default `resolve` keeps the distinction.
public protocol CRMErrorConvertible: Error {
    var crmError: CRMError { get }
}

/// A CRM backend as the engine sees it: one call answers a decision's whole look-up plan.
/// The embedded store, the CSV directory and Salesforce REST implement it and pass the same
/// contract tests (`Tests/*/CRMContract*`).
///
/// Synchronous on purpose: the REST backend uses libcurl's blocking easy API, and `batch`
/// runs decisions on threads (`--jobs`); an `async` signature over a blocking call would only
/// tie up Swift's cooperative pool.
public protocol CRMDirectory: Sendable {
    func resolve(_ plan: LookupPlan) throws(CRMError) -> CRMAnswers
    /// Whether a decision may search in two steps: the save-once ledger first, the records
    /// only when a rule reads them (`Engine.run`). True by default; a backend whose one
    /// answer to a whole plan is a round trip (Salesforce) says false, since a second search
    /// would cost every message that needs records a second request.
    var searchesInSteps: Bool { get }
}

extension CRMDirectory {
    public var searchesInSteps: Bool { true }
}

/// A backend that answers one question at a time cheaply (in memory, SQLite): it gets
/// `resolve` for free, answered inside one `snapshot` so a decision sees one consistent CRM.
public protocol RecordLookups: CRMDirectory {
    /// Contacts whose Email (or other email field) is `address`.
    func contacts(email address: String) throws -> [CRMRecord]
    /// Non-converted Leads whose Email is `address`.
    func leads(email address: String) throws -> [CRMRecord]
    func users(email address: String) throws -> [CRMRecord]
    /// The three above at once, for a backend that can answer them in one go (the store: one
    /// indexed query instead of three, a sixth of a decision's time).
    func people(email address: String) throws -> (contacts: [CRMRecord], leads: [CRMRecord], users: [CRMRecord])
    /// Accounts whose Website's domain is `domain` or a parent of it.
    func accounts(websiteDomain domain: String) throws -> [CRMRecord]
    /// The Account of the Contacts whose Email (or other email field) is at exactly `domain`
    /// (`x@mail.fabrikam.com` is not at `fabrikam.com`); nil when none of them has an Account.
    /// Contacts without an Account do not count. Answered from an index: two seeks, whatever
    /// the number of Contacts at the domain.
    func account(contactDomain domain: String) throws -> DomainAccount?
    /// Accounts whose Name is `name`, compared without case, punctuation or a legal form
    /// (`Fabrikam, Inc.` = `fabrikam inc` = `Fabrikam`).
    func accounts(name: String) throws -> [CRMRecord]
    /// Contacts and Leads with this phone number (E.164).
    func people(phone: String) throws -> [CRMRecord]
    func opportunities(accountID: String) throws -> [CRMRecord]
    func cases(contactID: String) throws -> [CRMRecord]
    func caseRecord(number: String) throws -> CRMRecord?
    /// Any record by id (for record links found in a body).
    func record(id: String) throws -> CRMRecord?
    /// The EmailMessage with this MessageIdentifier, and the Contact, Lead and User ids it is related to.
    func emailMessage(messageIdentifier: String) throws -> (record: CRMRecord, relations: [String])?
    /// The record a message was saved as, if the save-once ledger holds it and the record still exists.
    func savedRecord(messageID: String) throws -> String?
    /// Runs the look-ups of one decision against one consistent view of the CRM.
    func snapshot<T>(_ body: () throws -> T) throws -> T
    /// Runs the save-once ledger's question alone (the first step of `Engine.run`): `snapshot`
    /// by default; a backend whose ledger question is one read needs no shared view for it.
    func ledgerSnapshot<T>(_ body: () throws -> T) throws -> T
}

extension RecordLookups {
    public func snapshot<T>(_ body: () throws -> T) throws -> T { try body() }
    public func ledgerSnapshot<T>(_ body: () throws -> T) throws -> T { try snapshot(body) }

    public func people(email address: String) throws -> (contacts: [CRMRecord], leads: [CRMRecord], users: [CRMRecord]) {
        (try contacts(email: address), try leads(email: address), try users(email: address))
    }

    /// A directory that cannot search Accounts by name finds none.
    public func accounts(name: String) throws -> [CRMRecord] { [] }

    public func resolve(_ plan: LookupPlan) throws(CRMError) -> CRMAnswers {
        do {
            // A plan of the ledger alone is one question.
            return try plan.isEmpty ? ledgerSnapshot { try answer(plan) } : snapshot { try answer(plan) }
        } catch let error as CRMError {
            throw error
        } catch let error as CRMErrorConvertible {
            throw error.crmError
        } catch {
            throw CRMError(.permanent, "cannot read the CRM: \(error)")
        }
    }

    /// The plan answered question by question, following what the answers name.
    func answer(_ plan: LookupPlan) throws -> CRMAnswers {
        var answers = CRMAnswers()
        var contactsFound: [CRMRecord] = []
        for address in plan.addresses {
            let people = try people(email: address)
            answers.contactsByAddress[address] = people.contacts
            contactsFound += people.contacts
            answers.leadsByAddress[address] = people.leads
            answers.usersByAddress[address] = people.users
        }
        for contact in contactsFound {
            answers.casesByContact[contact.id] = try cases(contactID: contact.id)
            guard let account = contact["AccountId"], answers.opportunitiesByAccount[account] == nil else { continue }
            answers.opportunitiesByAccount[account] = try opportunities(accountID: account)
            if let record = try record(id: account) { answers.remember(record) }
        }
        for domain in plan.websiteDomains { answers.accountsByDomain[domain] = try accounts(websiteDomain: domain) }
        for question in plan.contactDomains where question.isWanted(given: answers) {
            if let found = try account(contactDomain: question.domain) { answers.accountByContactDomain[question.domain] = found }
        }
        for name in plan.companyNames { answers.accountsByName[CRMDirectoryKeys.companyName(name)] = try accounts(name: name) }
        for phone in plan.phones { answers.peopleByPhone[phone] = try people(phone: phone) }
        for number in plan.caseNumbers {
            if let found = try caseRecord(number: number) { answers.casesByNumber[CRMDirectoryKeys.caseNumber(number)] = found }
        }
        for id in plan.recordIDs {
            guard let found = try record(id: id) else { continue }
            answers.remember(found)
            // An Opportunity or Case is blocked through its Account or Contact.
            for field in ["AccountId", "ContactId"] {
                if let parent = found[field], let record = try record(id: parent) { answers.remember(record) }
            }
        }
        for identifier in plan.messageIdentifiers {
            if let (email, relations) = try emailMessage(messageIdentifier: identifier) {
                answers.emailMessages[MessageIDKey.normalize(identifier)] = EmailMessageAnswer(record: email, relations: relations)
            }
        }
        if !plan.ledgerKey.isEmpty { answers.savedRecord = try savedRecord(messageID: plan.ledgerKey) }
        return answers
    }
}
