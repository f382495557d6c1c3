/// What a pruning sweep removes: the grid of heads% × FFNs% points, and which ranking removes them for a
/// task (its own, another task's, or the aggregate of several).
import Foundation
import Analysis

/// `heads=0:90:10,ffns=0:50:10`: each dimension a range `start:end:step` (end included) or listed values.
public struct SweepGrid: Sendable, Equatable {
    public var heads: [Double] = [0]
    public var ffns: [Double] = [0]

    public init(heads: [Double] = [0], ffns: [Double] = [0]) {
        self.heads = heads
        self.ffns = ffns
    }

    public init(parsing text: String) throws {
        var values: [String: [Double]] = [:]
        var current: String?
        for token in text.split(separator: ",").map(String.init) {
            var spec = token
            if let eq = token.firstIndex(of: "=") {
                current = String(token[..<eq])
                guard current == "heads" || current == "ffns" else {
                    throw PruneError(file: nil, "--grid: unknown dimension '\(current!)'; use heads= and ffns=")
                }
                guard values[current!] == nil else { throw PruneError(file: nil, "--grid: '\(current!)' given twice") }
                values[current!] = []
                spec = String(token[token.index(after: eq)...])
            }
            guard let name = current else { throw PruneError(file: nil, "--grid: '\(token)' comes before any heads= or ffns=") }
            let parts = spec.split(separator: ":").map { Double($0) }
            if parts.count == 1, let v = parts[0] {
                values[name]!.append(v)
            } else if parts.count == 3, let a = parts[0], let b = parts[1], let s = parts[2], s > 0, a <= b {
                guard (b - a) / s <= 1000 else { throw PruneError(file: nil, "--grid: '\(spec)' makes more than 1000 points") }
                var v = a
                while v <= b + 1e-9 { values[name]!.append(v); v += s }
            } else {
                throw PruneError(file: nil, "--grid: '\(spec)' is not a percentage or start:end:step")
            }
        }
        for (name, list) in values where list.contains(where: { !(0...100).contains($0) }) {
            throw PruneError(file: nil, "--grid: \(name) percentages must lie in 0…100")
        }
        heads = values["heads"] ?? [0]
        ffns = values["ffns"] ?? [0]
    }

    /// Every (heads%, ffns%) pair, heads varying fastest.
    public var points: [(heads: Double, ffns: Double)] { ffns.flatMap { f in heads.map { ($0, f) } } }
}

public enum PruneRankings {
    /// The scores matrix ranking `task` at `shots`, and a label saying where it came from.
    /// Same task (preferring the same shots); a single file ranks every task; `aggregate` averages all files
    /// (those at the same shots, when there are any).
    public static func choose(
        _ files: [(path: String, file: ScoresFile)], task: String, shots: Int,
        from: String?, kind: String
    ) throws -> (label: String, scores: [[Double]]) {
        let source = from ?? task
        if source == "aggregate" {
            let sameShots = files.filter { $0.file.shots == shots }
            let chosen = sameShots.isEmpty ? files : sameShots
            return ("aggregate", Ranking.mean(chosen.map(\.file.scores)))
        }
        let matching = files.filter { $0.file.task == source }
        if let best = matching.first(where: { $0.file.shots == shots }) ?? matching.first { return (source, best.file.scores) }
        if files.count == 1, from == nil { return (files[0].file.task ?? files[0].path, files[0].file.scores) }
        throw PruneError(
            file: nil,
            "no \(kind) scores for task '\(source)' among \(files.map(\.path).joined(separator: ", ")); "
                + "give one file per task, or --ranking-from TASK|aggregate")
    }
}
