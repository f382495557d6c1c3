/// The paper's copying probe on BOS + each base sequence: every layer sees only the token embeddings plus
/// positions (through `project_in` if present), then its attention layer norm. For each head, each
/// position's own value vector is mapped through `out_proj` (bias included), `project_out` if present,
/// and the LM head; over the tokens attendable so far, relu(p − mean p); the position's score is the share
/// of that relu taken by the position the head attends to most. Averaged over positions 1…T−1, then over
/// sequences. The layer's attention comes from the runtime's `LayerProber`.
import Basics
import Foundation
import Runtime

/// The paper's copying scores of one model.
public struct CopyingScores {
    public let model: OPTModel
    public init(_ model: OPTModel) { self.model = model }

    /// `[L][num_attention_heads]` by original head index: the mean over sequences.
    public func scores(_ sequences: [[Int]], progress: ((Int, Int) -> Void)? = nil) throws -> [[Double]] {
        try InductionScores.mean(sequences, model: model, progress: progress) { try contribution($0, index: $1) }
    }

    /// One base sequence's score per head (the mean's terms).
    public func contribution(_ base: [Int], index: Int) throws -> [[Double]] {
        let config = model.config, plans = model.plans
        let L = config.numHiddenLayers, D = config.headDim, V = config.vocabSize
        var total = InductionScores.zero(model)
        try model.withLayerProber { prober in
            do {
                let ids = [config.bosTokenId] + base
                let x = try prober.embed(ids)
                let T = ids.count
                guard T >= 2 else { throw RuntimeError("sequence \(index): needs at least 1 token") }
                for l in 0..<L {
                    guard let probe = try prober.attention(layer: l, input: x, T: T) else { continue }
                    for (k, head) in plans[l].heads.enumerated() {
                        // The head's pattern from the walk's q and k, as prefix matching reads it.
                        var attention = [Float](repeating: 0, count: T * T)
                        probe.qkv.withUnsafeBufferPointer { attentionProbabilities(&attention, qkv: $0.baseAddress!, head: k, T: T, H: probe.heads, D: D) }
                        let logits = prober.unembed(probe.ownValueOutput(head: k, T: T), rows: T)
                        // Positions are independent: each thread takes whole rows (the V-wide softmax is the cost),
                        // and the shares are summed in position order afterwards, so the result does not depend
                        // on the thread count.
                        var shares = [Double](repeating: 0, count: T)
                        let next = LockedCounter()
                        shares.withUnsafeMutableBufferPointer { out in
                            let out = out
                            logits.withUnsafeBufferPointer { logits in
                                attention.withUnsafeBufferPointer { attention in
                                    DispatchQueue.concurrentPerform(iterations: Threads.count) { _ in
                                        while true {
                                            let t = next.add() + 1
                                            guard t < T else { break }
                                            let row = t * V
                                            var maximum = -Float.infinity
                                            for v in 0..<V { maximum = max(maximum, logits[row + v]) }
                                            var z = 0.0
                                            for v in 0..<V { z += Foundation.exp(Double(logits[row + v] - maximum)) }
                                            let p = (0...t).map { Foundation.exp(Double(logits[row + ids[$0]] - maximum)) / z }
                                            let mean = p.reduce(0, +) / Double(p.count)
                                            let relu = p.map { max(0, $0 - mean) }
                                            let top = (0...t).max {
                                                attention[t * T + $0] < attention[t * T + $1] || (attention[t * T + $0] == attention[t * T + $1] && $0 > $1)
                                            }!
                                            let mass = relu.reduce(0, +)
                                            out[t] = mass > 0 ? relu[top] / mass : 0
                                        }
                                    }
                                }
                            }
                        }
                        let sum = shares[1...].reduce(0, +)
                        total[l][head] += sum / Double(T - 1)
                    }
                }
            }
        }
        return total
    }
}
