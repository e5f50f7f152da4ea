import Foundation
import MailMessage
import MailRules

/// What the caller knows besides the message: whose mailbox, which folder, what triggered
/// the decision, and the user's selection in the Save dialog.
public struct ProcessContext: Sendable {
    public static let triggers = ["auto", "category", "folder", "button"]
    public static let selectionKinds = ["contact", "lead", "user", "account", "opportunity", "case"]

    public var mailbox: String
    /// `/`-separated folder path (`Inbox/Deals`).
    public var folder: String
    public var categories: [String]
    public var trigger: String
    /// `--select KIND=ID`, in order.
    public var selection: [(kind: String, id: String)]
    /// The folder's role when the caller knows it (`--folder-role`): `inbox`, `sent`,
    /// `salesforce`, or `other` (a folder with no synchronised role); nil to find it by name.
    public var folderRole: String?
    /// The message is saved with its whole thread (`process --thread`): `thread.whole`.
    public var wholeThread = false

    public init(mailbox: String, folder: String = "Inbox", categories: [String] = [], trigger: String = "auto",
                selection: [(kind: String, id: String)] = [], folderRole: String? = nil) {
        self.mailbox = mailbox
        self.folder = folder
        self.categories = categories
        self.trigger = trigger
        self.selection = selection
        self.folderRole = folderRole
    }

    public static let folderRoles = ["inbox", "sent", "salesforce", "other"]

    /// A role as callers name it: ours, Microsoft Graph's `wellKnownName`, Gmail's system
    /// labels, IMAP SPECIAL-USE attributes (RFC 6154), case-insensitively. Nil when unknown.
    public static func folderRole(named name: String) -> String? {
        var key = name.lowercased().trimmingHorizontalSpace()
        if key.hasPrefix("\\") { key.removeFirst() }
        switch key {
        case "inbox": return "inbox"
        case "sent", "sentitems", "sent_items", "sent items", "sent mail": return "sent"
        case "salesforce": return "salesforce"
        case "other", "archive", "all", "allmail", "all_mail", "deleteditems", "drafts", "draft", "junk", "junkemail", "spam", "trash",
             "outbox", "flagged", "important", "starred", "unread", "chat", "conversationhistory", "clutter", "scheduled",
             "searchfolders", "syncissues", "recoverableitemsdeletions":
            return "other"
        default: return nil
        }
    }

    /// The selection as it applies: only to user-initiated saves (ForceSync), never to
    /// automatic sync, which links what the search finds.
    public var effectiveSelection: [(kind: String, id: String)] { trigger == "auto" ? [] : selection }
}

/// A `--select KIND=ID` the engine refuses: the id does not exist, is of another kind, or is
/// an internal or blocklisted record. The command line reports it as a usage error (exit 2).
public struct SelectionError: Error, Sendable, CustomStringConvertible {
    public var kind: String
    public var id: String
    public var reason: String
    public var description: String { "--select \(kind)=\(id): \(reason); nothing was saved" }
}

/// One participant after the blocklists and the CRM look-up.
public struct ParticipantFacts: Sendable {
    public var address: Address
    public var role: String
    public var owner: Bool
    public var isInternal: Bool
    public var freeMail: Bool
    public var blockedBy: String?
    public var blockedEntry: String?
    public var contact: CRMRecord?
    public var lead: CRMRecord?
    public var account: String?
    /// When `account` was matched by website domain (no Contact or Lead matched): the
    /// Website's domain that matched.
    public var accountByWebsite: String?
    /// When `account` is that of the other Contacts at the participant's domain (no Contact or
    /// Lead matched, and they all belong to it): the domain.
    public var accountByContactDomain: String?
    public var user: CRMRecord?

    public var blocked: Bool { blockedBy != nil }

    /// Someone a record could be made for, were the address fit (`Engine.noRecord`): not
    /// blocked, not the mailbox owner (a mailbox outside the corporate domains is not
    /// internal), and without a Contact, Lead or User.
    var lacksRecord: Bool { !blocked && !owner && contact == nil && lead == nil && user == nil }
}

/// Records the related-record search found (DESIGN.md point 15).
public struct RelatedRecords: Sendable {
    public var contacts: [String] = []
    public var leads: [String] = []
    public var accounts: [String] = []
    public var opportunities: [String] = []
    public var cases: [String] = []
    /// Records named by links, addresses, phones or the website in the body or signature.
    public var bodyReferences: [String] = []
    /// The same records with how each was found: candidates for the Save dialog.
    public var candidates: [Candidate] = []
}

/// A record the body or the signature names (DESIGN.md point 15): offered in the Save dialog,
/// and a reference for useful mode; never linked automatically.
public struct Candidate: Sendable, Equatable {
    public var id: String
    public var object: String
    /// How it was found: `body link`, `body address x@y`, `signature phone +1…`,
    /// `signature website fabrikam.com`, `signature company Fabrikam Inc.`.
    public var via: String

    public init(id: String, object: String, via: String) {
        self.id = id
        self.object = object
        self.via = via
    }
}

/// Everything the rules read, as engine values (for links and the record) and as the typed
/// fact object the rules evaluate.
public struct EngineFacts: Sendable {
    public var participants: [ParticipantFacts]
    public var related: RelatedRecords
    public var threadCase: String?
    /// A Case the thread names that is another customer's, not linked (`thread.foreign_case`).
    public var foreignCase: String?
    public var anchorEmail: String?
    public var anchorWho: String?
    public var savedRecord: String?
    /// The save-once key: the normalised Message-ID, or the fingerprint of a message without one.
    public var ledgerKey: String
    public var direction: String
    public var object: FactObject
    /// The CRM's answers the facts were built from (the decision reads them too: the Account
    /// a new Contact goes under).
    public var answers: CRMAnswers
}

/// Builds the facts: blocklists (internal, org, individual), direction, the related-record
/// search, the thread (Case tokens, the Magic Anchor) and the ledger.
///
/// Three steps, so the CRM is asked once per message whatever the backend: `plan` lists every
/// question (pure), the backend's `resolve` answers them all, `build` assembles the facts
/// from the answers (pure).
public struct FactsBuilder {
    let pack: RulePack
    /// The CRM's answers to `plan(_:context:)`.
    public var answers: CRMAnswers

    public init(pack: RulePack, answers: CRMAnswers = CRMAnswers()) {
        self.pack = pack
        self.answers = answers
    }

    /// What `plan` and `build` both read off one message (its participants with their
    /// blocklist layers, the text Case numbers are looked for in): read once per decision by
    /// `Engine.run`, which calls both for the same message and mailbox.
    struct MessageReading {
        var participants: [ParticipantFacts]
        /// The thread tokens and Case numbers of the `threadText`: `plan` asks the CRM for them
        /// and `build` links the Case they name, from one scan of the text. Empty until
        /// `scanThread`: the first step of `Engine.run`, which searches no CRM, needs neither.
        var threadTokens: [String] = []
        var caseNumbers: [String] = []
        var threadScanned = false
        /// The save-once key (`MessageIDKey.ledgerKey`): the plan asks it, the facts hold it.
        var ledgerKey: String

        mutating func scanThread(_ message: Message) {
            guard !threadScanned else { return }
            let text = FactsBuilder.threadText(message)
            threadTokens = ThreadReferences.threadTokens(in: text)
            caseNumbers = ThreadReferences.caseNumbers(in: text)
            threadScanned = true
        }
    }
    var reading: MessageReading?

    func read(_ message: Message, context: ProcessContext, scanningThread: Bool = true) -> MessageReading {
        var reading = MessageReading(participants: participants(message, mailbox: CRMDirectoryKeys.address(context.mailbox)),
                                     ledgerKey: MessageIDKey.ledgerKey(message))
        if scanningThread { reading.scanThread(message) }
        return reading
    }

    /// Every question `build` will ask of the CRM about this message in this context.
    public func plan(_ message: Message, context: ProcessContext) -> LookupPlan {
        var plan = LookupPlan()
        let mailbox = CRMDirectoryKeys.address(context.mailbox)
        let freeMail = pack.list(setting: "free_mail_domains")
        for (_, id) in context.effectiveSelection { plan.ask(id, in: .recordIDs) }
        // Read once for plan and build when the engine set `reading`, else here.
        let reading = self.reading ?? read(message, context: context)
        assert(reading.threadScanned, "plan needs the thread scanned (MessageReading.scanThread)")
        for participant in reading.participants where !participant.blocked {
            plan.ask(participant.address.normalized, in: .addresses)
            // Free mail is never matched to an Account by domain; internal participants are
            // blocked, so the org's own domains never are either.
            if !participant.freeMail {
                plan.ask(participant.address.domain, in: .websiteDomains)
                plan.ask(contactDomain: participant.address.domain, for: participant.address.normalized)
            }
        }
        for token in reading.threadTokens { plan.ask(token, in: .recordIDs) }
        for number in reading.caseNumbers { plan.ask(number, in: .caseNumbers) }
        for id in message.inReplyTo + message.references.reversed() { plan.ask(MessageIDKey.normalize(id), in: .messageIdentifiers) }
        for link in message.bodyLinks {
            if let id = ThreadReferences.recordID(inLink: link) { plan.ask(id, in: .recordIDs) }
        }
        for email in message.bodyEmails {
            let key = CRMDirectoryKeys.address(email)
            let domain = String(key.split(separator: "@").last ?? "")
            if blockStatus(address: key, domain: domain, mailbox: mailbox) == nil { plan.ask(key, in: .addresses) }
        }
        if let signature = message.signature, let sender = reading.participants.first(where: { $0.role == "from" }), !sender.blocked {
            for phone in signature.phones where phone.hasPrefix("+") { plan.ask(phone, in: .phones) }
            if let website = signature.website.flatMap({ CRMDirectoryKeys.domain(ofWebsite: $0) }), !(freeMail?.contains(website) ?? false),
               blockStatus(address: "", domain: website, mailbox: mailbox) == nil {
                plan.ask(website, in: .websiteDomains)
            }
            if let company = signature.company { plan.ask(company, in: .companyNames) }
        }
        plan.ask(mailbox, in: .addresses)
        plan.ledgerKey = reading.ledgerKey
        return plan
    }

    /// The subject and the start of the body: where Case numbers and thread tokens are looked for.
    static func threadText(_ message: Message) -> String { (message.subject ?? "") + "\n" + String(message.textBody.prefix(characters: 64 << 10)) }

    /// Whether `address` is the mailbox owner's: the mailbox itself, or its local part at
    /// one of the corporate domains (an alias domain).
    func isOwner(_ address: Address, mailbox: String, knownInternal: Bool? = nil) -> Bool {
        if address.normalized == mailbox { return true }
        let isInternal = knownInternal ?? (pack.list(setting: "corporate_domains")?.contains(address.domain) ?? false)
        let mailboxLocal = mailbox.split(separator: "@").first.map(String.init) ?? mailbox
        return isInternal && address.local.lowercased() == mailboxLocal
    }

    /// Participants, each address once, with the first role it appears in, and the blocklist
    /// layer that blocks each.
    func participants(_ message: Message, mailbox: String) -> [ParticipantFacts] {
        let corporate = pack.list(setting: "corporate_domains")
        let freeMail = pack.list(setting: "free_mail_domains")
        var seen = Set<String>()
        var participants: [ParticipantFacts] = []
        let roles: [(String, [Address])] = [("from", message.from), ("to", message.to), ("cc", message.cc), ("bcc", message.bcc)]
        for (role, addresses) in roles {
            for address in addresses where !address.domain.isEmpty && seen.insert(address.normalized).inserted {
                let normalized = address.normalized
                let isInternal = corporate?.contains(address.domain) ?? false
                let owner = isOwner(address, mailbox: mailbox, knownInternal: isInternal)
                let isFreeMail = freeMail?.contains(address.domain) ?? false
                let block = blockStatus(address: normalized, domain: address.domain, mailbox: mailbox)
                participants.append(ParticipantFacts(address: address, role: role, owner: owner, isInternal: isInternal, freeMail: isFreeMail,
                                                     blockedBy: block?.layer, blockedEntry: block?.entry))
            }
        }
        return participants
    }

    /// The facts, from the message, its context and the CRM's answers to `plan`.
    /// `known`: what the facts may hold beyond the message's headers and bodies (`FactCost`).
    /// The first step of `Engine.run` builds with none, leaving the facts that cost more empty
    /// (no rule it runs reads them) and no `candidates`.
    public func build(_ message: Message, context: ProcessContext, known: FactCost = .all) throws -> EngineFacts {
        let mailbox = CRMDirectoryKeys.address(context.mailbox)
        let freeMail = pack.list(setting: "free_mail_domains")
        try validateSelection(context)
        let reading = self.reading ?? read(message, context: context)
        assert(reading.threadScanned || !known.contains(.crmSearch), "build with the CRM's answers needs the thread scanned")
        var participants = reading.participants

        // The related-record search, over every participant that is neither internal nor blocked.
        var related = RelatedRecords()
        let date = message.date.map { Date(timeIntervalSince1970: TimeInterval($0.secondsSinceEpoch)) } ?? Date()
        // Several records may share an address: the choice is by rule (Ranking), never by the
        // export's row order.
        for index in participants.indices where !participants[index].blocked {
            let key = participants[index].address.normalized
            if let lead = Ranking.people(answers.leads(email: key)).first {
                participants[index].lead = lead
                related.leads.append(lead.id)
            }
            if let contact = Ranking.people(answers.contacts(email: key)).first {
                participants[index].contact = contact
                participants[index].account = contact["AccountId"]
                related.contacts.append(contact.id)
            }
            participants[index].user = Ranking.people(answers.users(email: key)).first
        }
        var opportunities: [CRMRecord] = []
        var cases: [CRMRecord] = []
        if related.leads.isEmpty {
            for participant in participants {
                guard let contact = participant.contact else { continue }
                if let account = contact["AccountId"], !related.accounts.contains(account) {
                    related.accounts.append(account)
                    opportunities += answers.opportunities(accountID: account).filter { Self.isCurrent($0, at: date) }
                }
                cases += answers.cases(contactID: contact.id).filter { Self.isRecentOpenCase($0, at: date) }
            }
        }
        related.opportunities = Ranking.opportunities(opportunities, at: date).map(\.id)
        related.cases = Ranking.cases(cases).map(\.id)
        if related.leads.isEmpty && related.contacts.isEmpty {
            // The Account of the other Contacts at the domain, else Accounts by website domain;
            // never for free-mail domains.
            for index in participants.indices where !participants[index].blocked && !participants[index].freeMail {
                let domain = participants[index].address.domain
                if case .one(let account)? = answers.account(contactDomain: domain) {
                    participants[index].account = account
                    participants[index].accountByContactDomain = domain
                    if !related.accounts.contains(account) { related.accounts.append(account) }
                    continue
                }
                let accounts = Ranking.accounts(answers.accounts(websiteDomain: domain), domain: domain)
                if let first = accounts.first {
                    participants[index].account = first.id
                    participants[index].accountByWebsite = first["Website"].flatMap(CRMDirectoryKeys.domain(ofWebsite:)) ?? domain
                }
                for account in accounts where !related.accounts.contains(account.id) { related.accounts.append(account.id) }
            }
        }

        // The thread: a Case named in subject or body, and the Magic Anchor.
        // A Case whose Account or Contact is blocklisted is never linked (point 8), however
        // the thread names it: the Save dialog refused it, the thread linked it.
        // Nor one of another customer (`link_foreign_cases` off): anyone can write a Case number
        // or forward a thread token, and a Contact's email on someone else's Case shows there.
        // Of several named, the first that may be linked: naming another customer's Case
        // first does not hide the sender's own.
        var threadCase: String?
        var foreignCase: String?
        if known.contains(.crmSearch) {
            let named = ThreadReferences.caseRecords(tokens: reading.threadTokens, numbers: reading.caseNumbers, answers: answers)
                .filter { blocked($0, mailbox: mailbox, depth: 0) == nil }
            // Every Contact of the participants' addresses, not only the one each was matched
            // to (two Contacts may share an address, and the Case be on the other), and the
            // Accounts found for them (by Contact, website or the domain's other Contacts).
            let people = participants.filter { !$0.blocked }
            let contacts = people.flatMap { answers.contacts(email: $0.address.normalized) }
            let accounts = people.compactMap(\.account)
            let linksForeign = pack.orgSettings["link_foreign_cases"] == .bool(true)
            if let own = named.first(where: { linksForeign || !Self.isForeign($0, contacts: contacts, accounts: accounts) }) {
                threadCase = own.id
                if !related.cases.contains(own.id) { related.cases.append(own.id) }
            } else {
                foreignCase = named.first?.id
            }
        }
        // Magic Anchor: an email sent from Salesforce (not one saved on its way in: any saved
        // inbound email would anchor its replies), and its one Contact or Lead unless that
        // record is blocklisted.
        var anchorEmail: String?
        var anchorWho: String?
        if let anchor = threadAnchor(message) {
            anchorEmail = anchor.email.id
            if let who = anchor.who {
                if let record = knownRecord(who), blocked(record, mailbox: mailbox, depth: 0) != nil {} else { anchorWho = who }
            }
        }

        // What the body and signature name: record links, addresses, phones, the website, the
        // company. Internal and blocklisted addresses and domains never count, and the
        // signature counts only when its sender is an outside, unblocked participant (an
        // outbound email carries the owner's own signature).
        var candidates: [Candidate] = []
        func add(_ records: [CRMRecord], _ via: String) {
            for record in records where !candidates.contains(where: { $0.id == record.id }) {
                candidates.append(Candidate(id: record.id, object: record.object, via: via))
            }
        }
        for link in known.contains(.crmSearch) ? message.bodyLinks : [] {
            if let id = ThreadReferences.recordID(inLink: link), let record = answers.record(id: id),
               blocked(record, mailbox: mailbox, depth: 0) == nil {
                add([record], "body link \(link)")
            }
        }
        for email in known.contains(.crmSearch) ? message.bodyEmails : [] {
            let key = CRMDirectoryKeys.address(email)
            let domain = String(key.split(separator: "@").last ?? "")
            guard blockStatus(address: key, domain: domain, mailbox: mailbox) == nil else { continue }
            add(Ranking.people(answers.leads(email: key)) + Ranking.people(answers.contacts(email: key)), "body address \(key)")
        }
        let sender = participants.first { $0.role == "from" }
        if known.contains(.crmSearch), let signature = message.signature, let sender, !sender.blocked {
            for phone in signature.phones where phone.hasPrefix("+") {
                add(Ranking.people(answers.people(phone: phone)), "signature phone \(phone)")
            }
            var websiteAccount = false
            if let website = signature.website.flatMap({ CRMDirectoryKeys.domain(ofWebsite: $0) }), !(freeMail?.contains(website) ?? false),
               blockStatus(address: "", domain: website, mailbox: mailbox) == nil {
                let accounts = Ranking.accounts(answers.accounts(websiteDomain: website), domain: website)
                websiteAccount = !accounts.isEmpty
                add(accounts, "signature website \(website)")
            }
            // The company's name finds an Account when no domain does.
            if let company = signature.company, !websiteAccount, related.accounts.isEmpty {
                add(Ranking.people(answers.accounts(name: company)), "signature company \(company)")
            }
        }
        related.candidates = candidates
        related.bodyReferences = candidates.map(\.id)

        let ledgerKey = reading.ledgerKey
        let savedRecord = answers.savedRecord
        // Outbound: the owner wrote it (From), or sent it for a shared mailbox (`From:
        // sales@contoso.com`, `Sender: ann@contoso.com`; RFC 5322 3.6.2: Sender names who sent it).
        let direction = participants.first(where: { $0.role == "from" })?.owner == true
            || message.sender.contains(where: { isOwner($0, mailbox: mailbox) }) ? "outbound" : "inbound"
        let object = try factObject(message, context: context, participants: participants, related: related, threadCase: threadCase,
                                    foreignCase: foreignCase, anchorEmail: anchorEmail, anchorWho: anchorWho, savedRecord: savedRecord, ledgerKey: ledgerKey,
                                    direction: direction, mailbox: mailbox, known: known)
        return EngineFacts(participants: participants, related: related, threadCase: threadCase, foreignCase: foreignCase, anchorEmail: anchorEmail,
                           anchorWho: anchorWho, savedRecord: savedRecord, ledgerKey: ledgerKey, direction: direction, object: object,
                           answers: answers)
    }

    /// The folder's role: the caller's, else the role whose
    /// list names the folder or a folder above it, the longest name winning
    /// (`INBOX/Sent` is the sent folder, `Inbox/Deals` is under the inbox).
    func folderRole(_ context: ProcessContext) -> String {
        if let given = context.folderRole { return given }
        var best: (role: String, length: Int)?
        for (role, setting) in [("inbox", "inbox_folders"), ("sent", "sent_folders"), ("salesforce", "salesforce_folders")] {
            guard let entry = pack.list(setting: setting)?.match(context.folder) else { continue }
            if entry.count > best?.length ?? -1 { best = (role, entry.count) }
        }
        return best?.role ?? "other"
    }

    /// Which layer blocks an address (or, with an empty address, a domain), and the entry that
    /// matched: internal (a corporate domain), the org list (with free mail when the org
    /// blocklists it, less the user's removals), or the user's own list. Nil when none does.
    func blockStatus(address: String, domain: String, mailbox: String) -> (layer: String, entry: String)? {
        let key = address.isEmpty ? domain : address
        if let entry = pack.list(setting: "corporate_domains")?.match(domain) { return ("internal", entry) }
        let user = pack.user(mailbox)
        if let matched = pack.list(setting: "org_blocklist")?.match(key), !(user?.removed.contains(matched) ?? false) { return ("org", matched) }
        if pack.orgSettings["blocklist_free_mail"] == .bool(true), let entry = pack.list(setting: "free_mail_domains")?.match(domain) {
            return ("org", entry)
        }
        if let matched = user?.blocklist.match(key) { return ("individual", matched) }
        return nil
    }

    /// The object each `--select` kind names.
    public static let selectionObjects = ["contact": "Contact", "lead": "Lead", "user": "User", "account": "Account",
                                          "opportunity": "Opportunity", "case": "Case"]

    /// The Save dialog's selection, checked before anything is decided (DESIGN.md point 8):
    /// each id exists in the CRM, is of the kind named, and is not an internal or blocklisted
    /// record (a Contact or Lead by its email addresses, an Account by its website's domain, an
    /// Opportunity or Case by its Account and Contact). Users are the org's own people: only the
    /// org and individual blocklists apply to them. Automatic sync has no selection: it is
    /// ignored there, never checked.
    public func validateSelection(_ context: ProcessContext) throws {
        guard context.trigger != "auto" else { return }
        let mailbox = CRMDirectoryKeys.address(context.mailbox)
        for (kind, id) in context.selection {
            func refuse(_ reason: String) -> SelectionError { SelectionError(kind: kind, id: id, reason: reason) }
            guard let object = Self.selectionObjects[kind] else { throw refuse("'\(kind)' is not a kind of record that can be selected") }
            guard let record = answers.record(id: id) else { throw refuse("no such record in the CRM") }
            guard record.object == object else { throw refuse("\(record.id) is a \(record.object), not a \(object)") }
            // A converted Lead is no one's record any more (the search never matches one).
            if record.object == "Lead" && record.flag("IsConverted") {
                throw refuse("Lead \(record.id) is converted; select the Contact it became")
            }
            if let (what, layer, entry) = blocked(record, mailbox: mailbox, depth: 0) {
                throw refuse(layer == "internal" ? "\(what) is internal (\(entry)); it is never linked"
                                                 : "\(what) is on the \(layer) blocklist (\(entry)); it is never linked")
            }
        }
        // A Lead has no Account: Salesforce refuses a Task whose WhoId is a Lead with a WhatId,
        // and an EmailMessage related to a Lead is related to nothing else (as `edit` refuses).
        if let lead = context.selection.first(where: { $0.kind == "lead" }), context.selection.count > 1 {
            throw SelectionError(kind: lead.kind, id: lead.id, reason: "a Lead excludes every other link; select the Lead alone, or the others without it")
        }
    }

    /// The records a block decision on the thread's links needs that the answers lack: the
    /// Account and Contact of the Case the thread names, and the one Contact or Lead of the
    /// Magic Anchor. A backend may not bring them with the Case or the EmailMessage; without
    /// them a blocklisted record would pass for an unknown one.
    public func threadFollowUps(_ message: Message) -> [String] {
        guard let reading else { return [] }
        var ids: [String] = []
        for found in ThreadReferences.caseRecords(tokens: reading.threadTokens, numbers: reading.caseNumbers, answers: answers) {
            ids += ["AccountId", "ContactId"].compactMap { found[$0] }
        }
        if let who = threadAnchor(message)?.who { ids.append(who) }
        return ids.filter { knownRecord($0) == nil }
    }

    /// The Magic Anchor the answers hold: the nearest EmailMessage the message replies to that
    /// did not come in (an email sent from Salesforce, not one saved on its way in), and its
    /// one Contact or Lead when it has exactly one.
    func threadAnchor(_ message: Message) -> (email: CRMRecord, who: String?)? {
        for id in (message.inReplyTo + message.references.reversed()) {
            guard let found = answers.emailMessage(messageIdentifier: id), !found.record.flag("Incoming") else { continue }
            let people = Set(found.relations.filter { ["Contact", "Lead"].contains(SalesforceID.object(of: $0) ?? "") })
            return (found.record, people.count == 1 ? people.first : nil)
        }
        return nil
    }

    /// A record the answers hold under any question: named by id, or found as a participant's
    /// Contact, Lead or User, an Account by domain, a person by phone.
    func knownRecord(_ id: String) -> CRMRecord? {
        if let record = answers.record(id: id) { return record }
        let canonical = SalesforceID.canonical(id)
        for records in [answers.contactsByAddress.values, answers.leadsByAddress.values, answers.usersByAddress.values,
                        answers.accountsByDomain.values, answers.peopleByPhone.values].joined() {
            if let record = records.first(where: { SalesforceID.canonical($0.id) == canonical }) { return record }
        }
        return nil
    }

    /// A list's or a bulk sender's message (`message.bulk`): a pack may leave it unsaved, or
    /// create no record for its sender.
    static func isBulk(_ message: Message) -> Bool {
        if message.headers["list-id"] != nil || message.headers["list-unsubscribe"] != nil { return true }
        let precedence = message.headers["precedence"]?.trimmingSpaces().lowercased()
        return precedence == "bulk" || precedence == "list" || precedence == "junk"
    }

    /// Whether a Case the thread names is another customer's: the participants' Contacts
    /// (`contacts`, every Contact of their addresses) or Accounts (`accounts`) are known, and
    /// none is the Case's Contact or its Account. Nothing says so with neither known (a new
    /// address, a Lead: the Case is linked, as Email-to-Case links a thread token from any
    /// sender), nor for a Case with neither Contact nor Account (Email-to-Case from an
    /// address then unknown).
    static func isForeign(_ found: CRMRecord, contacts: [CRMRecord], accounts: [String] = []) -> Bool {
        let caseContact = found["ContactId"].map(SalesforceID.canonical), caseAccount = found["AccountId"].map(SalesforceID.canonical)
        guard !contacts.isEmpty || !accounts.isEmpty, caseContact != nil || caseAccount != nil else { return false }
        if contacts.contains(where: { contact in
            SalesforceID.canonical(contact.id) == caseContact || (caseAccount != nil && contact["AccountId"].map(SalesforceID.canonical) == caseAccount)
        }) { return false }
        return caseAccount == nil || !accounts.contains { SalesforceID.canonical($0) == caseAccount }
    }

    /// Why a record may not be linked: the record (or the one it belongs to), the layer, the entry.
    func blocked(_ record: CRMRecord, mailbox: String, depth: Int) -> (String, String, String)? {
        switch record.object {
        case "Contact", "Lead", "User":
            for field in personEmailFields {
                guard let email = record[field] else { continue }
                let address = CRMDirectoryKeys.address(email)
                let domain = String(address.split(separator: "@").last ?? "")
                guard let (layer, entry) = blockStatus(address: address, domain: domain, mailbox: mailbox) else { continue }
                if record.object == "User" && layer == "internal" { continue }
                return ("\(record.object) \(record.id) (\(address))", layer, entry)
            }
        case "Account":
            if let website = record["Website"], let domain = CRMDirectoryKeys.domain(ofWebsite: website),
               let (layer, entry) = blockStatus(address: "", domain: domain, mailbox: mailbox) {
                return ("Account \(record.id) (\(domain))", layer, entry)
            }
        case "Opportunity", "Case":
            guard depth == 0 else { return nil }
            for field in ["AccountId", "ContactId"] {
                guard let id = record[field], let parent = knownRecord(id) else { continue }
                if let (what, layer, entry) = blocked(parent, mailbox: mailbox, depth: depth + 1) {
                    return ("\(record.object) \(record.id) of \(what)", layer, entry)
                }
            }
        default: break
        }
        return nil
    }

    /// The Account an address's domain matches (the Account a new Contact goes under): the
    /// one Account of the domain's other Contacts, else the first Account by website
    /// (`Ranking.accounts`), else nil. The caller leaves free-mail domains out.
    static func account(domain: String, answers: CRMAnswers) -> String? {
        if case .one(let account)? = answers.account(contactDomain: domain) { return account }
        return Ranking.accounts(answers.accounts(websiteDomain: domain), domain: domain).first?.id
    }

    /// A Salesforce date ("2026-03-14", or a date-time's first ten characters) as midnight
    /// UTC, by the proleptic Gregorian calendar's arithmetic: no Calendar, whose first use
    /// loads ICU's calendar and time-zone data (a per-message run paid it for two dates).
    /// Nil unless year 1-9999, month 1-12 and day 1-31 (a day past the month's end rolls
    /// into the next month, as Calendar's lenient reading did).
    static func day(_ text: String?) -> Date? {
        guard let text, text.count >= 10 else { return nil }
        let parts = text.prefix(10).split(separator: "-").compactMap { Int($0) }
        guard parts.count == 3, (1...9999).contains(parts[0]), (1...12).contains(parts[1]), (1...31).contains(parts[2])
        else { return nil }
        return Date(timeIntervalSince1970: Double(daysSinceEpoch(year: parts[0], month: parts[1], day: parts[2])) * 86_400)
    }

    /// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (H. Hinnant's
    /// days_from_civil): the year starts in March, so the leap day ends it.
    static func daysSinceEpoch(year: Int, month: Int, day: Int) -> Int {
        let marchYear = month <= 2 ? year - 1 : year
        let era = (marchYear >= 0 ? marchYear : marchYear - 399) / 400
        let yearOfEra = marchYear - era * 400
        let dayOfYear = (153 * ((month + 9) % 12) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The header fields, one a line, at most `maxHeaderText` characters (an EmailMessage's
    /// Headers holds 32,000): built field by field, stopping there.
    static func headerText(_ message: Message) -> String {
        var text = ""
        var length = 0
        for field in message.headers.fields {
            let line = field.name + ": " + String(decoding: field.value, as: UTF8.self) + "\n"
            let count = line.utf16.count
            guard length + count <= maxHeaderText else { break }
            text += line
            length += count
        }
        return text
    }

    static let maxHeaderText = 32_000

    /// Closed in the last 365 days, or open and closing within the next 180. An open one whose
    /// close date has passed (a rep late to update it) counts while that date is within the
    /// last 365 days, as a closed one would; an open Opportunity of 2023 is no current deal.
    static func isCurrent(_ opportunity: CRMRecord, at date: Date) -> Bool {
        guard let close = day(opportunity["CloseDate"]) else { return false }
        let days = close.timeIntervalSince(date) / 86_400
        return opportunity.flag("IsClosed") ? (days >= -365 && days <= 1) : (days >= -365 && days <= 180)
    }

    /// Open, and created in the last 90 days.
    static func isRecentOpenCase(_ record: CRMRecord, at date: Date) -> Bool {
        let closed = record.flag("IsClosed") || record["Status"]?.lowercased() == "closed"
        guard !closed, let created = day(record["CreatedDate"]) else { return false }
        let days = date.timeIntervalSince(created) / 86_400
        return days >= -1 && days <= 90
    }

    func factObject(_ message: Message, context: ProcessContext, participants: [ParticipantFacts], related: RelatedRecords,
                    threadCase: String?, foreignCase: String?, anchorEmail: String?, anchorWho: String?, savedRecord: String?,
                    ledgerKey: String, direction: String, mailbox: String, known: FactCost) throws -> FactObject {
        func optional(_ text: String?) -> Value { text.map(Value.string) ?? .absent }
        let machines = pack.list(setting: "no_record_local_parts")
        // Counted with the CRM's answers only (a participant's records decide it).
        let creatable = !known.contains(.crmSearch) ? 0 : participants.filter { participant in
            participant.lacksRecord && Engine.noRecord(for: participant, machines: machines) == nil
        }.count
        func formatted(_ addresses: [Address]) -> Value {
            .list(addresses.map { .string($0.name.isEmpty ? $0.address : "\($0.name) <\($0.address)>") })
        }
        let messageObject = try FactObject(FactsSchema.message, fields: [
            "id": optional(message.messageID),
            "subject": .string(message.subject ?? ""),
            "date": optional(message.date?.iso8601),
            "day": .string(message.date.map { String($0.iso8601.prefix(10)) } ?? ""),
            "from": .string(message.from.first?.address ?? ""),
            "from_name": .string(message.from.first?.name ?? ""),
            "to": formatted(message.to), "cc": formatted(message.cc), "bcc": formatted(message.bcc),
            "body": .string(Self.bodyFact(message.textBody)),
            "html": .string(Self.bodyFact(message.htmlBody ?? "")),
            "service_kind": .string(message.service.kind.rawValue),
            "service_signal": optional(message.service.signal),
            "auto_reply": .bool(message.autoReply != nil),
            "bulk": .bool(Self.isBulk(message)),
            "attachment_count": .int(message.attachments.count),
            "size": .int(message.size),
            "in_reply_to": .list(message.inReplyTo.map(Value.string)),
            "references": .list(message.references.map(Value.string)),
            "body_emails": .list(known.contains(.bodyAnalysis) ? message.bodyEmails.map(Value.string) : []),
            "body_links": .list(known.contains(.bodyAnalysis) ? message.bodyLinks.map(Value.string) : []),
            "has_body": .bool(!message.textBody.isEmpty),
            "headers": .string(known.contains(.bodyAnalysis) ? Self.headerText(message) : ""),
            "sensitivity": .string(message.headers["sensitivity"]?.trimmingSpaces().lowercased() ?? ""),
        ])
        let people = try participants.map { participant -> Value in
            .object(try FactObject(FactsSchema.participant, fields: [
                "address": .string(participant.address.normalized),
                "name": .string(participant.address.name),
                "domain": .string(participant.address.domain),
                "role": .string(participant.role),
                "owner": .bool(participant.owner),
                "internal": .bool(participant.isInternal),
                "free_mail": .bool(participant.freeMail),
                "blocked": .bool(participant.blocked),
                "blocked_by": optional(participant.blockedBy),
                "blocked_entry": optional(participant.blockedEntry),
                "contact": optional(participant.contact?.id),
                "lead": optional(participant.lead?.id),
                "account": optional(participant.account),
                "user": optional(participant.user?.id),
            ]))
        }
        let mailboxUser = answers.users(email: mailbox).first?.id
        let strings = { (ids: [String]) in Value.list(ids.map(Value.string)) }
        return try FactObject(FactsSchema.root, fields: [
            "message": .object(messageObject),
            "participants": .list(people),
            "mailbox": .object(try FactObject(FactsSchema.mailbox, fields: [
                "address": .string(mailbox), "folder": .string(context.folder), "folder_role": .string(folderRole(context)),
                "categories": .list(context.categories.map(Value.string)), "user": optional(mailboxUser),
            ])),
            "trigger": .string(context.trigger),
            "direction": .string(direction),
            "related": .object(try FactObject(FactsSchema.related, fields: [
                "contacts": strings(related.contacts), "leads": strings(related.leads), "accounts": strings(related.accounts),
                "opportunities": strings(related.opportunities), "cases": strings(related.cases),
                "people": .int(related.contacts.count + related.leads.count),
                "business": .int(related.accounts.count + related.opportunities.count + related.cases.count),
                "body_references": .int(related.bodyReferences.count), "candidates": strings(related.bodyReferences),
                "creatable": .int(creatable),
            ])),
            "thread": .object(try FactObject(FactsSchema.thread, fields: [
                "case": optional(threadCase), "foreign_case": optional(foreignCase), "anchor_email": optional(anchorEmail),
                "anchor_who": optional(anchorWho),
                "whole": .bool(context.wholeThread),
            ])),
            "ledger": .object(try FactObject(FactsSchema.ledger, fields: [
                "saved": .bool(savedRecord != nil), "record": optional(savedRecord), "key": .string(ledgerKey),
            ])),
            "selection": .object(try FactObject(FactsSchema.selection, fields: [
                "who": .list(context.effectiveSelection.filter { ["contact", "lead", "user"].contains($0.kind) }.map { .string($0.id) }),
                "what": optional(context.effectiveSelection.last { ["account", "opportunity", "case"].contains($0.kind) }?.id),
            ])),
            "settings": .object(pack.settings(for: mailbox)),
        ])
    }
}

/// Case numbers, Salesforce thread tokens and record links in subjects and bodies.
public enum ThreadReferences {
    /// The Cases a text names, each once: those of its legacy thread tokens `ref:_00D…._500…:ref`
    /// first (Lightning threading's `thread::…::` tokens are opaque: only the org can turn one
    /// into a Case id, so they are not read), then those of Case numbers after the word "Case" (`Case 00001042`,
    /// `Case #1042`; see `caseNumbers`), in the text's order. `tokens` and `numbers` are the
    /// text's `threadTokens(in:)` and `caseNumbers(in:)`. The first that may be linked is the
    /// thread's Case (a blocklisted or another customer's one is passed over).
    public static func caseRecords(tokens: [String], numbers: [String], answers: CRMAnswers) -> [CRMRecord] {
        var found: [CRMRecord] = []
        var seen = Set<String>()
        for token in tokens {
            if let record = answers.record(id: token), SalesforceID.object(of: record.id) == "Case",
               seen.insert(SalesforceID.canonical(record.id)).inserted { found.append(record) }
        }
        for number in numbers {
            if let record = answers.caseRecord(number: number), seen.insert(SalesforceID.canonical(record.id)).inserted { found.append(record) }
        }
        return found
    }

    /// Case ids from legacy thread tokens (`ref:_00D5e0ABC._5005e0XYZ:ref`), expanded to 15
    /// characters. A scan of the text's UTF-8 bytes (the markers are ASCII): searching the
    /// String by Characters was an eighth of `batch`'s time over the corpus.
    public static func threadTokens(in text: String) -> [String] {
        var text = text
        return text.withUTF8 { bytes in threadTokens(in: bytes) }
    }

    static func threadTokens(in bytes: UnsafeBufferPointer<UInt8>) -> [String] {
        let open = Array("ref:_".utf8), close = Array(":ref".utf8), dot = Array("._".utf8)
        var ids: [String] = []
        var position = 0
        while let start = bytes.firstIndex(ofBytes: open, from: position, to: bytes.count) {
            let after = start + open.count
            guard let end = bytes.firstIndex(ofBytes: close, from: after, to: bytes.count) else { break }
            if let separator = bytes.firstIndex(ofBytes: dot, from: after, to: end) {
                // The token drops the zeros that pad the id: 500 + 5e0 + XYZ -> 5005e000000XYZ.
                let casePart = bytes[(separator + dot.count)..<end]
                if casePart.count >= 5, casePart.count <= 15, casePart.starts(with: Array("500".utf8)),
                   casePart.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) }) {
                    let body = casePart.dropFirst(3)
                    let pod = body.prefix(2), tail = body.dropFirst(2)
                    let padding = [UInt8](repeating: 0x30, count: max(0, 15 - 3 - pod.count - tail.count))
                    ids.append(String(decoding: Array("500".utf8) + pod + padding + tail, as: UTF8.self))
                }
            }
            position = end + close.count
        }
        return ids
    }

    /// Case numbers after the word "case" (any letter case, not inside a word), then
    /// optional spaces, `#`, `:`, `-`, no-break spaces and "No." or "Number", 4 to 10 digits,
    /// when they are written as a Case number is: with its leading zeros, as Salesforce shows
    /// it (`Case 00001042`, `CASE-00001042`), or after `#`, "No." or "Number" (`Case #1042`,
    /// `case no. 1042`). Prose is not a Case number: "in case 2026 budgets are approved",
    /// "use case: 1500 seats" named Case 00002026 and 00001500 of another customer.
    /// A scan of the UTF-8 bytes: every letter of "case", "no." and "number" is ASCII, and no
    /// other scalar lowercases to one of them, so comparing bytes is comparing lowercased words.
    public static func caseNumbers(in text: String) -> [String] {
        var text = text
        return text.withUTF8 { bytes in caseNumbers(in: bytes) }
    }

    static func caseNumbers(in bytes: UnsafeBufferPointer<UInt8>) -> [String] {
        func lower(_ byte: UInt8) -> UInt8 { byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte }
        func isWord(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int, _ word: StaticString) -> Bool {
            guard index + word.utf8CodeUnitCount <= bytes.count else { return false }
            for offset in 0..<word.utf8CodeUnitCount where lower(bytes[index + offset]) != word.utf8Start[offset] { return false }
            return true
        }
        var numbers: [String] = []
        var index = 0
        while index + 4 < bytes.count {
            defer { index += 1 }
            guard bytes[index] | 0x20 == 0x63, isWord(bytes, at: index, "case"), !isLetter(before: index, in: bytes) else { continue }
            var probe = index + 4
            var marked = false
            scan: while probe < bytes.count {
                switch bytes[probe] {
                case 0x23: probe += 1; marked = true // #
                case 0x20, 0x3A, 0x2D: probe += 1 // space : -
                case 0xC2 where probe + 1 < bytes.count && bytes[probe + 1] == 0xA0: probe += 2 // U+00A0
                default: break scan
                }
            }
            if isWord(bytes, at: probe, "no.") {
                probe += 3
                marked = true
            } else if isWord(bytes, at: probe, "number") {
                probe += 6
                marked = true
                while probe < bytes.count, bytes[probe] == 0x3A { probe += 1 }
            }
            while probe < bytes.count, bytes[probe] == 0x20 { probe += 1 }
            let digitsStart = probe
            while probe < bytes.count, bytes[probe] >= 0x30, bytes[probe] <= 0x39 { probe += 1 }
            if (4...10).contains(probe - digitsStart), marked || bytes[digitsStart] == 0x30 {
                numbers.append(String(decoding: UnsafeBufferPointer(rebasing: bytes[digitsStart..<probe]), as: UTF8.self))
            }
        }
        return numbers
    }

    /// Whether the scalar that ends just before `index` is alphabetic (false at the start).
    private static func isLetter(before index: Int, in bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard index > 0 else { return false }
        if bytes[index - 1] < 0x80 { return (bytes[index - 1] | 0x20) >= 0x61 && (bytes[index - 1] | 0x20) <= 0x7A }
        var start = index - 1
        while start > 0, index - start < 4, bytes[start] & 0xC0 == 0x80 { start -= 1 }
        let scalar = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self).unicodeScalars.first
        return scalar?.properties.isAlphabetic ?? false
    }

    /// A record id in a Salesforce link: `…/0035000000AbCdE`, `/lightning/r/Contact/0035000000AbCdEAAX/view`.
    public static func recordID(inLink link: String) -> String? {
        // force.com covers salesforce.com too.
        guard link.lowercased().containsBytes("force.com") else { return nil }
        let path = link.split(separator: "?").first ?? Substring(link)
        for piece in path.split(separator: "/").reversed() where SalesforceID.isID(piece) { return String(piece) }
        return nil
    }
}

/// How the related-record search chooses among several records, so that the same CRM gives
/// the same links whatever order its export lists the rows in.
///
/// - Opportunities: open before closed, then the close date nearest the message's date, then
///   the id.
/// - Cases: open before closed, then the most recently created, then the id.
/// - Accounts matched by website: the exact domain before a parent domain, then the id.
/// - Contacts, Leads or Users sharing an address: a Contact with an Account first, then the
///   oldest (the smallest id).
public enum Ranking {
    static func id(_ record: CRMRecord) -> String { SalesforceID.canonical(record.id) }

    static func isClosed(_ record: CRMRecord) -> Bool { record.flag("IsClosed") || record["Status"]?.lowercased() == "closed" }

    public static func opportunities(_ records: [CRMRecord], at date: Date) -> [CRMRecord] {
        func distance(_ record: CRMRecord) -> Double {
            FactsBuilder.day(record["CloseDate"]).map { abs($0.timeIntervalSince(date)) } ?? .infinity
        }
        return unique(records).sorted { left, right in
            if isClosed(left) != isClosed(right) { return !isClosed(left) }
            let (a, b) = (distance(left), distance(right))
            if a != b { return a < b }
            return id(left) < id(right)
        }
    }

    public static func cases(_ records: [CRMRecord]) -> [CRMRecord] {
        unique(records).sorted { left, right in
            if isClosed(left) != isClosed(right) { return !isClosed(left) }
            let a = FactsBuilder.day(left["CreatedDate"]) ?? .distantPast, b = FactsBuilder.day(right["CreatedDate"]) ?? .distantPast
            if a != b { return a > b }
            let (x, y) = (left["CreatedDate"] ?? "", right["CreatedDate"] ?? "")
            if x != y { return x > y }
            return id(left) < id(right)
        }
    }

    public static func accounts(_ records: [CRMRecord], domain: String) -> [CRMRecord] {
        func exact(_ record: CRMRecord) -> Bool { record["Website"].flatMap(CRMDirectoryKeys.domain(ofWebsite:)) == domain }
        return unique(records).sorted { left, right in
            if exact(left) != exact(right) { return exact(left) }
            return id(left) < id(right)
        }
    }

    public static func people(_ records: [CRMRecord]) -> [CRMRecord] {
        guard records.count > 1 else { return records }
        return unique(records).sorted { left, right in
            let (a, b) = (left["AccountId"] != nil, right["AccountId"] != nil)
            if a != b { return a }
            return id(left) < id(right)
        }
    }

    static func unique(_ records: [CRMRecord]) -> [CRMRecord] {
        var seen = Set<String>()
        return records.filter { seen.insert(id($0)).inserted }
    }
}

extension FactsBuilder {
    /// How much of the text body the rules see: more than any Salesforce field holds
    /// (Description and TextBody keep 32,000 characters, HtmlBody 131,072), and small enough
    /// that a mapping such as `"From: …" + message.body` never copies a 50 MB body.
    public static let maxBodyFactBytes = 1 << 20

    /// The text (or HTML) body, cut at `maxBodyFactBytes` before a whole UTF-8 sequence.
    static func bodyFact(_ body: String) -> String {
        let utf8 = body.utf8
        guard utf8.count > maxBodyFactBytes else { return body }
        var end = utf8.index(utf8.startIndex, offsetBy: maxBodyFactBytes)
        while end > utf8.startIndex && UTF8.isContinuation(utf8[end]) { end = utf8.index(before: end) }
        return String(decoding: utf8[..<end], as: UTF8.self)
    }
}
