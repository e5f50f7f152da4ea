/// Domain normalisation for comparison: lower-case, IDNA full stops, and non-ASCII labels
/// Punycode-encoded (RFC 3492) with the `xn--` prefix, so `Bücher.example` and
/// `xn--bcher-kva.example` compare equal.
public enum IDNA {
    public static func normalize(_ domain: String) -> String {
        if let lowered = asciiLowered(domain) { return lowered }
        var text = domain.trimmingSpaces()
        if text.hasPrefix("[") { return text.lowercased() } // address literal
        while text.hasSuffix(".") { text.removeLast() }
        if text.utf8.allSatisfy({ $0 < 0x80 }) { return text.lowercased() }
        // UTS 46: NFC first (the standard library's own normalisation), so a decomposed
        // "u + combining diaeresis" and a precomposed "ü" give the same label...
        text = String(decoding: text._nfcCodeUnits, as: UTF8.self)
        // ...the ideographic and full-width stops are '.', and full-width letters and digits
        // their ASCII selves, as UTS 46 maps them (`ｃｏｎｔｏｓｏ.com` is contoso.com: read as
        // another domain, internal mail passed for a stranger's).
        let mapped = String(String.UnicodeScalarView(text.unicodeScalars.map { scalar in
            switch scalar.value {
            case 0x3002, 0xFF0E, 0xFF61: return "."
            case 0xFF01...0xFF5E: return Unicode.Scalar(scalar.value - 0xFEE0) ?? scalar
            default: return scalar
            }
        })).lowercased()
        let labels = mapped.split(separator: ".", omittingEmptySubsequences: false)
        return labels.map { label -> String in
            if label.utf8.allSatisfy({ $0 < 0x80 }) { return String(label) }
            // No domain has a label this long (63 octets at most): compared as written,
            // never encoded (Punycode's time grows with the square of a label's length).
            if label.unicodeScalars.count > 63 { return String(label) }
            return "xn--" + punycodeEncode(Array(label.unicodeScalars))
        }.joined(between: ".")
    }

    /// `value` lower-cased when it is ASCII without tabs, does not start with a space or `[` (an
    /// address literal) and does not end with a space or a dot: the cases trimming and IDNA
    /// leave alone, so lower-casing is their whole normalisation (of a domain, or of an
    /// address: `CompiledList.normalize`); nil otherwise. One pass over the bytes: every
    /// look-up of every participant comes through here.
    public static func asciiLowered(_ value: String) -> String? {
        let found = value.utf8.withContiguousStorageIfAvailable(lowersToASCII) ?? Array(value.utf8).withUnsafeBufferPointer(lowersToASCII)
        guard found.ascii else { return nil }
        guard found.upper else { return value }
        return String(decoding: value.utf8.map(\.asciiLowercased), as: UTF8.self)
    }

    /// Whether `asciiLowered` takes these bytes (ASCII, no tab, no leading space or `[`, no
    /// trailing dot or space), so that lower-casing them is their whole normalisation; and
    /// whether they have upper-case letters.
    public static func lowersToASCII(_ bytes: UnsafeBufferPointer<UInt8>) -> (ascii: Bool, upper: Bool) {
        guard let last = bytes.last, last != 0x2E, last != 0x20, bytes[0] != 0x20, bytes[0] != 0x5B else { return (false, false) }
        var upper = false
        for byte in bytes {
            if byte >= 0x80 || byte == 0x09 { return (false, false) }
            if byte >= 0x41 && byte <= 0x5A { upper = true }
        }
        return (true, upper)
    }

    /// RFC 3492 6.3.
    static func punycodeEncode(_ input: [Unicode.Scalar]) -> String {
        let base = 36, tMin = 1, tMax = 26, skew = 38, damp = 700
        var n = 128
        var delta = 0
        var bias = 72
        var output: [UInt8] = input.filter { $0.value < 0x80 }.map { UInt8($0.value) }
        let basicCount = output.count
        var handled = basicCount
        if basicCount > 0 { output.append(0x2D) }

        func digit(_ value: Int) -> UInt8 { UInt8(value < 26 ? value + 97 : value + 22) }
        func adapt(_ delta: Int, _ count: Int, _ first: Bool) -> Int {
            var delta = first ? delta / damp : delta / 2
            delta += delta / count
            var k = 0
            while delta > ((base - tMin) * tMax) / 2 {
                delta /= base - tMin
                k += base
            }
            return k + (base - tMin + 1) * delta / (delta + skew)
        }

        while handled < input.count {
            let m = input.map { Int($0.value) }.filter { $0 >= n }.min() ?? n
            delta += (m - n) * (handled + 1)
            n = m
            for scalar in input {
                let code = Int(scalar.value)
                if code < n { delta += 1 }
                if code == n {
                    var q = delta
                    var k = base
                    while true {
                        let t = k <= bias ? tMin : (k >= bias + tMax ? tMax : k - bias)
                        if q < t { break }
                        output.append(digit(t + (q - t) % (base - t)))
                        q = (q - t) / (base - t)
                        k += base
                    }
                    output.append(digit(q))
                    bias = adapt(delta, handled + 1, handled == basicCount)
                    delta = 0
                    handled += 1
                }
            }
            delta += 1
            n += 1
        }
        return String(decoding: output, as: UTF8.self)
    }
}
