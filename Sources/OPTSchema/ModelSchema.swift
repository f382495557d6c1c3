/// The canonical tensors of an OPT model, in file (= execution) order, given its config and per-layer plans.
/// Names are HF's with the `model.decoder.` prefix removed (see `formats/HRZ.md` §5).
public struct ExpectedTensor: Equatable, Sendable {
    public var name: String
    /// Outer → inner, as HF (`fc1.weight` is `[F, C]`).
    public var shape: [Int]
    public var layer: Int?
}

public enum ModelSchema {
    /// Every tensor a model with these plans must contain, in the order the file stores them.
    ///
    /// Pruning rules encoded here: a layer with H heads has `q/k/v_proj.weight` `[H·D, C]` and
    /// `out_proj.weight` `[C, H·D]`; with H = 0 those and the q/k/v biases are absent but `out_proj.bias` stays.
    /// A pre-LN layer without its FFN drops fc1, fc2 and the FFN's layer norm; post-LN keeps that norm,
    /// because it is applied to the residual stream after the block. Likewise the attention norm.
    public static func tensors(config c: OPTConfig, layers: [LayerPlan]) -> [ExpectedTensor] {
        var out: [ExpectedTensor] = []
        func add(_ name: String, _ shape: [Int], _ layer: Int? = nil) { out.append(ExpectedTensor(name: name, shape: shape, layer: layer)) }
        let C = c.hiddenSize, E = c.wordEmbedProjDim, D = c.headDim, F = c.ffnDim
        add("embed_tokens.weight", [c.vocabSize, E])
        add("embed_positions.weight", [c.maxPositionEmbeddings + 2, C])
        if c.hasProjections { add("project_in.weight", [C, E]) }
        for (l, plan) in layers.enumerated() {
            let p = "layers.\(l)."
            let HD = plan.heads.count * D
            let affine = c.layerNormElementwiseAffine
            let bias = c.enableBias
            if affine && (HD > 0 || !c.doLayerNormBefore) {
                add(p + "self_attn_layer_norm.weight", [C], l); add(p + "self_attn_layer_norm.bias", [C], l)
            }
            if HD > 0 {
                for proj in ["q_proj", "k_proj", "v_proj"] {
                    add(p + "self_attn.\(proj).weight", [HD, C], l)
                    if bias { add(p + "self_attn.\(proj).bias", [HD], l) }
                }
                add(p + "self_attn.out_proj.weight", [C, HD], l)
            }
            if bias { add(p + "self_attn.out_proj.bias", [C], l) }
            if affine && (plan.ffn || !c.doLayerNormBefore) {
                add(p + "final_layer_norm.weight", [C], l); add(p + "final_layer_norm.bias", [C], l)
            }
            if plan.ffn {
                add(p + "fc1.weight", [F, C], l); if bias { add(p + "fc1.bias", [F], l) }
                add(p + "fc2.weight", [C, F], l); if bias { add(p + "fc2.bias", [C], l) }
            }
        }
        if c.hasFinalLayerNorm && c.layerNormElementwiseAffine {
            add("final_layer_norm.weight", [C]); add("final_layer_norm.bias", [C])
        }
        if c.hasProjections { add("project_out.weight", [E, C]) }
        return out
    }
}

/// Which original heads a layer still has, and whether it keeps its FFN. Pruned models are just data.
public struct LayerPlan: Codable, Sendable, Equatable {
    /// Original head indices present, ascending. H = `heads.count`; 0 is allowed.
    public var heads: [Int]
    /// Whether the layer has fc1/fc2 (and, for pre-LN models, its FFN layer norm).
    public var ffn: Bool

    public init(heads: [Int], ffn: Bool) {
        self.heads = heads
        self.ffn = ffn
    }
}
