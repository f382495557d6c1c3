/// One layer's weights bound by role once per use of a decoded layer, so the layer's arithmetic never looks a
/// tensor up by name and a missing tensor is reported once, here. Which parts exist follows the layer plan:
/// no heads, no q/k/v/out_proj matrices (out_proj.bias still adds); no FFN, no fc1/fc2 (and, pre-LN, no FFN
/// layer norm). How the bound weights multiply is the model's `WeightBackend`.
import HRZFormat
import OPTSchema

/// A projection: weights stacked by rows `[ΣNᵢ, K]` as one logical matrix (q, k and v fused), and their biases.
struct BoundLinear {
    /// What the stacked matrix is, for the backends' caches (with the layer: `WeightKey`).
    let role: WeightRole
    let parts: [(weight: DecodedLayer.Entry, rows: Int)]
    /// One per part; nil where the model has no biases.
    let biases: [DecodedLayer.Entry?]
    var rows: Int { parts.reduce(0) { $0 + $1.rows } }
}

/// A layer norm's affine parameters.
struct BoundNorm {
    /// The roles of its weight and bias.
    let weightRole: WeightRole, biasRole: WeightRole
    let weight: DecodedLayer.Entry
    let bias: DecodedLayer.Entry
}

struct LayerWeights {
    let index: Int
    /// nil when the model's norms have no affine parameters (then they normalise only).
    let attentionNorm: BoundNorm?
    let ffnNorm: BoundNorm?
    /// nil when the layer has no heads.
    let qkv: BoundLinear?
    let outProj: BoundLinear?
    /// out_proj's bias, present with or without heads when the model has biases.
    let outBias: DecodedLayer.Entry?
    /// nil when the layer has no FFN.
    let fc1: BoundLinear?
    let fc2: BoundLinear?
}

extension OPTModel {
    /// Binds layer `l`'s decoded tensors by role; throws naming the first tensor the plan needs and the file lacks.
    func bind(_ w: DecodedLayer, layer l: Int) throws -> LayerWeights {
        func entry(_ name: String) throws -> DecodedLayer.Entry {
            guard let e = w.entry(name) else { throw missing(w, name) }
            return e
        }
        func linear(_ names: [String], _ role: WeightRole) throws -> BoundLinear {
            let weights = try names.map { try entry($0 + ".weight") }
            let biases = try names.map { config.enableBias ? try entry($0 + ".bias") : nil }
            return BoundLinear(role: role, parts: weights.map { ($0, $0.info.shape[0]) }, biases: biases)
        }
        func norm(_ name: String, _ weight: WeightRole, _ bias: WeightRole) throws -> BoundNorm? {
            guard config.layerNormElementwiseAffine else { return nil }
            return BoundNorm(weightRole: weight, biasRole: bias, weight: try entry(name + ".weight"), bias: try entry(name + ".bias"))
        }
        let heads = !plans[l].heads.isEmpty, ffn = plans[l].ffn
        return LayerWeights(
            index: w.index,
            attentionNorm: heads || !config.doLayerNormBefore ? try norm("self_attn_layer_norm", .attentionNormWeight, .attentionNormBias) : nil,
            ffnNorm: ffn || !config.doLayerNormBefore ? try norm("final_layer_norm", .ffnNormWeight, .ffnNormBias) : nil,
            qkv: heads ? try linear(["q_proj", "k_proj", "v_proj"].map { "self_attn.\($0)" }, .qkv) : nil,
            outProj: heads ? try linear(["self_attn.out_proj"], .outProj) : nil,
            outBias: config.enableBias ? try entry("self_attn.out_proj.bias") : nil,
            fc1: ffn ? try linear(["fc1"], .fc1) : nil,
            fc2: ffn ? try linear(["fc2"], .fc2) : nil)
    }
}
