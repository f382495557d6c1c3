/// Prefix-matching induction scores (Olsson et al. 2022, as Bansal et al. 2023 use them): the input is BOS
/// followed by a base sequence of unique tokens repeated 4 times; for each query token in copies 2–4, a
/// head's score is its attention to the token right after every earlier occurrence of the same token,
/// averaged over the 3·n query positions and then over sequences. Positions are the correct ones: at a copy
/// boundary the token after the last token of a copy is the first token of the next copy. (The paper's
/// code is off by one there.) The patterns come from a plain forward, read by an observer at each layer.
import Foundation
import Runtime

/// Adds each present head's prefix-matching score for one sequence to `total[l][original head]`.
final class PrefixMatchingObserver: ForwardObserver {
    let ids: [Int], n: Int, plans: [[Int]]
    var total: [[Double]]
    private var pattern: [Float] = []

    init(ids: [Int], n: Int, plans: [[Int]], total: [[Double]]) {
        self.ids = ids
        self.n = n
        self.plans = plans
        self.total = total
    }

    func wants(_ point: TapPoint, layer: Int) -> Bool { point == .qkv }

    func observe(_ tap: Tap) throws {
        let (l, qkv, T, H, D) = (tap.layer, tap.values, tap.tokens, tap.heads, tap.headDim)
        if pattern.count < T * T { pattern = [Float](repeating: 0, count: T * T) }
        pattern.withUnsafeMutableBufferPointer { buffer in
            let p = buffer.baseAddress!
            for (k, h) in plans[l].enumerated() {
                attentionProbabilities(p, qkv: qkv, head: k, T: T, H: H, D: D)
                var sum = 0.0
                for q in (1 + n)..<(1 + 4 * n) {
                    for earlier in 1..<q where ids[earlier] == ids[q] { sum += Double(p[q * T + earlier + 1]) }
                }
                total[l][h] += sum / Double(3 * n)
            }
        }
    }
}

/// Prefix-matching scores of one model.
public struct PrefixMatching {
    public let model: OPTModel
    public init(_ model: OPTModel) { self.model = model }

    /// `[L][num_attention_heads]` by original head index (heads pruned away score 0): the mean over sequences.
    public func scores(_ sequences: [[Int]], progress: ((Int, Int) -> Void)? = nil) throws -> [[Double]] {
        try InductionScores.mean(sequences, model: model, progress: progress) { try contribution($0, index: $1) }
    }

    /// One base sequence's score per head, `[L][num_attention_heads]` (the mean's terms, before dividing).
    public func contribution(_ base: [Int], index: Int) throws -> [[Double]] {
        let config = model.config
        let n = base.count
        guard n >= 2, Set(base).count == n else { throw RuntimeError("sequence \(index): needs at least 2 tokens, all distinct") }
        let ids = [config.bosTokenId] + Array([[Int]](repeating: base, count: 4).joined())
        let zero = [[Double]](repeating: [Double](repeating: 0, count: config.numAttentionHeads), count: config.numHiddenLayers)
        let observer = PrefixMatchingObserver(ids: ids, n: n, plans: model.plans.map(\.heads), total: zero)
        var options = ForwardOptions()
        options.observers = [observer]
        _ = try model.forward([SequenceInput(tokens: ids, logits: .none)], options: options)
        return observer.total
    }
}

/// The mean over sequences of per-sequence score matrices, summed in sequence order.
public enum InductionScores {
    public static func mean(
        _ sequences: [[Int]], model: OPTModel, progress: ((Int, Int) -> Void)?,
        _ one: ([Int], Int) throws -> [[Double]]
    ) throws -> [[Double]] {
        var total: [[Double]]? = sequences.isEmpty ? zero(model) : nil
        for (index, base) in sequences.enumerated() {
            let c = try one(base, index)
            total = total.map { add($0, c) } ?? c
            progress?(index + 1, sequences.count)
        }
        return (total ?? []).map { $0.map { $0 / Double(max(1, sequences.count)) } }
    }

    /// `[L][num_attention_heads]` zeros.
    public static func zero(_ model: OPTModel) -> [[Double]] {
        [[Double]](repeating: [Double](repeating: 0, count: model.config.numAttentionHeads), count: model.config.numHiddenLayers)
    }

    /// Element-wise sum of two equally shaped matrices.
    public static func add(_ a: [[Double]], _ b: [[Double]]) -> [[Double]] { zip(a, b).map { zip($0, $1).map(+) } }
}
