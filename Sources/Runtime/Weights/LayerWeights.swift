/// One layer's weights bound by role once per use of a decoded layer, so the layer's arithmetic never looks a
/// tensor up by name and a missing tensor is reported once, here. Which parts exist follows the layer plan:
/// no heads, no q/k/v/out_proj matrices (out_proj.bias still adds); no FFN, no fc1/fc2 (and, pre-LN, no FFN
/// layer norm). How the bound weights multiply is the model's `WeightBackend`.
import HRZFormat
import OPTSchema

/// A projection: weights stacked by rows `[ΣNᵢ, K]` as one logical matrix (q, k and v fused), and their biases.
/// A part may be a row range of its tensor, and the matrix may keep only some column ranges of every row: how
/// a mask's heads are left out of q/k/v (their rows) and out_proj (their columns) without copying a tensor.
struct BoundLinear {
    /// What the stacked matrix is, for the backends' caches (with the layer and `variant`: `WeightKey`).
    let role: WeightRole
    /// Rows `offset ..< offset + rows` of each tensor, stacked.
    let parts: [(weight: DecodedLayer.Entry, offset: Int, rows: Int)]
    /// One per part (the same row range); nil where the model has no biases.
    let biases: [DecodedLayer.Entry?]
    /// The column ranges kept of every row, or nil for all (then K is the tensors' row length).
    var columns: [Range<Int>]? = nil
    /// Which selection of rows and columns this is: 0 for the whole matrix.
    var variant = 0
    var rows: Int { parts.reduce(0) { $0 + $1.rows } }
    /// Whether it is one whole tensor (as stored).
    var isWholeTensor: Bool { parts.count == 1 && parts[0].offset == 0 && parts[0].rows == parts[0].weight.info.shape[0] && columns == nil }

    /// The rows of the heads `heads` (indices among the layer's present heads, ascending) of each part, every
    /// part being `H` heads of `D` rows (q, k and v): q/k/v without the other heads. Adjacent heads make one range.
    func selectingRows(ofHeads heads: [Int], headDim D: Int, variant: Int) -> BoundLinear {
        var ranges: [Range<Int>] = []
        for h in heads {
            if let last = ranges.last, last.upperBound == h * D { ranges[ranges.count - 1] = last.lowerBound..<(h + 1) * D } else { ranges.append(h * D..<(h + 1) * D) }
        }
        var newParts: [(weight: DecodedLayer.Entry, offset: Int, rows: Int)] = [], newBiases: [DecodedLayer.Entry?] = []
        for (part, bias) in zip(parts, biases) {
            for r in ranges {
                newParts.append((part.weight, part.offset + r.lowerBound, r.count))
                newBiases.append(bias)
            }
        }
        return BoundLinear(role: role, parts: newParts, biases: newBiases, columns: nil, variant: variant)
    }

    /// Only the input columns of the heads `heads`: out_proj without the other heads' inputs.
    func selectingColumns(ofHeads heads: [Int], headDim D: Int, variant: Int) -> BoundLinear {
        var ranges: [Range<Int>] = []
        for h in heads {
            if let last = ranges.last, last.upperBound == h * D { ranges[ranges.count - 1] = last.lowerBound..<(h + 1) * D } else { ranges.append(h * D..<(h + 1) * D) }
        }
        return BoundLinear(role: role, parts: parts, biases: biases, columns: ranges, variant: variant)
    }
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
            return BoundLinear(role: role, parts: weights.map { ($0, 0, $0.info.shape[0]) }, biases: biases)
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
