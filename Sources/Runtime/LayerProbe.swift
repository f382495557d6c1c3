/// Probes of single layers, for analyses that read a layer on an input of their own (the copying probe runs
/// every layer on the token embeddings alone): the layer runs through the walk's own code on that input, and
/// its q/k/v are read at the walk's qkv tap; its out_proj in fp32 and the tied LM head complete the probe.
import Foundation
import HRZFormat
import Basics

/// Layer l's attention on given rows `[T, C]`: q/k/v after its attention layer norm (q scaled by 1/√D), and
/// out_proj `[C, H·D]` with its bias `[C]`, all fp32.
public struct AttentionProbe: Sendable {
    public let qkv: [Float]
    public let outWeight: [Float]
    public let outBias: [Float]
    public let heads: Int
    public let headDim: Int

    /// `[T, C]`: each position's own value vector of head k through that head's columns of out_proj, plus
    /// out_proj's bias (the paper's copying probe).
    public func ownValueOutput(head k: Int, T: Int) -> [Float] {
        let D = headDim, HD = heads * D, C = outBias.count
        var values = [Float](repeating: 0, count: T * C)
        qkv.withUnsafeBufferPointer { q in
            outWeight.withUnsafeBufferPointer { wo in
                BLAS.gemm(
                    transB: true, M: T, N: C, K: D, a: q.baseAddress! + 2 * HD + k * D, lda: 3 * HD, b: wo.baseAddress! + k * D, ldb: HD, c: &values, ldc: C)
            }
        }
        for t in 0..<T { for c in 0..<C { values[t * C + c] += outBias[c] } }
        return values
    }
}

/// Keeps one layer's qkv tap.
private final class QKVKeeper: ForwardObserver {
    var qkv: [Float] = []
    func wants(_ point: TapPoint, layer: Int) -> Bool { point == .qkv }
    func observe(_ tap: Tap) throws { qkv = Array(UnsafeBufferPointer(start: tap.values, count: tap.count)) }
}

/// Holds the model (its run lock) while probing; its weight backend keeps what it derives for the probe's run.
public final class LayerProber {
    let model: OPTModel

    init(model: OPTModel) { self.model = model }

    /// x `[T, C]` = token embeddings plus positions 0…T−1 (through `project_in` if present).
    public func embed(_ ids: [Int]) throws -> [Float] {
        try model.validate([SequenceInput(tokens: ids, logits: .none)], options: ForwardOptions())
        var x = [Float](repeating: 0, count: ids.count * model.config.hiddenSize)
        x.withUnsafeMutableBufferPointer { model.embed(tokens: ids, positions: Array(0..<ids.count), into: $0.baseAddress!) }
        return x
    }

    /// Layer l's attention on rows `x` (one sequence of T tokens); nil for a layer without heads. The layer
    /// runs on a copy of `x` through the walk (its FFN skipped: nothing after attention is read).
    public func attention(layer l: Int, input x: [Float], T: Int) throws -> AttentionProbe? {
        let L = model.config.numHiddenLayers, D = model.config.headDim
        let H = model.plans[l].heads.count, HD = H * D
        guard HD > 0 else { return nil }
        let w = try model.stream.layer(l, next: l + 1 < L ? l + 1 : nil)
        let lw = try model.bind(w, layer: l)
        guard let outWeights = lw.outProj else { return nil }
        let keeper = QKVKeeper()
        var copy = x
        // The probe's attention always reads the layer-normed input: pre-LN layers norm it themselves; a post-LN
        // layer's q/k/v read its raw input, so the probe norms it first.
        if !model.config.doLayerNormBefore { x.withUnsafeBufferPointer { model.norm(lw.attentionNorm, out: &copy, input: $0.baseAddress!, T: T) } }
        try copy.withUnsafeMutableBufferPointer { buffer in
            try model.forwardLayer(
                x: buffer.baseAddress!, T: T, layer: l, weights: w, spans: [LayerSpan(start: 0, count: T)],
                mask: LayerMask(heads: nil, ffn: false), taps: LayerTaps(observers: [keeper], layer: l, T: T, heads: H, headDim: D))
        }
        let outWeight = model.scratch.widened.get(outWeights.parts[0].weight, key: WeightKey(layer: l, role: .outProj))
        let outBias =
            lw.outBias.map { model.scratch.widened.get($0, key: WeightKey(layer: l, role: .outBias)) } ?? [Float](repeating: 0, count: model.config.hiddenSize)
        return AttentionProbe(qkv: keeper.qkv, outWeight: outWeight, outBias: outBias, heads: H, headDim: D)
    }

    /// logits `[rows, V]` = project_out(hidden `[rows, C]`) · embed_tokensᵀ (no final norm).
    public func unembed(_ hidden: [Float], rows: Int) -> [Float] { model.unembed(hidden, rows: rows) }
}

extension OPTModel {
    /// Runs `body` with a prober that holds this model until it returns.
    public func withLayerProber<R>(_ body: (LayerProber) throws -> R) throws -> R {
        try exclusive {
            backend.reuse(true)
            defer { backend.reuse(false) }
            return try body(LayerProber(model: self))
        }
    }
}
