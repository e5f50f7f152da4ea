/// Message-ID, In-Reply-To and References (RFC 5322 3.6.4).
public enum MessageIDParser {
    /// The ids in a header value, each as `<id>` with whitespace and comments removed.
    /// Ids written without angle brackets (seen from broken generators) are accepted when
    /// they contain an '@'; `problem` then says so.
    public static func parse(_ raw: [UInt8]) -> (ids: [String], problem: String?) {
        var ids: [String] = []
        var index = 0
        var sawBracket = false
        while index < raw.count {
            let byte = raw[index]
            if byte == 0x28 { // comment
                var depth = 1
                index += 1
                while index < raw.count && depth > 0 {
                    if raw[index] == 0x28 { depth += 1 } else if raw[index] == 0x29 { depth -= 1 }
                    index += 1
                }
                continue
            }
            if byte == 0x3C {
                sawBracket = true
                var id: [UInt8] = []
                index += 1
                while index < raw.count && raw[index] != 0x3E {
                    if !isWhitespace(raw[index]) && raw[index] != 0x22 { id.append(raw[index]) }
                    index += 1
                }
                if !id.isEmpty { ids.append("<" + EncodedWords.plain(id[...]) + ">") }
                index += 1
                continue
            }
            index += 1
        }
        if !sawBracket {
            let words = raw.split(whereSeparator: isWhitespace).filter { $0.contains(0x40) }
            if !words.isEmpty {
                return (words.map { "<" + EncodedWords.plain($0) + ">" }, "message id without angle brackets")
            }
            if !raw.allSatisfy(isWhitespace) { return ([], "no message id found in the field") }
        }
        return (ids, nil)
    }
}

/// A point in time as a message states it: seconds since the epoch and the writer's offset.
public struct MailDate: Sendable, Equatable {
    public var secondsSinceEpoch: Int64
    /// Offset from UTC in minutes, as written (`-0700` is -420).
    public var offsetMinutes: Int

    public init(secondsSinceEpoch: Int64, offsetMinutes: Int) {
        self.secondsSinceEpoch = secondsSinceEpoch
        self.offsetMinutes = offsetMinutes
    }

    /// ISO 8601 in the writer's offset, e.g. `2012-10-18T22:48:39-07:00`.
    public var iso8601: String {
        let local = secondsSinceEpoch + Int64(offsetMinutes) * 60
        var days = local / 86_400
        var seconds = local % 86_400
        if seconds < 0 { seconds += 86_400; days -= 1 }
        let (year, month, day) = DateParser.civil(fromDays: days)
        func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
        var yearText = String(year)
        while yearText.count < 4 { yearText = "0" + yearText }
        let time = "\(two(seconds / 3600)):\(two(seconds % 3600 / 60)):\(two(seconds % 60))"
        let zone: String
        if offsetMinutes == 0 {
            zone = "Z"
        } else {
            let magnitude = Int64(abs(offsetMinutes))
            zone = (offsetMinutes < 0 ? "-" : "+") + two(magnitude / 60) + ":" + two(magnitude % 60)
        }
        return "\(yearText)-\(two(month))-\(two(day))T\(time)\(zone)"
    }
}

/// RFC 5322 3.3 dates, with the obsolete forms (two- and three-digit years, named and
/// military zones, missing seconds or weekday, comments) and the common broken ones
/// (asctime, ISO 8601, missing zone).
public enum DateParser {
    public static func parse(_ text: String) -> (date: MailDate?, problem: String?) {
        // ASCII without CR (every date header, unfolded) is one byte a Character: split by bytes,
        // with the same result (`DateTokenTests`) at a fraction of the cost.
        let tokens = text.utf8.allSatisfy({ $0 < 0x80 && $0 != 0x0D }) ? tokensOfASCII(text) : tokensByCharacters(text)
        if tokens.count == 1, let iso = parseISO(tokens[0]) { return (iso, nil) }

        var day: Int?, month: Int?, year: Int?
        var hour = 0, minute = 0, second = 0
        var sawTime = false
        var offset: Int?
        var problem: String?
        for token in tokens {
            let lower = token.lowercased()
            // Month and weekday names start with an ASCII letter; most tokens (day, year, time,
            // offset) start with a digit or a sign and skip the nineteen name comparisons.
            let startsWithLetter = token.utf8.first.map { (0x61...0x7A).contains($0 | 0x20) } ?? false
            if startsWithLetter, let monthIndex = monthNames.firstIndex(where: { lower.hasPrefix($0) }), month == nil {
                month = monthIndex + 1
                continue
            }
            if startsWithLetter && weekdayNames.contains(where: { lower.hasPrefix($0) }) { continue }
            if token.contains(":") && !sawTime {
                let pieces = token.split(separator: ":", omittingEmptySubsequences: false)
                guard pieces.count >= 2, let h = Int(pieces[0]), let m = Int(pieces[1]) else { return (nil, "unreadable time '\(token)'") }
                hour = h
                minute = m
                if pieces.count >= 3 {
                    let secondsText = pieces[2].split(separator: ".").first.map(String.init) ?? ""
                    guard let s = Int(secondsText) else { return (nil, "unreadable time '\(token)'") }
                    second = s
                }
                sawTime = true
                continue
            }
            if (token.hasPrefix("+") || token.hasPrefix("-")) && token.count >= 5, let value = Int(token.dropFirst().prefix(4)),
               value >= 0 {
                let sign = token.hasPrefix("-") ? -1 : 1
                offset = sign * (value / 100 * 60 + value % 100)
                continue
            }
            if let number = Int(token) {
                // `029` (a zero-padded day, seen in Google Groups' bounces) is a day, as Python reads it.
                if day == nil && year == nil && (token.count <= 2 || (token.count == 3 && token.hasPrefix("0"))) {
                    day = number
                } else if year == nil {
                    year = number
                    if token.count == 2 { year = number < 50 ? 2000 + number : 1900 + number; problem = "two-digit year" }
                    if token.count == 3 { year = 1900 + number; problem = "three-digit year" }
                } else if day == nil {
                    day = number
                }
                continue
            }
            if let zone = namedZones[lower] {
                offset = zone
                continue
            }
            if lower.count == 1, lower.first?.isLetter == true {
                offset = 0 // military zones carry no reliable information (RFC 5322 4.3)
                continue
            }
        }
        guard let day, let month, let year else { return (nil, "unreadable date '\(text.trimmingSpaces())'") }
        // Every number is range-checked before any arithmetic: a year of twelve digits is a
        // defect, never an overflow.
        guard (1...31).contains(day), (0...23).contains(hour), (0...59).contains(minute), (0...60).contains(second),
              validYears.contains(year), validOffsets.contains(offset ?? 0) else {
            return (nil, "date out of range '\(text.trimmingSpaces())'")
        }
        if offset == nil { problem = "date has no time zone; UTC assumed" }
        let zone = offset ?? 0
        let days = daysFromCivil(year: Int64(year), month: Int64(month), day: Int64(day))
        let seconds = days * 86_400 + Int64(hour * 3600 + minute * 60 + min(second, 59)) - Int64(zone * 60)
        return (MailDate(secondsSinceEpoch: seconds, offsetMinutes: zone), problem)
    }

    /// The words of a date, comments (parenthesised, nested) and commas left out.
    static func tokensByCharacters(_ text: String) -> [String] {
        var cleaned = ""
        var depth = 0
        for character in text {
            if character == "(" { depth += 1; continue }
            if character == ")" { depth = max(0, depth - 1); continue }
            if depth == 0 { cleaned.append(character == "," ? " " : character) }
        }
        return cleaned.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }).map(String.init)
    }

    /// `tokensByCharacters` for ASCII text without CR, by bytes.
    static func tokensOfASCII(_ text: String) -> [String] {
        var tokens: [String] = []
        var current: [UInt8] = []
        var depth = 0
        func finish() {
            if !current.isEmpty { tokens.append(String(decoding: current, as: UTF8.self)) }
            current.removeAll(keepingCapacity: true)
        }
        for byte in text.utf8 {
            if byte == 0x28 { depth += 1; continue } // (
            if byte == 0x29 { depth = max(0, depth - 1); continue } // )
            guard depth == 0 else { continue }
            if byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x2C { finish() } else { current.append(byte) }
        }
        finish()
        return tokens
    }

    /// Years a date may name; anything else is a defect ("date out of range").
    static let validYears = 1...9999
    /// UTC offsets a zone may state, in minutes (real zones lie within -12:00...+14:00).
    static let validOffsets = -1439...1439

    static let monthNames = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    static let weekdayNames = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    static let namedZones: [String: Int] = [
        "ut": 0, "utc": 0, "gmt": 0, "z": 0,
        "est": -300, "edt": -240, "cst": -360, "cdt": -300, "mst": -420, "mdt": -360, "pst": -480, "pdt": -420,
        "cet": 60, "cest": 120, "bst": 60, "met": 60, "mest": 120,
    ]

    /// `2012-10-18T22:48:39Z` or with an offset.
    static func parseISO(_ token: String) -> MailDate? {
        let bytes = Array(token.utf8)
        guard bytes.count >= 19, bytes[4] == 0x2D, bytes[7] == 0x2D, bytes[10] == 0x54 || bytes[10] == 0x20 else { return nil }
        func number(_ range: Range<Int>) -> Int? { Int(String(decoding: bytes[range], as: UTF8.self)) }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
              validYears.contains(year), (1...12).contains(month), (1...31).contains(day),
              (0...23).contains(hour), (0...59).contains(minute), (0...60).contains(second) else { return nil }
        var rest = bytes[19...]
        if rest.first == 0x2E { rest = rest.drop(while: { $0 == 0x2E || (0x30...0x39).contains($0) }) }
        var offset = 0
        if let sign = rest.first, sign == 0x2B || sign == 0x2D {
            let digits = rest.dropFirst().filter { $0 != 0x3A }
            guard digits.count == 4, let value = Int(String(decoding: digits, as: UTF8.self)), value >= 0 else { return nil }
            offset = (sign == 0x2D ? -1 : 1) * (value / 100 * 60 + value % 100)
        }
        let days = daysFromCivil(year: Int64(year), month: Int64(month), day: Int64(day))
        return MailDate(secondsSinceEpoch: days * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offset * 60),
                        offsetMinutes: offset)
    }

    /// Howard Hinnant's days_from_civil.
    static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
