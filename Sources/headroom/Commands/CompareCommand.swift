import Evaluation
import Foundation
import HRZFormat

struct CompareCommand: Command {
    static let name = "compare"
    static let summary = "side-by-side table of eval results with deltas against the first and a mean row"
    static let usage = """
    Usage: headroom compare A/results.json B/results.json [...]

    One row per task × shots cell and metric present in the first file; one column per file, with the
    absolute delta of each later file against the first. The last row is the mean over cells of each
    file's first metric per cell (acc, or em for ReCoRD).
    """

    var files: [String] = []

    init(_ args: inout Arguments) throws(UsageError) {
        while let f = try? args.positional("RESULTS.json") { files.append(f) }
        guard files.count >= 1 else { throw UsageError("give at least one results.json") }
    }

    func run() throws -> Int32 {
        var loaded: [(String, ResultsFile)] = []
        for f in files {
            guard let data = try FileGuard.contents(atPath: f) else { throw TaskError(file: f, line: nil, "cannot read") }
            do { loaded.append((f, try JSONDecoder().decode(ResultsFile.self, from: data))) } catch {
                throw TaskError(file: f, line: nil, "not a headroom results.json: \(error)")
            }
        }
        print(Self.table(loaded))
        return 0
    }

    static func table(_ files: [(String, ResultsFile)]) -> String {
        guard let first = files.first?.1 else { return "" }
        let keys = first.cells.keys.sorted()
        var header = "cell".padding(toLength: 22, withPad: " ", startingAt: 0) + "metric   "
        for (i, (name, _)) in files.enumerated() {
            let label = URL(fileURLWithPath: name).deletingLastPathComponent().lastPathComponent
            header += (i == 0 ? label : label + " (Δ)").padding(toLength: 20, withPad: " ", startingAt: 0)
        }
        var lines = [header]
        var sums = Array(repeating: 0.0, count: files.count), counted = Array(repeating: 0, count: files.count)
        for key in keys {
            let metrics = first.cells[key]!.metrics.keys.sorted()
            let headline = ["acc", "em"].first { metrics.contains($0) }
            for m in metrics {
                var line = (key + "-shot").padding(toLength: 22, withPad: " ", startingAt: 0) + m.padding(toLength: 9, withPad: " ", startingAt: 0)
                let base = first.cells[key]!.metrics[m]!
                for (i, (_, r)) in files.enumerated() {
                    guard let v = r.cells[key]?.metrics[m] else { line += "-".padding(toLength: 20, withPad: " ", startingAt: 0); continue }
                    line += (i == 0 ? String(format: "%.4f", v) : String(format: "%.4f (%+.4f)", v, v - base)).padding(toLength: 20, withPad: " ", startingAt: 0)
                    if m == headline { sums[i] += v; counted[i] += 1 }
                }
                lines.append(line)
            }
        }
        var mean = "mean".padding(toLength: 22, withPad: " ", startingAt: 0) + "acc/em   "
        for i in files.indices {
            let v = counted[i] > 0 ? sums[i] / Double(counted[i]) : .nan
            let d = counted[0] > 0 ? v - sums[0] / Double(counted[0]) : .nan
            mean += (i == 0 ? String(format: "%.4f", v) : String(format: "%.4f (%+.4f)", v, d)).padding(toLength: 20, withPad: " ", startingAt: 0)
        }
        lines.append(mean)
        return lines.joined(separator: "\n")
    }
}
