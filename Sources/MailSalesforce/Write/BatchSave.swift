import MailEngine
import MailMessage
import MailRules

extension SalesforceBackend: BatchActivityWriter {
    /// Salesforce's limits: records per sObject Collections call; graphs, and nodes in all,
    /// per composite graph call (REST API Developer Guide, "sObject Collections" and
    /// "Composite Graph Limits").
    static let recordsPerCollection = 200
    static let graphsPerCall = 75
    static let nodesPerCall = 500

    /// One save of a batch, ready to send.
    struct BatchEntry {
        var index: Int
        var key: String
        var object: String
        var taskField: String?
        var save: PendingSave
        var request: SaveRequest
        /// The subrequests of its `/composite` form: one record alone, or several that depend on
        /// each other (new Leads or Contacts, then the activity, then relations).
        var subrequests: [JSON] { request.body["compositeRequest"]?.array ?? [] }
    }

    /// Saves a batch of decisions in as few calls as Salesforce allows, each message at most once
    /// and all-or-none on its own:
    ///
    /// - a message that is one record (a Task, an EmailMessage whose relations Salesforce
    ///   makes from `ToIds`/`CcIds`/`BccIds`) goes into `POST composite/sobjects` with
    ///   `allOrNone` false: up to 200 in one call, each with its own outcome;
    /// - a message that is several records (new Leads or Contacts, an explicit relation) is one
    ///   graph of `POST composite/graph` (each graph all-or-none), up to 75 graphs and 500 nodes
    ///   a call.
    ///
    /// Before sending, every message is looked for in the org in one batched check: a batch is
    /// sent long after its first decisions (when 200 saves are waiting, or at the end), and
    /// another client may have saved a message since (an EmailMessage's `MessageIdentifier`
    /// is not unique, so the org would not refuse a second). A call whose outcome is unknown
    /// is followed by one look-up of all its messages' keys before anything is sent again:
    /// found ones are saved (`created` false), only the others are resent. `beforeEachCall`
    /// runs before every request (the caller refreshes its claims).
    public func write(batch saves: [PendingSave], beforeEachCall: @escaping () -> Void) -> [Result<SaveResult?, CRMError>] {
        connection.observingCalls(beforeEachCall) { write(batch: saves, observed: ()) }
    }

    public func write(batch saves: [PendingSave]) -> [Result<SaveResult?, CRMError>] { write(batch: saves, beforeEachCall: {}) }

    private func write(batch saves: [PendingSave], observed: Void) -> [Result<SaveResult?, CRMError>] {
        var outcomes = [Result<SaveResult?, CRMError>?](repeating: nil, count: saves.count)
        var entries: [BatchEntry] = []
        for (index, save) in saves.enumerated() {
            guard save.decision.verdict == .save, let record = save.decision.record else {
                outcomes[index] = .success(nil)
                continue
            }
            guard record.object == "Task" || record.object == "EmailMessage" else {
                outcomes[index] = .failure(CRMError(.permanent, "Salesforce: cannot save a message as \(record.object); only as Task or EmailMessage"))
                continue
            }
            let key = save.key
            let taskField = record.object == "Task" ? taskMessageIDField() : nil
            entries.append(BatchEntry(index: index, key: key, object: record.object, taskField: taskField, save: save,
                                      request: saveRequest(save.decision, message: save.message, mailbox: save.mailbox, key: key, taskField: taskField)))
        }
        // Rounds: a message twice in one batch is saved once, and the repeat finds it in the
        // next round's check; messages that would create the same new person wait for the
        // first of them (`save(_:)` defers them), and the next round's check finds the person
        // it made, so they link her. Each round settles at least its first message.
        var pending = entries
        while !pending.isEmpty {
            var round: [BatchEntry] = []
            var later: [BatchEntry] = []
            for entry in pending {
                if round.contains(where: { $0.key == entry.key }) { later.append(entry) } else { round.append(entry) }
            }
            let (settled, deferred) = save(round)
            for (index, outcome) in settled { outcomes[index] = outcome.map { $0 } }
            pending = (deferred + later).sorted { $0.index < $1.index }
        }
        return outcomes.map { $0 ?? .failure(CRMError(.retryable, "Salesforce: the save was not made (no outcome); it is looked for before the next attempt")) }
    }

    /// One batched check of the org (EmailMessages and, when configured, Tasks by Message-ID).
    public func saved(_ saves: [PendingSave]) throws(CRMError) -> [String?] {
        let found = try existing(keys: saves.map(\.key), taskField: taskMessageIDField())
        return saves.map { found[MessageIDKey.normalize($0.key)] }
    }

    /// One round: the messages of distinct keys. Returns their outcomes, and the messages that
    /// would create a person an earlier message of the round creates (for the next round).
    private func save(_ round: [BatchEntry]) -> (settled: [(Int, Result<SaveResult, CRMError>)], deferred: [BatchEntry]) {
        var results: [(Int, Result<SaveResult, CRMError>)] = []
        var toSend: [BatchEntry] = []
        var deferred: [BatchEntry] = []
        // Every message of the round is looked for first (see `write(batch:)`), and so is every
        // person it would create: one another client (or an earlier round) made is linked.
        if !round.isEmpty {
            do {
                let found = try check(round)
                var creating = Set<String>()
                for var entry in round {
                    if let id = found.activities[MessageIDKey.normalize(entry.key)] {
                        results.append((entry.index, .success(Self.alreadySaved(id, decision: entry.save.decision, people: found.people))))
                        continue
                    }
                    let targets = entry.save.decision.toCreate
                    let made = found.people.filter { placeholder, _ in targets.contains { $0.placeholder == placeholder } }
                    let making = Set(targets.filter { made[$0.placeholder] == nil }.map { CRMDirectoryKeys.address($0.address) })
                    guard creating.isDisjoint(with: making) else {
                        deferred.append(entry)
                        continue
                    }
                    creating.formUnion(making)
                    if !made.isEmpty {
                        entry.request = saveRequest(entry.save.decision, message: entry.save.message, mailbox: entry.save.mailbox, key: entry.key,
                                                    taskField: entry.taskField, madeMeanwhile: made)
                    }
                    toSend.append(entry)
                }
            } catch {
                results += round.map { ($0.index, .failure(error)) }
            }
        }
        // By object: a collection call takes mixed types, but in at most 10 runs of one type.
        let singles = toSend.filter { $0.subrequests.count == 1 }.sorted { $0.object < $1.object }
        var start = 0
        while start < singles.count {
            let chunk = Array(singles[start..<min(start + Self.recordsPerCollection, singles.count)])
            results += send(chunk, graph: false)
            start += chunk.count
        }
        var graphs: [BatchEntry] = []
        var nodes = 0
        for entry in toSend where entry.subrequests.count > 1 {
            if !graphs.isEmpty && (graphs.count == Self.graphsPerCall || nodes + entry.subrequests.count > Self.nodesPerCall) {
                results += send(graphs, graph: true)
                graphs = []
                nodes = 0
            }
            graphs.append(entry)
            nodes += entry.subrequests.count
        }
        if !graphs.isEmpty { results += send(graphs, graph: true) }
        return (results, deferred)
    }

    /// One call for `chunk` (retried while its outcome is unknown and nothing was found).
    private func send(_ chunk: [BatchEntry], graph: Bool) -> [(Int, Result<SaveResult, CRMError>)] {
        var results: [(Int, Result<SaveResult, CRMError>)] = []
        var pending = chunk
        var attempt = 0
        while !pending.isEmpty {
            attempt += 1
            let body: JSON
            if graph {
                body = .object(["graphs": .array(pending.enumerated().map { position, entry in
                    .object(["graphId": .string("m\(position)"), "compositeRequest": .array(entry.subrequests)])
                })])
            } else {
                body = .object(["allOrNone": .bool(false), "records": .array(pending.map(Self.collectionRecord))])
            }
            let response: JSON
            do {
                // Per-record errors are each message's own: no `inspect`, so a locked row of one
                // record never replays the call (the others are already committed).
                response = try connection.call("POST", path: connection.dataPath + (graph ? "/composite/graph" : "/composite/sobjects"),
                                               body: body, kind: "save", write: true)
            } catch {
                guard error.outcomeUnknown else { return results + pending.map { ($0.index, .failure(error.error)) } }
                // The org may hold some: one look-up of every key before anything is resent.
                for entry in pending { forgetAbsent(entry.key) }
                let found: (activities: [String: String], people: [String: String])
                do {
                    found = try check(pending)
                } catch {
                    let failure = CRMError(.retryable, "\(error.message); the previous save's outcome is unknown, so it is looked for again before the next attempt")
                    return results + pending.map { ($0.index, .failure(failure)) }
                }
                pending = pending.filter { entry in
                    guard let id = found.activities[MessageIDKey.normalize(entry.key)] else { return true }
                    results.append((entry.index, .success(Self.alreadySaved(id, decision: entry.save.decision, people: found.people))))
                    return false
                }
                guard !pending.isEmpty else { return results }
                guard attempt < configuration.attempts else { return results + pending.map { ($0.index, .failure(error.error)) } }
                connection.backOff(after: attempt)
                continue
            }
            // A locked row (or a graph Salesforce did not process) wrote nothing: those saves go
            // again in this run, alone, after the same back-off as a call's retry.
            var again: [BatchEntry] = []
            for answer in graph ? graphResults(response, pending) : collectionResults(response, pending) {
                if answer.refusedForNow, attempt < configuration.attempts, let entry = pending.first(where: { $0.index == answer.index }) {
                    again.append(entry)
                } else {
                    results.append((answer.index, answer.result))
                }
            }
            guard !again.isEmpty else { return results }
            connection.backOff(after: attempt)
            pending = again
        }
        return results
    }

    /// One message's outcome in a batch call's answer; `refusedForNow`: refused with nothing
    /// written (`SalesforceBackend.refusedForNow`), so it may be sent again now.
    struct Answer {
        var index: Int
        var result: Result<SaveResult, CRMError>
        var refusedForNow = false
    }

    /// The record of a one-record message as sObject Collections takes it (`attributes.type`).
    static func collectionRecord(_ entry: BatchEntry) -> JSON {
        var fields = entry.subrequests.first?["body"]?.object ?? [:]
        fields["attributes"] = .object(["type": .string(entry.object)])
        return .object(fields)
    }

    /// sObject Collections answers one result per record, in order.
    private func collectionResults(_ response: JSON, _ entries: [BatchEntry]) -> [Answer] {
        guard let answers = response.array, answers.count == entries.count else {
            return checkedAfterAnUnclearAnswer(entries, "Salesforce answered the saves with \(response.array?.count ?? 0) results for \(entries.count) records")
        }
        var results: [Answer] = []
        for (entry, answer) in zip(entries, answers) {
            // As a composite answer of one subrequest, so one function reads both forms.
            let status = answer["success"]?.bool == true ? 201 : 400
            let single = JSON.object(["compositeResponse": .array([.object([
                "referenceId": .string("activity"), "httpStatusCode": .number(Double(status)),
                "body": answer["success"]?.bool == true ? answer : (answer["errors"] ?? .array([])),
            ])])])
            results.append(answered(single, entry))
        }
        return results
    }

    /// Composite graph answers one result per graph, by `graphId`.
    private func graphResults(_ response: JSON, _ entries: [BatchEntry]) -> [Answer] {
        let graphs = response["graphs"]?.array ?? []
        var results: [Answer] = []
        var unclear: [BatchEntry] = []
        for (position, entry) in entries.enumerated() {
            guard let answer = graphs.first(where: { $0["graphId"]?.string == "m\(position)" }),
                  let inner = answer["graphResponse"]?["compositeResponse"] else {
                unclear.append(entry)
                continue
            }
            results.append(answered(.object(["compositeResponse": inner]), entry))
        }
        return results + checkedAfterAnUnclearAnswer(unclear, "Salesforce's answer to the saves left out \(unclear.count) of them")
    }

    private func answered(_ composite: JSON, _ entry: BatchEntry) -> Answer {
        do {
            return Answer(index: entry.index, result: .success(try savedResult(composite, request: entry.request, key: entry.key, taskField: entry.taskField)))
        } catch {
            return Answer(index: entry.index, result: .failure(error),
                          refusedForNow: error.kind == .retryable && Self.refusedForNow(composite, request: entry.request))
        }
    }

    /// The org's activities for these messages, and the people their decisions create that
    /// it holds by now, in one call (`check(keys:taskField:people:)`).
    private func check(_ entries: [BatchEntry]) throws(CRMError) -> (activities: [String: String], people: [String: String]) {
        try check(keys: entries.map(\.key), taskField: taskMessageIDField(), people: entries.flatMap(\.save.decision.toCreate))
    }

    /// Saves an answer does not account for: looked for; those not found are retried later
    /// (never resent now, since they may exist).
    private func checkedAfterAnUnclearAnswer(_ entries: [BatchEntry], _ reason: String) -> [Answer] {
        guard !entries.isEmpty else { return [] }
        let found: (activities: [String: String], people: [String: String])
        do {
            found = try check(entries)
        } catch {
            return entries.map { Answer(index: $0.index, result: .failure(CRMError(.retryable, "\(reason); \(error.message)"))) }
        }
        return entries.map { entry in
            if let id = found.activities[MessageIDKey.normalize(entry.key)] {
                return Answer(index: entry.index, result: .success(Self.alreadySaved(id, decision: entry.save.decision, people: found.people)))
            }
            return Answer(index: entry.index, result: .failure(CRMError(.retryable, "\(reason); it is looked for before the next attempt")))
        }
    }
}
