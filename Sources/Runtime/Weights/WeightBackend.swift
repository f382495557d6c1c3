/// How a model's weights multiply: one small protocol with an fp32 implementation (OpenBLAS on fp32 rows,
/// exact against HF) and a bf16 one (weights packed for the bf16 kernel, activations rounded), chosen once
/// when the model opens. The layer code calls these operations and nothing else, so it has no precision
/// branch; packing, caches of widened or packed weights and their keys live behind the protocol. A new
/// backend (int8, AMX, an fp32 kernel of our own) is a new type here, and no layer code changes.
import Foundation

/// The role a weight plays in a layer (or, with no layer, in the model): the typed key of every cache.
public enum WeightRole: String, Sendable, Hashable {
    /// q, k and v stacked by rows `[3·H·D, C]`.
    case qkv
    case outProj, outBias
    case fc1, fc2
    case attentionNormWeight, attentionNormBias, ffnNormWeight, ffnNormBias
    /// `embed_tokens` `[V, E]`: the input embedding and the tied LM head.
    case embedding
}

/// A weight as a cache keys it: its layer (nil for model-level weights), its role, and whether it is held
/// transposed (the backward's input gradient multiplies by W, not Wᵀ).
public struct WeightKey: Hashable, Sendable {
    public var layer: Int?
    public var role: WeightRole
    public var transposed = false
    /// A selection of the matrix's rows or columns (a mask's heads left out); 0 for the whole matrix.
    public var variant = 0
    public init(layer: Int?, role: WeightRole, transposed: Bool = false, variant: Int = 0) {
        self.layer = layer
        self.role = role
        self.transposed = transposed
        self.variant = variant
    }
}

/// A GEMM's activations: fp32 rows `[M, K]`, or already rounded and laid out for the bf16 kernel by the step that
/// produced them (a layer norm writing its output straight into the kernel's layout).
enum GEMMInput {
    case floats(UnsafePointer<Float>)
    case prepared(PreparedActivations)
}

/// The operations of one precision on a model's weights.
protocol WeightBackend: AnyObject {
    var precision: Precision { get }
    /// The layer norm of input `[T, C]` as the next projection's input: written to `out` (fp32), or straight
    /// into the kernel's packed activations (bf16).
    func normalized(_ n: BoundNorm?, input: UnsafePointer<Float>, T: Int, into out: UnsafeMutablePointer<Float>) -> GEMMInput
    /// out `[M, ΣNᵢ]` = input `[M, K]` · [W₁; W₂; …]ᵀ + [b₁; b₂; …] (the bound weights stacked by rows). Overwrites.
    func project(_ p: BoundLinear, layer: Int, out: UnsafeMutablePointer<Float>, input: GEMMInput, M: Int, K: Int)
    /// out `[M, C]` = fc2(max(0, fc1(input `[M, C]`))). With `hidden`, it is shown the `[M, F]` ReLU output
    /// (then the backend computes it whole); without, a backend may fuse the steps. Overwrites.
    func feedForward(
        fc1: BoundLinear, fc2: BoundLinear, layer: Int, out: UnsafeMutablePointer<Float>, input: GEMMInput, M: Int,
        hidden: ((UnsafePointer<Float>, Int) throws -> Void)?) throws
    /// dInput `[T, K]` = dOut `[T, ΣNᵢ]` · W (HF `Linear`'s input gradient); `accumulate` adds instead.
    func projectBackward(
        _ p: BoundLinear, layer: Int, dOut: UnsafePointer<Float>, T: Int, K: Int, into dInput: UnsafeMutablePointer<Float>,
        accumulate: Bool)
    /// logits `[R, V]` = features `[R, E]` · embed_tokensᵀ (the tied LM head). Overwrites.
    func unembed(_ features: UnsafePointer<Float>, rows: Int, into logits: UnsafeMutablePointer<Float>)
    /// dFeatures `[n, E]` = dLogits `[n, V]` · embed_tokens. Overwrites.
    func unembedBackward(_ dLogits: UnsafePointer<Float>, rows: Int, into dFeatures: UnsafeMutablePointer<Float>)
    /// A run that will use every layer's weights several times starts (`true`) or ends (`false`): a backend may
    /// keep what it derives from them (widened or packed copies) for the run when they fit its limit.
    func reuse(_ on: Bool)
}

extension OPTModel {
    /// The backend of `precision` for this model.
    static func backend(_ precision: Precision, model: OPTModel) -> any WeightBackend {
        switch precision {
        case .fp32: return FP32Weights(model: model)
        case .bf16: return BF16Weights(model: model)
        }
    }
}
