/// Prefix-matching induction scores (Olsson et al. 2022, as Bansal et al. 2023 use them): the input is BOS
/// followed by a base sequence of unique tokens repeated 4 times; for each query token in copies 2–4, a
/// head's score is its attention to the token right after every earlier occurrence of the same token,
/// averaged over the 3·n query positions and then over sequences. Positions are the correct ones: at a copy
/// boundary the token after the last token of a copy is the first token of the next copy. (The paper's
/// code is off by one there.)
import Foundation

extension OPTModel {
    /// `[L][num_attention_heads]` by original head index (heads pruned away score 0).
    public func prefixMatching(_ sequences: [[Int]], progress: ((Int, Int) -> Void)? = nil) throws -> [[Double]] {
        let L = config.numHiddenLayers
        var total = [[Double]](repeating: [Double](repeating: 0, count: config.numAttentionHeads), count: L)
        for (index, base) in sequences.enumerated() {
            let n = base.count
            guard n >= 2, Set(base).count == n else { throw RuntimeError("sequence \(index): needs at least 2 tokens, all distinct") }
            let ids = [config.bosTokenId] + Array([[Int]](repeating: base, count: 4).joined())
            try validate([SequenceInput(tokens: ids, logits: .none)], options: ForwardOptions())
            let T = ids.count, C = config.hiddenSize
            var x = [Float](repeating: 0, count: T * C)
            x.withUnsafeMutableBufferPointer { embed(tokens: ids, positions: Array(0..<T), into: $0.baseAddress!) }
            for l in 0..<L {
                let w = try stream.layer(l, next: l + 1 < L ? l + 1 : nil)
                let (out, saved) = try forwardSaving(w, layer: l, x0: x, T: T)
                for (k, h) in plans[l].heads.enumerated() {
                    let p = saved.probs[k]
                    var sum = 0.0
                    for q in (1 + n)..<(1 + 4 * n) {
                        for earlier in 1..<q where ids[earlier] == ids[q] { sum += Double(p[q * T + earlier + 1]) }
                    }
                    total[l][h] += sum / Double(3 * n)
                }
                x = out
            }
            progress?(index + 1, sequences.count)
        }
        return total.map { $0.map { $0 / Double(max(1, sequences.count)) } }
    }
}
