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

extension OPTModel {
    /// `[L][num_attention_heads]` by original head index (heads pruned away score 0). Saved layer inputs beyond
    /// `memoryBudget` bytes spill to a temporary file in `spillDirectory`.
    public func headImportance(_ requests: [ImportanceRequest], memoryBudget: Int? = nil, spillDirectory: String = NSTemporaryDirectory(),
                               progress: ((Int, Int) -> Void)? = nil) throws -> [[Double]] {
        let L = config.numHiddenLayers
        var scores = [[Double]](repeating: [Double](repeating: 0, count: config.numAttentionHeads), count: L)
        var tokensMinusOne = 0, continuationTokens = 0
        let embedding = embeddingFloats()
        for (i, r) in requests.enumerated() {
            guard !r.context.isEmpty, !r.continuation.isEmpty else {
                throw RuntimeError("importance request \(i): context and continuation must both be non-empty")
            }
            let perLayer = try exampleImportance(r, embedding: embedding, saved: SpillStore(budget: memoryBudget, directory: spillDirectory))
            for l in 0..<L { for (k, h) in plans[l].heads.enumerated() { scores[l][h] += perLayer[l][k] } }
            tokensMinusOne += r.context.count + r.continuation.count - 1
            continuationTokens += r.continuation.count
            progress?(i + 1, requests.count)
        }
        for l in 0..<L {
            let divisor = Double(l == L - 1 ? continuationTokens : tokensMinusOne)
            scores[l] = scores[l].map { $0 / max(1, divisor) }
        }
        return scores
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
        let T = tokens.count, C = config.hiddenSize, E = config.wordEmbedProjDim, V = config.vocabSize, L = config.numHiddenLayers
        var x = [Float](repeating: 0, count: T * C)
        x.withUnsafeMutableBufferPointer { embed(tokens: tokens, positions: Array(0..<T), into: $0.baseAddress!) }
        // The forward keeps only each layer's input and runs the fast path; the backward recomputes the rest.
        var handles: [Int] = []
        for l in 0..<L {
            let w = try stream.layer(l, next: l + 1 < L ? l + 1 : nil)
            handles.append(try inputs.append(x))
            try x.withUnsafeMutableBufferPointer { buffer in
                try forwardLayer(x: buffer.baseAddress!, T: T, layer: l, weights: w, spans: [LayerSpan(start: 0, count: T, prefixRows: nil)],
                                 headsActive: nil, ffnActive: true, scratch: scratch.layer)
            }
        }
        // Loss: mean NLL over the continuation, predicted from positions context−1 … T−2.
        let n = r.continuation.count, first = r.context.count - 1
        var h = Array(x[(first * C)..<((first + n) * C)])
        var normStats: ([Float], [Float])?
        var normed = h
        if let finalNorm {
            var mean = [Float](repeating: 0, count: n), rstd = [Float](repeating: 0, count: n)
            layerNorm(out: &normed, mean: &mean, rstd: &rstd, input: h, weight: finalNorm.weight, bias: finalNorm.bias, T: n, C: C)
            normStats = (mean, rstd)
        }
        var dLogits = unembed(normed, rows: n, embedding: embedding)
        for k in 0..<n {  // d(mean NLL)/d logits = (softmax − onehot) / n, over the full vocabulary as HF's loss
            let row = k * V
            var maximum = -Float.infinity
            for v in 0..<V { maximum = max(maximum, dLogits[row + v]) }
            var sum = 0.0
            for v in 0..<V { sum += Foundation.exp(Double(dLogits[row + v] - maximum)) }
            for v in 0..<V { dLogits[row + v] = Float(Foundation.exp(Double(dLogits[row + v] - maximum)) / sum) / Float(n) }
            dLogits[row + r.continuation[k]] -= 1 / Float(n)
        }
        var dFeatures = [Float](repeating: 0, count: n * E)
        BLAS.gemm(M: n, N: E, K: V, a: dLogits, lda: V, b: embedding, ldb: E, c: &dFeatures, ldc: E)
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
        h = []
        var dx = [Float](repeating: 0, count: T * C)
        for k in 0..<(n * C) { dx[first * C + k] = dH[k] }
        // Backward through the layers in reverse, recomputing each from its input.
        var importance = [[Double]](repeating: [], count: L)
        for l in stride(from: L - 1, through: 0, by: -1) {
            let w = try stream.layer(l, next: l > 0 ? l - 1 : nil)
            let (_, saved) = try forwardSaving(w, layer: l, x0: try inputs.array(handles[l]), T: T)
            var perHead = [Double](repeating: 0, count: plans[l].heads.count)
            dx = try backwardLayer(w, layer: l, saved: saved, dOut: dx, T: T, importance: &perHead)
            importance[l] = perHead
        }
        return importance
    }
}
