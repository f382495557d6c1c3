import Evaluation
import Foundation
import HRZFormat
import Files

struct CompareCommand: Command {
    static let spec = CommandSpec(
        name: "compare", summary: "side-by-side table of eval results with deltas against the first and a mean row",
        synopsis: ["A/results.json B/results.json [...] [--json]"],
        positionals: [Positional("RESULTS.json", variadic: true, "")],
        groups: [OptionGroup("Options", [Option("--json", "print the comparison as JSON (cells, means, warnings) instead of the table")])],
        discussion: """
            One row per task × shots cell and metric that every file has; one column per file, with the absolute
            delta of each later file against the first. The last row is the mean over those shared cells of each
            file's headline metric per cell (acc, or em for ReCoRD): a mean over different cell sets would mislead.
            Warns (on stderr) when the runs differ in model, docs per cell, doc limit or precision, and names the
            cells only some files have.
            """)

    var files: [String] = []
    var json: Bool

    init(_ args: ParsedArguments) throws(UsageError) {
        json = args.flag("--json")
        files = args.positionals
        guard files.count >= 1 else { throw UsageError("give at least one results.json") }
    }

    var inputs: [String] { files }

    func run() throws -> Int32 {
        let loaded = try files.map { ($0, try ResultsFile.load($0)) }
        let comparison = Self.compare(loaded)
        for w in comparison.warnings { printError("warning: " + w) }
        if json {
            print(String(decoding: try JSONFiles.pretty(comparison), as: UTF8.self))
        } else {
            print(Self.table(loaded))
        }
        return 0
    }

    /// What `--json` prints: per shared cell and metric, one value per file (null where a file lacks it).
    struct Comparison: Encodable {
        var files: [String]
        var cells: [String: [String: [Double?]]]
        /// Mean headline metric over the shared cells, per file.
        var mean: [Double?]
        var shared_cells: [String]
        var warnings: [String]
    }

    static func compare(_ files: [(String, ResultsFile)]) -> Comparison {
        let shared = sharedCells(files)
        var warnings: [String] = []
        let all = Set(files.flatMap { $0.1.cells.keys })
        let partial = all.subtracting(shared).sorted()
        if !partial.isEmpty { warnings.append("cells not in every file, left out: \(partial.joined(separator: ", "))") }
        if Set(files.map(\.1.model_sha256)).count > 1 {
            warnings.append("the runs are of different models (content ids \(files.map { String($0.1.model_sha256.prefix(12)) }.joined(separator: ", ")))")
        }
        for key in shared {
            let cells = files.map { $0.1.cells[key]! }
            if Set(cells.map(\.docs)).count > 1 {
                warnings.append("\(key)-shot: different numbers of docs (\(cells.map { String($0.docs) }.joined(separator: ", ")))")
            }
            for field in ["limit", "precision"] {
                let values = cells.map { $0.inputs?[field] ?? "unrecorded" }
                if Set(values).count > 1 { warnings.append("\(key)-shot: different \(field) (\(values.joined(separator: ", ")))") }
            }
        }
        var cells: [String: [String: [Double?]]] = [:]
        for key in shared {
            let metrics = Set(files.flatMap { $0.1.cells[key]!.metrics.keys })
            cells[key] = Dictionary(
                uniqueKeysWithValues: metrics.map { m in (m, files.map { $0.1.cells[key]!.metrics[m].flatMap { $0.isFinite ? $0 : nil } }) })
        }
        let mean = files.map { file -> Double? in
            let values = shared.compactMap { key -> Double? in
                let m = file.1.cells[key]!.metrics
                return m["acc"] ?? m["em"]
            }
            return values.isEmpty ? nil : values.reduce(0, +) / Double(values.count)
        }
        return Comparison(files: files.map(\.0), cells: cells, mean: mean, shared_cells: shared, warnings: warnings)
    }

    /// Cells every file has, sorted.
    static func sharedCells(_ files: [(String, ResultsFile)]) -> [String] {
        guard let first = files.first else { return [] }
        return first.1.cells.keys.filter { key in files.allSatisfy { $0.1.cells[key] != nil } }.sorted()
    }

    static func table(_ files: [(String, ResultsFile)]) -> String {
        guard let first = files.first?.1 else { return "" }
        let keys = sharedCells(files)
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
                    line += (i == 0 ? String(format: "%.4f", v) : String(format: "%.4f (%+.4f)", v, v - base)).padding(
                        toLength: 20, withPad: " ", startingAt: 0)
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
