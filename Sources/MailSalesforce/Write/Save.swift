import MailEngine
import MailMessage
import MailRules

extension SalesforceBackend {
    /// Saves a `save` decision in one `/composite` call with `allOrNone`: the Leads and Contacts
    /// the decision creates (referenced as `@{newN.id}` where it names a placeholder), then the
    /// Task, or the EmailMessage with `ToIds`/`CcIds`/`BccIds` (Salesforce creates those
    /// relations and the EmailMessage's Task itself) and the sender's `FromAddress` relation.
    /// A refusal leaves nothing written.
    ///
    /// At most once: the org is checked for the message (EmailMessage `MessageIdentifier`, the
    /// Task's Message-ID field) first, unless this backend's `resolve` just did, or the Task's
    /// field is Unique in the org (describe says so): then the org itself refuses a second Task,
    /// `DUPLICATE_VALUE` naming the record that has it, which is reported as saved (`created`
    /// false), and the save is one call. Never an upsert: it would overwrite a Task a
    /// salesperson edited. A call whose outcome is unknown (connection lost after sending,
    /// timeout, empty or garbled reply) is followed by the check before anything is sent
    /// again, and a record found is reported as saved (`created` false).
    public func write(_ decision: Decision, message: Message, mailbox: String) throws(CRMError) -> SaveResult? {
        guard decision.verdict == .save, let record = decision.record else { return nil }
        let key = MessageIDKey.ledgerKey(message)
        let object = record.object
        guard object == "Task" || object == "EmailMessage" else {
            throw CRMError(.permanent, "Salesforce: cannot save a message as \(object); only as Task or EmailMessage")
        }
        let taskField = object == "Task" ? taskMessageIDField() : nil
        let refusedTwice = taskField.map { taskFieldFacts($0).unique } ?? false
        let checksActivity = !isKnownAbsent(key, object: object) && !refusedTwice
        // The people the decision creates are looked for again, in the same call as the
        // message when that is checked: messages of one new person decided at once (one
        // `process` a message) made that Lead or Contact once each.
        var madeMeanwhile: [String: String] = [:]
        if checksActivity || !decision.toCreate.isEmpty {
            let found = try check(keys: checksActivity ? [key] : [], taskField: taskField, people: decision.toCreate)
            if let id = found.activities[MessageIDKey.normalize(key)] { return Self.alreadySaved(id, decision: decision, people: found.people) }
            madeMeanwhile = found.people
        }
        let request = saveRequest(decision, message: message, mailbox: mailbox, key: key, taskField: taskField, madeMeanwhile: madeMeanwhile)
        var attempt = 0
        while true {
            attempt += 1
            let response: JSON
            do {
                response = try connection.call("POST", path: connection.dataPath + "/composite", body: request.body, kind: "save", write: true,
                                                inspect: SalesforceAPIError.subrequestErrors)
            } catch {
                guard error.outcomeUnknown else { throw error.error }
                // The org may hold the record: look before sending again (never two records),
                // and for the people the call was to create, in the same call.
                forgetAbsent(key)
                let found: (activities: [String: String], people: [String: String])
                do {
                    found = try check(keys: [key], taskField: taskField, people: decision.toCreate)
                } catch {
                    throw CRMError(.retryable, "\(error.message); the previous save's outcome is unknown, so it is looked for again before the next attempt")
                }
                if let id = found.activities[MessageIDKey.normalize(key)] { return Self.alreadySaved(id, decision: decision, people: found.people) }
                guard attempt < configuration.attempts else { throw error.error }
                connection.backOff(after: attempt)
                continue
            }
            return try savedResult(response, request: request, key: key, taskField: taskField)
        }
    }

    /// A message the org already holds (saved by an earlier run, or by this one's call whose
    /// answer was lost): not created now, and the people the decision would have created,
    /// which the org holds by now (that call made them, or another save did), reported as
    /// linked, by placeholder, so the output names the records the activity points to.
    static func alreadySaved(_ id: String, decision: Decision, people: [String: String]) -> SaveResult {
        let linked = decision.toCreate.compactMap { target in people[target.placeholder].map { (placeholder: target.placeholder, id: $0) } }
        return SaveResult(id: id, created: false, linkedRecords: linked)
    }

    /// The Task field that carries the Message-ID: the configured one, else the pack's; nil when configured `none`.
    func taskMessageIDField() -> String? {
        configuration.taskMessageIDFieldDisabled ? nil : configuration.taskMessageIDField ?? SalesforceSchema.taskMessageIdentifierField
    }

    /// The id of the activity the org holds for this message, if any.
    func existing(_ key: String, taskField: String?) throws(CRMError) -> String? {
        try existing(keys: [key], taskField: taskField)[MessageIDKey.normalize(key)]
    }

    /// The activities the org holds for these messages, by normalised key: EmailMessages by
    /// `MessageIdentifier` and Tasks by `taskField`, every key in one `IN` list per object
    /// (split under SOQL's length limit), so a whole batch is one call.
    func existing(keys: [String], taskField: String?) throws(CRMError) -> [String: String] {
        try check(keys: keys, taskField: taskField, people: []).activities
    }

    /// In one call: the activities the org holds for these messages, by normalised key, and
    /// the `people` to create that it holds by now (another client created them since the
    /// decision looked), by placeholder. A person is found by any of the email fields: a
    /// record of the kind the decision meant to create (a Lead not converted), else, for a
    /// Lead, a Contact; never a Lead for a Contact, whose Account may be the activity's
    /// WhatId, which a Lead excludes. Of several, the lowest id, as the store picks.
    func check(keys: [String], taskField: String?, people: [RecordToCreate]) throws(CRMError)
        -> (activities: [String: String], people: [String: String]) {
        var list: [LookupQueries.Query] = []
        let literals = keys.flatMap(LookupQueries.messageIdentifierLiterals)
        if !literals.isEmpty {
            list += SOQL.Statement(head: "SELECT Id, MessageIdentifier FROM EmailMessage", groups: [.init(.within(fields: ["MessageIdentifier"], and: nil), literals)])
                .split(limit: queries.limit).map { LookupQueries.Query(kind: .emailMessages, soql: $0) }
            if let taskField {
                list += SOQL.Statement(head: "SELECT Id, \(taskField) FROM Task", groups: [.init(.within(fields: [taskField], and: nil), literals)])
                    .split(limit: queries.limit).map { LookupQueries.Query(kind: .tasks, soql: $0) }
            }
        }
        let addresses = LookupQueries.unique(people.compactMap { LookupQueries.addressLiteral($0.address) })
        let emailFields = queries.emailFields
        if !addresses.isEmpty {
            let head = "SELECT Id, " + emailFields.joined(separator: ", ")
            for (object, kind, condition) in [("Contact", LookupQueries.Kind.contacts, nil), ("Lead", .leads, "IsConverted = false")] {
                list += SOQL.Statement(head: head + " FROM " + object, groups: [.init(.within(fields: emailFields, and: condition), addresses)])
                    .split(limit: queries.limit).map { LookupQueries.Query(kind: kind, soql: $0) }
            }
        }
        guard !list.isEmpty else { return ([:], [:]) }
        let rows: [LookupQueries.Kind: [Row]]
        do {
            rows = try CompositeQueryRunner(connection: connection).run(list, kind: "save-check")
        } catch {
            throw error.error
        }
        let wanted = Set(keys.map(MessageIDKey.normalize))
        var found: [String: String] = [:]
        // An EmailMessage first, as the single check always answered.
        for row in rows[.tasks] ?? [] {
            let key = MessageIDKey.normalize(taskField.flatMap { row.record[$0] } ?? "")
            if wanted.contains(key) { found[key] = row.record.id }
        }
        for row in rows[.emailMessages] ?? [] {
            let key = MessageIDKey.normalize(row.record["MessageIdentifier"] ?? "")
            if wanted.contains(key) { found[key] = row.record.id }
        }
        var made: [String: String] = [:]
        for person in people {
            let address = CRMDirectoryKeys.address(person.address)
            for kind in person.object == "Lead" ? [LookupQueries.Kind.leads, .contacts] : [.contacts] {
                let holders = (rows[kind] ?? []).map(\.record).filter { Self.emailMatches($0, address, fields: emailFields) }.map(\.id)
                if let id = holders.min(by: { SalesforceID.canonical($0) < SalesforceID.canonical($1) }) {
                    made[person.placeholder] = id
                    break
                }
            }
        }
        return (found, made)
    }

    struct SaveRequest {
        var body: JSON
        /// referenceId -> what it creates, for errors and results.
        var references: [(reference: String, object: String, placeholder: String?)]
        /// People of the decision's to-create list the org held by now, linked: placeholder -> id.
        var linked: [(placeholder: String, id: String)] = []
    }

    /// `madeMeanwhile`: people of `decision.toCreate` the org holds by now (placeholder -> id),
    /// linked instead of created.
    func saveRequest(_ decision: Decision, message: Message, mailbox: String, key: String, taskField: String?,
                     madeMeanwhile: [String: String] = [:]) -> SaveRequest {
        let base = connection.dataPath + "/sobjects/"
        var subrequests: [JSON] = []
        var references: [(reference: String, object: String, placeholder: String?)] = []
        var substitute: [String: String] = madeMeanwhile
        let owner = user(address: CRMDirectoryKeys.address(mailbox))
        for (index, target) in decision.toCreate.enumerated() where madeMeanwhile[target.placeholder] == nil {
            let reference = "new\(index)"
            substitute[target.placeholder] = "@{\(reference).id}"
            subrequests.append(.object(["method": .string("POST"), "url": .string(base + target.object), "referenceId": .string(reference),
                                        "body": .object(newPerson(target, message: message, owner: owner))]))
            references.append((reference, target.object, target.placeholder))
        }
        guard let record = decision.record else { return SaveRequest(body: .null, references: []) }
        var fields: [String: JSON] = [:]
        for field in record.fields {
            switch field.value {
            // An empty text is no value (Salesforce refuses "" for a date or an id).
            case .string(let text) where text.isEmpty: break
            case .string(let text): fields[field.name] = .string(substitute[text] ?? text)
            case .bool(let flag): fields[field.name] = .bool(flag)
            case .int(let number): fields[field.name] = .number(Double(number))
            default: break
            }
        }
        let who = decision.who.map { substitute[$0] ?? $0 }
        var extra: [JSON] = []
        if record.object == "Task" {
            let standard = SalesforceSchema.taskMessageIdentifierField
            let messageID = fields.removeValue(forKey: standard)?.string
            if let taskField { fields[taskField] = .string(messageID ?? message.messageID.map(MessageIDKey.fieldValue) ?? key) }
            if fields["TaskSubtype"] == nil { fields["TaskSubtype"] = .string("Email") }
            if fields["OwnerId"] == nil, let owner { fields["OwnerId"] = .string(owner) }
        } else {
            if fields["MessageIdentifier"] == nil { fields["MessageIdentifier"] = .string(message.messageID.map(MessageIDKey.fieldValue) ?? key) }
            // Each linked person by where their address stands in the message.
            var lists: [String: [JSON]] = ["ToIds": [], "CcIds": [], "BccIds": []]
            var senders: [(id: String, address: String)] = []
            var others: [(id: String, address: String)] = []
            for (original, id) in zip(decision.who, who) {
                let address = decision.toCreate.first { $0.placeholder == original }?.address ?? self.address(ofPerson: original) ?? ""
                if message.from.contains(where: { $0.normalized == address }) { senders.append((id, address)) }
                else if message.to.contains(where: { $0.normalized == address }) { lists["ToIds", default: []].append(.string(id)) }
                else if message.cc.contains(where: { $0.normalized == address }) { lists["CcIds", default: []].append(.string(id)) }
                else if message.bcc.contains(where: { $0.normalized == address }) { lists["BccIds", default: []].append(.string(id)) }
                else { others.append((id, address)) }
            }
            for (name, ids) in lists where !ids.isEmpty { fields[name] = .array(ids) }
            // Salesforce relates the sender itself from FromAddress (the User, Contact or Lead
            // with that Email): an explicit FromAddress relation only when the mapping sets none.
            if fields["FromAddress"]?.string?.isEmpty == false { senders = [] }
            for (type, people) in [("FromAddress", senders), ("OtherAddress", others)] {
                for person in people {
                    var relation: [String: JSON] = ["EmailMessageId": .string("@{activity.id}"), "RelationId": .string(person.id),
                                                    "RelationType": .string(type)]
                    if !person.address.isEmpty { relation["RelationAddress"] = .string(person.address) }
                    extra.append(.object(relation))
                }
            }
        }
        subrequests.append(.object(["method": .string("POST"), "url": .string(base + record.object), "referenceId": .string("activity"),
                                    "body": .object(fields)]))
        references.append(("activity", record.object, nil))
        for (index, relation) in extra.enumerated() {
            let reference = "relation\(index)"
            subrequests.append(.object(["method": .string("POST"), "url": .string(base + "EmailMessageRelation"), "referenceId": .string(reference),
                                        "body": relation]))
            references.append((reference, "EmailMessageRelation", nil))
        }
        let linked = decision.toCreate.compactMap { target in madeMeanwhile[target.placeholder].map { (target.placeholder, $0) } }
        return SaveRequest(body: .object(["allOrNone": .bool(true), "compositeRequest": .array(subrequests)]), references: references, linked: linked)
    }

    /// A Lead or Contact for an unknown address (`RecordToCreate.fields`, as every backend
    /// names it), cut to the fields' lengths.
    func newPerson(_ target: RecordToCreate, message: Message, owner: String?) -> [String: JSON] {
        var fields = target.fields(from: message)
        fields["OwnerId"] = owner ?? ""
        var body: [String: JSON] = [:]
        for (field, value) in fields where !value.isEmpty {
            let limit = SalesforceSchema.personFieldLimits[field] ?? 255
            body[field] = .string(SalesforceField.truncated(value, toUTF16: limit) ?? value)
        }
        return body
    }

    /// The Task that already holds this message's Message-ID, when the org refused the
    /// activity with `DUPLICATE_VALUE` on that field (the rest of the call was rolled back
    /// with it): the id the error names when the field is case-sensitive; else (Salesforce's
    /// default treats `<A@x>` and `<a@x>` as one value, but they are two messages) the one a
    /// look-up finds with exactly this key. None found: refused, never reported as saved.
    func duplicate(in results: [JSON], key: String, taskField: String?) throws(CRMError) -> String? {
        guard let taskField,
              let activity = results.first(where: { $0["referenceId"]?.string == "activity" }),
              let named = SalesforceAPIError.parse(activity["body"]).lazy.compactMap({ $0.duplicateRecord(on: taskField) }).first else { return nil }
        forgetAbsent(key)
        // The message names it in 15 characters; answers everywhere else are in 18.
        if taskFieldFacts(taskField).caseSensitive, named.count == 15 { return named + SalesforceID.caseSafeSuffix(named) }
        if taskFieldFacts(taskField).caseSensitive, !named.isEmpty { return named }
        if let found = try existing(key, taskField: taskField) { return found }
        throw connection.redacted(CRMError(.permanent, "Salesforce refused the Task: DUPLICATE_VALUE on \(taskField): another Task\(named.isEmpty ? "" : " (\(named))") "
                                           + "holds this Message-ID in another case, or one this user cannot see; nothing was saved"))
    }

    func savedResult(_ response: JSON, request: SaveRequest, key: String, taskField: String?) throws(CRMError) -> SaveResult {
        let results = response["compositeResponse"]?.array ?? []
        if let found = try duplicate(in: results, key: key, taskField: taskField) { return SaveResult(id: found, created: false) }
        var ids: [String: String] = [:]
        for result in results where (200..<300).contains(result.httpStatus) {
            // A delete answers 204 without a body.
            if let id = result["body"]?["id"]?.string { ids[result["referenceId"]?.string ?? ""] = id }
        }
        let refusals = Self.refusals(in: results, request: request)
        if !refusals.isEmpty {
            if let transient = Self.transientRefusal(refusals) {
                throw connection.redacted(CRMError(.retryable, "Salesforce did not save the \(transient.object) now: \(connection.summary(transient.error)); nothing was saved"))
            }
            let causes = refusals.filter { $0.error.code != "PROCESSING_HALTED" }
            let shown = (causes.isEmpty ? refusals : causes).prefix(3).map { "the \($0.object): \(connection.summary($0.error))" }
            throw connection.redacted(CRMError(.permanent, "Salesforce refused " + shown.joined(separator: "; ") + "; nothing was saved"))
        }
        guard let id = ids["activity"] else {
            throw CRMError(.retryable, "Salesforce answered the save without the new record's id; it is looked for before the next attempt")
        }
        forgetAbsent(key)
        let created = request.references.compactMap { reference -> (placeholder: String, id: String)? in
            guard let placeholder = reference.placeholder, let id = ids[reference.reference] else { return nil }
            return (placeholder, id)
        }
        return SaveResult(id: id, created: true, createdRecords: created, linkedRecords: request.linked)
    }

    /// The subrequests of a composite answer that Salesforce refused, each with its object.
    static func refusals(in results: [JSON], request: SaveRequest) -> [(object: String, error: SalesforceAPIError)] {
        var refusals: [(object: String, error: SalesforceAPIError)] = []
        for result in results {
            let status = result.httpStatus
            guard !(200..<300).contains(status) else { continue }
            let reference = result["referenceId"]?.string ?? ""
            let object = request.references.first { $0.reference == reference }?.object ?? "record"
            let errors = SalesforceAPIError.parse(result["body"])
            for error in errors { refusals.append((object, error)) }
            if errors.isEmpty { refusals.append((object, SalesforceAPIError(code: "HTTP_\(status)", message: ""))) }
        }
        return refusals
    }

    /// The refusal that says nothing was written and the same save may succeed if sent again:
    /// every cause a locked row or an unavailable server, or a graph Salesforce did not process
    /// (more than 14 graphs of the call failed: only `PROCESSING_HALTED`, none of them the
    /// "Invalid reference specified" of a subrequest that named a missing one). nil when any
    /// cause is for good: sending it again would be refused again.
    static func transientRefusal(_ refusals: [(object: String, error: SalesforceAPIError)]) -> (object: String, error: SalesforceAPIError)? {
        let causes = refusals.filter { $0.error.code != "PROCESSING_HALTED" }
        if causes.isEmpty {
            return refusals.contains { $0.error.message.hasPrefix("Invalid reference") } ? nil : refusals.first
        }
        return causes.allSatisfy { SalesforceAPIError.transientCodes.contains($0.error.code) } ? causes.first : nil
    }

    /// True when a composite answer refused a save for now with nothing written (see
    /// `transientRefusal`), so a batch may send it again in the same run without looking for
    /// it first. Asked only of answers `savedResult` did not take as a save or a duplicate.
    static func refusedForNow(_ response: JSON, request: SaveRequest) -> Bool {
        transientRefusal(refusals(in: response["compositeResponse"]?.array ?? [], request: request)) != nil
    }
}
