/// The JSON index of an `.hrz` file: model metadata plus the tensor table. See `formats/HRZ.md` §4–§5.
import OPTSchema

/// One input file the model was converted from.
public struct SourceFile: Codable, Sendable, Equatable {
    public var file: String
    public var bytes: Int
    public var sha256: String

    public init(file: String, bytes: Int, sha256: String) {
        self.file = file
        self.bytes = bytes
        self.sha256 = sha256
    }
}

/// Where the weights came from: the sources, the tool that wrote them, and any pruning applied since.
public struct Provenance: Codable, Sendable, Equatable {
    /// e.g. `headroom 0.1.0`.
    public var converter: String
    public var sources: [SourceFile]
    /// The dtype argument given to convert (`keep`, `f16`, `bf16`, `f32`) or `synthetic`.
    public var dtype: String
    /// Pruning steps, oldest first: each names the parent's content id and its plan as JSON text.
    public var lineage: [LineageStep]

    public init(converter: String, sources: [SourceFile], dtype: String, lineage: [LineageStep] = []) {
        self.converter = converter
        self.sources = sources
        self.dtype = dtype
        self.lineage = lineage
    }
}

public struct LineageStep: Codable, Sendable, Equatable {
    /// Content id (`HRZReader.contentID`) of the model that was pruned.
    public var parent: String
    /// The plan that was applied, as the JSON the pruner read.
    public var plan: String

    public init(parent: String, plan: String) {
        self.parent = parent
        self.plan = plan
    }
}

/// The tokenizer files embedded verbatim, so a `.hrz` is self-contained.
public struct EmbeddedTokenizer: Codable, Sendable, Equatable {
    public var vocab: String
    public var merges: String

    enum CodingKeys: String, CodingKey {
        case vocab = "vocab.json"
        case merges = "merges.txt"
    }

    public init(vocab: String, merges: String) {
        self.vocab = vocab
        self.merges = merges
    }
}

/// Model-level metadata: everything in the index except the tensor table.
public struct Metadata: Codable, Sendable, Equatable {
    public var config: OPTConfig
    /// One entry per decoder layer, `config.numHiddenLayers` of them.
    public var layers: [LayerPlan]
    public var tokenizer: EmbeddedTokenizer?
    public var provenance: Provenance

    public init(config: OPTConfig, layers: [LayerPlan], tokenizer: EmbeddedTokenizer?, provenance: Provenance) {
        self.config = config
        self.layers = layers
        self.tokenizer = tokenizer
        self.provenance = provenance
    }

    /// The plan of an unpruned model: every head, every FFN.
    public static func fullLayers(_ config: OPTConfig) -> [LayerPlan] {
        Array(repeating: LayerPlan(heads: Array(0..<config.numAttentionHeads), ffn: true), count: config.numHiddenLayers)
    }
}

/// How one plane of a chunk is stored.
public enum Codec: String, Codable, Sendable {
    case raw, zstd
}

/// One plane of a chunk: for 16-bit tensors plane 0 holds the high bytes and plane 1 the low bytes.
public struct PlaneInfo: Codable, Sendable, Equatable {
    public var codec: Codec
    /// Bytes the plane occupies in the file.
    public var length: Int

    public init(codec: Codec, length: Int) {
        self.codec = codec
        self.length = length
    }
}

/// An independently decodable run of a tensor's elements.
public struct ChunkInfo: Codable, Sendable, Equatable {
    /// Absolute file offset; a multiple of 4096.
    public var offset: Int
    /// Elements in this chunk.
    public var elements: Int
    /// Planes stored back to back from `offset`.
    public var planes: [PlaneInfo]
    /// xxHash64 (seed 0) of the chunk's stored bytes (all planes), as 16 lowercase hex digits.
    public var xxh64: String

    public init(offset: Int, elements: Int, planes: [PlaneInfo], xxh64: String) {
        self.offset = offset
        self.elements = elements
        self.planes = planes
        self.xxh64 = xxh64
    }

    /// Stored bytes: the sum of the plane lengths.
    public var storedLength: Int { planes.reduce(0) { $0 + $1.length } }
}

/// One tensor: its canonical name, dtype, shape `[outer … inner]` as HF has it, layer, and chunks.
public struct TensorInfo: Codable, Sendable, Equatable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    /// Decoder layer index, or nil for model-level tensors (embeddings, final norm, projections).
    public var layer: Int?
    public var chunks: [ChunkInfo]

    public init(name: String, dtype: DType, shape: [Int], layer: Int?, chunks: [ChunkInfo]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.layer = layer
        self.chunks = chunks
    }

    /// Product of the shape (1 for a scalar).
    public var elementCount: Int { shape.reduce(1, *) }
    /// Bytes when decoded.
    public var byteCount: Int { elementCount * dtype.size }
    /// Bytes in the file.
    public var storedByteCount: Int { chunks.reduce(0) { $0 + $1.storedLength } }
}

/// The whole JSON index.
public struct HRZIndex: Codable, Sendable, Equatable {
    public var metadata: Metadata
    /// In file order: model-level inputs, then layer 0 … L−1 in execution order, then model-level outputs.
    public var tensors: [TensorInfo]

    public init(metadata: Metadata, tensors: [TensorInfo]) {
        self.metadata = metadata
        self.tensors = tensors
    }
}
