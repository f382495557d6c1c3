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
        try score(requests, shareContexts: shareContexts, batches: { _ in true }, progress: progress).map { $0! }
    }

    /// Scores the requests of the batches `batches` selects (by batch number, in the order `score` forms
    /// them); the others stay nil. A shard that takes every N-th batch runs exactly the forwards an
    /// unsharded run does, so its scores are bit-identical to that run's.
    public func score(_ requests: [Request], shareContexts: Bool = true, batches select: (Int) -> Bool,
                      progress: ((Int, Int) -> Void)? = nil) throws -> [Score?] {
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
        var scores = [Score?](repeating: nil, count: requests.count)
        func groupTokens(_ g: [Int]) -> Int { tokenized[g[0]].context.count + g.reduce(0) { $0 + tokenized[$1].continuation.count } }
        let totalTokens = groups.reduce(0) { $0 + groupTokens($1) }
        var doneTokens = 0
        progress?(0, totalTokens)
        var start = 0, batch = 0
        let output = LogitsBuffer()
        while start < groups.count {
            var end = start, tokens = 0
            while end < groups.count {
                let size = groupTokens(groups[end])
                if end > start && tokens + size > tokensPerBatch { break }
                tokens += size
                end += 1
            }
            batch += 1
            guard select(batch - 1) else {
                doneTokens += tokens
                start = end
                continue
            }
            // Within a batch, move the bar layer by layer (a batch is one forward; on a large model it is long).
            let saved = options
            if let progress {
                let before = doneTokens, batch = tokens, total = totalTokens
                options.layerProgress = { done, layers in progress(before + batch * done / max(1, layers + 1), total) }
            }
            defer { options = saved }
            try scoreBatch(Array(groups[start..<end]), tokenized, shareContexts: shareContexts, output: output, into: &scores)
            doneTokens += tokens
            progress?(doneTokens, totalTokens)
            start = end
        }
        return scores
    }

    private func scoreBatch(_ groups: [[Int]], _ tokenized: [(context: [Int], continuation: [Int])], shareContexts: Bool,
                            output: LogitsBuffer, into scores: inout [Score?]) throws {
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
