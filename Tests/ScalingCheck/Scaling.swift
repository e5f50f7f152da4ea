/// How time grows with input, for the tests that check every parser and checker path is
/// linear (message parser, rule linter): one measurement, shared, so they agree on what
/// "linear" means.
public enum Scaling {
    /// The limit a ratio must stay under: linear gives about 2, quadratic 4.
    public static let limit = 3.0

    public static func seconds(_ body: () -> Void) -> Double {
        let elapsed = ContinuousClock().measure(body)
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    /// The time of `work(large)` over `work(small)` (an input twice the size). Small and large
    /// runs alternate and the best of each counts, so a busy machine slows both sides alike; a
    /// ratio over `limit` is measured again (up to three times): noise passes, a square stays.
    public static func ratio<Input>(small: Input, large: Input, _ work: (Input) -> Void) -> Double {
        var best = Double.infinity
        for _ in 0..<3 {
            var smallTime = Double.infinity, largeTime = Double.infinity
            for _ in 0..<5 {
                smallTime = min(smallTime, seconds { work(small) })
                largeTime = min(largeTime, seconds { work(large) })
            }
            best = min(best, largeTime / max(smallTime, 1e-6))
            if best < limit { break }
        }
        return best
    }
}
