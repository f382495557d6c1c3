/// Gradient head importance (Bansal et al. 2023, as their code computes it): for each example the loss is
/// the mean NLL of the gold continuation given its context; with A[l,h](t) head h's output before out_proj,
/// I[l,h] = Σ_examples Σ_t |⟨A[l,h](t), ∂L/∂A[l,h](t)⟩|, layers 0…L−2 divided by Σ(tokens − 1) and the
/// last layer by Σ continuation tokens. Layers stream forward (saving only each layer's input) and then in
/// reverse, recomputing each layer's internals from its input.
import Foundation
import HRZFormat

public struct ImportanceRequest: Sendable, Equatable {
    public var context: [Int]
    public var continuation: [Int]
    public init(context: [Int], continuation: [Int]) {
        self.context = context
        self.continuation = continuation
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

extension OPTModel {
    /// `[L][num_attention_heads]` by original head index (heads pruned away score 0). Saved layer inputs beyond
    /// `memoryBudget` bytes spill to a temporary file in `spillDirectory`.
    public func headImportance(_ requests: [ImportanceRequest], memoryBudget: Int? = nil, spillDirectory: String = NSTemporaryDirectory(),
                               progress: ((Int, Int) -> Void)? = nil) throws -> [[Double]] {
        try headImportanceSums(requests, memoryBudget: memoryBudget, spillDirectory: spillDirectory, progress: progress).normalized()
    }

    /// The sums over the examples `select` picks (by index; all by default), each computed exactly as alone.
    public func headImportanceSums(_ requests: [ImportanceRequest], select: (Int) -> Bool = { _ in true }, memoryBudget: Int? = nil,
                                   spillDirectory: String = NSTemporaryDirectory(), progress: ((Int, Int) -> Void)? = nil) throws -> ImportanceSums {
        try exclusive {
            let L = config.numHiddenLayers
            var scores = [[Double]](repeating: [Double](repeating: 0, count: config.numAttentionHeads), count: L)
            var tokensMinusOne = 0, continuationTokens = 0, examples = 0
            let embedding = embeddingFloats()
            // Small models keep their layers widened to fp32 for the whole run (3 passes per example use them).
            scratch.widened.keeping = 4 * layerElements <= scratch.widened.limit
            defer { scratch.widened.keeping = false }
            for (i, r) in requests.enumerated() {
                guard !r.context.isEmpty, !r.continuation.isEmpty else {
                    throw RuntimeError("importance request \(i): context and continuation must both be non-empty")
                }
                guard select(i) else { continue }
                examples += 1
                let perLayer = try exampleImportance(r, embedding: embedding, saved: SpillStore(budget: memoryBudget, directory: spillDirectory))
                for l in 0..<L { for (k, h) in plans[l].heads.enumerated() { scores[l][h] += perLayer[l][k] } }
                tokensMinusOne += r.context.count + r.continuation.count - 1
                continuationTokens += r.continuation.count
                progress?(i + 1, requests.count)
            }
            return ImportanceSums(sums: scores, tokensMinusOne: tokensMinusOne, continuationTokens: continuationTokens, examples: examples)
    
        }
    }

    /// logits `[rows, V]` = project_out(hidden `[rows, C]`) · embed_tokensᵀ, the tied LM head without the final
    /// norm (callers apply it where the definition has it). `embedding` is `embeddingFloats()`.
    func unembed(_ hidden: [Float], rows: Int, embedding: [Float]) -> [Float] {
        let C = config.hiddenSize, E = config.wordEmbedProjDim, V = config.vocabSize
        var features = hidden
        if let projectOut {
            features = [Float](repeating: 0, count: rows * E)
            BLAS.linear(out: &features, input: hidden, weight: projectOut, bias: nil, M: rows, N: E, K: C)
        }
        var logits = [Float](repeating: 0, count: rows * V)
        BLAS.linear(out: &logits, input: features, weight: embedding, bias: nil, M: rows, N: V, K: E)
        return logits
    }

    /// embed_tokens widened to fp32 `[V, E]`.
    func embeddingFloats() -> [Float] {
        let info = embedTokens.info
        var out = [Float](repeating: 0, count: info.elementCount)
        out.withUnsafeMutableBufferPointer { widen(embedTokens.buffer.pointer, dtype: info.dtype, into: $0.baseAddress!, count: info.elementCount) }
        return out
    }

    /// Per layer, per present head: Σ_t |⟨A, ∂L/∂A⟩| for one example.
    func exampleImportance(_ r: ImportanceRequest, embedding: [Float], saved inputs: SpillStore) throws -> [[Double]] {
        let tokens = r.context + r.continuation
        try validate([SequenceInput(tokens: tokens, logits: .none)], options: ForwardOptions())
        let T = tokens.count, C = config.hiddenSize, L = config.numHiddenLayers
        stream.prefetch(0)
        var x = [Float](repeating: 0, count: T * C)
        x.withUnsafeMutableBufferPointer { embed(tokens: tokens, positions: Array(0..<T), into: $0.baseAddress!) }
        // The forward keeps each layer's input; the backward re-runs each layer from it, keeping its internals.
        // The last layer keeps them on the way up, as the backward starts there.
        let b = scratch.backward
        var handles: [Int] = []
        for l in 0..<L {
            let w = try stream.layer(l, next: l + 1 < L ? l + 1 : nil)
            handles.append(try inputs.append(x))
            try Profile.measure("checkpointed forward") { try x.withUnsafeMutableBufferPointer { buffer in
                try forwardLayer(x: buffer.baseAddress!, T: T, layer: l, weights: w, spans: [LayerSpan(start: 0, count: T, prefixRows: nil)],
                                 headsActive: nil, ffnActive: true, scratch: scratch.layer, saving: l == L - 1 ? b.saved : nil)
            } }
        }
        // Loss: mean NLL over the continuation, predicted from positions context−1 … T−2.
        let n = r.continuation.count, first = r.context.count - 1
        let dH = Profile.measure("loss") {
            lossGradient(hidden: Array(x[(first * C)..<((first + n) * C)]), targets: r.continuation, embedding: embedding)
        }
        let dx = b.dx.reserve(T * C)
        dx.update(repeating: 0, count: T * C)
        (dx + first * C).update(from: dH, count: n * C)
        // Backward through the layers in reverse.
        var importance = [[Double]](repeating: [], count: L)
        for l in stride(from: L - 1, through: 0, by: -1) {
            let w = try stream.layer(l, next: l > 0 ? l - 1 : nil)
            if l < L - 1 {
                let x0 = b.x.reserve(T * C)
                try inputs.read(handles[l], into: x0)
                try Profile.measure("recompute") {
                    try forwardLayer(x: x0, T: T, layer: l, weights: w, spans: [LayerSpan(start: 0, count: T, prefixRows: nil)],
                                     headsActive: nil, ffnActive: true, scratch: scratch.layer, saving: b.saved)
                }
            }
            var perHead = [Double](repeating: 0, count: plans[l].heads.count)
            try Profile.measure("backward") { try backwardLayer(w, layer: l, saved: b.saved, dx: dx, T: T, scratch: b, importance: &perHead) }
            importance[l] = perHead
        }
        return importance
    }

    /// dHidden `[n, C]` of the mean NLL of `targets` given the last layer's output rows `[n, C]` that predict
    /// them: final norm, LM head, softmax over the full vocabulary (as HF's loss), and back.
    func lossGradient(hidden h: [Float], targets: [Int], embedding: [Float]) -> [Float] {
        let n = targets.count, C = config.hiddenSize, E = config.wordEmbedProjDim, V = config.vocabSize
        var normStats: ([Float], [Float])?
        var normed = h
        if let finalNorm {
            var mean = [Float](repeating: 0, count: n), rstd = [Float](repeating: 0, count: n)
            layerNorm(out: &normed, mean: &mean, rstd: &rstd, input: h, weight: finalNorm.weight, bias: finalNorm.bias, T: n, C: C)
            normStats = (mean, rstd)
        }
        var dLogits = Profile.measure("loss lm head") { unembed(normed, rows: n, embedding: embedding) }
        dLogits.withUnsafeMutableBufferPointer { buffer in
            // d(mean NLL)/d logits = (softmax − onehot) / n, over the full vocabulary as HF's loss (fp32).
            let logits = buffer.baseAddress!
            parallelRanges(n) { rows in
                for k in rows {
                    let row = logits + k * V
                    causalSoftmax(row, rows: 1, prefix: V - 1, ld: V, parallel: false)  // one row, all V columns valid
                    for v in 0..<V { row[v] /= Float(n) }
                    row[targets[k]] -= 1 / Float(n)
                }
            }
        }
        var dFeatures = [Float](repeating: 0, count: n * E)
        Profile.measure("loss lm head bw") { BLAS.gemm(M: n, N: E, K: V, a: dLogits, lda: V, b: embedding, ldb: E, c: &dFeatures, ldc: E) }
        var dNormed = dFeatures
        if let projectOut {
            dNormed = [Float](repeating: 0, count: n * C)
            BLAS.gemm(M: n, N: C, K: E, a: dFeatures, lda: E, b: projectOut, ldb: C, c: &dNormed, ldc: C)
        }
        var dH = dNormed
        if let finalNorm, let (mean, rstd) = normStats {
            dH = [Float](repeating: 0, count: n * C)
            layerNormBackward(dInput: &dH, dOut: dNormed, input: h, mean: mean, rstd: rstd, weight: finalNorm.weight, T: n, C: C)
        }
        return dH
    }
}
