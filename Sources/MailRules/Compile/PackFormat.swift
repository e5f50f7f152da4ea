import MailMessage
/// Where `Linter.load` keeps compiled packs between runs. Caching is the command line's
/// concern (where entries live, how they are keyed and checked); the rule language only
/// turns a pack into bytes and back (`CompiledPackFormat`).
///
/// The org files and the user files are kept apart: a user file's layer is compiled against
/// the org layer alone, so `process` reads the org files and the one user file of its
/// mailbox, not every user's.
public protocol CompiledPackCache {
    /// The pack compiled from exactly these files, or nil.
    func load(_ files: [SourceFile]) -> RulePack?
    /// Keeps `pack`, compiled from exactly these files.
    func store(_ pack: RulePack, for files: [SourceFile])
    /// The user layers compiled from exactly the user files `files` against `pack`, the org
    /// layer this cache's `load` or `store` last gave or took for the org files `org`; or nil.
    func loadUsers(_ files: [SourceFile], org: [SourceFile], pack: RulePack) -> [String: UserLayer]?
    /// Keeps `users`, compiled from exactly `files` against `pack` (as for `loadUsers`).
    func storeUsers(_ users: [String: UserLayer], for files: [SourceFile], org: [SourceFile], pack: RulePack)
}

/// A compiled pack as bytes and back, so a cache can skip YAML, checks and compilation.
/// `decode` trusts nothing: every index, count, slot and position is checked, and anything
/// out of place gives nil, never a trap. It does not detect a change that still decodes (a
/// letter of a message): the cache's checksum is for that.
public enum CompiledPackFormat {
    /// Bumped whenever the encoding changes shape or meaning (3: lists' entries in NFC and
    /// in byte order, read into sorted buffers; 4: the settings users may choose, and user
    /// layers encoded on their own).
    public static let version: UInt8 = 4

    /// What the compiler is, as far as a compiled pack depends on it: the facts schema, the
    /// settings, the functions, macros and checks, as length-prefixed pieces. A cache keys
    /// entries by it so a pack compiled by another compiler is never read back.
    public static let compilerFingerprint: [UInt8] = {
        var writer = BinaryWriter()
        writer.string(Documentation.factsTable())
        writer.string(Documentation.settingsTable())
        writer.strings(Builtin.allCases.map(\.rawValue))
        writer.strings(Macro.allCases.map(\.rawValue))
        writer.strings(LintCheck.all.map(\.id))
        return writer.bytes
    }()

    public static func encode(_ pack: RulePack) -> [UInt8] {
        var encoder = PackEncoder(pack: pack)
        encoder.encodePack()
        return encoder.writer.bytes
    }

    /// A pack's user layers alone, for a cache that keeps each user file apart from the org's.
    public static func encodeUsers(_ users: [String: UserLayer], of pack: RulePack) -> [UInt8] {
        var encoder = PackEncoder(pack: pack)
        encoder.encodeUsers(users)
        return encoder.writer.bytes
    }

    /// User layers written by `encodeUsers` for `pack` (whose lists a personal setting may
    /// name), or nil unless `bytes[range]` decode to valid layers using every byte.
    public static func decodeUsers(_ bytes: [UInt8], range: Range<Int>, for pack: RulePack) -> [String: UserLayer]? {
        guard range.lowerBound >= 0, range.upperBound <= bytes.count else { return nil }
        var decoder = PackDecoder(reader: BinaryReader(bytes: bytes, position: range.lowerBound, end: range.upperBound))
        decoder.lists = pack.lists
        decoder.slots = pack.slots
        guard let users = decoder.users(), decoder.reader.position == decoder.reader.end else { return nil }
        return users
    }

    /// The pack in `bytes`, or nil unless they decode to a valid pack using every byte.
    /// `files`: the rule files it was compiled from, read again (a cache keys entries by their
    /// paths and text): an expression's errors are placed by its file's lines (a rule over its
    /// evaluation budget named line 7 for line 8 of a plain scalar over two lines).
    /// `range`: where in `bytes` the encoded pack is (a cache entry holds more), all of it
    /// when nil; read in place, not copied out.
    public static func decode(_ bytes: [UInt8], range: Range<Int>? = nil, files: [SourceFile] = []) -> RulePack? {
        let range = range ?? 0..<bytes.count
        guard range.lowerBound >= 0, range.upperBound <= bytes.count else { return nil }
        var decoder = PackDecoder(reader: BinaryReader(bytes: bytes, position: range.lowerBound, end: range.upperBound))
        for file in files { decoder.files[file.path] = file }
        guard let pack = decoder.pack(), decoder.reader.position == decoder.reader.end else { return nil }
        return pack
    }
}

// MARK: Bytes

struct BinaryWriter {
    var bytes: [UInt8] = []

    mutating func int(_ value: Int) {
        var remaining = UInt64(bitPattern: Int64(value) << 1 ^ Int64(value) >> 63) // zig-zag
        repeat {
            let low = UInt8(remaining & 0x7F)
            remaining >>= 7
            bytes.append(remaining == 0 ? low : low | 0x80)
        } while remaining != 0
    }

    mutating func string(_ text: String) {
        int(text.utf8.count)
        bytes.append(contentsOf: text.utf8)
    }

    mutating func strings(_ texts: [String]) {
        int(texts.count)
        for text in texts { string(text) }
    }

    mutating func optional(_ text: String?) {
        bool(text != nil)
        if let text { string(text) }
    }

    mutating func bool(_ flag: Bool) { bytes.append(flag ? 1 : 0) }
}

struct BinaryReader {
    let bytes: [UInt8]
    var position: Int
    /// Where the reader's bytes end (the rest of `bytes` is not read).
    let end: Int

    init(bytes: [UInt8], position: Int, end: Int? = nil) {
        self.bytes = bytes
        self.position = position
        self.end = max(0, min(end ?? bytes.count, bytes.count))
    }

    mutating func int() -> Int? {
        guard let (value, next) = bytes.withUnsafeBytes({ Self.varint(in: UnsafeRawBufferPointer(rebasing: $0[..<end]), at: position) }) else { return nil }
        position = next
        return value
    }

    /// The zig-zag varint at `start`, and the position after it.
    static func varint(in buffer: UnsafeRawBufferPointer, at start: Int) -> (value: Int, next: Int)? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        var position = start
        while position >= 0, position < buffer.count, shift < 64 {
            let byte = buffer[position]
            position += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 {
                let decoded = Int64(bitPattern: value >> 1) ^ -Int64(bitPattern: value & 1)
                return (Int(decoded), position)
            }
            shift += 7
        }
        return nil
    }

    mutating func count() -> Int? {
        guard let value = int(), value >= 0, value <= end - position + 1 else { return nil }
        return value
    }

    /// A length-prefixed UTF-8 string; bytes that are not UTF-8 make the entry invalid. Read
    /// from the contiguous bytes: `String(validating:)` over an array slice went through the
    /// generic sequence path, a thousand instructions for a short name (a cached pack has about
    /// 800 strings, read once a message).
    mutating func string() -> String? {
        guard let length = count(), length <= end - position else { return nil }
        let start = position
        let text: String? = bytes.withUnsafeBufferPointer { buffer in
            let piece = UnsafeBufferPointer(rebasing: buffer[start..<start + length])
            var ascii = true
            for byte in piece where byte >= 0x80 {
                ascii = false
                break
            }
            // ASCII is valid UTF-8 as it stands: decoding it repairs nothing.
            return ascii ? String(decoding: piece, as: UTF8.self) : UTF8Text.valid(UnsafeRawBufferPointer(piece))
        }
        guard let text else { return nil }
        position += length
        return text
    }

    mutating func strings() -> [String]? {
        guard let count = count() else { return nil }
        var texts: [String] = []
        texts.reserveCapacity(count)
        for _ in 0..<count {
            guard let text = string() else { return nil }
            texts.append(text)
        }
        return texts
    }

    mutating func bool() -> Bool? {
        guard position >= 0, position < end, bytes[position] <= 1 else { return nil }
        position += 1
        return bytes[position - 1] == 1
    }

    mutating func optional() -> String?? {
        guard let present = bool() else { return nil }
        if !present { return .some(nil) }
        guard let text = string() else { return nil }
        return .some(text)
    }
}

/// The object types of the facts schema, by name, for encoding types.
let schemaObjects: [String: ObjectType] = Dictionary(uniqueKeysWithValues: [
    FactsSchema.message, FactsSchema.participant, FactsSchema.mailbox, FactsSchema.related, FactsSchema.thread,
    FactsSchema.ledger, FactsSchema.selection, FactsSchema.capabilities, FactsSchema.settings, FactsSchema.root,
].map { ($0.name, $0) })

// MARK: Encoding

struct PackEncoder {
    let pack: RulePack
    var writer = BinaryWriter()

    mutating func location(_ location: SourceLocation) {
        writer.string(location.path)
        writer.int(location.line)
        writer.int(location.column)
    }

    mutating func list(_ list: CompiledList) {
        writer.string(list.name)
        writer.string(list.kind.rawValue)
        writer.strings(list.allEntries())
    }

    mutating func value(_ value: Value) {
        switch value {
        case .absent: writer.int(0)
        case .bool(let flag): writer.int(1); writer.bool(flag)
        case .int(let number): writer.int(2); writer.int(number)
        case .string(let text): writer.int(3); writer.string(text)
        case .list(let items):
            writer.int(4)
            writer.int(items.count)
            for item in items { self.value(item) }
        case .namedList(let named):
            if pack.lists[named.name] === named {
                writer.int(5)
                writer.string(named.name)
            } else {
                writer.int(6)
                list(named)
            }
        case .object(let object):
            writer.int(7)
            writer.string(object.type.name)
            writer.int(object.fields.count)
            for field in object.fields { self.value(field) }
        }
    }

    mutating func type(_ type: FactType) {
        switch type {
        case .bool: writer.int(0)
        case .int: writer.int(1)
        case .string: writer.int(2)
        case .enumeration(let name, let values): writer.int(3); writer.string(name); writer.strings(values)
        case .list(let element): writer.int(4); self.type(element)
        case .object(let object): writer.int(5); writer.string(object.name)
        case .optional(let wrapped): writer.int(6); self.type(wrapped)
        case .namedList(let kind): writer.int(7); writer.string(kind.rawValue)
        case .error: writer.int(8)
        }
    }

    mutating func node(_ node: ExprNode) {
        switch node.op {
        case .constant(let constant): writer.int(0); value(constant)
        case .root(let index): writer.int(1); writer.int(index)
        case .variable(let slot): writer.int(2); writer.int(slot)
        case .field(let index): writer.int(3); writer.int(index)
        case .not: writer.int(4)
        case .and: writer.int(5)
        case .or: writer.int(6)
        case .equal: writer.int(7)
        case .notEqual: writer.int(8)
        case .less: writer.int(9)
        case .lessEqual: writer.int(10)
        case .greater: writer.int(11)
        case .greaterEqual: writer.int(12)
        case .add: writer.int(13)
        case .subtract: writer.int(14)
        case .negate: writer.int(15)
        case .concat: writer.int(16)
        case .inList: writer.int(17)
        case .notInList: writer.int(18)
        case .inNamed: writer.int(19)
        case .notInNamed: writer.int(20)
        case .call(let builtin): writer.int(21); writer.string(builtin.rawValue)
        case .macro(let macro, let slot): writer.int(22); writer.string(macro.rawValue); writer.int(slot)
        case .list: writer.int(23)
        }
        writer.int(node.span.lowerBound)
        writer.int(node.span.upperBound)
        type(node.type)
        writer.int(node.children.count)
        for child in node.children { self.node(child) }
    }

    mutating func source(_ source: ExprSource) {
        writer.string(source.text)
        writer.string(source.scalar.value)
        location(source.scalar.location)
        writer.int([YScalar.Style.plain, .singleQuoted, .doubleQuoted, .literal, .folded].firstIndex(of: source.scalar.style) ?? 0)
    }

    mutating func expression(_ expression: CompiledExpression?) {
        guard let expression, let node = expression.node else { writer.bool(false); return }
        writer.bool(true)
        source(expression.source)
        self.node(node)
        writer.int(expression.slots)
        writer.strings(expression.usedLists.sorted())
        writer.strings(expression.usedSettings.sorted())
    }

    mutating func encodePack() {
        writer.int(pack.slots)
        let names = pack.lists.keys.sorted()
        writer.int(names.count)
        for name in names { if let named = pack.lists[name] { list(named) } }
        let settings = pack.orgSettings.keys.sorted()
        writer.int(settings.count)
        for name in settings {
            writer.string(name)
            value(pack.orgSettings[name] ?? .absent)
        }
        writer.strings(pack.personalSettings.sorted())
        writer.int(pack.rules.count)
        for rule in pack.rules {
            let definition = rule.definition
            writer.string(definition.id)
            location(definition.idLocation)
            writer.string(definition.description)
            writer.optional(definition.then?.rawValue)
            writer.optional(definition.message)
            writer.optional(definition.link?.rawValue)
            writer.optional(definition.saveAs)
            writer.optional(definition.createRecords.map { $0 ? "true" : "false" })
            location(definition.location)
            expression(rule.condition)
            expression(rule.observe)
        }
        let objects = pack.mapping.keys.sorted()
        writer.int(objects.count)
        for object in objects {
            let fields = pack.mapping[object] ?? []
            writer.string(object)
            writer.int(fields.count)
            for (field, compiled) in fields {
                writer.string(field.name)
                expression(compiled)
            }
        }
        encodeUsers(pack.users)
    }

    /// The user layers, by mailbox (also a cache entry of their own: see `CompiledPackFormat.encodeUsers`).
    mutating func encodeUsers(_ users: [String: UserLayer]) {
        let mailboxes = users.keys.sorted()
        writer.int(mailboxes.count)
        for mailbox in mailboxes {
            guard let user = users[mailbox] else { continue }
            writer.string(user.mailbox)
            list(user.blocklist)
            writer.strings(user.removed.sorted())
            let names = user.settings.keys.sorted()
            writer.int(names.count)
            for name in names {
                writer.string(name)
                value(user.settings[name] ?? .absent)
            }
        }
    }
}

// MARK: Decoding

struct PackDecoder {
    var reader: BinaryReader
    var lists: [String: CompiledList] = [:]
    /// The rule files the expressions name, by path (without text when the caller gave none).
    var files: [String: SourceFile] = [:]
    /// The pack's macro variable slots: every variable and macro slot must be below it.
    var slots = 0
    /// The most slots a pack may declare (a compiled pack needs one per nested macro).
    static let maxSlots = 4_096
    /// Lines and columns past this are not a rule file's (which is at most 32 MiB).
    static let maxPosition = 1 << 26

    mutating func location() -> SourceLocation? {
        guard let path = reader.string(), let line = reader.int(), let column = reader.int(),
              (1...Self.maxPosition).contains(line), (1...Self.maxPosition).contains(column) else { return nil }
        return SourceLocation(path: path, line: line, column: column)
    }

    /// A list's entries are read as bytes into its sorted buffers (`SortedEntries`), no string
    /// made or hashed per entry; they must be UTF-8, and each part of the list (addresses,
    /// domains, `*.` entries) in increasing order, as the encoder writes them.
    mutating func list() -> CompiledList? {
        guard let name = reader.string(), let kindName = reader.string(), let kind = ListKind(rawValue: kindName),
              let count = reader.count() else { return nil }
        var exact = SortedEntries(), domains = SortedEntries(), subdomainsOnly = SortedEntries()
        let position = reader.position
        let limit = reader.end
        let end: Int? = reader.bytes.withUnsafeBytes { whole in
            let buffer = UnsafeRawBufferPointer(rebasing: whole[..<limit])
            var position = position
            for _ in 0..<count {
                guard let (length, after) = BinaryReader.varint(in: buffer, at: position), length >= 0, length <= buffer.count - after else { return nil }
                let entry = UnsafeRawBufferPointer(rebasing: buffer[after..<(after + length)])
                guard UTF8Text.isValid(entry) else { return nil }
                let added: Bool
                switch CompiledList.part(of: entry, kind: kind) {
                case .exact: added = exact.append(inOrder: entry)
                case .domain: added = domains.append(inOrder: entry)
                case .subdomains: added = subdomainsOnly.append(inOrder: UnsafeRawBufferPointer(rebasing: entry[2...]))
                }
                guard added else { return nil }
                position = after + length
            }
            return position
        }
        guard let end else { return nil }
        reader.position = end
        return CompiledList(name: name, kind: kind, exact: exact, domains: domains, subdomainsOnly: subdomainsOnly)
    }

    mutating func value(depth: Int = 0) -> Value? {
        guard depth < 32, let tag = reader.int() else { return nil }
        switch tag {
        case 0: return .absent
        case 1: return reader.bool().map(Value.bool)
        case 2: return reader.int().map(Value.int)
        case 3: return reader.string().map(Value.string)
        case 4:
            guard let count = reader.count() else { return nil }
            var items: [Value] = []
            for _ in 0..<count {
                guard let item = value(depth: depth + 1) else { return nil }
                items.append(item)
            }
            return .list(items)
        case 5: return reader.string().flatMap { lists[$0] }.map(Value.namedList)
        case 6: return list().map(Value.namedList)
        case 7:
            guard let name = reader.string(), let type = schemaObjects[name], let count = reader.count(), count == type.fields.count else {
                return nil
            }
            var values: [String: Value] = [:]
            for field in type.fields {
                guard let item = value(depth: depth + 1) else { return nil }
                values[field.name] = item
            }
            return (try? FactObject(type, values)).map(Value.object)
        default: return nil
        }
    }

    mutating func type(depth: Int = 0) -> FactType? {
        guard depth < 16, let tag = reader.int() else { return nil }
        switch tag {
        case 0: return .bool
        case 1: return .int
        case 2: return .string
        case 3:
            guard let name = reader.string(), let values = reader.strings() else { return nil }
            return .enumeration(name, values)
        case 4: return type(depth: depth + 1).map(FactType.list)
        case 5: return reader.string().flatMap { schemaObjects[$0] }.map(FactType.object)
        case 6: return type(depth: depth + 1).map(FactType.optional)
        case 7: return reader.string().flatMap(ListKind.init(rawValue:)).map(FactType.namedList)
        case 8: return .error
        default: return nil
        }
    }

    mutating func node(depth: Int = 0) -> ExprNode? {
        guard depth < 128, let tag = reader.int() else { return nil }
        let op: ExprNode.Op
        switch tag {
        case 0: guard let constant = value() else { return nil }; op = .constant(constant)
        case 1: guard let index = reader.int() else { return nil }; op = .root(index)
        case 2: guard let slot = reader.int() else { return nil }; op = .variable(slot)
        case 3: guard let index = reader.int() else { return nil }; op = .field(index)
        case 21: guard let builtin = reader.string().flatMap(Builtin.init(rawValue:)) else { return nil }; op = .call(builtin)
        case 22:
            guard let macro = reader.string().flatMap(Macro.init(rawValue:)), let slot = reader.int() else { return nil }
            op = .macro(macro, slot: slot)
        case 4: op = .not
        case 5: op = .and
        case 6: op = .or
        case 7: op = .equal
        case 8: op = .notEqual
        case 9: op = .less
        case 10: op = .lessEqual
        case 11: op = .greater
        case 12: op = .greaterEqual
        case 13: op = .add
        case 14: op = .subtract
        case 15: op = .negate
        case 16: op = .concat
        case 17: op = .inList
        case 18: op = .notInList
        case 19: op = .inNamed
        case 20: op = .notInNamed
        case 23: op = .list
        default: return nil
        }
        guard let lower = reader.int(), let upper = reader.int(), lower >= 0, lower <= upper, let type = type(),
              let count = reader.count() else {
            return nil
        }
        var children: [ExprNode] = []
        children.reserveCapacity(count) // `count` is at most the bytes left
        for _ in 0..<count {
            guard let child = node(depth: depth + 1) else { return nil }
            children.append(child)
        }
        guard Self.isValid(op, children, slots: slots) else { return nil }
        return ExprNode(op, children, span: lower..<upper, type: type)
    }

    /// Whether a node read back can be evaluated without an index out of range: the right
    /// number of children for its operation, indexes inside their object types, slots inside
    /// the pack's. The evaluator checks again at run time; this refuses a damaged entry early.
    static func isValid(_ op: ExprNode.Op, _ children: [ExprNode], slots: Int) -> Bool {
        switch op {
        case .constant: return children.isEmpty
        case .root(let index): return children.isEmpty && FactsSchema.root.fields.indices.contains(index)
        case .variable(let slot): return children.isEmpty && (0..<slots).contains(slot)
        case .field(let index):
            guard children.count == 1 else { return false }
            var base = children[0].type
            if case .optional(let wrapped) = base { base = wrapped }
            guard case .object(let object) = base else { return false }
            return object.fields.indices.contains(index)
        case .not, .negate: return children.count == 1
        case .and, .or, .equal, .notEqual, .less, .lessEqual, .greater, .greaterEqual, .add, .subtract, .concat,
             .inList, .notInList, .inNamed, .notInNamed:
            return children.count == 2
        case .call(let builtin):
            switch builtin {
            case .lower, .upper, .size, .has: return children.count == 1
            default: return children.count == 2
            }
        case .macro(_, let slot): return children.count == 2 && (0..<slots).contains(slot)
        case .list: return true
        }
    }

    mutating func source() -> ExprSource? {
        guard let text = reader.string(), let value = reader.string(), let location = location(), let style = reader.int(),
              (0..<5).contains(style) else { return nil }
        let scalarStyle: YScalar.Style
        switch style {
        case 0: scalarStyle = .plain
        case 1: scalarStyle = .singleQuoted
        case 2: scalarStyle = .doubleQuoted
        case 3: scalarStyle = .literal
        default: scalarStyle = .folded
        }
        // One file object a path (a pack's expressions come from a handful of files).
        let file = files[location.path] ?? SourceFile(path: location.path, text: "")
        files[location.path] = file
        return ExprSource(text: text, scalar: YScalar(value: value, location: location, style: scalarStyle), file: file)
    }

    /// `.some(nil)` when no expression was stored, nil when the bytes are bad.
    mutating func expression() -> CompiledExpression?? {
        guard let present = reader.bool() else { return nil }
        if !present { return .some(nil) }
        guard let source = source(), let node = node(), let needed = reader.int(), (0...slots).contains(needed),
              let usedLists = reader.strings(), let usedSettings = reader.strings() else { return nil }
        return .some(CompiledExpression(source: source, node: node, slots: needed, usedLists: Set(usedLists),
                                        usedSettings: Set(usedSettings), syntax: nil))
    }

    mutating func pack() -> RulePack? {
        guard let slots = reader.int(), (1...Self.maxSlots).contains(slots) else { return nil }
        self.slots = slots
        guard let listCount = reader.count() else { return nil }
        for _ in 0..<listCount {
            guard let named = list() else { return nil }
            lists[named.name] = named
        }
        guard let settingCount = reader.count() else { return nil }
        var settings: [String: Value] = [:]
        for _ in 0..<settingCount {
            guard let name = reader.string(), let setting = value() else { return nil }
            settings[name] = setting
        }
        guard let personal = reader.strings() else { return nil }
        guard let ruleCount = reader.count() else { return nil }
        var rules: [CompiledRule] = []
        for _ in 0..<ruleCount {
            guard let id = reader.string(), let idLocation = location(), let description = reader.string(),
                  let then = reader.optional(), let message = reader.optional(), let link = reader.optional(),
                  let saveAs = reader.optional(), let create = reader.optional(), let location = location(),
                  let condition = expression(), let observe = expression() else { return nil }
            var definition = RuleDefinition(id: id, idLocation: idLocation, description: description, location: location)
            definition.then = then.flatMap(Verdict.init(rawValue:))
            definition.message = message
            definition.link = link.flatMap(LinkMode.init(rawValue:))
            definition.saveAs = saveAs
            definition.createRecords = create.map { $0 == "true" }
            definition.when = condition?.source
            definition.observe = observe?.source
            rules.append(CompiledRule(definition: definition, condition: condition, observe: observe))
        }
        guard let objectCount = reader.count() else { return nil }
        var mapping: [String: [(field: SalesforceField, expression: CompiledExpression)]] = [:]
        for _ in 0..<objectCount {
            guard let object = reader.string(), let catalog = SalesforceField.fields(for: object), let count = reader.count() else { return nil }
            var fields: [(field: SalesforceField, expression: CompiledExpression)] = []
            for _ in 0..<count {
                guard let name = reader.string(), let field = catalog.first(where: { $0.name == name }),
                      let compiled = expression(), let compiled else { return nil }
                fields.append((field, compiled))
            }
            mapping[object] = fields
        }
        guard let users = users() else { return nil }
        return RulePack(rules: rules, lists: lists, orgSettings: settings, mapping: mapping, users: users, slots: slots,
                        personalSettings: Set(personal))
    }

    /// The user layers written by `PackEncoder.encodeUsers`; `lists` must hold the org's lists
    /// first (a personal setting may name one).
    mutating func users() -> [String: UserLayer]? {
        guard let userCount = reader.count() else { return nil }
        var users: [String: UserLayer] = [:]
        for _ in 0..<userCount {
            guard let mailbox = reader.string(), let blocklist = list(), let removed = reader.strings(), let count = reader.count() else {
                return nil
            }
            var values: [String: Value] = [:]
            for _ in 0..<count {
                guard let name = reader.string(), let setting = value() else { return nil }
                values[name] = setting
            }
            users[mailbox] = UserLayer(mailbox: mailbox, blocklist: blocklist, removed: Set(removed), settings: values)
        }
        return users
    }
}
