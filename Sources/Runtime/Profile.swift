/// Opt-in wall-time accounting of forward-pass sections (`HEADROOM_PROFILE=1`), printed by `headroom bench`.
import Dispatch
import Foundation

public enum Profile {
    nonisolated(unsafe) public static var enabled = ProcessInfo.processInfo.environment["HEADROOM_PROFILE"] == "1"
    nonisolated(unsafe) static var totals: [String: Double] = [:]

    /// Runs `body`, adding its wall time to `section` when profiling is on.
    @inline(__always)
    public static func measure<T>(_ section: String, _ body: () throws -> T) rethrows -> T {
        guard enabled else { return try body() }
        let start = DispatchTime.now().uptimeNanoseconds
        defer { totals[section, default: 0] += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
        return try body()
    }

    /// Forgets the totals so far (e.g. a warm-up's).
    public static func reset() { totals = [:] }

    /// Sections by time, largest first, and resets.
    public static func report() -> String {
        defer { totals = [:] }
        let sum = totals.values.reduce(0, +)
        return totals.sorted { $0.value > $1.value }.map {
            String(format: "  %-22@ %8.3f s  %5.1f%%", $0.key as NSString, $0.value, 100 * $0.value / max(sum, 1e-9))
        }.joined(separator: "\n")
    }
}
