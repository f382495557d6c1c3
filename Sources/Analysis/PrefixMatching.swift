/// Prefix-matching induction scores (Olsson et al. 2022, as Bansal et al. 2023 use them): the input is BOS
/// followed by a base sequence of unique tokens repeated 4 times; for each query token in copies 2–4, a
/// head's score is its attention to the token right after every earlier occurrence of the same token,
/// averaged over the 3·n query positions and then over sequences. Positions are the correct ones: at a copy
/// boundary the token after the last token of a copy is the first token of the next copy. (The paper's
/// code is off by one there.) The patterns come from a plain forward, read by an observer at each layer.
import Foundation
import Runtime

/// Adds each present head's prefix-matching score for one sequence to `total[l][original head]`.
final class PrefixMatchingObserver: ForwardObserver, @unchecked Sendable {
    let ids: [Int], n: Int, plans: [[Int]]
    var total: [[Double]]
    private var pattern: [Float] = []

    init(ids: [Int], n: Int, plans: [[Int]], total: [[Double]]) {
        self.ids = ids
        self.n = n
        self.plans = plans
        self.total = total
    }

    var wantsAttention: Bool { true }

    func attention(layer l: Int, qkv: UnsafePointer<Float>, T: Int, heads H: Int, headDim D: Int) {
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

extension OPTModel {
    /// `[L][num_attention_heads]` by original head index (heads pruned away score 0).
    public func prefixMatching(_ sequences: [[Int]], progress: ((Int, Int) -> Void)? = nil) throws -> [[Double]] {
        var total = [[Double]](repeating: [Double](repeating: 0, count: config.numAttentionHeads), count: config.numHiddenLayers)
        for (index, base) in sequences.enumerated() {
            let n = base.count
            guard n >= 2, Set(base).count == n else { throw RuntimeError("sequence \(index): needs at least 2 tokens, all distinct") }
            let ids = [config.bosTokenId] + Array([[Int]](repeating: base, count: 4).joined())
            let observer = PrefixMatchingObserver(ids: ids, n: n, plans: plans.map(\.heads), total: total)
            var options = ForwardOptions()
            options.observer = observer
            _ = try forward([SequenceInput(tokens: ids, logits: .none)], options: options)
            total = observer.total
            progress?(index + 1, sequences.count)
        }
        return total.map { $0.map { $0 / Double(max(1, sequences.count)) } }
    }
}
