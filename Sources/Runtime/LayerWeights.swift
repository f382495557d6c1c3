/// One layer's weights bound by role once per use of a decoded layer, so the layer's arithmetic never looks a
/// tensor up by name and a missing tensor is reported once, here. Which parts exist follows the layer plan:
/// no heads, no q/k/v/out_proj matrices (out_proj.bias still adds); no FFN, no fc1/fc2 (and, pre-LN, no FFN
/// layer norm). This is also where another weight representation (packed 16-bit panels) would be bound.
import HRZFormat
import OPTSchema

/// A projection: weights stacked by rows `[ΣNᵢ, K]` as one logical matrix (q, k and v fused), and their biases.
struct BoundLinear {
    /// The memo key of the stacked fp32 copy (`WidenedLayer`), unique within the layer.
    let key: String
    let parts: [(weight: DecodedLayer.Entry, rows: Int)]
    /// One per part; nil where the model has no biases.
    let biases: [DecodedLayer.Entry?]
    var rows: Int { parts.reduce(0) { $0 + $1.rows } }
}

/// A layer norm's affine parameters.
struct BoundNorm {
    let key: String
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
        func linear(_ names: [String]) throws -> BoundLinear {
            let weights = try names.map { try entry($0 + ".weight") }
            let biases = try names.map { config.enableBias ? try entry($0 + ".bias") : nil }
            return BoundLinear(key: names.joined(separator: "+") + ".weight", parts: weights.map { ($0, $0.info.shape[0]) }, biases: biases)
        }
        func norm(_ name: String) throws -> BoundNorm? {
            guard config.layerNormElementwiseAffine else { return nil }
            return BoundNorm(key: name, weight: try entry(name + ".weight"), bias: try entry(name + ".bias"))
        }
        let heads = !plans[l].heads.isEmpty, ffn = plans[l].ffn
        return LayerWeights(
            index: w.index,
            attentionNorm: heads || !config.doLayerNormBefore ? try norm("self_attn_layer_norm") : nil,
            ffnNorm: ffn || !config.doLayerNormBefore ? try norm("final_layer_norm") : nil,
            qkv: heads ? try linear(["q_proj", "k_proj", "v_proj"].map { "self_attn.\($0)" }) : nil,
            outProj: heads ? try linear(["self_attn.out_proj"]) : nil,
            outBias: config.enableBias ? try entry("self_attn.out_proj.bias") : nil,
            fc1: ffn ? try linear(["fc1"]) : nil,
            fc2: ffn ? try linear(["fc2"]) : nil)
    }
}
