/// The facts the rules read, declared once: the type checker, `explain`, the engine that
/// fills them and the README's table of facts are all derived from this declaration.
public enum FactsSchema {
    public static let serviceKind = FactType.enumeration("service_kind", ["none", "delivery_failure", "read_receipt", "calendar_response", "abuse_report"])
    public static let role = FactType.enumeration("role", ["from", "to", "cc", "bcc"])
    public static let trigger = FactType.enumeration("trigger", ["auto", "category", "folder", "button"])
    public static let direction = FactType.enumeration("direction", ["inbound", "outbound"])
    public static let blockLayer = FactType.enumeration("block_layer", ["internal", "org", "individual"])
    public static let folderRole = FactType.enumeration("folder_role", ["inbox", "sent", "salesforce", "other"])

    public static let message = ObjectType("Message", "The message being decided.", [
        FactField("id", .optional(.string), "Normalised Message-ID, `<id>`; absent when the message has none."),
        FactField("subject", .string, "Decoded subject; empty when there is none."),
        FactField("date", .optional(.string), "Date as ISO 8601; absent when missing or unreadable."),
        FactField("day", .string, "The date's day, `YYYY-MM-DD` in the writer's zone; empty when there is no date."),
        FactField("from", .string, "The From address as written; empty when there is none."),
        FactField("from_name", .string, "The From display name; empty when there is none."),
        FactField("to", .list(.string), "To addresses, as `Name <address>` or `address`."),
        FactField("cc", .list(.string), "Cc addresses, as `Name <address>` or `address`."),
        FactField("bcc", .list(.string), "Bcc addresses, as `Name <address>` or `address`."),
        FactField("body", .string, "The text body (text/plain, else text from the HTML), its first MiB."),
        FactField("html", .string, "The HTML body, its first MiB; empty when there is none."),
        FactField("service_kind", serviceKind, "Service email kind: none, delivery_failure, read_receipt, calendar_response, abuse_report."),
        FactField("service_signal", .optional(.string), "What decided the service kind."),
        FactField("auto_reply", .bool, "An automatic reply (out-of-office, RFC 3834)."),
        FactField("bulk", .bool, "Mailing-list or bulk mail: a List-Id or List-Unsubscribe header (RFC 2919, 2369), or Precedence bulk, list or junk."),
        FactField("attachment_count", .int, "Number of attachments."),
        FactField("size", .int, "Size of the raw message in bytes."),
        FactField("in_reply_to", .list(.string), "In-Reply-To ids."),
        FactField("references", .list(.string), "References ids."),
        FactField("body_emails", .list(.string), "Addresses written in the body.", cost: .bodyAnalysis),
        FactField("body_links", .list(.string), "Links in the body.", cost: .bodyAnalysis),
        FactField("has_body", .bool, "The message has a non-empty text body."),
        FactField("headers", .string, "The header fields as written, unfolded, one a line (`Name: value`): what an EmailMessage's Headers holds. Its first 32,000 characters.",
                  cost: .bodyAnalysis),
        FactField("sensitivity", .string, "The Sensitivity field (RFC 2156, Outlook's privacy: `personal`, `private`, `company-confidential`), lower-cased; empty when there is none."),
    ])

    public static let participant = ObjectType("Participant", "One address of From, To, Cc or Bcc.", [
        FactField("address", .string, "Normalised address (lower-cased domain, IDNA)."),
        FactField("name", .string, "Display name; empty when there is none."),
        FactField("domain", .string, "Domain, lower-cased and IDNA-encoded."),
        FactField("role", role, "Where it appears: from, to, cc, bcc (the first, when several)."),
        FactField("owner", .bool, "The mailbox owner or one of the owner's aliases."),
        FactField("internal", .bool, "The domain is a corporate domain (or a subdomain of one)."),
        FactField("free_mail", .bool, "The domain is on the free-mail list."),
        FactField("blocked", .bool, "Internal, or on the org or the individual blocklist."),
        FactField("blocked_by", .optional(blockLayer), "Which layer blocks it: internal, org, individual."),
        FactField("blocked_entry", .optional(.string), "The blocklist entry that matched."),
        FactField("contact", .optional(.string), "Id of the matching Contact.", cost: .crmSearch),
        FactField("lead", .optional(.string), "Id of the matching (non-converted) Lead.", cost: .crmSearch),
        FactField("account", .optional(.string), "Id of the Account of the Contact; when no participant is a Contact or Lead, the Account of the other Contacts at the same domain (exactly; none when they belong to several Accounts), else one matched by website domain. Never for free mail.", cost: .crmSearch),
        FactField("user", .optional(.string), "Id of the matching User.", cost: .crmSearch),
    ])

    public static let mailbox = ObjectType("Mailbox", "The mailbox the message is in, and its owner.", [
        FactField("address", .string, "The mailbox owner's address, normalised."),
        FactField("folder", .string, "The folder path, `/`-separated (e.g. `Inbox/Deals`)."),
        FactField("folder_role", folderRole,
                  "The folder's role: inbox, sent or salesforce when the message is in (or under) one, else other; from `--folder-role`, or from the folder's name in the lists the settings `inbox_folders`, `sent_folders`, `salesforce_folders` name."),
        FactField("categories", .list(.string), "Categories (Outlook) or labels (Gmail) on the message."),
        FactField("user", .optional(.string), "Id of the owner's User record.", cost: .crmSearch),
    ])

    public static let related = ObjectType("Related", "CRM records found for the message (the initial search).", [
        FactField("contacts", .list(.string), "Matching Contact ids.", cost: .crmSearch),
        FactField("leads", .list(.string), "Matching Lead ids.", cost: .crmSearch),
        FactField("accounts", .list(.string), "Matching Account ids.", cost: .crmSearch),
        FactField("opportunities", .list(.string), "Opportunity ids of the matched Contacts' Accounts.", cost: .crmSearch),
        FactField("cases", .list(.string), "Case ids: open Cases of the Contacts and Cases named in the message.", cost: .crmSearch),
        FactField("people", .int, "Number of Contacts and Leads found.", cost: .crmSearch),
        FactField("business", .int, "Number of Accounts, Opportunities and Cases found.", cost: .crmSearch),
        FactField("body_references", .int, "Number of records the body or signature names (`candidates`).", cost: .crmSearch),
        FactField("creatable", .int,
                  "Number of participants without a record (not blocked, not the mailbox owner) that a record could be created for: not a machine's address (no_record_local_parts), one a Lead's Email can hold.",
                  cost: .crmSearch),
        FactField("candidates", .list(.string),
                  "Ids of the records named by Salesforce links and addresses in the body, and by the signature's phones, website and company (when no domain finds an Account); internal and blocklisted ones never. Offered in the Save dialog, never linked automatically.", cost: .crmSearch),
    ])

    public static let thread = ObjectType("Thread", "What the message's thread points at.", [
        FactField("case", .optional(.string), "Case named in subject or body by a thread token, or by a Case number written as one (with its zeros, or after #, No. or Number); not another customer's (`foreign_case`).", cost: .crmSearch),
        FactField("foreign_case", .optional(.string),
                  "Case the thread names that is another customer's: the participants' Contacts are known and none is its Contact or of its Account. Never linked; with settings.link_foreign_cases it is `case` instead.", cost: .crmSearch),
        FactField("anchor_email", .optional(.string), "EmailMessage this replies to (In-Reply-To / References).", cost: .crmSearch),
        FactField("anchor_who", .optional(.string), "The single Contact or Lead that email was linked to: the Magic Anchor.", cost: .crmSearch),
        FactField("whole", .bool, "The message is saved with its whole thread (`process --thread`)."),
    ])

    public static let ledger = ObjectType("Ledger", "The save-once ledger.", [
        FactField("saved", .bool, "The message is already saved org-wide and its record still exists."),
        FactField("record", .optional(.string), "The saved record's id."),
        FactField("key", .string, "The save-once key: the normalised Message-ID (over 253 characters: the start of its local part and its SHA-256, `start.<hex>@long-id.mailsave.invalid`, as Salesforce's 255-character fields hold it), or `no-message-id:<hash>` of sender, date, subject and body for a message without one."),
    ])

    public static let selection = ObjectType("Selection", "What the user chose in the Save dialog (ForceSync).", [
        FactField("who", .list(.string), "Chosen Contact, Lead or User ids."),
        FactField("what", .optional(.string), "Chosen Account, Opportunity or Case id."),
    ])

    public static let capabilities = ObjectType("Capabilities", "Org capabilities.", [
        FactField("email_to_case", .bool, "Email-to-Case is enabled."),
        FactField("email_drafts_for_cases", .bool, "Email Drafts for Cases is enabled."),
    ])

    /// The `settings` object, derived from the setting declarations.
    public static let settings = ObjectType("Settings", "The effective settings: the org layer with the user's personal choices.",
                                            SettingSpec.all.compactMap { spec in spec.factType.map { FactField(spec.name, $0, spec.doc) } })

    public static let root = ObjectType("Facts", "Everything a rule can read.", [
        FactField("message", .object(message), "The message."),
        FactField("participants", .list(.object(participant)), "From, To, Cc and Bcc, each address once."),
        FactField("mailbox", .object(mailbox), "The mailbox and folder."),
        FactField("trigger", trigger, "What asked for the decision: auto (sync), or ForceSync by category, folder or button."),
        FactField("direction", direction, "outbound when the mailbox owner sent it, else inbound."),
        FactField("related", .object(related), "Related CRM records."),
        FactField("thread", .object(thread), "Thread links: a named Case, the Magic Anchor."),
        FactField("ledger", .object(ledger), "The save-once ledger."),
        FactField("selection", .object(selection), "The user's selection in the Save dialog."),
        FactField("settings", .object(settings), "Effective settings."),
    ])
}

/// One setting of the org layer: its YAML shape, default, type in expressions, and whether
/// the org may let users choose it in their personal file.
public struct SettingSpec: Sendable {
    public enum Shape: Sendable {
        case bool(Bool)
        case string(String)
        case choice([String], String)
        case folders([String])
        /// The name of a declared list, of one of these kinds.
        case listName([ListKind])
        case capabilities
        /// Names of other settings (for `personal`).
        case settingNames
        /// Salesforce field -> expression, per object.
        case mapping
    }

    public let name: String
    public let shape: Shape
    public let doc: String
    /// The org may list it under `personal`.
    public let personalAllowed: Bool

    init(_ name: String, _ shape: Shape, _ doc: String, personal: Bool = false) {
        self.name = name
        self.shape = shape
        self.doc = doc
        self.personalAllowed = personal
    }

    /// Its type in expressions (`settings.<name>`), or nil when rules cannot read it.
    public var factType: FactType? {
        switch shape {
        case .bool: return .bool
        case .string: return .string
        case .choice(let values, _): return .enumeration(name, values)
        case .folders: return .namedList(.folders)
        case .listName(let kinds): return .namedList(kinds.first ?? .strings)
        case .capabilities: return .object(FactsSchema.capabilities)
        case .settingNames, .mapping: return nil
        }
    }

    public static let autoSaveModes = ["general", "forced", "smart", "useful", "flexible"]

    public static let all: [SettingSpec] = [
        SettingSpec("corporate_domains", .listName([.domains]), "The org's email domains and aliases (subdomains included): internal."),
        SettingSpec("org_blocklist", .listName([.addressesAndDomains, .addresses, .domains]), "The org blocklist: addresses and domains."),
        SettingSpec("free_mail_domains", .listName([.domains]), "Free-mail domains: never matched to Accounts by domain."),
        SettingSpec("blocklist_free_mail", .bool(false), "Treat every free-mail domain as blocklisted."),
        SettingSpec("no_record_local_parts", .listName([.strings]),
                    "A strings list: local parts (before the @, without a +tag) of machine addresses no Lead or Contact is created for (`noreply`, `postmaster`...)."),
        SettingSpec("users_may_remove_org_entries", .bool(false), "Users may remove org blocklist entries (never internal domains)."),
        SettingSpec("auto_save_mode", .choice(autoSaveModes, "general"), "general, forced, smart, useful or flexible."),
        SettingSpec("link_foreign_cases", .bool(false),
                    "Link a Case the email names even when it is another customer's (`thread.foreign_case`): its Contact and Account are none of the message's known Contacts'."),
        SettingSpec("require_people_record", .bool(false),
                    "General mode saves only when a participant is a Contact or Lead: a Business record alone (an Account by website, a Case or Opportunity named in the email) is not enough."),
        SettingSpec("synchronized_folders", .folders(["Inbox", "Sent", "Salesforce Emails"]),
                    "Folders automatic sync handles (subfolders included) besides the folders with a role (`mailbox.folder_role`): the org's custom folders.",
                    personal: true),
        SettingSpec("inbox_folders", .listName([.folders]),
                    "A folders list: the names a mailbox's inbox has (`Inbox`, `INBOX`, `Posteingang`...); the role `inbox`."),
        SettingSpec("sent_folders", .listName([.folders]),
                    "A folders list: the names of the sent folder (`Sent Items`, `[Gmail]/Sent Mail`, `Gesendete Elemente`...); the role `sent`."),
        SettingSpec("salesforce_folders", .listName([.folders]),
                    "A folders list: the names of the dedicated folder or label (`Salesforce Emails`); the role `salesforce`."),
        SettingSpec("excluded_folders", .folders([]), "Folders automatic sync never handles (subfolders included).", personal: true),
        SettingSpec("outbound_only", .bool(false), "Automatic sync saves only email the mailbox owner sent.", personal: true),
        SettingSpec("link_free_saving", .bool(false), "Save email with no related records, WhoId and WhatId blank."),
        SettingSpec("save_as", .choice(["Task", "EmailMessage"], "Task"), "Save as a Task or an EmailMessage (Enhanced Email)."),
        SettingSpec("force_sync_saves_internal", .bool(false), "ForceSync may save internal email."),
        SettingSpec("capabilities", .capabilities, "Org capabilities: email_to_case, email_drafts_for_cases."),
        SettingSpec("category", .string("Salesforce"), "The category (Outlook) or label (Gmail) a saved email gets.", personal: true),
        SettingSpec("never_save_body", .bool(false), "Never copy the body into the record.", personal: true),
        SettingSpec("personal", .settingNames, "Settings each user may choose in their personal file."),
        SettingSpec("mapping", .mapping, "Salesforce field -> expression, for Task and EmailMessage."),
    ]

    public static func named(_ name: String) -> SettingSpec? { all.first { $0.name == name } }
}
