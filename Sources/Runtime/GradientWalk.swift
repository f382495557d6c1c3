/// The reverse walk: one sequence forward, the mean NLL of its targets, and back through every layer, with
/// an observer at the heads' outputs and their gradients.
/// Layers stream forward (saving only each layer's input) and then in reverse, recomputing each layer's
/// internals from its input.
import Foundation
import HRZFormat

/// One backward tap: an activation and the loss's gradient with respect to it, once the gradient reaches it.
/// Today the walk offers `.ctx` (the heads' outputs before out_proj, `[T, H·D]`, head k of the layer's present
/// heads at columns k·D ..< (k+1)·D); both are valid only during the call.
public struct BackwardTap {
    public let layer: Int
    public let point: TapPoint
    public let values: UnsafePointer<Float>
    public let gradient: UnsafePointer<Float>
    public let count: Int
    public let tokens: Int
    public let heads: Int
    public let headDim: Int
}

/// Watches the reverse walk at the points it wants. It reads; it never changes the arithmetic.
public protocol BackwardObserver: AnyObject {
    func wants(_ point: TapPoint, layer: Int) -> Bool
    func observe(_ tap: BackwardTap) throws
}

/// A run of reverse walks on one model: holds the model (its run lock) for the whole run, and lets its weight
/// backend keep what it derives from the weights (three passes per walk use them).
public final class GradientWalker {
    let model: OPTModel

    init(model: OPTModel) { self.model = model }

    /// `tokens` forward, loss = mean NLL of `targets` (the tokens after the first `contextCount`, predicted from
    /// positions contextCount − 1 …), and back; `observer` sees every layer's heads. Layer inputs kept for the
    /// backward beyond `memoryBudget` bytes spill to a file in `spillDirectory`.
    public func run(
        tokens: [Int], contextCount: Int, targets: [Int], memoryBudget: Int? = nil,
        spillDirectory: String = NSTemporaryDirectory(), observer: any BackwardObserver
    ) throws {
        try model.gradientWalk(
            tokens, contextCount: contextCount, targets: targets,
            saved: SpillStore(budget: memoryBudget, directory: spillDirectory), observer: observer)
    }
}

/// Keeps each layer's input as the forward walk reaches it: the checkpoints the reverse walk recomputes from.
private final class InputKeeper: ForwardObserver {
    let inputs: SpillStore
    var handles: [Int] = []
    init(_ inputs: SpillStore) { self.inputs = inputs }
    func wants(_ point: TapPoint, layer: Int) -> Bool { point == .layerInput }
    func observe(_ tap: Tap) throws { handles.append(try inputs.append(tap.values, count: tap.count)) }
}

extension OPTModel {
    /// Runs `body` with a walker that holds this model until it returns.
    public func withGradientWalker<R>(_ body: (GradientWalker) throws -> R) throws -> R {
        try exclusive {
            backend.reuse(true)
            defer { backend.reuse(false) }
            return try body(GradientWalker(model: self))
        }
    }

    /// logits `[rows, V]` = project_out(hidden `[rows, C]`) · embed_tokensᵀ, the tied LM head without the final
    /// norm (callers apply it where the definition has it).
    func unembed(_ hidden: [Float], rows: Int) -> [Float] {
        let C = config.hiddenSize, E = config.wordEmbedProjDim, V = config.vocabSize
        var features = hidden
        if let projectOut {
            features = [Float](repeating: 0, count: rows * E)
            BLAS.linear(out: &features, input: hidden, weight: projectOut, bias: nil, M: rows, N: E, K: C)
        }
        var logits = [Float](repeating: 0, count: rows * V)
        features.withUnsafeBufferPointer { f in logits.withUnsafeMutableBufferPointer { backend.unembed(f.baseAddress!, rows: rows, into: $0.baseAddress!) } }
        return logits
    }

    /// One sequence forward and backward (see `GradientWalker.run`).
    func gradientWalk(
        _ tokens: [Int], contextCount: Int, targets: [Int], saved inputs: SpillStore,
        observer: any BackwardObserver
    ) throws {
        try validate([SequenceInput(tokens: tokens, logits: .none)], options: ForwardOptions())
        let T = tokens.count, C = config.hiddenSize, L = config.numHiddenLayers
        stream.prefetch(0)
        var x = [Float](repeating: 0, count: T * C)
        x.withUnsafeMutableBufferPointer { embed(tokens: tokens, positions: Array(0..<T), into: $0.baseAddress!) }
        // The forward keeps each layer's input; the backward re-runs each layer from it, keeping its internals.
        // The last layer keeps them on the way up, as the backward starts there.
        let b = scratch.backward
        let keeper = InputKeeper(inputs)
        b.saved.layer = L - 1
        try x.withUnsafeMutableBufferPointer { buffer in
            try Profile.measure("checkpointed forward") {
                try walk(x: buffer.baseAddress!, T: T, spans: [LayerSpan(start: 0, count: T)], observers: [keeper, b.saved])
            }
        }
        let handles = keeper.handles
        // Loss: mean NLL over the targets, predicted from positions context−1 … T−2.
        let n = targets.count, first = contextCount - 1
        let dH = Profile.measure("loss") {
            lossGradient(hidden: Array(x[(first * C)..<((first + n) * C)]), targets: targets)
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
                b.saved.layer = l
                try Profile.measure("recompute") {
                    try forwardLayer(
                        x: x0, T: T, layer: l, weights: w, spans: [LayerSpan(start: 0, count: T)], mask: .all,
                        taps: LayerTaps(observers: [b.saved], layer: l, T: T, heads: plans[l].heads.count, headDim: config.headDim))
                }
            }
            try Profile.measure("backward") { try backwardLayer(w, layer: l, saved: b.saved, dx: dx, T: T, scratch: b, observer: observer) }
        }
    }

    /// dHidden `[n, C]` of the mean NLL of `targets` given the last layer's output rows `[n, C]` that predict
    /// them: final norm, LM head, softmax over the full vocabulary (as HF's loss), and back.
    func lossGradient(hidden h: [Float], targets: [Int]) -> [Float] {
        let n = targets.count, C = config.hiddenSize, E = config.wordEmbedProjDim, V = config.vocabSize
        var normStats: ([Float], [Float])?
        var normed = h
        if let finalNorm {
            var mean = [Float](repeating: 0, count: n), rstd = [Float](repeating: 0, count: n)
            layerNorm(out: &normed, mean: &mean, rstd: &rstd, input: h, weight: finalNorm.weight, bias: finalNorm.bias, T: n, C: C)
            normStats = (mean, rstd)
        }
        var dLogits = Profile.measure("loss lm head") { unembed(normed, rows: n) }
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
            dLogits.withUnsafeBufferPointer { d in
                dFeatures.withUnsafeMutableBufferPointer { backend.unembedBackward(d.baseAddress!, rows: n, into: $0.baseAddress!) }
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
