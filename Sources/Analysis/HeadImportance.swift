/// Gradient head importance (Bansal et al. 2023, as their code computes it): for each example the loss is
/// the mean NLL of the gold continuation given its context; with A[l,h](t) head h's output before out_proj,
/// I[l,h] = Σ_examples Σ_t |⟨A[l,h](t), ∂L/∂A[l,h](t)⟩|, layers 0…L−2 divided by Σ(tokens − 1) and the
/// last layer by Σ continuation tokens. The runtime's reverse walk supplies A and ∂L/∂A (`BackwardObserver`);
/// this file only sums.
import Basics
import Foundation
import Runtime

public struct ImportanceRequest: Sendable, Equatable {
    public var context: [Int]
    public var continuation: [Int]
    /// Where the example comes from ("train.jsonl:12"), for messages.
    public var source: String?
    public init(context: [Int], continuation: [Int], source: String? = nil) {
        self.context = context
        self.continuation = continuation
        self.source = source
    }
}

/// Gradient importance before normalisation: fp64 sums over examples and the token counts that divide them.
/// Shards of one example list merge exactly by adding these in shard order (`merged`), then `normalized`.
public struct ImportanceSums: Codable, Sendable, Equatable {
    /// `[L][num_attention_heads]` Σ over examples of Σ_t |⟨A, ∂L/∂A⟩|.
    public var sums: [[Double]]
    public var tokensMinusOne: Int
    public var continuationTokens: Int
    public var examples: Int

    public init(sums: [[Double]], tokensMinusOne: Int, continuationTokens: Int, examples: Int) {
        self.sums = sums
        self.tokensMinusOne = tokensMinusOne
        self.continuationTokens = continuationTokens
        self.examples = examples
    }

    /// The paper's scores: layers 0…L−2 divided by Σ(tokens − 1), the last by Σ continuation tokens.
    public func normalized() -> [[Double]] {
        let L = sums.count
        return sums.enumerated().map { l, row in
            let divisor = Double(l == L - 1 ? continuationTokens : tokensMinusOne)
            return row.map { $0 / max(1, divisor) }
        }
    }

    /// Element-wise sum of shards, in the order given.
    public static func merged(_ shards: [ImportanceSums]) -> ImportanceSums? {
        guard var total = shards.first else { return nil }
        for s in shards.dropFirst() {
            total.sums = zip(total.sums, s.sums).map { zip($0, $1).map(+) }
            total.tokensMinusOne += s.tokensMinusOne
            total.continuationTokens += s.continuationTokens
            total.examples += s.examples
        }
        return total
    }
}

/// Σ_t |⟨A_h(t), ∂L/∂A_h(t)⟩| per present head of each layer, for one example (fp64, t in order).
final class HeadScoreObserver: BackwardObserver {
    var perLayer: [[Double]]

    init(layers: Int) { perLayer = Array(repeating: [], count: layers) }

    func wants(_ point: TapPoint, layer: Int) -> Bool { point == .ctx }

    func observe(_ tap: BackwardTap) throws {
        let (layer, ctx, dCtx, T, H, D) = (tap.layer, tap.values, tap.gradient, tap.tokens, tap.heads, tap.headDim)
        let HD = H * D
        let scores = ResultSlots<Double>(count: H)
        DispatchQueue.concurrentPerform(iterations: H) { h in
            scores.set(h) {
                var total = 0.0
                for t in 0..<T {
                    var dot = 0.0
                    for d in 0..<D { dot += Double(ctx[t * HD + h * D + d]) * Double(dCtx[t * HD + h * D + d]) }
                    total += abs(dot)
                }
                return total
            }
        }
        perLayer[layer] = (try? scores.values()) ?? []
    }
}

/// Gradient head importance of one model: the sums over examples (`sums`) and the paper's normalised scores
/// (`scores`). Holds no state of its own; the model's run lock is held for each call.
public struct HeadImportance {
    public let model: OPTModel
    public init(_ model: OPTModel) { self.model = model }

    /// `[L][num_attention_heads]` by original head index (heads pruned away score 0). Saved layer inputs beyond
    /// `memoryBudget` bytes spill to a temporary file in `spillDirectory`.
    public func scores(
        _ requests: [ImportanceRequest], memoryBudget: Int? = nil, spillDirectory: String = NSTemporaryDirectory(),
        progress: ((Int, Int) -> Void)? = nil
    ) throws -> [[Double]] {
        try sums(requests, memoryBudget: memoryBudget, spillDirectory: spillDirectory, progress: progress).normalized()
    }

    /// The sums over the examples `select` picks (by index; all by default), each computed exactly as alone.
    public func sums(
        _ requests: [ImportanceRequest], select: (Int) -> Bool = { _ in true }, memoryBudget: Int? = nil,
        spillDirectory: String = NSTemporaryDirectory(), progress: ((Int, Int) -> Void)? = nil
    ) throws -> ImportanceSums {
        let config = model.config, plans = model.plans
        let L = config.numHiddenLayers
        var scores = [[Double]](repeating: [Double](repeating: 0, count: config.numAttentionHeads), count: L)
        var tokensMinusOne = 0, continuationTokens = 0, examples = 0
        try model.withGradientWalker { walker in
            for (i, r) in requests.enumerated() {
                guard !r.context.isEmpty, !r.continuation.isEmpty else {
                    throw RuntimeError("importance request \(i): context and continuation must both be non-empty")
                }
                guard select(i) else { continue }
                examples += 1
                let observer = HeadScoreObserver(layers: L)
                try walker.run(
                    tokens: r.context + r.continuation, contextCount: r.context.count, targets: r.continuation,
                    memoryBudget: memoryBudget, spillDirectory: spillDirectory, observer: observer)
                for l in 0..<L { for (k, h) in plans[l].heads.enumerated() { scores[l][h] += observer.perLayer[l][k] } }
                tokensMinusOne += r.context.count + r.continuation.count - 1
                continuationTokens += r.continuation.count
                progress?(i + 1, requests.count)
            }
        }
        return ImportanceSums(sums: scores, tokensMinusOne: tokensMinusOne, continuationTokens: continuationTokens, examples: examples)
    }
}
