/// The OPT architecture, field for field as HF `OPTConfig` (`configuration_opt.py`) names it.
///
/// Stored verbatim in every `.hrz` under `config`, with HF's snake_case keys, so a Python reader
/// can hand it to `transformers.OPTConfig(**config)`.
public struct OPTConfig: Codable, Sendable, Equatable {
    /// V: rows of `embed_tokens` (50272 for every released OPT; the real vocabulary is 50265).
    public var vocabSize: Int
    /// C: width of the residual stream.
    public var hiddenSize: Int
    /// L: decoder layers.
    public var numHiddenLayers: Int
    /// Heads per layer in the unpruned model; D = C / heads.
    public var numAttentionHeads: Int
    /// F: width of the FFN.
    public var ffnDim: Int
    /// Learned positions; `embed_positions` has this many rows plus OPT's offset of 2.
    public var maxPositionEmbeddings: Int
    /// E: width of token embeddings; differs from C only in opt-350m, which then has `project_in`/`project_out`.
    public var wordEmbedProjDim: Int
    /// Pre-LN (true: 125m, 1.3b … 66b) or post-LN (false: 350m).
    public var doLayerNormBefore: Bool
    /// When true, a pre-LN model has no `final_layer_norm` after the last layer.
    public var removeFinalLayerNorm: Bool
    /// Whether linear layers carry biases.
    public var enableBias: Bool
    /// Whether layer norms carry weight and bias.
    public var layerNormElementwiseAffine: Bool
    /// Only `relu` is supported; every released OPT uses it.
    public var activationFunction: String
    public var padTokenId: Int
    public var bosTokenId: Int
    public var eosTokenId: Int

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size"
        case hiddenSize = "hidden_size"
        case numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads"
        case ffnDim = "ffn_dim"
        case maxPositionEmbeddings = "max_position_embeddings"
        case wordEmbedProjDim = "word_embed_proj_dim"
        case doLayerNormBefore = "do_layer_norm_before"
        case removeFinalLayerNorm = "_remove_final_layer_norm"
        case enableBias = "enable_bias"
        case layerNormElementwiseAffine = "layer_norm_elementwise_affine"
        case activationFunction = "activation_function"
        case padTokenId = "pad_token_id"
        case bosTokenId = "bos_token_id"
        case eosTokenId = "eos_token_id"
    }

    public init(
        vocabSize: Int = 50272, hiddenSize: Int, numHiddenLayers: Int, numAttentionHeads: Int,
        ffnDim: Int, maxPositionEmbeddings: Int = 2048, wordEmbedProjDim: Int? = nil,
        doLayerNormBefore: Bool = true, removeFinalLayerNorm: Bool = false, enableBias: Bool = true,
        layerNormElementwiseAffine: Bool = true, activationFunction: String = "relu",
        padTokenId: Int = 1, bosTokenId: Int = 2, eosTokenId: Int = 2
    ) {
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.ffnDim = ffnDim
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.wordEmbedProjDim = wordEmbedProjDim ?? hiddenSize
        self.doLayerNormBefore = doLayerNormBefore
        self.removeFinalLayerNorm = removeFinalLayerNorm
        self.enableBias = enableBias
        self.layerNormElementwiseAffine = layerNormElementwiseAffine
        self.activationFunction = activationFunction
        self.padTokenId = padTokenId
        self.bosTokenId = bosTokenId
        self.eosTokenId = eosTokenId
    }

    /// Decodes with HF's defaults for every field that `OPTConfig.__init__` defaults, so a
    /// config.json written by any transformers version reads the same way.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
        numHiddenLayers = try c.decode(Int.self, forKey: .numHiddenLayers)
        numAttentionHeads = try c.decode(Int.self, forKey: .numAttentionHeads)
        ffnDim = try c.decode(Int.self, forKey: .ffnDim)
        vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? 50272
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? 2048
        wordEmbedProjDim = try c.decodeIfPresent(Int.self, forKey: .wordEmbedProjDim) ?? hiddenSize
        doLayerNormBefore = try c.decodeIfPresent(Bool.self, forKey: .doLayerNormBefore) ?? true
        removeFinalLayerNorm = try c.decodeIfPresent(Bool.self, forKey: .removeFinalLayerNorm) ?? false
        enableBias = try c.decodeIfPresent(Bool.self, forKey: .enableBias) ?? true
        layerNormElementwiseAffine = try c.decodeIfPresent(Bool.self, forKey: .layerNormElementwiseAffine) ?? true
        activationFunction = try c.decodeIfPresent(String.self, forKey: .activationFunction) ?? "relu"
        padTokenId = try c.decodeIfPresent(Int.self, forKey: .padTokenId) ?? 1
        bosTokenId = try c.decodeIfPresent(Int.self, forKey: .bosTokenId) ?? 2
        eosTokenId = try c.decodeIfPresent(Int.self, forKey: .eosTokenId) ?? 2
    }

    /// D: per-head width.
    public var headDim: Int { hiddenSize / numAttentionHeads }
    /// Whether `project_in` / `project_out` exist.
    public var hasProjections: Bool { wordEmbedProjDim != hiddenSize }
    /// Whether the decoder ends with `final_layer_norm` (HF: `do_layer_norm_before and not _remove_final_layer_norm`).
    public var hasFinalLayerNorm: Bool { doLayerNormBefore && !removeFinalLayerNorm }

    /// Problems that make the config unusable, as (HF key, reason) pairs; empty when sound.
    public func problems() -> [(key: String, reason: String)] {
        var out: [(String, String)] = []
        func positive(_ value: Int, _ key: CodingKeys) {
            if value <= 0 { out.append((key.rawValue, "must be positive, got \(value)")) }
        }
        positive(vocabSize, .vocabSize); positive(hiddenSize, .hiddenSize)
        positive(numHiddenLayers, .numHiddenLayers); positive(numAttentionHeads, .numAttentionHeads)
        positive(ffnDim, .ffnDim); positive(maxPositionEmbeddings, .maxPositionEmbeddings)
        positive(wordEmbedProjDim, .wordEmbedProjDim)
        if numAttentionHeads > 0, hiddenSize % numAttentionHeads != 0 {
            out.append(("num_attention_heads", "hidden_size \(hiddenSize) is not divisible by \(numAttentionHeads) heads"))
        }
        if activationFunction != "relu" {
            out.append(("activation_function", "unsupported activation '\(activationFunction)' (OPT uses relu)"))
        }
        // The special tokens are rows of the embedding: BOS starts the induction probes, EOS stops generation.
        for (value, key) in [(bosTokenId, CodingKeys.bosTokenId), (eosTokenId, .eosTokenId), (padTokenId, .padTokenId)]
        where vocabSize > 0 && !(0..<vocabSize).contains(value) {
            out.append((key.rawValue, "\(value) is outside the vocabulary (0..<\(vocabSize))"))
        }
        let limit = 1 << 20
        for (value, key) in [
            (vocabSize, CodingKeys.vocabSize), (hiddenSize, .hiddenSize), (ffnDim, .ffnDim),
            (numHiddenLayers, .numHiddenLayers), (maxPositionEmbeddings, .maxPositionEmbeddings),
        ]
        where value > limit {
            out.append((key.rawValue, "implausibly large (\(value))"))
        }
        return out
    }
}
