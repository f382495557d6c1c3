/// Log-likelihood scoring of (context, continuation) requests, as the harness's `loglikelihood` defines it
/// (lm-eval 11fa0bf `BaseLM.loglikelihood` / `_loglikelihood_tokens`): context and continuation are
/// tokenized separately with no BOS, an empty context is `[2]`, sequences longer than the model are cut
/// from the left, and each continuation token is scored by a log-softmax over the first 50265 logits (the
/// real vocabulary, as the paper's code slices).
///
/// Unlike the harness, a context is computed once per batch: it runs as one sequence with logits at its last
/// position only (which predicts every continuation's first token), and each continuation runs as a span
/// that attends to the context's keys and values. Continuations do not need their last token as input.
import Foundation
import Runtime
import Tokenizer

public struct Score: Equatable, Sendable {
    public var loglikelihood: Double
    public var isGreedy: Bool
    public init(loglikelihood: Double, isGreedy: Bool) {
        self.loglikelihood = loglikelihood
        self.isGreedy = isGreedy
    }
}

/// Requests tokenized, grouped by shared context and cut into batches (`Scorer.plan`).
public struct ScoringPlan: Sendable {
    let tokenized: [(context: [Int], continuation: [Int])]
    /// Request indices sharing one context.
    let groups: [[Int]]
    /// Each batch's groups.
    public let batches: [Range<Int>]
    /// Tokens each batch runs.
    public let batchTokens: [Int]
    let shareContexts: Bool

    /// The requests of batch `b`, ascending.
    public func requests(inBatch b: Int) -> [Int] { groups[batches[b]].flatMap { $0 }.sorted() }
    public func tokens(inBatch b: Int) -> Int { batchTokens[b] }
    public var totalTokens: Int { batchTokens.reduce(0, +) }
    /// Tokens of each request as scored (context, continuation).
    public func tokens(ofRequest r: Int) -> (context: [Int], continuation: [Int]) { tokenized[r] }
}

public final class Scorer {
    public let model: OPTModel
    public let tokenizer: Tokenizer
    /// Logits past this index are ignored (OPT's embedding has 50272 rows for 50265 real tokens).
    public var vocabularyLimit = 50265
    /// Tokens per forward call; each call streams every layer once.
    public var tokensPerBatch = 16384
    public var options = ForwardOptions()
    private var cache: [String: [Int]] = [:]

    public init(model: OPTModel, tokenizer: Tokenizer) {
        self.model = model
        self.tokenizer = tokenizer
    }

    func encode(_ text: String) -> [Int] {
        if let ids = cache[text] { return ids }
        let ids = tokenizer.encode(text)
        if cache.count > 50_000 { cache.removeAll(keepingCapacity: true) }
        cache[text] = ids
        return ids
    }

    /// Token ids of a request after the harness's rules: `[2]` for an empty context, left truncation.
    public func tokens(_ r: Request) throws -> (context: [Int], continuation: [Int]) {
        var context = r.context.isEmpty ? [2] : encode(r.context)
        let continuation = encode(r.continuation)
        guard !continuation.isEmpty else { throw TaskError(file: "request", line: nil, "empty continuation after '\(r.context.suffix(40))'") }
        let limit = model.config.maxPositionEmbeddings + 1
        let excess = context.count + continuation.count - limit
        if excess > 0 {
            guard excess < context.count else {
                throw TaskError(file: "request", line: nil, "continuation of \(continuation.count) tokens does not fit the model's \(limit - 1) positions")
            }
            context.removeFirst(excess)
        }
        return (context, continuation)
    }

    /// Scores every request; `progress(done, total)` counts tokens run. With `shareContexts` false, each request runs alone as context + continuation
    /// (the harness's layout), which the tests use as the reference for the shared layout.
    public func score(_ requests: [Request], shareContexts: Bool = true, progress: ((Int, Int) -> Void)? = nil) throws -> [Score] {
        let plan = try self.plan(requests, shareContexts: shareContexts)
        var scores = [Score?](repeating: nil, count: requests.count)
        var done = 0
        progress?(0, plan.totalTokens)
        for b in plan.batches.indices {
            let before = done, size = plan.tokens(inBatch: b), total = plan.totalTokens
            for (r, s) in try score(plan, batch: b, layerProgress: progress.map { p in { d, l in p(before + size * d / max(1, l + 1), total) } }) {
                scores[r] = s
            }
            done += size
            progress?(done, plan.totalTokens)
        }
        return scores.map { $0! }
    }

    /// How `requests` are scored: tokenized, grouped by shared context, and cut into batches of at most
    /// `tokensPerBatch` tokens (a group is never split). Batch b is the same forward whoever runs it, so a
    /// batch's scores are the same whether the cell runs whole or in parts.
    public func plan(_ requests: [Request], shareContexts: Bool = true) throws -> ScoringPlan {
        let tokenized = try requests.map(tokens)
        // Groups: requests with identical context tokens share one context sequence.
        var groups: [[Int]] = []
        if shareContexts {
            var index: [[Int]: Int] = [:]
            for (i, t) in tokenized.enumerated() {
                if let g = index[t.context] { groups[g].append(i) } else { index[t.context] = groups.count; groups.append([i]) }
            }
        } else {
            groups = tokenized.indices.map { [$0] }
        }
        func groupTokens(_ g: [Int]) -> Int { tokenized[g[0]].context.count + g.reduce(0) { $0 + tokenized[$1].continuation.count } }
        var batches: [Range<Int>] = [], sizes: [Int] = []
        var start = 0
        while start < groups.count {
            var end = start, tokens = 0
            while end < groups.count {
                let size = groupTokens(groups[end])
                if end > start && tokens + size > tokensPerBatch { break }
                tokens += size
                end += 1
            }
            batches.append(start..<end)
            sizes.append(tokens)
            start = end
        }
        return ScoringPlan(tokenized: tokenized, groups: groups, batches: batches, batchTokens: sizes, shareContexts: shareContexts)
    }

    /// The scores of batch `batch` of `plan`, by request index. `options` replace the scorer's for this batch
    /// (a mask, the oracle's layer-input cache); `layerProgress` is told (layers done, layers) inside the forward.
    public func score(
        _ plan: ScoringPlan, batch: Int, options: ForwardOptions? = nil,
        layerProgress: (@Sendable (Int, Int) -> Void)? = nil
    ) throws -> [(request: Int, score: Score)] {
        let saved = self.options
        if let options { self.options = options }
        if let layerProgress { self.options.observers.append(LayerClock(layers: model.config.numHiddenLayers, progress: layerProgress)) }
        defer { self.options = saved }
        var scores = [Score?](repeating: nil, count: plan.tokenized.count)
        try scoreBatch(Array(plan.groups[plan.batches[batch]]), plan.tokenized, shareContexts: plan.shareContexts, output: output, into: &scores)
        return plan.requests(inBatch: batch).map { ($0, scores[$0]!) }
    }

    /// The logits buffer every batch reuses.
    private let output = LogitsBuffer()

    private func scoreBatch(
        _ groups: [[Int]], _ tokenized: [(context: [Int], continuation: [Int])], shareContexts: Bool,
        output: LogitsBuffer, into scores: inout [Score?]
    ) throws {
        var sequences: [SequenceInput] = []
        // For each request: where its token predictions are (sequence index, row within that sequence's logits).
        var plan: [(request: Int, rows: [(sequence: Int, row: Int)])] = []
        for group in groups {
            let context = tokenized[group[0]].context
            if shareContexts {
                let c = sequences.count
                sequences.append(SequenceInput(tokens: context, logits: .last))
                for r in group {
                    let continuation = tokenized[r].continuation
                    var rows = [(c, 0)]
                    if continuation.count > 1 {
                        let s = sequences.count
                        sequences.append(SequenceInput(tokens: Array(continuation.dropLast()), prefix: c, logits: .all))
                        rows += (0..<(continuation.count - 1)).map { (s, $0) }
                    }
                    plan.append((r, rows))
                }
            } else {
                for r in group {
                    let (ctx, cont) = tokenized[r]
                    let whole = ctx + cont.dropLast()
                    let s = sequences.count
                    sequences.append(SequenceInput(tokens: whole, logits: .positions(Array((ctx.count - 1)..<whole.count))))
                    plan.append((r, (0..<cont.count).map { (s, $0) }))
                }
            }
        }
        let logits = try model.forward(sequences, options: options, into: output)
        let V = min(vocabularyLimit, model.config.vocabSize)
        for (r, rows) in plan {
            let targets = tokenized[r].continuation
            var total = 0.0
            var greedy = true
            for (k, place) in rows.enumerated() {
                let row = logits[place.sequence].row(place.row)
                let (logProbability, isArgmax) = Self.logSoftmax(row, V, target: targets[k])
                total += logProbability
                greedy = greedy && isArgmax
            }
            scores[r] = Score(loglikelihood: total, isGreedy: greedy)
        }
    }

    /// log softmax(row[0..<V])[target], and whether target is the first maximum (torch.argmax).
    /// The normalizer is summed in 8 lanes with the vectorizable `fastExp` (relative error < 3e-7 per term):
    /// this runs once per continuation token over 50265 logits, so it must not cost more than the LM head.
    static func logSoftmax(_ row: UnsafeBufferPointer<Float>, _ V: Int, target: Int) -> (Double, Bool) {
        var maximum = -Float.infinity, argmax = 0
        for i in 0..<V where row[i] > maximum { maximum = row[i]; argmax = i }
        var lanes = SIMD8<Float>()
        var i = 0
        let base = UnsafeRawPointer(row.baseAddress!)
        while i + 8 <= V {
            let x = base.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self) - maximum
            var e = SIMD8<Float>()
            for k in 0..<8 { e[k] = fastExp(x[k]) }
            lanes += e
            i += 8
        }
        var sum = Double(lanes.sum())
        while i < V { sum += Double(fastExp(row[i] - maximum)); i += 1 }
        let logProbability = target < V ? Double(row[target] - maximum) - Foundation.log(sum) : -Double.infinity
        return (logProbability, argmax == target)
    }
}
