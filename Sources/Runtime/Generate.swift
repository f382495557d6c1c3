/// Greedy generation with a KV cache: the prompt runs once; each new token attends to the cached keys and
/// values of every earlier token, layer by layer. Reference: HF `GenerationMixin.generate(do_sample=False)`.
import Foundation
import HRZFormat

/// Per-layer keys and values of every token so far: `[tokens, H·D]` each. An observer of the walk's qkv: it
/// appends the new tokens' keys and values as each layer computes them (the caller advances `count`).
final class KVCache: ForwardObserver {
    var keys: [FloatBuffer]
    var values: [FloatBuffer]
    var count = 0
    let widths: [Int]
    let capacity: Int

    init(widths: [Int], capacity: Int) {
        self.widths = widths
        self.capacity = capacity
        keys = widths.map { FloatBuffer($0 * capacity) }
        values = widths.map { FloatBuffer($0 * capacity) }
    }

    /// Layer l's cached keys and values as a prefix, nil when there are none.
    func prefix(layer l: Int) -> KVPrefix? {
        guard count > 0, widths[l] > 0 else { return nil }
        return KVPrefix(keys: keys[l].pointer, values: values[l].pointer, ld: widths[l], count: count)
    }

    func wants(_ point: TapPoint, layer: Int) -> Bool { point == .qkv && widths[layer] > 0 }

    func observe(_ tap: Tap) throws {
        let l = tap.layer, HD = widths[l], past = count, qkv = tap.values
        for t in 0..<tap.tokens {
            (keys[l].pointer + (past + t) * HD).update(from: qkv + t * 3 * HD + HD, count: HD)
            (values[l].pointer + (past + t) * HD).update(from: qkv + t * 3 * HD + 2 * HD, count: HD)
        }
    }
}

extension OPTModel {
    /// Appends up to `maxTokens` greedy tokens to `prompt`, stopping early at `stop` if given. `onToken` sees
    /// each new token as it is chosen. Returns the new tokens.
    public func generate(prompt: [Int], maxTokens: Int, stop: Int? = nil, onToken: ((Int) -> Void)? = nil) throws -> [Int] {
        try exclusive {
            guard !prompt.isEmpty else { throw RuntimeError("generation needs a non-empty prompt") }
            let capacity = prompt.count + maxTokens
            guard capacity <= config.maxPositionEmbeddings else {
                throw RuntimeError("prompt (\(prompt.count)) plus --max-tokens (\(maxTokens)) exceeds the model's \(config.maxPositionEmbeddings) positions")
            }
            try validate([SequenceInput(tokens: prompt)], options: ForwardOptions())
            let cache = KVCache(widths: plans.map { $0.heads.count * config.headDim }, capacity: capacity)
            var generated: [Int] = []
            var input = prompt
            while generated.count < maxTokens {
                let logits = try step(input, cache: cache)
                let next = logits.indices.max { logits[$0] < logits[$1] }!  // first maximum, as torch.argmax
                generated.append(next)
                onToken?(next)
                if next == stop { break }
                input = [next]
            }
            return generated

        }
    }

    /// Runs `tokens` after the cached ones, appends their keys and values, returns the last position's logits.
    func step(_ tokens: [Int], cache: KVCache) throws -> [Float] {
        let T = tokens.count, past = cache.count
        let x = scratch.x.reserve(T * config.hiddenSize)
        embed(tokens: tokens, positions: (0..<T).map { $0 + past }, into: x)
        try walk(x: x, T: T, spans: [LayerSpan(start: 0, count: T, prefix: .cached(cache))], observers: [cache])
        cache.count += T
        let logits = scratch.logits.reserve(config.vocabSize)
        lmHead(rows: [T - 1], x: x, into: logits)
        return Array(UnsafeBufferPointer(start: logits, count: config.vocabSize))
    }
}
