/// The reverse walk: one sequence forward, the mean NLL of its targets, and back through every layer, with
/// an observer at the heads' outputs and their gradients.
/// Layers stream forward (saving only each layer's input) and then in reverse, recomputing each layer's
/// internals from its input.
import Foundation
import HRZFormat

/// Watches the reverse walk. For each layer with heads, once its gradient reaches them: the heads' outputs
/// before out_proj `ctx [T, H·D]` (head k of the layer's present heads at columns k·D ..< (k+1)·D) and
/// ∂loss/∂ctx, same shape. It reads; it never changes the arithmetic.
public protocol BackwardObserver: AnyObject {
    func headOutputs(layer: Int, ctx: UnsafePointer<Float>, dCtx: UnsafePointer<Float>, T: Int, heads: Int, headDim: Int)
}

/// A run of reverse walks on one model: holds the model (its run lock) for the whole run, widens the tied
/// embedding once, and keeps a small model's layers widened to fp32 across walks (three passes per walk use them).
public final class GradientWalker {
    let model: OPTModel
    let embedding: [Float]

    init(model: OPTModel) {
        self.model = model
        embedding = model.embeddingFloats()
    }

    /// `tokens` forward, loss = mean NLL of `targets` (the tokens after the first `contextCount`, predicted from
    /// positions contextCount − 1 …), and back; `observer` sees every layer's heads. Layer inputs kept for the
    /// backward beyond `memoryBudget` bytes spill to a file in `spillDirectory`.
    public func run(tokens: [Int], contextCount: Int, targets: [Int], memoryBudget: Int? = nil,
                    spillDirectory: String = NSTemporaryDirectory(), observer: any BackwardObserver) throws {
        try model.gradientWalk(tokens, contextCount: contextCount, targets: targets, embedding: embedding,
                               saved: SpillStore(budget: memoryBudget, directory: spillDirectory), observer: observer)
    }
}

/// Keeps each layer's input as the forward walk reaches it: the checkpoints the reverse walk recomputes from.
private final class InputKeeper: ForwardObserver, @unchecked Sendable {
    let inputs: SpillStore
    var handles: [Int] = []
    init(_ inputs: SpillStore) { self.inputs = inputs }
    func layerInput(_ layer: Int, _ x: UnsafePointer<Float>, count: Int) throws {
        handles.append(try inputs.append(x, count: count))
    }
}

extension OPTModel {
    /// Runs `body` with a walker that holds this model until it returns.
    public func withGradientWalker<R>(_ body: (GradientWalker) throws -> R) throws -> R {
        try exclusive {
            scratch.widened.keeping = 4 * layerElements <= scratch.widened.limit
            defer { scratch.widened.keeping = false }
            return try body(GradientWalker(model: self))
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
        if precision == .bf16 {
            features.withUnsafeBufferPointer { f in logits.withUnsafeMutableBufferPointer { unembedBF16(f.baseAddress!, rows: rows, into: $0.baseAddress!) } }
        } else {
            BLAS.linear(out: &logits, input: features, weight: embedding, bias: nil, M: rows, N: V, K: E)
        }
        return logits
    }

    /// embed_tokens widened to fp32 `[V, E]`.
    func embeddingFloats() -> [Float] {
        let info = embedTokens.info
        var out = [Float](repeating: 0, count: info.elementCount)
        out.withUnsafeMutableBufferPointer { widen(embedTokens.buffer.pointer, dtype: info.dtype, into: $0.baseAddress!, count: info.elementCount) }
        return out
    }

    /// One sequence forward and backward (see `GradientWalker.run`).
    func gradientWalk(_ tokens: [Int], contextCount: Int, targets: [Int], embedding: [Float], saved inputs: SpillStore,
                      observer: any BackwardObserver) throws {
        try validate([SequenceInput(tokens: tokens, logits: .none)], options: ForwardOptions())
        let T = tokens.count, C = config.hiddenSize, L = config.numHiddenLayers
        stream.prefetch(0)
        var x = [Float](repeating: 0, count: T * C)
        x.withUnsafeMutableBufferPointer { embed(tokens: tokens, positions: Array(0..<T), into: $0.baseAddress!) }
        // The forward keeps each layer's input; the backward re-runs each layer from it, keeping its internals.
        // The last layer keeps them on the way up, as the backward starts there.
        let b = scratch.backward
        let keeper = InputKeeper(inputs)
        var seconds: [Double] = []
        try x.withUnsafeMutableBufferPointer { buffer in
            try Profile.measure("checkpointed forward") {
                try walk(x: buffer.baseAddress!, T: T, spans: [LayerSpan(start: 0, count: T)], observer: keeper,
                         saving: (L - 1, b.saved), layerSeconds: &seconds)
            }
        }
        let handles = keeper.handles
        // Loss: mean NLL over the targets, predicted from positions context−1 … T−2.
        let n = targets.count, first = contextCount - 1
        let dH = Profile.measure("loss") {
            lossGradient(hidden: Array(x[(first * C)..<((first + n) * C)]), targets: targets, embedding: embedding)
        }
        let dx = b.dx.reserve(T * C)
        dx.update(repeating: 0, count: T * C)
        (dx + first * C).update(from: dH, count: n * C)
        // Backward through the layers in reverse.
        for l in stride(from: L - 1, through: 0, by: -1) {
            let w = try stream.layer(l, next: l > 0 ? l - 1 : nil)
            if l < L - 1 {
                let x0 = b.x.reserve(T * C)
                try inputs.read(handles[l], into: x0)
                try Profile.measure("recompute") {
                    try forwardLayer(x: x0, T: T, layer: l, weights: w, spans: [LayerSpan(start: 0, count: T)],
                                     mask: .all, taps: b.saved)
                }
            }
            try Profile.measure("backward") { try backwardLayer(w, layer: l, saved: b.saved, dx: dx, T: T, scratch: b, observer: observer) }
        }
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
        Profile.measure("loss lm head bw") {
            if precision == .bf16 {
                dLogits.withUnsafeBufferPointer { d in dFeatures.withUnsafeMutableBufferPointer { embedBackwardBF16(d.baseAddress!, rows: n, into: $0.baseAddress!) } }
            } else {
                BLAS.gemm(M: n, N: E, K: V, a: dLogits, lda: V, b: embedding, ldb: E, c: &dFeatures, ldc: E)
            }
        }
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
