/// Shard files of the two importance measures, for runs split over machines. Each holds what a merge needs
/// to give exactly what one run gives: gradient importance keeps fp64 sums (normalised only after the
/// merge), the oracle keeps the metric of each ablation it ran and the baseline all shards share.
import Evaluation
import HRZFormat
import Runtime
import Files

/// A shard file of either measure: which shard it is and what it was computed from.
public protocol ImportanceShardFile: Decodable {
    /// [index, count].
    var shard: [Int] { get }
    var inputs: InputRecord { get }
}

extension ImportanceShardFile {
    /// Reads shards 0..<count from `path(i)`, checking each one's inputs and position; returns them in order.
    public static func read(count: Int, path: (Int) -> String, inputs: InputRecord, command: String) throws -> [Self] {
        try (0..<count).map { i in
            let part = try readShard(Self.self, at: path(i), index: i, count: count, command: command)
            if let change = inputs.changes(from: part.inputs) { throw TaskError(file: path(i), line: nil, "computed from other inputs (\(change))") }
            guard part.shard == [i, count] else { throw TaskError(file: path(i), line: nil, "field 'shard' is \(part.shard), expected [\(i), \(count)]") }
            return part
        }
    }
}

/// Gradient head importance over every N-th example of one task × shots.
public struct HeadImportanceShard: ImportanceShardFile, Codable, Sendable {
    /// [index, count].
    public var shard: [Int]
    public var inputs: InputRecord
    public var sums: ImportanceSums
    public var truncated: Int
    /// Why the cell could not run (missing data); then `sums` is empty.
    public var skipped: String?

    public init(shard: Shard, inputs: InputRecord, sums: ImportanceSums, truncated: Int, skipped: String? = nil) {
        self.shard = [shard.index, shard.count]
        self.inputs = inputs
        self.sums = sums
        self.truncated = truncated
        self.skipped = skipped
    }
}

/// Oracle FFN importance for the layers l ≡ index (mod count) of one task × shots.
public struct OracleImportanceShard: ImportanceShardFile, Codable, Sendable {
    public var shard: [Int]
    public var inputs: InputRecord
    public var baseline: Double
    /// The layers this shard ablated and the metric without each one's FFN.
    public var layers: [Int]
    public var ablated: [Double]
    public var docs: Int
    public var skipped: String?

    public init(shard: Shard, inputs: InputRecord, result: OracleImportance.Result?, skipped: String? = nil) {
        self.shard = [shard.index, shard.count]
        self.inputs = inputs
        baseline = result?.baseline ?? 0
        layers = result?.ablations ?? []
        ablated = result?.ablated ?? []
        docs = result?.docs ?? 0
        self.skipped = skipped
    }

    /// Joins the shards into `[layer] = baseline − ablated`. Every shard ran the same baseline pass, so their
    /// baselines must agree exactly, and every layer must be covered once.
    public static func merge(_ parts: [OracleImportanceShard], layers: Int, path: (Int) -> String) throws -> (baseline: Double, scores: [Double], docs: Int) {
        // Shards without layers (more shards than layers) ran nothing, not even the baseline.
        guard let first = parts.first(where: { !$0.layers.isEmpty }) else { throw TaskError(file: path(0), line: nil, "no shard holds a layer") }
        var scores = [Double?](repeating: nil, count: layers)
        for (i, part) in parts.enumerated() where !part.layers.isEmpty {
            guard part.baseline == first.baseline || (part.baseline.isNaN && first.baseline.isNaN), part.docs == first.docs else {
                throw TaskError(file: path(i), line: nil, "baseline \(part.baseline) over \(part.docs) docs, shard 0 has \(first.baseline) over \(first.docs)")
            }
            guard part.layers.count == part.ablated.count else { throw TaskError(file: path(i), line: nil, "'layers' and 'ablated' differ in length") }
            for (l, metric) in zip(part.layers, part.ablated) {
                guard scores.indices.contains(l), scores[l] == nil else { throw TaskError(file: path(i), line: nil, "layer \(l) is out of range or in two shards") }
                scores[l] = first.baseline - metric
            }
        }
        guard let missing = scores.firstIndex(where: { $0 == nil }) else {
            return (first.baseline, scores.map { $0! }, first.docs)
        }
        throw TaskError(file: path(0), line: nil, "no shard holds layer \(missing)")
    }
}
