/// Probes of single layers, for analyses that read a layer's attention directly rather than through a walk:
/// a layer's attention inputs for given rows, its out_proj in fp32, and the tied LM head.
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
}

/// Holds the model (its run lock) while probing, with the tied embedding widened once.
public final class LayerProber {
    let model: OPTModel
    let embedding: [Float]

    init(model: OPTModel) {
        self.model = model
        embedding = model.embeddingFloats()
    }

    /// x `[T, C]` = token embeddings plus positions 0…T−1 (through `project_in` if present).
    public func embed(_ ids: [Int]) throws -> [Float] {
        try model.validate([SequenceInput(tokens: ids, logits: .none)], options: ForwardOptions())
        var x = [Float](repeating: 0, count: ids.count * model.config.hiddenSize)
        x.withUnsafeMutableBufferPointer { model.embed(tokens: ids, positions: Array(0..<ids.count), into: $0.baseAddress!) }
        return x
    }

    /// Layer l's attention on rows `x`; nil for a layer without heads.
    public func attention(layer l: Int, input x: [Float], T: Int) throws -> AttentionProbe? {
        let L = model.config.numHiddenLayers, C = model.config.hiddenSize, D = model.config.headDim
        let w = try model.stream.layer(l, next: l + 1 < L ? l + 1 : nil)
        let H = model.plans[l].heads.count, HD = H * D
        let lw = try model.bind(w, layer: l)
        guard HD > 0, let qkvWeights = lw.qkv, let outWeights = lw.outProj else { return nil }
        var h = [Float](repeating: 0, count: T * C), qkv = [Float](repeating: 0, count: T * 3 * HD)
        x.withUnsafeBufferPointer { model.norm(lw.attentionNorm, out: &h, input: $0.baseAddress!, T: T) }
        h.withUnsafeBufferPointer { model.linear(qkvWeights, layer: l, out: &qkv, input: .floats($0.baseAddress!), M: T, K: C) }
        let scaling = 1 / Float(D).squareRoot()
        for t in 0..<T { for j in 0..<HD { qkv[t * 3 * HD + j] *= scaling } }
        let outWeight = model.scratch.widened.get(outWeights.parts[0].weight, layer: l, key: "self_attn.out_proj.weight")
        let outBias = lw.outBias.map { model.scratch.widened.get($0, layer: l, key: "self_attn.out_proj.bias") } ?? [Float](repeating: 0, count: C)
        return AttentionProbe(qkv: qkv, outWeight: outWeight, outBias: outBias, heads: H, headDim: D)
    }

    /// logits `[rows, V]` = project_out(hidden `[rows, C]`) · embed_tokensᵀ (no final norm).
    public func unembed(_ hidden: [Float], rows: Int) -> [Float] { model.unembed(hidden, rows: rows, embedding: embedding) }
}

extension OPTModel {
    /// Runs `body` with a prober that holds this model until it returns.
    public func withLayerProber<R>(_ body: (LayerProber) throws -> R) throws -> R {
        try exclusive { try body(LayerProber(model: self)) }
    }
}
