/// An OPT model opened from an `.hrz`: config, per-layer plans, resident model-level weights, and a layer stream.
/// Reference: HF `modeling_opt.py`, `OPTDecoder` (embeddings, final norm, projections) and `OPTForCausalLM`.
import Foundation
import HRZFormat
import OPTSchema
import Files

/// Sendable because runs take turns: every public run (forward, generate, the reverse walk, layer
/// probes) holds `runLock`, so the scratch buffers and the layer stream belong to one run at a time and a
/// second thread's call waits instead of racing.
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
    /// The arithmetic of the large GEMMs (projections, LM head, and their input gradients); fixed at opening.
    public let precision: Precision
    /// The bf16 kernel this model's GEMMs use (tests run both paths on one machine).
    var bf16Kernel = BF16Kernel.current
    /// In bf16, the steps that feed a GEMM write its prepared activations directly: pre-LN layer norms for q/k/v
    /// and fc1, and fc1's epilogue for fc2 when no tap reads the hidden state (tests turn it off to compare).
    var fusesIntoGEMMs = true
    /// In bf16, every layer's packed weights are kept when they total at most this (default 6 GiB: opt-2.7b);
    /// a bigger model packs each matrix for its one use.
    public var packedLimit = 6 << 30
    /// How the weights multiply in `precision`, chosen here once (`WeightBackend`).
    lazy var backend: any WeightBackend = Self.backend(precision, model: self)
    /// Held for the whole of each public run (recursive: a run may call another, e.g. a reverse walk a forward).
    private let runLock = NSRecursiveLock()

    func exclusive<R>(_ body: () throws -> R) rethrows -> R {
        runLock.lock()
        defer { runLock.unlock() }
        return try body()
    }
    /// Most bytes of fp32 weights widened at once: 16-bit matrices are widened and multiplied in row blocks
    /// of this size (256 MiB: one block per matrix up to OPT-6.7B, a few for 66B's fc1 and fc2).
    public var widenBlockBytes = 256 << 20
    /// Bytes of packed bf16 weights a projection holds at once when packs are not kept (a streamed big model).
    public var packBlockBytes = 256 << 20

    /// Opens `path`. `resident` keeps all decoded layers in memory after first use; nil decides by size
    /// (resident when the decoded layers take at most `residentLimit` bytes).
    /// `memoryLimit` (default: this machine's physical memory) bounds what opening may allocate: a small file
    /// whose zero-filled chunks decode to hundreds of GB is refused by name instead of exhausting memory.
    public init(
        path: String, resident: Bool? = nil, residentLimit: Int = 2 << 30,
        schedule: LayerStream.Schedule? = nil, memoryLimit: Int? = nil, precision: Precision = .fp32
    ) throws {
        self.precision = precision
        reader = try HRZReader(path: path)
        config = reader.config
        plans = reader.metadata.layers
        try Self.checkSchema(reader)
        let layerBytes = reader.tensors.filter { $0.layer != nil }.reduce(0) { $0 + $1.byteCount }
        let keepsLayers = resident ?? (layerBytes <= residentLimit)
        try Self.checkMemory(reader, residentLayers: keepsLayers, limit: memoryLimit ?? Self.physicalMemory)
        stream = LayerStream(
            reader: reader, resident: keepsLayers,
            schedule: schedule ?? .automatic(threads: Threads.count))
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
                throw HRZError(
                    .malformed("shape \(t.shape) disagrees with the config and layer plan, which imply \(e.shape)"),
                    file: reader.path, tensor: e.name)
            }
        }
        if reader.tensors.count != expected.count {
            let names = Set(expected.map(\.name))
            let extra = reader.tensors.first { !names.contains($0.name) }!
            throw HRZError(.malformed("tensor is not part of an OPT model with this config and layer plan"), file: reader.path, tensor: extra.name)
        }
    }

    /// This machine's physical memory in bytes.
    public static var physicalMemory: Int { Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE))) }

    /// The bytes the model holds once open (model-level tensors decoded, widened where the runtime widens them,
    /// and the decoded layers it keeps: all when resident, else two) must fit in `limit`; the error names the
    /// largest tensor. Sizes come from the tensors in the file, which `checkSchema` has matched to the config.
    static func checkMemory(_ reader: HRZReader, residentLayers: Bool, limit: Int) throws {
        var needs: [(name: String, bytes: Int)] = []
        for t in reader.tensors where t.layer == nil {
            needs.append((t.name, t.name == "embed_tokens.weight" ? t.byteCount : t.elementCount * 4))
        }
        var layers = [Int](repeating: 0, count: reader.config.numHiddenLayers)
        for t in reader.tensors { if let l = t.layer { layers[l] += t.byteCount } }
        let layerBytes = residentLayers ? layers.reduce(0, +) : 2 * (layers.max() ?? 0)
        needs.append((residentLayers ? "all layers" : "two decoded layers", layerBytes))
        let total = needs.reduce(0) { $0 + $1.bytes }
        guard total <= limit else {
            let largest = needs.max { $0.bytes < $1.bytes }!
            throw HRZError(
                .malformed("opening needs \(total) bytes of memory (\(largest.name): \(largest.bytes)); this machine has \(limit)"),
                file: reader.path, tensor: largest.name.contains(".") ? largest.name : nil)
        }
    }

    /// Content id of the model file (see formats/HRZ.md §4).
    public var contentID: String { reader.contentID }

    /// Decoded bytes of all layers.
    public var layerBytes: Int { reader.tensors.filter { $0.layer != nil }.reduce(0) { $0 + $1.byteCount } }

    /// Elements of all layers' tensors.
    lazy var layerElements: Int = reader.tensors.filter { $0.layer != nil }.reduce(0) { $0 + $1.elementCount }
}
