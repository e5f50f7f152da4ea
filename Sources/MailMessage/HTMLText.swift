/// Text from HTML mail bodies: enough of an HTML tokenizer to drop markup, scripts and
/// styles, break lines at block elements, resolve character references, and collect links.
public enum HTMLText {
    /// Readable text of an HTML body.
    public static func toText(_ html: String) -> String { render(html).text }

    /// `href` targets in document order.
    public static func links(_ html: String) -> [String] { render(html).links }

    static let blockTags: Set<String> = [
        "p", "div", "br", "li", "ul", "ol", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6",
        "blockquote", "pre", "hr", "section", "article", "header", "footer", "dd", "dt", "address",
    ]
    static let hiddenTags: Set<String> = ["script", "style", "head", "title", "template"]

    static func render(_ html: String) -> (text: String, links: [String]) {
        var output = ""
        var links: [String] = []
        var hiddenUntil: String?
        let scalars = Array(html.unicodeScalars)
        var index = 0
        var pendingSpace = false
        var lineHasText = false

        func emit(_ scalar: Unicode.Scalar) {
            if scalar == " " || scalar == "\t" || scalar == "\n" || scalar == "\r" || scalar == "\u{A0}" {
                pendingSpace = lineHasText
                return
            }
            if pendingSpace { output.unicodeScalars.append(" "); pendingSpace = false }
            output.unicodeScalars.append(scalar)
            lineHasText = true
        }
        func newline() {
            pendingSpace = false
            output.append("\n")
            lineHasText = false
        }

        while index < scalars.count {
            let scalar = scalars[index]
            if scalar == "<" {
                // Comment
                if index + 3 < scalars.count, scalars[index + 1] == "!", scalars[index + 2] == "-", scalars[index + 3] == "-" {
                    var probe = index + 4
                    while probe + 2 < scalars.count && !(scalars[probe] == "-" && scalars[probe + 1] == "-" && scalars[probe + 2] == ">") {
                        probe += 1
                    }
                    index = min(scalars.count, probe + 3)
                    continue
                }
                var probe = index + 1
                var quote: Unicode.Scalar?
                while probe < scalars.count {
                    let inner = scalars[probe]
                    if let open = quote {
                        if inner == open { quote = nil }
                    } else if inner == "\"" || inner == "'" {
                        quote = inner
                    } else if inner == ">" {
                        break
                    }
                    probe += 1
                }
                let tagText = String(String.UnicodeScalarView(scalars[(index + 1)..<min(probe, scalars.count)]))
                index = min(scalars.count, probe + 1)
                let closing = tagText.hasPrefix("/")
                let name = String(tagText.drop(while: { $0 == "/" }).prefix(while: { $0.isLetter || $0.isNumber })).lowercased()
                if let hidden = hiddenUntil {
                    if closing && name == hidden { hiddenUntil = nil }
                    continue
                }
                if !closing && hiddenTags.contains(name) && !tagText.hasSuffix("/") {
                    hiddenUntil = name
                    continue
                }
                if blockTags.contains(name) {
                    if name == "br" || lineHasText { newline() }
                }
                if name == "td" || name == "th" { pendingSpace = lineHasText }
                if !closing && name == "a", let href = attribute("href", in: tagText) {
                    let target = decodeEntities(href).trimmingSpaces()
                    if !target.isEmpty { links.append(target) }
                }
                continue
            }
            if hiddenUntil != nil { index += 1; continue }
            if scalar == "&" {
                var probe = index + 1
                while probe < scalars.count && probe - index <= 10 && scalars[probe] != ";" && scalars[probe] != "&"
                        && scalars[probe] != "<" && scalars[probe] != " " {
                    probe += 1
                }
                if probe < scalars.count && scalars[probe] == ";" {
                    let entity = String(String.UnicodeScalarView(scalars[index...probe]))
                    let decoded = decodeEntities(entity)
                    if decoded != entity {
                        for character in decoded.unicodeScalars { emit(character) }
                        index = probe + 1
                        continue
                    }
                }
            }
            emit(scalar)
            index += 1
        }
        // Collapse runs of blank lines left by nested blocks.
        var lines: [Substring] = []
        var blank = 0
        for line in output.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.isEmpty { blank += 1; if blank > 1 { continue } } else { blank = 0 }
            lines.append(line)
        }
        while lines.first?.isEmpty == true { lines.removeFirst() }
        while lines.last?.isEmpty == true { lines.removeLast() }
        return (lines.joined(separator: "\n"), links)
    }

    static func attribute(_ name: String, in tag: String) -> String? {
        let lower = tag.lowercased()
        var searchStart = lower.startIndex
        while let range = lower[searchStart...].firstRange(of: name) {
            searchStart = range.upperBound
            if range.lowerBound > lower.startIndex {
                let before = lower[lower.index(before: range.lowerBound)]
                if !before.isWhitespace { continue }
            }
            var cursor = range.upperBound
            while cursor < lower.endIndex && lower[cursor].isWhitespace { cursor = lower.index(after: cursor) }
            guard cursor < lower.endIndex, lower[cursor] == "=" else { continue }
            cursor = lower.index(after: cursor)
            while cursor < lower.endIndex && lower[cursor].isWhitespace { cursor = lower.index(after: cursor) }
            guard cursor < lower.endIndex else { return nil }
            // Read the value from the original (case kept).
            let quote = tag[cursor]
            if quote == "\"" || quote == "'" {
                let start = tag.index(after: cursor)
                let end = tag[start...].firstIndex(of: quote) ?? tag.endIndex
                return String(tag[start..<end])
            }
            let end = tag[cursor...].firstIndex(where: { $0.isWhitespace || $0 == ">" }) ?? tag.endIndex
            return String(tag[cursor..<end])
        }
        return nil
    }

    static let namedEntities: [String: String] = [
        "amp": "&", "lt": "<", "gt": ">", "quot": "\"", "apos": "'", "nbsp": "\u{A0}", "copy": "©", "reg": "®",
        "trade": "™", "hellip": "…", "mdash": "—", "ndash": "–", "lsquo": "‘", "rsquo": "’", "ldquo": "“", "rdquo": "”",
        "bull": "•", "middot": "·", "euro": "€", "pound": "£", "yen": "¥", "cent": "¢", "sect": "§", "deg": "°",
        "auml": "ä", "ouml": "ö", "uuml": "ü", "Auml": "Ä", "Ouml": "Ö", "Uuml": "Ü", "szlig": "ß",
        "eacute": "é", "egrave": "è", "ecirc": "ê", "agrave": "à", "aacute": "á", "ccedil": "ç", "iacute": "í",
        "oacute": "ó", "uacute": "ú", "ntilde": "ñ", "Eacute": "É", "laquo": "«", "raquo": "»", "times": "×",
    ]

    /// Replaces character references (`&amp;`, `&#233;`, `&#xE9;`) in `text`.
    static func decodeEntities(_ text: String) -> String {
        guard text.contains("&") else { return text }
        var output = ""
        var rest = text[...]
        while let amp = rest.firstIndex(of: "&") {
            output += rest[..<amp]
            let after = rest[rest.index(after: amp)...]
            guard let semicolon = after.prefix(12).firstIndex(of: ";") else {
                output += "&"
                rest = after
                continue
            }
            let name = String(after[..<semicolon])
            var replacement: String?
            if name.hasPrefix("#x") || name.hasPrefix("#X") {
                replacement = UInt32(name.dropFirst(2), radix: 16).flatMap(Unicode.Scalar.init).map { String($0) }
            } else if name.hasPrefix("#") {
                replacement = UInt32(name.dropFirst()).flatMap(Unicode.Scalar.init).map { String($0) }
            } else {
                replacement = namedEntities[name]
            }
            if let replacement {
                output += replacement
                rest = after[after.index(after: semicolon)...]
            } else {
                output += "&"
                rest = after
            }
        }
        output += rest
        return output
    }

    /// The charset an HTML body declares in a `<meta>` element, if any, from its first 2 KiB.
    static func metaCharset(_ bytes: [UInt8]) -> String? {
        let head = String(decoding: bytes.prefix(2048), as: UTF8.self).lowercased()
        guard let range = head.firstRange(of: "charset=") else { return nil }
        let value = head[range.upperBound...].drop(while: { $0 == "\"" || $0 == "'" || $0 == " " })
            .prefix(while: { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ":" || $0 == "." })
        return value.isEmpty ? nil : String(value)
    }
}
