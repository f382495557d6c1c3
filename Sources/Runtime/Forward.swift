/// The forward pass over a batch of packed sequences, layer-major: each layer's weights are decoded once per
/// pass and applied to every sequence, then released. Reference: HF `OPTForCausalLM.forward`.
import Foundation
import HRZFormat
import OPTSchema

/// Which positions of a sequence need logits. Scoring needs a few, not all.
public enum LogitsRequest: Equatable, Sendable {
    case none, last, all
    case positions([Int])

    func rows(_ count: Int) -> [Int] {
        switch self {
        case .none: return []
        case .last: return count > 0 ? [count - 1] : []
        case .all: return Array(0..<count)
        case .positions(let p): return p
        }
    }
}

/// One sequence of a batch. With `prefix`, its tokens continue sequence `prefix` of the same batch: they
/// attend to all of that sequence's tokens and take positions after them (the shared-context scoring layout).
public struct SequenceInput: Sendable {
    public var tokens: [Int]
    public var prefix: Int?
    public var logits: LogitsRequest

    public init(tokens: [Int], prefix: Int? = nil, logits: LogitsRequest = .last) {
        self.tokens = tokens
        self.prefix = prefix
        self.logits = logits
    }
}

/// Heads and FFNs switched off without rewriting the model (the paper's masks): `heads[l][h]` for original
/// head h of layer l, `ffns[l]` for layer l; true keeps.
public struct ModelMask: Sendable, Equatable, Codable {
    public var heads: [[Bool]]?
    public var ffns: [Bool]?

    public init(heads: [[Bool]]? = nil, ffns: [Bool]? = nil) {
        self.heads = heads
        self.ffns = ffns
    }
}

public struct ForwardOptions: @unchecked Sendable {
    /// Bytes of activations allowed in flight; sequences are processed in as many passes as needed.
    public var memoryBudget: Int?
    public var mask = ModelMask()
    /// Watch the walk at its tap points (each layer's input and output, its attention, its output without its
    /// FFN, …, each when asked for). They read and keep; they never change the arithmetic.
    public var observers: [any ForwardObserver] = []
    /// Starts each pass at a later layer from a state the caller kept, instead of at the embeddings (the
    /// oracle's replay: layers below l compute exactly what the baseline computed).
    public var resume: (any ForwardResume)?

    public init(memoryBudget: Int? = nil, mask: ModelMask = ModelMask()) {
        self.memoryBudget = memoryBudget
        self.mask = mask
    }
}

/// The logits of one forward: `[R, V]` in one buffer, which a caller may reuse across calls to avoid
/// allocating (and page-faulting) hundreds of MB each time.
public final class LogitsBuffer: @unchecked Sendable {
    let storage = FloatBuffer()
    public internal(set) var vocabulary = 0
    public internal(set) var rows = 0
    public init() {}

    /// Row r, `V` floats. Valid until the buffer is passed to another forward.
    public func row(_ r: Int) -> UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: storage.pointer + r * vocabulary, count: vocabulary)
    }
}

/// One sequence's logits: for each requested position, a row of the forward's `LogitsBuffer`.
public struct SequenceLogits: @unchecked Sendable {
    public var positions: [Int]
    public let buffer: LogitsBuffer
    /// Row of `buffer` holding each position's logits.
    public var rows: [Int]

    /// The logits at `positions[k]` (no copy).
    public func row(_ k: Int) -> UnsafeBufferPointer<Float> { buffer.row(rows[k]) }

    /// All requested rows concatenated, `[positions.count · V]` (a copy).
    public var values: [Float] { rows.flatMap { Array(buffer.row($0)) } }
}

/// Timing of the last forward.
public struct ForwardStats: Sendable {
    public var passes = 0
    /// Each layer of each pass, waiting for its weights included.
    public var layerSeconds: [Double] = []
    public init() {}
}

final class ForwardScratch {
    let x = FloatBuffer(), layer = LayerScratch(), widened = WidenedLayer(), head = FloatBuffer(), logits = FloatBuffer(), embedRows = FloatBuffer()
    let backward = BackwardScratch()
}

extension OPTModel {
    /// Runs `sequences` and returns the requested logits of each.
    public func forward(
        _ sequences: [SequenceInput], options: ForwardOptions = ForwardOptions(),
        into output: LogitsBuffer = LogitsBuffer(),
        stats: UnsafeMutablePointer<ForwardStats>? = nil
    ) throws -> [SequenceLogits] {
        try exclusive {
            try validate(sequences, options: options)
            let passes = planPasses(sequences, budget: options.memoryBudget)
            // Output rows are assigned in pass order, so each pass's LM head writes one contiguous block.
            var results = sequences.map { SequenceLogits(positions: $0.logits.rows($0.tokens.count), buffer: output, rows: []) }
            var next = 0
            for pass in passes {
                for i in pass {
                    results[i].rows = Array(next..<(next + results[i].positions.count))
                    next += results[i].positions.count
                }
            }
            output.vocabulary = config.vocabSize
            output.rows = next
            output.storage.reserve(next * config.vocabSize)
            var collected = ForwardStats()
            for pass in passes {
                collected.passes += 1
                try run(pass: pass, sequences, options: options, results: results, output: output, stats: &collected)
            }
            stats?.pointee = collected
            return results

        }
    }

    /// Activation bytes per token in one layer: x, ln, qkv, ctx, attention/FFN output, FFN hidden.
    func bytesPerToken() -> Int {
        let C = config.hiddenSize
        return 4 * (4 * C + 4 * C + config.ffnDim)
    }

    /// Groups sequences into passes within the budget; a sequence stays in the pass of its prefix.
    func planPasses(_ sequences: [SequenceInput], budget: Int?) -> [[Int]] {
        var groups: [[Int]] = []
        var groupOf: [Int: Int] = [:]
        for (i, s) in sequences.enumerated() {
            if let p = s.prefix, let g = groupOf[p] { groups[g].append(i); groupOf[i] = g } else { groupOf[i] = groups.count; groups.append([i]) }
        }
        guard let budget else { return [groups.flatMap { $0 }] }
        let perToken = bytesPerToken()
        var passes: [[Int]] = []
        var current: [Int] = []
        var bytes = 0
        for g in groups {
            let need = g.reduce(0) { $0 + sequences[$1].tokens.count } * perToken
            if !current.isEmpty && bytes + need > budget {
                passes.append(current); current = []; bytes = 0
            }
            current += g
            bytes += need
        }
        if !current.isEmpty { passes.append(current) }
        return passes
    }

    func validate(_ sequences: [SequenceInput], options: ForwardOptions) throws {
        let V = config.vocabSize, maxPositions = config.maxPositionEmbeddings
        for (i, s) in sequences.enumerated() {
            if let bad = s.tokens.firstIndex(where: { $0 < 0 || $0 >= V }) {
                throw RuntimeError("sequence \(i), position \(bad): token id \(s.tokens[bad]) is outside the vocabulary (0..<\(V))")
            }
            var length = s.tokens.count
            if let p = s.prefix {
                guard p >= 0, p < i, sequences[p].prefix == nil else {
                    throw RuntimeError("sequence \(i): prefix \(p) must be an earlier sequence without a prefix of its own")
                }
                length += sequences[p].tokens.count
            }
            guard length <= maxPositions else {
                throw RuntimeError("sequence \(i) has \(length) positions; the model has \(maxPositions) (max_position_embeddings)")
            }
            if let bad = s.logits.rows(s.tokens.count).first(where: { $0 < 0 || $0 >= s.tokens.count }) {
                throw RuntimeError("sequence \(i): logits requested at position \(bad) of \(s.tokens.count) tokens")
            }
        }
        if let heads = options.mask.heads {
            guard heads.count == config.numHiddenLayers, heads.allSatisfy({ $0.count == config.numAttentionHeads }) else {
                throw RuntimeError("head mask must be [\(config.numHiddenLayers)][\(config.numAttentionHeads)]")
            }
        }
        if let ffns = options.mask.ffns, ffns.count != config.numHiddenLayers {
            throw RuntimeError("FFN mask must have \(config.numHiddenLayers) entries")
        }
    }

    private func run(
        pass: [Int], _ sequences: [SequenceInput], options: ForwardOptions,
        results: [SequenceLogits], output: LogitsBuffer, stats: inout ForwardStats
    ) throws {
        // Pack the pass's tokens; spans know their prefix's rows in the same pass.
        var starts: [Int: Int] = [:]
        var tokens: [Int] = []
        var positionIDs: [Int] = []
        var specs: [(start: Int, count: Int, prefix: Int?)] = []
        for i in pass {
            let s = sequences[i]
            starts[i] = tokens.count
            let offset = s.prefix.map { sequences[$0].tokens.count } ?? 0
            specs.append((tokens.count, s.tokens.count, s.prefix))
            tokens += s.tokens
            positionIDs += (0..<s.tokens.count).map { $0 + offset }
        }
        let T = tokens.count
        let x = scratch.x.reserve(T * config.hiddenSize)
        let clock = LayerClock(layers: config.numHiddenLayers)
        let observers = options.observers + [clock]
        let resumed = try options.resume?.resume(into: x, count: T * config.hiddenSize, layers: config.numHiddenLayers)
        if resumed == nil {
            for o in observers { o.passStarted(tokens: T) }
            Profile.measure("embed") { embed(tokens: tokens, positions: positionIDs, into: x) }
        }
        let spans = specs.map { spec in
            LayerSpan(start: spec.start, count: spec.count, prefix: spec.prefix.map { p in .rows(start: starts[p]!, count: sequences[p].tokens.count) })
        }
        try walk(x: x, T: T, from: resumed ?? 0, spans: spans, mask: options.mask, observers: observers)
        stats.layerSeconds += clock.seconds
        if resumed == nil { for o in observers { o.passFinished() } }
        // LM head at the requested rows only.
        var rowIndex: [(sequence: Int, row: Int)] = []
        for i in pass { for r in results[i].positions { rowIndex.append((i, starts[i]! + r)) } }
        guard !rowIndex.isEmpty else { return }
        let first = results[rowIndex[0].sequence].rows[0]
        Profile.measure("lm head") {
            lmHead(rows: rowIndex.map(\.row), x: x, into: output.storage.pointer + first * config.vocabSize)
        }
    }

    /// x `[T, C]` = project_in(embed_tokens[token]) + embed_positions[position + 2]. (OPT offsets positions by 2.)
    func embed(tokens: [Int], positions: [Int], into x: UnsafeMutablePointer<Float>) {
        let C = config.hiddenSize, E = config.wordEmbedProjDim, T = tokens.count
        let dtype = embedTokens.info.dtype
        let table = UnsafeRawPointer(embedTokens.buffer.pointer)
        let rows = projectIn == nil ? x : scratch.embedRows.reserve(T * E)
        parallelRanges(T, minimumPerTask: 8) { r in
            for t in r { dtype.convert(table + tokens[t] * E * dtype.size, to: .f32, rows + t * E, count: E) }
        }
        if let projectIn {
            projectIn.withUnsafeBufferPointer { w in
                BLAS.linear(out: x, input: rows, weight: w.baseAddress!, bias: nil, M: T, N: C, K: E)
            }
        }
        self.positions.withUnsafeBufferPointer { table in
            parallelRanges(T, minimumPerTask: 8) { r in
                for t in r {
                    let p = table.baseAddress! + (positions[t] + 2) * C
                    let row = x + t * C
                    for c in 0..<C { row[c] += p[c] }
                }
            }
        }
    }

    /// logits `[R, V]` = project_out(final_layer_norm(x[rows])) · embed_tokensᵀ, computed in vocabulary blocks
    /// so only one block of the tied matrix is ever widened to fp32.
    func lmHead(rows: [Int], x: UnsafePointer<Float>, into logits: UnsafeMutablePointer<Float>) {
        let C = config.hiddenSize, E = config.wordEmbedProjDim, V = config.vocabSize, R = rows.count
        let h = scratch.head.reserve(R * (C + E))
        for (i, row) in rows.enumerated() { (h + i * C).update(from: x + row * C, count: C) }
        if let finalNorm {
            finalNorm.weight.withUnsafeBufferPointer { w in
                finalNorm.bias.withUnsafeBufferPointer { b in
                    layerNorm(out: h, input: h, weight: w.baseAddress, bias: b.baseAddress, T: R, C: C)
                }
            }
        }
        var features = UnsafePointer(h)
        if let projectOut {
            let projected = h + R * C
            projectOut.withUnsafeBufferPointer { w in
                BLAS.linear(out: projected, input: h, weight: w.baseAddress!, bias: nil, M: R, N: E, K: C)
            }
            features = UnsafePointer(projected)
        }
        backend.unembed(features, rows: R, into: logits)
    }
}
