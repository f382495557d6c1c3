/// What to remove from a model: heads and FFNs by **original** index (formats/prune-plan.md). A plan is
/// also a valid mask file, so `eval --mask-heads PLAN --mask-ffns PLAN` evaluates what `prune PLAN` builds.
import Foundation
import HRZFormat
import Runtime
import OPTSchema
import Files
import Analysis

public struct PruneError: Error, CustomStringConvertible {
    public var file: String?
    public var message: String
    public init(file: String?, _ message: String) {
        self.file = file
        self.message = message
    }
    public var description: String { (file.map { "\($0): " } ?? "") + message }
}

public struct PrunePlan: Codable, Sendable, Equatable {
    public static let formatName = "headroom-prune-plan/1"
    public var format = PrunePlan.formatName
    /// `[layer, head]` pairs to remove, ascending, unique.
    public var heads: [[Int]]
    /// Layers whose FFN is removed, ascending, unique.
    public var ffns: [Int]
    /// How the sets were chosen (informational; pruning reads only `heads` and `ffns`).
    public var selection: [String: Selection]?

    /// A percentage of a scores file's global ascending ranking.
    public struct Selection: Codable, Sendable, Equatable {
        public var scores: String
        public var model_sha256: String
        public var percent: Double
        public var count: Int
        public var total: Int
    }

    public init(heads: [[Int]] = [], ffns: [Int] = [], selection: [String: Selection]? = nil) {
        self.heads = Array(Set(heads)).sorted { ($0[0], $0[1]) < ($1[0], $1[1]) }
        self.ffns = Array(Set(ffns)).sorted()
        self.selection = selection
    }

    /// The union of two plans: pruning A then B builds the same model as pruning `A.union(B)`.
    public func union(_ other: PrunePlan) -> PrunePlan {
        PrunePlan(heads: heads + other.heads, ffns: ffns + other.ffns)
    }

    /// The `count = floor(percent · total / 100)` lowest entries of the global ascending ranking, ties broken by
    /// (layer, head) as `rank` lists them, as the paper's code does. `scores` is `[layers][heads]`.
    public static func lowest(_ scores: [[Double]], percent: Double) -> [(layer: Int, head: Int)] {
        let total = scores.reduce(0) { $0 + $1.count }
        let count = Int((percent * Double(total) / 100).rounded(.down))
        return Ranking.ascending(scores).prefix(count).map { ($0.layer, $0.head) }
    }

    /// Checks every index against the original shape `layers × heads`; errors name the entry.
    public func validate(config: OPTConfig, file: String? = nil) throws {
        let L = config.numHiddenLayers, H = config.numAttentionHeads
        for (i, pair) in heads.enumerated() where pair.count != 2 || !(0..<L).contains(pair[0]) || !(0..<H).contains(pair[1]) {
            throw PruneError(file: file, "heads[\(i)] = \(pair) is not a [layer, head] of a \(L)×\(H) model")
        }
        for (i, l) in ffns.enumerated() where !(0..<L).contains(l) {
            throw PruneError(file: file, "ffns[\(i)] = \(l) is not a layer below \(L)")
        }
    }

    /// The layer plans left after removing this plan's heads and FFNs from `layers`. Entries already absent
    /// are no-ops, which is what makes pruning compose.
    public func apply(to layers: [LayerPlan]) -> [LayerPlan] {
        var out = layers
        let removed = Set(heads.map { $0[0] * 1_000_000 + $0[1] })
        for l in out.indices {
            out[l].heads = out[l].heads.filter { !removed.contains(l * 1_000_000 + $0) }
            if ffns.contains(l) { out[l].ffn = false }
        }
        return out
    }

    /// The same removal as a runtime mask over original indices.
    public func mask(config: OPTConfig) -> ModelMask {
        var heads = Array(repeating: Array(repeating: true, count: config.numAttentionHeads), count: config.numHiddenLayers)
        for pair in self.heads { heads[pair[0]][pair[1]] = false }
        var ffns = Array(repeating: true, count: config.numHiddenLayers)
        for l in self.ffns { ffns[l] = false }
        return ModelMask(heads: heads, ffns: ffns)
    }

    public static func load(_ path: String, config: OPTConfig) throws -> PrunePlan {
        guard let data = try FileGuard.contents(atPath: path) else { throw PruneError(file: path, "cannot read") }
        let plan: PrunePlan
        do {
            plan = try JSONDecoder().decode(PrunePlan.self, from: data)
        } catch let error as DecodingError {
            throw PruneError(file: path, describe(error))
        }
        guard plan.format == formatName else {
            throw PruneError(file: path, "format is '\(plan.format)', expected '\(formatName)'")
        }
        try plan.validate(config: config, file: path)
        return PrunePlan(heads: plan.heads, ffns: plan.ffns, selection: plan.selection)
    }

    public func json() throws -> [UInt8] {
        try JSONFiles.compact(self)
    }

    public func write(to path: String) throws { try JSONFiles.write(self, to: path) }
}

extension PrunePlan {
    /// Loads a scores file of `kind` ("heads" or "ffns") and checks its shape against the original model.
    /// Returns `[layers][heads]`, or `[layers][1]` for FFNs.
    public static func scores(_ path: String, kind: String, config: OPTConfig) throws -> ScoresFile {
        let file = try ScoresFile.load(path)
        guard file.kind == kind else { throw PruneError(file: path, "kind is '\(file.kind)', expected '\(kind)'") }
        let width = kind == "heads" ? config.numAttentionHeads : 1
        guard file.scores.count == config.numHiddenLayers else {
            throw PruneError(file: path, "scores has \(file.scores.count) layers, the model has \(config.numHiddenLayers)")
        }
        if let (l, row) = file.scores.enumerated().first(where: { $0.element.count != width }) {
            throw PruneError(file: path, "scores[\(l)] has \(row.count) entries, expected \(width)")
        }
        if let l = file.scores.firstIndex(where: { $0.contains { !$0.isFinite } }) {
            throw PruneError(file: path, "scores[\(l)] holds a value that is not a finite number")
        }
        return file
    }

    /// The plan removing the lowest `headsPercent` of heads and `ffnsPercent` of FFNs by these scores.
    public static func select(
        heads: (path: String, file: ScoresFile, percent: Double)?,
        ffns: (path: String, file: ScoresFile, percent: Double)?
    ) -> PrunePlan {
        var plan = PrunePlan()
        var selection: [String: Selection] = [:]
        if let heads {
            let chosen = lowest(heads.file.scores, percent: heads.percent)
            plan.heads = chosen.map { [$0.layer, $0.head] }.sorted { ($0[0], $0[1]) < ($1[0], $1[1]) }
            selection["heads"] = Selection(
                scores: heads.path, model_sha256: heads.file.model_sha256, percent: heads.percent,
                count: chosen.count, total: heads.file.scores.reduce(0) { $0 + $1.count })
        }
        if let ffns {
            let chosen = lowest(ffns.file.scores, percent: ffns.percent)
            plan.ffns = chosen.map(\.layer).sorted()
            selection["ffns"] = Selection(
                scores: ffns.path, model_sha256: ffns.file.model_sha256, percent: ffns.percent,
                count: chosen.count, total: ffns.file.scores.count)
        }
        plan.selection = selection.isEmpty ? nil : selection
        return plan
    }
}

extension ScoresFile {
    /// A bare matrix as a scores file, for selection.
    public init(scores: [[Double]]) {
        self.init(kind: "", method: "", task: nil, shots: nil, model_sha256: "", examples: 0, scores: scores)
    }
}
