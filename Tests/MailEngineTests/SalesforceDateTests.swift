import Foundation
@testable import MailEngine
import Testing

/// Salesforce dates (CloseDate, CreatedDate) read by arithmetic, compared with Foundation's
/// Gregorian Calendar in UTC, the reference the engine used before.
@Suite struct SalesforceDateTests {
    static let utc: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? calendar.timeZone
        return calendar
    }()

    static func reference(_ year: Int, _ month: Int, _ day: Int) -> Date? {
        utc.date(from: DateComponents(year: year, month: month, day: day))
    }

    /// Every day of 1900-2100 (leap years, 1900 and 2100 not leap, 2000 leap), and the
    /// 29th-31st of every month, which roll into the next month where it is shorter.
    @Test func everyDayOfTwoCenturiesMatchesTheCalendar() throws {
        var compared = 0
        for year in 1900...2100 {
            for month in 1...12 {
                for day in 1...31 {
                    let text = String(format: "%04d-%02d-%02d", year, month, day)
                    #expect(FactsBuilder.day(text) == Self.reference(year, month, day), "\(text)")
                    compared += 1
                }
            }
        }
        #expect(compared == 201 * 12 * 31)
    }

    @Test func dateTimesAndFarYearsReadTheirDate() {
        #expect(FactsBuilder.day("2026-03-14T09:30:00.000+0000") == Self.reference(2026, 3, 14))
        #expect(FactsBuilder.day("9999-12-31") == Self.reference(9999, 12, 31))
        #expect(FactsBuilder.day("1970-01-01") == Date(timeIntervalSince1970: 0))
        #expect(FactsBuilder.day("1969-12-31") == Date(timeIntervalSince1970: -86_400))
    }

    /// Not a date: nothing, rather than a Calendar's guess (month 13 was next January).
    @Test func malformedDatesAreNone() {
        for text in ["", "2026-03", "2026-13-01", "2026-00-10", "2026-01-00", "2026-01-32", "0000-01-01", "abcd-ef-gh",
                     "2026/03/14", "20260314xx", "99999999-1-1", "2026-3-14", nil] as [String?] {
            #expect(FactsBuilder.day(text) == nil, "\(text ?? "nil")")
        }
    }
}
