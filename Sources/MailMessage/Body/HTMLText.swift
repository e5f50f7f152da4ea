/// Text from HTML mail bodies: enough of an HTML tokenizer to drop markup, scripts and
/// styles, break lines at block elements, resolve character references, and collect links.
public enum HTMLText {
    /// Readable text of an HTML body.
    public static func toText(_ html: String) -> String { render(html).text }

    /// `href` targets in document order (the text is not built).
    public static func links(_ html: String) -> [String] {
        var html = html
        var links: [String] = []
        _ = html.withUTF8 { scan(bytes: $0, into: nil, links: &links) }
        return links
    }

    static let blockTags: Set<String> = [
        "p", "div", "br", "li", "ul", "ol", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6",
        "blockquote", "pre", "hr", "section", "article", "header", "footer", "dd", "dt", "address",
    ]
    static let hiddenTags: Set<String> = ["script", "style", "head", "title", "template"]

    static func render(_ html: String) -> (text: String, links: [String]) {
        var html = html
        var links: [String] = []
        let text = html.withUTF8 { bytes in
            // The text is never longer than the HTML (markup, references and runs of spaces
            // only shrink), so it is written straight into a String of that capacity.
            String(unsafeUninitializedCapacity: bytes.count) { buffer in scan(bytes: bytes, into: buffer, links: &links) }
        }
        return (text, links)
    }

    /// One pass over the UTF-8 bytes (every character the tokenizer looks at is ASCII, and
    /// U+00A0 is the pair C2 A0), writing the text into `buffer` (when given) and returning
    /// its length: no array of scalars, no copy per tag. Writes are bounds-checked.
    static func scan(bytes: UnsafeBufferPointer<UInt8>, into buffer: UnsafeMutableBufferPointer<UInt8>?,
                     links: inout [String]) -> Int {
        let count = bytes.count
        var written = 0
        let capacity = buffer?.count ?? 0
        var hiddenUntil: [UInt8]?
        var index = 0
        var pendingSpace = false
        var lineHasText = false

        func put(_ byte: UInt8) {
            guard let buffer, written < capacity else { return }
            buffer[written] = byte
            written += 1
        }
        func emit(_ byte: UInt8) {
            if pendingSpace { put(0x20); pendingSpace = false }
            put(byte)
            lineHasText = true
        }
        func space() { pendingSpace = lineHasText }
        func emit(_ scalar: Unicode.Scalar) {
            if scalar == " " || scalar == "\t" || scalar == "\n" || scalar == "\r" || scalar == "\u{A0}" { space(); return }
            for byte in String(scalar).utf8 { emit(byte) }
        }
        func newline() {
            pendingSpace = false
            put(0x0A)
            lineHasText = false
        }
        func lowercasedName(_ range: Range<Int>) -> [UInt8] {
            var name: [UInt8] = []
            var position = range.lowerBound
            while position < range.upperBound && bytes[position] == 0x2F { position += 1 }
            while position < range.upperBound, name.count < 16 {
                let byte = bytes[position]
                guard (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) else { break }
                name.append(byte | (byte >= 0x41 && byte <= 0x5A ? 0x20 : 0))
                position += 1
            }
            return name
        }

        while index < count {
            let byte = bytes[index]
            if byte == 0x3C { // <
                // Comment
                if index + 3 < count, bytes[index + 1] == 0x21, bytes[index + 2] == 0x2D, bytes[index + 3] == 0x2D {
                    var probe = index + 4
                    while probe + 2 < count && !(bytes[probe] == 0x2D && bytes[probe + 1] == 0x2D && bytes[probe + 2] == 0x3E) {
                        probe += 1
                    }
                    index = min(count, probe + 3)
                    continue
                }
                var probe = index + 1
                var quote: UInt8?
                while probe < count {
                    let inner = bytes[probe]
                    if let open = quote {
                        if inner == open { quote = nil }
                    } else if inner == 0x22 || inner == 0x27 {
                        quote = inner
                    } else if inner == 0x3E {
                        break
                    }
                    probe += 1
                }
                let tag = (index + 1)..<min(probe, count)
                index = min(count, probe + 1)
                let closing = !tag.isEmpty && bytes[tag.lowerBound] == 0x2F
                let name = lowercasedName(tag)
                if let hidden = hiddenUntil {
                    if closing && name == hidden { hiddenUntil = nil }
                    continue
                }
                let selfClosing = !tag.isEmpty && bytes[tag.upperBound - 1] == 0x2F
                if !closing && !selfClosing, let text = UTF8Text.valid(name), hiddenTags.contains(text) {
                    hiddenUntil = name
                    continue
                }
                let nameText = String(decoding: name, as: UTF8.self)
                if blockTags.contains(nameText) {
                    if nameText == "br" || lineHasText { newline() }
                }
                if nameText == "td" || nameText == "th" { pendingSpace = lineHasText }
                if !closing && nameText == "a",
                   let href = attribute("href", in: String(decoding: UnsafeBufferPointer(rebasing: bytes[tag]), as: UTF8.self)) {
                    let target = decodeEntities(href).trimmingSpaces()
                    if !target.isEmpty { links.append(target) }
                }
                continue
            }
            if hiddenUntil != nil { index += 1; continue }
            if byte == 0x26 { // &
                var probe = index + 1
                while probe < count && probe - index <= 10 && bytes[probe] != 0x3B && bytes[probe] != 0x26
                        && bytes[probe] != 0x3C && bytes[probe] != 0x20 {
                    probe += 1
                }
                if probe < count && bytes[probe] == 0x3B {
                    let entity = String(decoding: UnsafeBufferPointer(rebasing: bytes[index...probe]), as: UTF8.self)
                    let decoded = decodeEntities(entity)
                    if decoded != entity {
                        for scalar in decoded.unicodeScalars { emit(scalar) }
                        index = probe + 1
                        continue
                    }
                }
            }
            if byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D {
                space()
            } else if byte == 0xC2 && index + 1 < count && bytes[index + 1] == 0xA0 {
                space()
                index += 1
            } else {
                emit(byte)
            }
            index += 1
        }
        // Collapse runs of blank lines left by nested blocks, in place: the non-empty lines
        // joined by one line feed, or two where blank lines stood between them.
        guard let output = buffer else { return 0 }
        var write = 0
        var lineStart = 0
        var wroteAny = false
        var sawBlank = false
        let total = written
        while lineStart <= total {
            var lineEnd = lineStart
            while lineEnd < total && output[lineEnd] != 0x0A { lineEnd += 1 }
            if lineEnd == lineStart {
                sawBlank = wroteAny
            } else {
                if wroteAny {
                    output[write] = 0x0A
                    write += 1
                    if sawBlank { output[write] = 0x0A; write += 1 }
                }
                for position in lineStart..<lineEnd {
                    output[write] = output[position]
                    write += 1
                }
                wroteAny = true
                sawBlank = false
            }
            lineStart = lineEnd + 1
        }
        return write
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
