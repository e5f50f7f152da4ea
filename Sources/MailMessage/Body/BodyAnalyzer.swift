#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a sender's signature block says about them.
public struct Signature: Sendable, Equatable {
    public var name: String?
    public var title: String?
    public var company: String?
    /// E.164 (`+442079460958`) where the country is known or inferable, else as written.
    public var phones: [String] = []
    /// The website's domain, lower-cased, without `www.`.
    public var website: String?
    /// The signature block's lines, as found.
    public var lines: [String] = []
}

/// Reads the body for the related-record search: the signature block of the newest message
/// in the thread (quoted history cut off), and every address and link in the whole body.
public enum BodyAnalyzer {
    public struct Result: Sendable {
        public var signature: Signature?
        public var emails: [String]
        public var links: [String]
    }

    /// `htmlLinks`: the HTML's links when the caller already rendered it, so the HTML is not
    /// read a second time.
    public static func analyze(text: String, html: String?, htmlLinks: [String]? = nil, senderDomain: String?) -> Result {
        var links = findLinks(text)
        var emails = findEmails(text)
        if let html {
            for href in htmlLinks ?? HTMLText.links(html) {
                let lower = href.lowercased()
                if lower.hasPrefix("mailto:") {
                    let target = href.dropFirst(7).prefix(while: { $0 != "?" })
                    emails.append(contentsOf: findEmails(String(target)))
                } else if lower.hasPrefix("http://") || lower.hasPrefix("https://") {
                    links.append(href)
                }
            }
        }
        return Result(signature: signature(of: text, senderDomain: senderDomain), emails: unique(emails), links: unique(links))
    }

    static func unique(_ values: [String]) -> [String] {
        var seen = Set<String>()
        return values.filter { seen.insert($0.lowercased()).inserted }
    }

    // MARK: Addresses and links

    static func isLocalCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x2E, 0x5F, 0x25, 0x2B, 0x2D, 0x27: return true
        default: return byte >= 0x80
        }
    }

    static func isDomainCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x2E, 0x2D: return true
        default: return byte >= 0x80
        }
    }

    /// Addresses written in text, local part as written, domain lower-cased.
    public static func findEmails(_ text: String) -> [String] {
        var text = text
        return text.withUTF8 { findEmails(in: $0) }
    }

    static func findEmails(in bytes: UnsafeBufferPointer<UInt8>) -> [String] {
        var found: [String] = []
        var position = 0
        // From "@" to "@": most of a body has none.
        while let index = bytes.firstIndex(ofByte: 0x40, from: position) {
            var start = index
            while start > 0 && isLocalCharacter(bytes[start - 1]) { start -= 1 }
            while start < index && (bytes[start] == 0x2E || bytes[start] == 0x27) { start += 1 }
            var end = index + 1
            while end < bytes.count && isDomainCharacter(bytes[end]) { end += 1 }
            while end > index + 1 && (bytes[end - 1] == 0x2E || bytes[end - 1] == 0x2D) { end -= 1 }
            let local = String(decoding: bytes[start..<index], as: UTF8.self)
            let domain = String(decoding: bytes[(index + 1)..<end], as: UTF8.self).lowercased()
            let labels = domain.split(separator: ".")
            if !local.isEmpty, labels.count >= 2, let tld = labels.last, tld.count >= 2, tld.allSatisfy({ $0.isLetter }) {
                found.append(local + "@" + domain)
            }
            position = max(end, index + 1)
        }
        return found
    }

    /// `http(s)://…` and `www.…` links in plain text, trailing punctuation removed.
    public static func findLinks(_ text: String) -> [String] {
        var found: [String] = []
        var text = text
        text.withUTF8 { bytes in
            var index = 0
            let count = bytes.count
            func matches(_ prefix: StaticString, at position: Int) -> Bool {
                let length = prefix.utf8CodeUnitCount
                guard position + length <= count else { return false }
                let pointer = prefix.utf8Start
                for offset in 0..<length where bytes[position + offset] | 0x20 != pointer[offset] { return false }
                return true
            }
            while index < count {
                let byte = bytes[index] | 0x20
                guard byte == 0x68 || byte == 0x77 else { index += 1; continue } // h, w
                let previous: UInt8 = index > 0 ? bytes[index - 1] : 0x20
                let atWordStart = !(previous >= 0x30 && previous <= 0x39) && !((previous | 0x20) >= 0x61 && (previous | 0x20) <= 0x7A)
                    && previous < 0x80 && previous != 0x2E && previous != 0x2F
                guard atWordStart, matches("http://", at: index) || matches("https://", at: index) || matches("www.", at: index) else {
                    index += 1
                    continue
                }
                var end = index
                while end < count {
                    let byte = bytes[end]
                    if byte <= 0x20 || byte == 0x3C || byte == 0x3E || byte == 0x22 || byte == 0x27 || byte == 0x60
                        || byte == 0x7B || byte == 0x7D || byte == 0x7C || byte == 0x5C || byte == 0x5E || byte == 0x7F {
                        break
                    }
                    if byte == 0xC2 && end + 1 < count && bytes[end + 1] == 0xA0 { break } // no-break space
                    end += 1
                }
                var stop = end
                var opened = 0
                for position in index..<end where bytes[position] == 0x28 { opened += 1 }
                while stop > index {
                    let last = bytes[stop - 1]
                    if last == 0x2E || last == 0x2C || last == 0x3B || last == 0x3A || last == 0x21 || last == 0x3F || last == 0x5D
                        || (last == 0x29 && opened == 0) {
                        stop -= 1
                        continue
                    }
                    break
                }
                let length = stop - index
                let isWWW = (bytes[index] | 0x20) == 0x77
                if (isWWW && length > 5) || (!isWWW && length > 8) {
                    found.append(String(decoding: UnsafeBufferPointer(rebasing: bytes[index..<stop]), as: UTF8.self))
                }
                index = max(end, index + 1)
            }
        }
        return found
    }

    // MARK: Signature

    static let replyMarkers = ["-----original message-----", "________________________________", "-------- original message --------",
                               "---------- forwarded message ---------", "begin forwarded message:", "-----ursprüngliche nachricht-----",
                               "-----message d'origine-----", "-----mensaje original-----"]
    static let closings = ["best regards", "kind regards", "warm regards", "regards", "best wishes", "best", "thanks", "thank you",
                           "many thanks", "cheers", "sincerely", "yours sincerely", "yours truly", "all the best", "respectfully",
                           "mit freundlichen grüßen", "mit freundlichen grüssen", "viele grüße", "beste grüße", "freundliche grüße",
                           "cordialement", "bien cordialement", "salutations", "saludos", "un saludo", "atentamente",
                           "cordiali saluti", "met vriendelijke groet", "groeten", "med vänlig hälsning"]
    static let companySuffixes = ["inc", "inc.", "llc", "ltd", "ltd.", "limited", "gmbh", "ag", "sa", "s.a.", "sas", "sarl", "bv", "b.v.",
                                  "nv", "corp", "corp.", "corporation", "company", "co.", "plc", "pty", "s.l.", "srl", "s.r.l.", "oy", "ab",
                                  "as", "a/s", "kg", "group", "technologies", "solutions", "systems"]
    static let titleWords = ["manager", "director", "engineer", "officer", "president", "head", "lead", "founder", "ceo", "cto",
                             "cfo", "coo", "vp", "vice", "sales", "account", "executive", "consultant", "specialist", "partner",
                             "developer", "architect", "analyst", "administrator", "representative", "owner", "assistant",
                             "coordinator", "associate", "geschäftsführer", "leiter", "directeur", "gerente", "responsable"]

    /// The newest message's own text, trimmed lines: quoted lines and reply headers cut off.
    static func ownText(_ text: String) -> [Substring] {
        var lines: [Substring] = []
        // The newest message and its signature sit at the top; 32 KiB of lines is plenty and
        // keeps a 10 MB body from costing 10 MB of line splitting.
        var budget = 32 << 10
        // Split on the UTF-8 view: Character iteration costs grapheme breaking we do not need.
        // Only the line ends within the budget are found: a 10 MB body costs 32 KiB of search.
        let utf8 = text.utf8
        // Line ends found by memchr over the contiguous UTF-8 (a generic search of the view cost
        // a third of this function); "\n" is ASCII, so each end is a Character boundary.
        let newlines: [Int] = utf8.withContiguousStorageIfAvailable { bytes in
            var found: [Int] = []
            var offset = 0
            while offset <= budget, let position = bytes.firstIndex(ofByte: 0x0A, from: offset) {
                found.append(position)
                offset = position + 1
            }
            return found
        } ?? utf8.indices.filter { utf8[$0] == 0x0A }.map { utf8.distance(from: utf8.startIndex, to: $0) }
        var nextNewline = 0
        var lineStart = utf8.startIndex
        while lineStart < utf8.endIndex {
            let lineEnd = nextNewline < newlines.count ? utf8.index(utf8.startIndex, offsetBy: newlines[nextNewline]) : utf8.endIndex
            nextNewline += 1
            let raw = Substring(utf8[lineStart..<lineEnd])
            lineStart = lineEnd < utf8.endIndex ? utf8.index(after: lineEnd) : lineEnd
            budget -= raw.utf8.count + 1
            if budget < 0 { break }
            let line = trimmed(raw)
            if let first = line.utf8.first {
                // Only lines that can start a reply marker pay for lower-casing.
                if first == UInt8(ascii: ">") { break }
                if [UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "o"), UInt8(ascii: "O"), UInt8(ascii: "a"), UInt8(ascii: "A"),
                    UInt8(ascii: "l"), UInt8(ascii: "L"), UInt8(ascii: "f"), UInt8(ascii: "F"), UInt8(ascii: "b"),
                    UInt8(ascii: "B")].contains(first) {
                    let lower = line.lowercased()
                    if replyMarkers.contains(where: { lower.hasPrefix($0) }) { break }
                    if lower.hasPrefix("on ") && lower.hasSuffix("wrote:") { break }
                    if lower.hasPrefix("am ") && lower.hasSuffix("schrieb:") { break }
                    if lower.hasPrefix("le ") && lower.hasSuffix("a écrit :") { break }
                    if lower.hasPrefix("from:") && !lines.isEmpty && lines.last?.isEmpty == true { break }
                }
            }
            // "-- " keeps its trailing space: it is the signature delimiter (RFC 3676 4.3).
            lines.append(line == "--" && raw.hasPrefix("-- ") ? "-- " : line)
        }
        while lines.last?.isEmpty == true { lines.removeLast() }
        return lines
    }

    static func trimmed(_ line: Substring) -> Substring {
        let utf8 = line.utf8
        var start = utf8.startIndex
        var end = utf8.endIndex
        while start < end, utf8[start] == 0x20 || utf8[start] == 0x09 || utf8[start] == 0x0D { start = utf8.index(after: start) }
        while end > start {
            let before = utf8.index(before: end)
            guard utf8[before] == 0x20 || utf8[before] == 0x09 || utf8[before] == 0x0D else { break }
            end = before
        }
        return Substring(utf8[start..<end])
    }

    public static func signature(of text: String, senderDomain: String?) -> Signature? {
        let lines = ownText(text)
        guard !lines.isEmpty else { return nil }
        var block: [String]?
        if let delimiter = lines.lastIndex(where: { $0 == "-- " || $0 == "--" }) {
            block = lines[(delimiter + 1)...].map(String.init)
        } else {
            let searchFrom = max(0, lines.count - 15)
            if let closing = lines[searchFrom...].lastIndex(where: isClosing) {
                block = lines[(closing + 1)...].map(String.init)
            } else if let blank = lines.lastIndex(where: { $0.isEmpty }), lines.count - blank - 1 <= 8 {
                let candidate = lines[(blank + 1)...].map(String.init)
                if candidate.contains(where: { !phones(in: $0, senderDomain: senderDomain).isEmpty || website(in: $0) != nil }) {
                    block = candidate
                }
            }
        }
        guard let found = block?.filter({ !$0.isEmpty }).prefix(10), !found.isEmpty else { return nil }
        var signature = Signature(lines: Array(found))
        var nameIndex: Int?
        for (index, line) in found.enumerated() {
            signature.phones.append(contentsOf: phones(in: line, senderDomain: senderDomain))
            if signature.website == nil, let site = website(in: line) { signature.website = site }
            if nameIndex == nil && signature.name == nil && looksLikeName(line) {
                signature.name = line
                nameIndex = index
            }
        }
        let plain = found.enumerated().filter { index, line in index != nameIndex && isPlainText(line) }
        if let company = plain.first(where: { looksLikeCompany($0.element) }) {
            signature.company = company.element
        }
        if let title = plain.first(where: { looksLikeTitle($0.element) && $0.element != signature.company }) {
            signature.title = title.element
        }
        if signature.company == nil, let nameIndex {
            // Name, title, company is the common order.
            let after = plain.filter { $0.offset > nameIndex && $0.element != signature.title }
            signature.company = after.first?.element
        }
        var seen = Set<String>()
        signature.phones = signature.phones.filter { seen.insert($0).inserted }
        return signature
    }

    static func isClosing(_ line: Substring) -> Bool {
        guard line.utf8.count <= 40 else { return false }
        // An ASCII line by bytes: the same lower-casing, trailing ",.!-" and trimming.
        if line.isASCII {
            var bytes = line.utf8.map(\.asciiLowercased)[...]
            while let last = bytes.last, last == 0x2C || last == 0x2E || last == 0x21 || last == 0x2D { bytes.removeLast() }
            func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || (byte >= 0x09 && byte <= 0x0D) }
            while let first = bytes.first, isSpace(first) { bytes.removeFirst() }
            while let last = bytes.last, isSpace(last) { bytes.removeLast() }
            return closingSet.contains(String(decoding: bytes, as: UTF8.self))
        }
        return isClosingByCharacters(line)
    }

    static func isClosingByCharacters(_ line: Substring) -> Bool {
        var lower = line.lowercased()
        while let last = lower.last, ",.!-–".contains(last) { lower.removeLast() }
        return closingSet.contains(lower.trimmingSpaces())
    }

    static let closingSet = Set(closings)

    static func isPlainText(_ line: String) -> Bool {
        // ASCII lines by bytes (one Character is one byte there), the same test.
        if line.isASCII {
            return line.utf8.count <= 80 && !line.utf8.contains { $0 == 0x40 || $0 == 0x3A || ($0 >= 0x30 && $0 <= 0x39) }
                && website(in: line) == nil && !looksLikeHost(line)
        }
        return isPlainTextByCharacters(line)
    }

    static func isPlainTextByCharacters(_ line: String) -> Bool {
        !line.contains("@") && !line.contains(where: { $0.isNumber }) && website(in: line) == nil && line.count <= 80
            && !line.contains(":") && !looksLikeHost(line)
    }

    /// A web address `website(in:)` does not take (`www.fab_ikam.com`, an underscore no host
    /// name may hold): a single dotted word that starts with `www.`, holds an underscore or
    /// ends in a common top-level domain is not a company, a name or a title (`J.Smith`,
    /// `Ph.D.` still are).
    static func looksLikeHost(_ line: String) -> Bool {
        let word = line.trimmingHorizontalSpace().lowercased()
        guard !word.isEmpty, !word.contains(" "), let dot = word.firstIndex(of: "."), dot != word.startIndex else { return false }
        if word.hasPrefix("www.") || word.contains("_") { return true }
        guard !word.hasSuffix("."), let last = word.split(separator: ".").last else { return false }
        return commonTLDs.contains(String(last))
    }

    static func looksLikeName(_ line: String) -> Bool {
        guard isPlainText(line), line.count <= 40 else { return false }
        if line.isASCII {
            let words = line.utf8.split(separator: 0x20)
            guard (1...4).contains(words.count) else { return false }
            guard words.allSatisfy({ word in
                guard let first = word.first, first >= 0x41 && first <= 0x5A else { return false }
                return word.allSatisfy { ($0 | 0x20) >= 0x61 && ($0 | 0x20) <= 0x7A || $0 == 0x2D || $0 == 0x2E || $0 == 0x27 }
            }) else { return false }
            return !looksLikeCompany(line) && !looksLikeTitle(line)
        }
        return looksLikeNameByCharacters(line)
    }

    static func looksLikeNameByCharacters(_ line: String) -> Bool {
        guard isPlainTextByCharacters(line), line.count <= 40 else { return false }
        let words = line.split(separator: " ")
        guard (1...4).contains(words.count) else { return false }
        if looksLikeCompany(line) || looksLikeTitle(line) { return false }
        return words.allSatisfy { word in
            guard let first = word.first else { return false }
            return first.isUppercase && word.allSatisfy { $0.isLetter || $0 == "-" || $0 == "." || $0 == "'" }
        }
    }

    static func looksLikeCompany(_ line: String) -> Bool {
        let words = line.lowercased().split(whereSeparator: { $0 == " " || $0 == "," })
        return words.contains { companySuffixes.contains(String($0)) }
    }

    static func looksLikeTitle(_ line: String) -> Bool {
        let words = line.lowercased().split(whereSeparator: { $0 == " " || $0 == "," || $0 == "/" || $0 == "&" })
        return words.contains { titleWords.contains(String($0)) }
    }

    /// Signature lines are short; a long line is prose (or an unbroken HTML body), never one.
    static let longestSignatureLine = 160

    static func website(in line: String) -> String? {
        guard line.utf8.count <= longestSignatureLine else { return nil }
        // A host has a dot: lines and words without one are skipped before any lowercasing.
        guard line.utf8.contains(0x2E) else { return nil }
        // Most signature lines are ASCII: read by bytes, they cost a tenth of reading by
        // Characters, with the same result (`SignatureTests` compares the two).
        guard line.isASCII else { return websiteByCharacters(in: line) }
        var line = line
        return line.withUTF8 { websiteInASCII($0) }
    }

    /// `website(in:)` over an ASCII line's bytes.
    static func websiteInASCII(_ line: UnsafeBufferPointer<UInt8>) -> String? {
        func isLetter(_ byte: UInt8) -> Bool { byte >= 0x61 && byte <= 0x7A }
        func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }
        func hasPrefix(_ word: ArraySlice<UInt8>, _ prefix: StaticString) -> Bool {
            guard word.count >= prefix.utf8CodeUnitCount else { return false }
            return zip(word, UnsafeBufferPointer(start: prefix.utf8Start, count: prefix.utf8CodeUnitCount)).allSatisfy { $0 == $1 }
        }
        var start = 0
        while start < line.count {
            var end = start
            while end < line.count, line[end] != 0x20, line[end] != 0x7C, line[end] != 0x09 { end += 1 }
            defer { start = end + 1 }
            let token = UnsafeBufferPointer(rebasing: line[start..<end])
            guard !token.isEmpty, token.contains(0x2E), !token.contains(0x40) else { continue }
            var word = ArraySlice(token.map(\.asciiLowercased))
            while let last = word.last, [0x2E, 0x2C, 0x3B, 0x3A, 0x29, 0x5D, 0x3E].contains(last) { word.removeLast() } // .,;:)]>
            while let first = word.first, [0x28, 0x3C, 0x5B].contains(first) { word.removeFirst() } // (<[
            if hasPrefix(word, "web:") { word.removeFirst(4) }
            if hasPrefix(word, "http://") { word.removeFirst(7) } else if hasPrefix(word, "https://") { word.removeFirst(8) }
            let host = word.prefix { $0 != 0x2F && $0 != 0x3F && $0 != 0x23 } // / ? #
            let labels = host.split(separator: 0x2E, omittingEmptySubsequences: false)
            guard labels.count >= 2, labels.allSatisfy({ !$0.isEmpty && $0.allSatisfy { isLetter($0) || isDigit($0) || $0 == 0x2D } }),
                  let tld = labels.last, tld.count >= 2, tld.allSatisfy(isLetter) else { continue }
            // A bare domain needs www. or a scheme or a common TLD to count, so "e.g." and "Mr.Smith" do not.
            let hasScheme = token.indices.contains { index in index + 3 <= token.count && token[index] == 0x3A && token[index + 1] == 0x2F && token[index + 2] == 0x2F }
            let bare = !hasScheme && !hasPrefix(host, "www.")
            if bare && !commonTLDs.contains(String(decoding: tld, as: UTF8.self)) { continue }
            return String(decoding: hasPrefix(host, "www.") ? host.dropFirst(4) : host, as: UTF8.self)
        }
        return nil
    }

    /// `website(in:)` by Characters, for lines that are not all ASCII.
    static func websiteByCharacters(in line: String) -> String? {
        for token in line.split(whereSeparator: { $0 == " " || $0 == "|" || $0 == "\t" }) where token.utf8.contains(0x2E) {
            var word = token.lowercased()
            if word.contains("@") { continue }
            while let last = word.last, ".,;:)]>".contains(last) { word.removeLast() }
            while let first = word.first, "(<[".contains(first) { word.removeFirst() }
            if word.hasPrefix("web:") { word.removeFirst(4) }
            if word.hasPrefix("http://") { word.removeFirst(7) } else if word.hasPrefix("https://") { word.removeFirst(8) }
            let host = word.prefix(while: { $0 != "/" && $0 != "?" && $0 != "#" })
            let labels = host.split(separator: ".", omittingEmptySubsequences: false)
            guard labels.count >= 2, labels.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" } }),
                  let tld = labels.last, tld.count >= 2, tld.allSatisfy({ $0.isLetter }) else { continue }
            // A bare domain needs www. or a scheme or a common TLD to count, so "e.g." and "Mr.Smith" do not.
            let bare = !token.lowercased().contains("://") && !host.hasPrefix("www.")
            if bare && !commonTLDs.contains(String(tld)) { continue }
            var domain = String(host)
            if domain.hasPrefix("www.") { domain.removeFirst(4) }
            return domain
        }
        return nil
    }

    static let commonTLDs: Set<String> = ["com", "net", "org", "io", "co", "biz", "info", "de", "uk", "fr", "es", "it", "nl", "be",
                                          "ch", "at", "se", "no", "dk", "fi", "ie", "eu", "us", "ca", "au", "nz", "jp", "in", "br",
                                          "mx", "pl", "cz", "pt", "ai", "app", "dev", "tech", "cloud"]

    /// Country calling code and whether a leading 0 is the trunk prefix, by country TLD.
    static let countryCodes: [String: String] = [
        "uk": "44", "de": "49", "fr": "33", "es": "34", "it": "39", "nl": "31", "be": "32", "ch": "41", "at": "43",
        "se": "46", "no": "47", "dk": "45", "fi": "358", "ie": "353", "pt": "351", "pl": "48", "cz": "420", "au": "61",
        "nz": "64", "jp": "81", "in": "91", "br": "55", "mx": "52", "za": "27", "ca": "1", "us": "1", "sg": "65",
        "hk": "852", "cn": "86", "il": "972", "tr": "90", "gr": "30", "hu": "36", "ro": "40", "ar": "54",
    ]

    /// Phone numbers in a line, E.164 where the country is written or inferable.
    static func phones(in line: String, senderDomain: String?) -> [String] {
        guard line.utf8.count <= longestSignatureLine else { return [] }
        // A number has at least 7 ASCII digits: most lines have fewer, and need no reading by
        // Characters (which was a quarter of the signature's time).
        guard line.utf8.lazy.filter({ $0 >= 0x30 && $0 <= 0x39 }).count >= 7 else { return [] }
        // An ASCII line is read by bytes, with the same result (`SignatureTests` compares them).
        guard line.isASCII else { return phonesByCharacters(in: line, senderDomain: senderDomain) }
        var line = line
        return line.withUTF8 { phonesInASCII($0, senderDomain: senderDomain) }
    }

    /// `phones(in:senderDomain:)` over an ASCII line's bytes.
    static func phonesInASCII(_ line: UnsafeBufferPointer<UInt8>, senderDomain: String?) -> [String] {
        if line.count >= 3, line[0].asciiLowercased == 0x66, line[1].asciiLowercased == 0x61, line[2].asciiLowercased == 0x78 { return [] } // fax
        if line.count >= 2, line[0].asciiLowercased == 0x66, line[1] == 0x3A || line[1] == 0x2E { return [] } // f: f.
        var results: [String] = []
        var current: [UInt8] = []
        var digitCount = 0
        func finish() {
            defer { current.removeAll(keepingCapacity: true); digitCount = 0 }
            guard (7...15).contains(digitCount) else { return }
            // Only digits and "+()-. /" are kept: trimming is of spaces. (By indexes: the lazy
            // drop-and-reverse chain's generic types were built at run time, 1.5M instructions
            // the first time, a tenth of a `process`.)
            var start = 0, end = current.count
            while start < end && current[start] == 0x20 { start += 1 }
            while end > start && current[end - 1] == 0x20 { end -= 1 }
            let trimmed = String(decoding: current[start..<end], as: UTF8.self)
            results.append(e164(trimmed, senderDomain: senderDomain) ?? trimmed)
        }
        var previous: UInt8 = 0x20
        for byte in line {
            if byte >= 0x30 && byte <= 0x39 {
                // Digits glued to letters (a postcode like "SW1A", a version "v2") are not a phone.
                if current.isEmpty && previous.asciiLowercased >= 0x61 && previous.asciiLowercased <= 0x7A { previous = byte; continue }
                current.append(byte)
                digitCount += 1
            } else if [0x2B, 0x28, 0x29, 0x2D, 0x2E, 0x20, 0x2F].contains(byte) && (!current.isEmpty || byte == 0x2B || byte == 0x28) { // +()-. /
                current.append(byte)
            } else {
                finish()
            }
            previous = byte
        }
        finish()
        return results
    }

    /// `phones(in:senderDomain:)` by Characters, for lines that are not all ASCII.
    static func phonesByCharacters(in line: String, senderDomain: String?) -> [String] {
        let lower = line.lowercased()
        if lower.hasPrefix("fax") || lower.hasPrefix("f:") || lower.hasPrefix("f.") { return [] }
        var results: [String] = []
        var current = ""
        var digitCount = 0
        func finish() {
            defer { current = ""; digitCount = 0 }
            let trimmed = current.trimmingSpaces()
            guard (7...15).contains(digitCount) else { return }
            results.append(e164(trimmed, senderDomain: senderDomain) ?? trimmed)
        }
        var previous: Character = " "
        for character in line {
            if character.isASCII && character.isNumber {
                // Digits glued to letters (a postcode like "SW1A", a version "v2") are not a phone.
                if current.isEmpty && previous.isLetter { previous = character; continue }
                current.append(character)
                digitCount += 1
            } else if "+()-. /".contains(character) && (!current.isEmpty || character == "+" || character == "(") {
                current.append(character)
            } else {
                finish()
            }
            previous = character
        }
        finish()
        return results
    }

    static func e164(_ written: String, senderDomain: String?) -> String? {
        var text = written
        // "+44 (0)20 ..." : the (0) is the trunk prefix, not part of the number.
        text = text.replacing("(0)", with: "")
        let digits = text.filter { $0.isASCII && $0.isNumber }
        if text.hasPrefix("+") { return (8...15).contains(digits.count) ? "+" + digits : nil }
        if digits.hasPrefix("00") { return "+" + digits.dropFirst(2) }
        let tld = senderDomain?.split(separator: ".").last.map(String.init) ?? ""
        if let code = countryCodes[tld], code != "1" {
            guard digits.hasPrefix("0"), digits.count >= 8 else { return nil }
            return "+" + code + digits.dropFirst()
        }
        // North American numbering: ten digits, or eleven starting with 1.
        if digits.count == 10, let first = digits.first, first != "0" && first != "1" { return "+1" + digits }
        if digits.count == 11, digits.hasPrefix("1") { return "+" + digits }
        return nil
    }
}

/// A message's body analysis, made the first time it is read: the signature, addresses and
/// links serve the CRM search and records created for unknown senders, which most decisions
/// (a service email, internal mail, a message saved already) never reach; it was a sixth of a
/// decision. Shared by the copies of a message, so it is made at most once, under a lock.
final class BodyAnalysis: Sendable {
    private enum State {
        case pending(text: String, html: String?, htmlLinks: [String]?, senderDomain: String?)
        case done(BodyAnalyzer.Result)
    }

    private let state: Locked<State>

    init(text: String, html: String?, htmlLinks: [String]?, senderDomain: String?) {
        state = Locked(.pending(text: text, html: html, htmlLinks: htmlLinks, senderDomain: senderDomain))
    }

    init(_ result: BodyAnalyzer.Result) {
        state = Locked(.done(result))
    }

    var result: BodyAnalyzer.Result {
        state.withLock { state in
            switch state {
            case .done(let result):
                return result
            case .pending(let text, let html, let htmlLinks, let senderDomain):
                let result = BodyAnalyzer.analyze(text: text, html: html, htmlLinks: htmlLinks, senderDomain: senderDomain)
                state = .done(result)
                return result
            }
        }
    }

    /// A new analysis with one part changed (a message is a value: its copies keep theirs).
    func replacing(_ change: (inout BodyAnalyzer.Result) -> Void) -> BodyAnalysis {
        var copy = result
        change(&copy)
        return BodyAnalysis(copy)
    }
}
