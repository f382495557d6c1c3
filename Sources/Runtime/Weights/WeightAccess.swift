/// Reading bound weights as fp32, whatever the precision: stacked biases, rows widened from their stored
/// dtype (packed elements or byte planes), whole stacked matrices, layer norms with their parameters, and the
/// cache of widened tensors a run reuses (`WidenedLayer`).
import Foundation
import HRZFormat
import Files

/// fp32 copies of layer weights, widened once and reused by later passes over the same layer: a reverse
/// walk runs three passes per example (forward, recompute, backward), so a small model is widened once
/// for the whole run. Whole matrices are kept only while `keeping` is set (by a run that checked the model's
/// fp32 layers fit in `limit`); otherwise weights are widened in bounded blocks and only small tensors (layer
/// norms) are kept. Past `limit` only the current layer's tensors stay: memory stays bounded.
final class WidenedLayer {
    private var tensors: [WeightKey: [Float]] = [:]
    private var bytes = 0
    var limit = 512 << 20
    /// Whether whole widened matrices are kept.
    var keeping = false

    /// The tensor as an fp32 array, memoised under `key`.
    func get(_ t: DecodedLayer.Entry, key: WeightKey) -> [Float] {
        memo(key) {
            var out = [Float](repeating: 0, count: t.info.elementCount)
            out.withUnsafeMutableBufferPointer { t.widen(elements: 0..<t.info.elementCount, into: $0.baseAddress!) }
            return out
        }
    }

    /// The array stored under `key`, if any.
    func cached(_ key: WeightKey) -> [Float]? { tensors[key] }

    /// The array stored under `key`, made by `make` on first use (e.g. q, k and v stacked).
    func memo(_ key: WeightKey, _ make: () throws -> [Float]) rethrows -> [Float] {
        if let t = tensors[key] { return t }
        let out = try make()
        if bytes + 4 * out.count > limit {
            // Over budget: keep only this layer's tensors.
            tensors = tensors.filter { $0.key.layer == key.layer }
            bytes = tensors.values.reduce(0) { $0 + 4 * $1.count }
        }
        if bytes + 4 * out.count <= limit {
            tensors[key] = out
            bytes += 4 * out.count
        }
        return out
    }
}

extension OPTModel {
    /// The bound biases stacked `[ΣNᵢ]` in fp32 (zeros for a part without one), or nil when no part has one.
    /// Valid until the next call.
    func stackedBias(_ p: BoundLinear) -> UnsafePointer<Float>? {
        guard p.biases.contains(where: { $0 != nil }) else { return nil }
        let bias = scratch.layer.bias.reserve(p.rows)
        var row = 0
        for (part, b) in zip(p.parts, p.biases) {
            if let b { b.widen(elements: part.offset..<(part.offset + part.rows), into: bias + row) } else { (bias + row).update(repeating: 0, count: part.rows) }
            row += part.rows
        }
        return UnsafePointer(bias)
    }

    /// Rows `range` of the parts stacked by rows `[ΣNᵢ, K]`, widened to fp32 at `destination` (K: the kept
    /// columns' count when the matrix keeps only some).
    func widenRows(_ p: BoundLinear, _ range: Range<Int>, K: Int, into destination: UnsafeMutablePointer<Float>) {
        var partStart = 0
        for part in p.parts {
            let lo = max(range.lowerBound, partStart), hi = min(range.upperBound, partStart + part.rows)
            if lo < hi {
                let first = part.offset + lo - partStart, count = hi - lo
                let out = destination + (lo - range.lowerBound) * K
                if let columns = p.columns {
                    // Whole rows widened a block at a time, then the kept columns gathered.
                    let full = part.weight.info.shape[1], blockRows = max(1, min(count, (16 << 20) / max(1, 4 * full)))
                    let rows = UnsafeMutablePointer<Float>.allocate(capacity: blockRows * full)
                    defer { rows.deallocate() }
                    var r0 = 0
                    while r0 < count {
                        let n = min(blockRows, count - r0)
                        part.weight.widen(elements: (first + r0) * full..<(first + r0 + n) * full, into: rows)
                        for r in 0..<n {
                            var k = 0
                            for c in columns {
                                (out + (r0 + r) * K + k).update(from: rows + r * full + c.lowerBound, count: c.count)
                                k += c.count
                            }
                        }
                        r0 += n
                    }
                } else {
                    part.weight.widen(elements: first * K..<(first + count) * K, into: out)
                }
            }
            partStart += part.rows
        }
    }

    /// The bound projection widened whole to fp32 `[ΣNᵢ, K]`.
    func stackedFloats(_ p: BoundLinear, N: Int, K: Int) -> [Float] {
        var out = [Float](repeating: 0, count: N * K)
        out.withUnsafeMutableBufferPointer { widenRows(p, 0..<N, K: K, into: $0.baseAddress!) }
        return out
    }

    /// The layer norm with the bound parameters; nil: the model's norms have none (normalise only).
    func norm(_ n: BoundNorm?, out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, T: Int) {
        let C = config.hiddenSize
        guard let n else {
            layerNorm(out: out, input: input, weight: nil, bias: nil, T: T, C: C)
            return
        }
        let s = scratch.layer
        let wp = n.weight.floats(into: s.weight), bp = n.bias.floats(into: s.bias)
        Profile.measure("layer norm") { layerNorm(out: out, input: input, weight: wp, bias: bp, T: T, C: C) }
    }

    /// out `[T, C]` = the bias on every row (zeros for a model without biases).
    func broadcastBias(_ bias: DecodedLayer.Entry?, out: UnsafeMutablePointer<Float>, T: Int, C: Int) {
        guard let bias else { out.update(repeating: 0, count: T * C); return }
        let b = bias.floats(into: scratch.layer.bias)
        for t in 0..<T { (out + t * C).update(from: b, count: C) }
    }

    /// Calls `body(firstRow, rows, fp32 [rows, E])` over embed_tokens in blocks of at most `maxBytes` (a
    /// multiple of 32 rows), widened into one reusable buffer.
    func embeddingBlocks(maxBytes: Int = 64 << 20, _ body: (Int, Int, UnsafePointer<Float>) -> Void) {
        let V = config.vocabSize, E = config.wordEmbedProjDim, blockRows = max(32, maxBytes / (4 * E) / 32 * 32)
        let dtype = embedTokens.info.dtype
        let table = UnsafeRawPointer(embedTokens.buffer.pointer)
        let block = scratch.layer.weight.reserve(min(V, blockRows) * E)
        var start = 0
        while start < V {
            let end = min(V, start + blockRows)
            widen(table + start * E * dtype.size, dtype: dtype, into: block, count: (end - start) * E)
            body(start, end - start, block)
            start = end
        }
    }

    /// embed_tokens widened to fp32 `[V, E]`.
    func embeddingFloats() -> [Float] {
        let info = embedTokens.info
        var out = [Float](repeating: 0, count: info.elementCount)
        out.withUnsafeMutableBufferPointer { widen(embedTokens.buffer.pointer, dtype: info.dtype, into: $0.baseAddress!, count: info.elementCount) }
        return out
    }

    func missing(_ w: DecodedLayer, _ name: String) -> HRZError {
        HRZError(.missingTensor, file: reader.path, tensor: "layers.\(w.index).\(name)")
    }
}
