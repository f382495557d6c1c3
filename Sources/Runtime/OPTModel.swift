/// An OPT model opened from an `.hrz`: config, per-layer plans, resident model-level weights, and a layer stream.
/// Reference: HF `modeling_opt.py`, `OPTDecoder` (embeddings, final norm, projections) and `OPTForCausalLM`.
import Foundation
import HRZFormat

public final class OPTModel: @unchecked Sendable {
    public let reader: HRZReader
    public let config: OPTConfig
    public let plans: [LayerPlan]
    public let stream: LayerStream
    /// `embed_tokens.weight` `[V, E]` in its stored dtype: the input embedding and the tied LM head.
    let embedTokens: (info: TensorInfo, buffer: RawBuffer)
    /// `embed_positions.weight` `[P + 2, C]`, widened.
    let positions: [Float]
    /// `project_in.weight` `[C, E]` and `project_out.weight` `[E, C]`, when E ≠ C.
    let projectIn: [Float]?
    let projectOut: [Float]?
    /// `final_layer_norm` weight and bias `[C]`, when present.
    let finalNorm: (weight: [Float], bias: [Float])?
    let scratch = ForwardScratch()
    /// Most bytes of fp32 weights widened at once: 16-bit matrices are widened and multiplied in row blocks
    /// of this size (256 MiB: one block per matrix up to OPT-6.7B, a few for 66B's fc1 and fc2).
    public var widenBlockBytes = 256 << 20

    /// Opens `path`. `resident` keeps all decoded layers in memory after first use; nil decides by size
    /// (resident when the decoded layers take at most `residentLimit` bytes).
    public init(path: String, resident: Bool? = nil, residentLimit: Int = 2 << 30,
                schedule: LayerStream.Schedule? = nil) throws {
        reader = try HRZReader(path: path)
        config = reader.config
        plans = reader.metadata.layers
        try Self.checkSchema(reader)
        let layerBytes = reader.tensors.filter { $0.layer != nil }.reduce(0) { $0 + $1.byteCount }
        stream = LayerStream(reader: reader, resident: resident ?? (layerBytes <= residentLimit),
                             schedule: schedule ?? .automatic(threads: Runtime.threads))
        let scratch = ChunkScratch()
        let embedInfo = try reader.tensor("embed_tokens.weight")
        let embed = RawBuffer(embedInfo.byteCount)
        try reader.read(embedInfo, into: embed.pointer, scratch: scratch)
        embedTokens = (embedInfo, embed)
        positions = try reader.floats("embed_positions.weight", scratch: scratch)
        projectIn = config.hasProjections ? try reader.floats("project_in.weight", scratch: scratch) : nil
        projectOut = config.hasProjections ? try reader.floats("project_out.weight", scratch: scratch) : nil
        if config.hasFinalLayerNorm && config.layerNormElementwiseAffine {
            finalNorm = (try reader.floats("final_layer_norm.weight", scratch: scratch), try reader.floats("final_layer_norm.bias", scratch: scratch))
        } else {
            finalNorm = nil
        }
    }

    /// Every tensor the config and layer plans imply is present with the implied shape, and nothing else.
    static func checkSchema(_ reader: HRZReader) throws {
        let expected = ModelSchema.tensors(config: reader.config, layers: reader.metadata.layers)
        for e in expected {
            let t = try reader.tensor(e.name)
            guard t.shape == e.shape else {
                throw HRZError(.malformed("shape \(t.shape) disagrees with the config and layer plan, which imply \(e.shape)"),
                               file: reader.path, tensor: e.name)
            }
        }
        if reader.tensors.count != expected.count {
            let names = Set(expected.map(\.name))
            let extra = reader.tensors.first { !names.contains($0.name) }!
            throw HRZError(.malformed("tensor is not part of an OPT model with this config and layer plan"), file: reader.path, tensor: extra.name)
        }
    }

    /// Content id of the model file (see formats/HRZ.md §4).
    public var contentID: String { reader.contentID }

    /// Decoded bytes of all layers.
    public var layerBytes: Int { reader.tensors.filter { $0.layer != nil }.reduce(0) { $0 + $1.byteCount } }

    /// Elements of all layers' tensors.
    var layerElements: Int { reader.tensors.filter { $0.layer != nil }.reduce(0) { $0 + $1.elementCount } }
}
