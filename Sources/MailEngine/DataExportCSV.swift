/// A Salesforce Data Export / Data Loader CSV read from its bytes: RFC 4180 quoting (quoted
/// cells may hold commas, quotes doubled, line breaks), CRLF, LF or CR line ends, UTF-8 with
/// or without a BOM. Anything else is an error naming the line it is on, never a guess:
/// bytes that are not UTF-8 (no U+FFFD replacement), a NUL byte, a quote left open (named at
/// the line where it opened), text after a closing quote, a column named twice.
public enum DataExportCSV {
    public struct Table: Sendable {
        /// The header row's column names.
        public var header: [String]
        /// Every data row with the line it starts on (blank lines are skipped).
        public var rows: [(line: Int, cells: [String])]
    }

    public static func parse(_ input: [UInt8]) throws(InMemoryDirectory.CSVProblem) -> Table {
        var header: [String] = []
        var rows: [(line: Int, cells: [String])] = []
        try forEachRow(input, header: { header = $0 }, row: { line, cells in rows.append((line, cells)) })
        return Table(header: header, rows: rows)
    }

    /// The most columns a file may have: Salesforce's widest objects have some 900 fields.
    /// (A header of a million columns made every record of the file hold them all.)
    public static let maxColumns = 2_000

    /// The header, then each data row with the line it starts on, one at a time: what the
    /// import stores row by row, so memory does not grow with the file (holding every row
    /// first cost 9 to 34 times the file's size).
    public static func forEachRow(_ input: [UInt8], header: ([String]) throws(InMemoryDirectory.CSVProblem) -> Void,
                                  row: (Int, [String]) throws(InMemoryDirectory.CSVProblem) -> Void) throws(InMemoryDirectory.CSVProblem) {
        var start = 0
        if input.starts(with: [0xEF, 0xBB, 0xBF]) { start = 3 }
        if input.starts(with: [0xFF, 0xFE]) || input.starts(with: [0xFE, 0xFF]) {
            throw InMemoryDirectory.CSVProblem(line: 1, reason: "the file is UTF-16 text; save the export as UTF-8")
        }
        try validate(input, from: start)

        var sawHeader = false
        func emit(_ line: Int, _ cells: [String]) throws(InMemoryDirectory.CSVProblem) {
            guard sawHeader else {
                var seen: [String: Int] = [:]
                for (position, name) in cells.enumerated() where !name.isEmpty {
                    if let earlier = seen[name.lowercased()] {
                        throw InMemoryDirectory.CSVProblem(line: line, reason: "the column '\(InMemoryDirectory.CSVProblem.shown(name))' appears twice in the header (columns \(earlier + 1) and \(position + 1))")
                    }
                    seen[name.lowercased()] = position
                }
                sawHeader = true
                try header(cells)
                return
            }
            try row(line, cells)
        }
        var cells: [String] = []
        var cell: [UInt8] = []
        var line = 1
        var rowLine = 1
        var index = start
        let end = input.count
        // One cell a turn, up to the byte that ends it: a comma, a line end or the end.
        while index <= end {
            cell.removeAll(keepingCapacity: true)
            if index < end && input[index] == UInt8(ascii: "\"") {
                let openLine = line
                index += 1
                while true {
                    guard index < end else {
                        throw InMemoryDirectory.CSVProblem(line: openLine, reason: "a quoted cell opened on this line is never closed")
                    }
                    let byte = input[index]
                    if byte == UInt8(ascii: "\"") {
                        if index + 1 < end && input[index + 1] == UInt8(ascii: "\"") {
                            cell.append(byte)
                            index += 2
                            continue
                        }
                        index += 1
                        break
                    }
                    if byte == 0x0A || (byte == 0x0D && (index + 1 >= end || input[index + 1] != 0x0A)) { line += 1 }
                    cell.append(byte)
                    index += 1
                }
                if index < end && !(input[index] == UInt8(ascii: ",") || input[index] == 0x0A || input[index] == 0x0D) {
                    throw InMemoryDirectory.CSVProblem(line: line, reason: "text after the closing quote of a quoted cell (a quote inside a quoted cell is written twice: \"\")")
                }
            } else {
                while index < end, input[index] != UInt8(ascii: ","), input[index] != 0x0A, input[index] != 0x0D {
                    cell.append(input[index])
                    index += 1
                }
            }
            // Validated above: every cell is UTF-8.
            cells.append(String(decoding: cell, as: UTF8.self))
            if index < end && input[index] == UInt8(ascii: ",") {
                if cells.count >= maxColumns {
                    throw InMemoryDirectory.CSVProblem(line: rowLine, reason: "more than \(maxColumns) columns; no Salesforce object has that many fields")
                }
                index += 1
                continue
            }
            // A line end or the end of the input closes the row.
            if !(cells.count == 1 && cells[0].isEmpty) { try emit(rowLine, cells) }
            cells.removeAll(keepingCapacity: true)
            if index >= end { break }
            if input[index] == 0x0D && index + 1 < end && input[index + 1] == 0x0A { index += 1 }
            index += 1
            line += 1
            rowLine = line
            if index >= end { break }
        }
        guard sawHeader else {
            throw InMemoryDirectory.CSVProblem(line: 1, reason: "no header row")
        }
    }

    /// Throws at the first NUL byte or the first byte that is not well-formed UTF-8
    /// (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
    static func validate(_ input: [UInt8], from start: Int) throws(InMemoryDirectory.CSVProblem) {
        var index = start
        let end = input.count
        while index < end {
            let byte = input[index]
            if byte < 0x80 {
                if byte == 0 {
                    throw InMemoryDirectory.CSVProblem(line: lineNumber(input, at: index, from: start), reason: "a NUL byte in a cell (a binary file, or not UTF-8 text)")
                }
                index += 1
                continue
            }
            var length = 0
            var low: UInt8 = 0x80, high: UInt8 = 0xBF
            switch byte {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; low = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; high = 0x9F
            case 0xF0: length = 4; low = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; high = 0x8F
            default: length = 0
            }
            var valid = length > 0 && index + length <= end
            if valid {
                for offset in 1..<length {
                    let next = input[index + offset]
                    let (min, max) = offset == 1 ? (low, high) : (UInt8(0x80), UInt8(0xBF))
                    if next < min || next > max { valid = false; break }
                }
            }
            guard valid else {
                let hex = String(byte, radix: 16, uppercase: true)
                throw InMemoryDirectory.CSVProblem(line: lineNumber(input, at: index, from: start),
                                                   reason: "not UTF-8 text (byte 0x\(hex.count == 1 ? "0" + hex : hex)); save the export as UTF-8")
            }
            index += length
        }
    }

    /// The 1-based line of byte `offset`: LF, CRLF and a lone CR each end a line.
    static func lineNumber(_ input: [UInt8], at offset: Int, from start: Int) -> Int {
        var line = 1
        var index = start
        while index < offset {
            if input[index] == 0x0A || (input[index] == 0x0D && (index + 1 >= input.count || input[index + 1] != 0x0A)) { line += 1 }
            index += 1
        }
        return line
    }
}
