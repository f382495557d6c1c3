/// One decoder layer, forward. Reference: HF `modeling_opt.py`, `OPTDecoderLayer.forward` and
/// `OPTAttention.forward`. Pre-LN and post-LN differ by where the two layer norms sit: one `if` each.
/// A layer with H = 0 heads (pruned) adds only `out_proj.bias`; a layer without FFN skips the block
/// (post-LN still applies its layer norm, which acts on the residual stream).
import HRZFormat

/// A sequence's rows in the pass, and the rows of the sequence it continues, if any.
struct LayerSpan {
    var start: Int
    var count: Int
    var prefixRows: (start: Int, count: Int)?
}

/// Activations reused from layer to layer; sized for the largest pass.
final class LayerScratch {
    /// [T, C]
    let ln = FloatBuffer()
    /// [T, 3·H·D]
    let qkv = FloatBuffer()
    /// [T, H·D]
    let ctx = FloatBuffer()
    /// [T, C]
    let out = FloatBuffer()
    /// [T, F]
    let ffn = FloatBuffer()
    /// One widened weight matrix at a time.
    let weight = FloatBuffer()
    let bias = FloatBuffer()
    /// Attention scores of one (sequence, head).
    let scores = FloatBuffer()
}

extension OPTModel {
    /// x `[T, C]` ← layer(x), in place. With `saving`, also keeps what the backward of this layer needs.
    func forwardLayer(x: UnsafeMutablePointer<Float>, T: Int, layer l: Int, weights w: DecodedLayer, spans: [LayerSpan],
                      headsActive: [Bool]?, ffnActive: Bool, scratch s: LayerScratch,
                      externalPrefix: KVPrefix? = nil, kvSink: ((UnsafePointer<Float>, Int) -> Void)? = nil,
                      withoutFFN: ((UnsafePointer<Float>) throws -> Void)? = nil, saving saved: LayerSaved? = nil) throws {
        let C = config.hiddenSize, D = config.headDim, H = plans[l].heads.count, HD = H * D, F = config.ffnDim
        let preLN = config.doLayerNormBefore

        // --- self-attention block ---
        let ln = s.ln.reserve(T * C)
        let out = s.out.reserve(T * C)
        if HD > 0 {
            if preLN {
                saved?.keep(.attentionNormInput, x, count: T * C)
                try norm(w, "self_attn_layer_norm", out: ln, input: x, T: T)
            }
            let qkv = s.qkv.reserve(T * 3 * HD)
            let input = preLN ? UnsafePointer(ln) : UnsafePointer(x)
            try Profile.measure("qkv") { try qkvProjection(w, out: qkv, input: input, T: T, HD: HD) }       // [T, 3·H·D]
            let scaling = 1 / Float(D).squareRoot()                                              // HF scales q after its bias
            parallelRanges(T, minimumPerTask: 64) { r in for t in r { let q = qkv + t * 3 * HD; for j in 0..<HD { q[j] *= scaling } } }
            kvSink?(qkv, T)
            saved?.keep(.qkv, qkv, count: T * 3 * HD)
            let ctx = s.ctx.reserve(T * HD)
            let attentionSpans = spans.map { span in
                AttentionSpan(start: span.start, count: span.count, prefix: span.prefixRows.map { p in
                    KVPrefix(keys: qkv + p.start * 3 * HD + HD, values: qkv + p.start * 3 * HD + 2 * HD, ld: 3 * HD, count: p.count)
                } ?? externalPrefix)
            }
            Profile.measure("attention") {
                attention(ctx: ctx, qkv: qkv, spans: attentionSpans, H: H, D: D, active: headsActive, scores: s.scores)  // [T, H·D]
            }
            saved?.keep(.ctx, ctx, count: T * HD)
            try Profile.measure("out_proj") { try linear(w, "self_attn.out_proj", out: out, input: ctx, M: T, K: HD) }  // [T, C]
        } else {
            try broadcastBias(w, "self_attn.out_proj.bias", out: out, T: T, C: C)                 // no heads: bias only
        }
        Profile.measure("residual") { addInPlace(x, out, count: T * C) }                        // residual
        if !preLN {
            saved?.keep(.attentionNormInput, x, count: T * C)
            try norm(w, "self_attn_layer_norm", out: x, input: x, T: T)
        }
        if let withoutFFN {  // what this layer would output with its FFN removed (the oracle's replay point)
            if preLN { try withoutFFN(x) } else { try norm(w, "final_layer_norm", out: ln, input: x, T: T); try withoutFFN(ln) }
        }

        // --- FFN block ---
        let hasFFN = plans[l].ffn && ffnActive
        if hasFFN {
            if preLN {
                saved?.keep(.ffnNormInput, x, count: T * C)
                try norm(w, "final_layer_norm", out: ln, input: x, T: T)
            }
            let hidden = s.ffn.reserve(T * F)
            try Profile.measure("fc1") { try linear(w, "fc1", out: hidden, input: preLN ? ln : x, M: T, K: C) }  // [T, F]
            Profile.measure("relu") { reluInPlace(hidden, count: T * F) }
            saved?.keep(.hidden, hidden, count: T * F)
            try Profile.measure("fc2") { try linear(w, "fc2", out: out, input: hidden, M: T, K: F) }                // [T, C]
            addInPlace(x, out, count: T * C)                                                     // residual
        }
        if !preLN {
            saved?.keep(.ffnNormInput, x, count: T * C)
            try norm(w, "final_layer_norm", out: x, input: x, T: T)
        }
    }

    /// qkv `[T, 3·H·D]` = input · [Wq; Wk; Wv]ᵀ + [bq; bk; bv], as one logical `[3·H·D, C]` weight.
    func qkvProjection(_ w: DecodedLayer, out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, T: Int, HD: Int) throws {
        let names = ["q_proj", "k_proj", "v_proj"].map { "self_attn.\($0)" }
        try linear(w, names, out: out, input: input, M: T, K: config.hiddenSize)
    }

    /// out `[M, N]` = input · `layers.l.<name>.weight`ᵀ + bias.
    func linear(_ w: DecodedLayer, _ name: String, out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                M: Int, K: Int) throws {
        try linear(w, [name], out: out, input: input, M: M, K: K)
    }

    /// out `[M, ΣNᵢ]` = input `[M, K]` · [W₁; W₂; …]ᵀ + [b₁; b₂; …]: the named weights stacked by rows, as one matrix.
    /// A model whose matrices fit in one widening block (up to 6.7B) gets a single GEMM per projection, q/k/v fused.
    func linear(_ w: DecodedLayer, _ names: [String], out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                M: Int, K: Int) throws {
        var parts: [(rows: Int, bias: (info: TensorInfo, pointer: UnsafeMutableRawPointer)?)] = []
        for name in names {
            guard let weight = w.info(name + ".weight") else { throw missing(w, name + ".weight") }
            parts.append((weight.shape[0], w.tensor(name + ".bias")))
        }
        let N = parts.reduce(0) { $0 + $1.rows }
        let bias = scratch.layer.bias.reserve(N)
        var row = 0
        for (rows, b) in parts {
            if let b { b.info.dtype.convert(b.pointer, to: .f32, bias + row, count: rows) } else { (bias + row).update(repeating: 0, count: rows) }
            row += rows
        }
        let hasBias = parts.contains { $0.bias != nil }
        try weightBlocks(w, names, K: K) { start, rows, weight in
            BLAS.linear(out: out + start, input: input, weight: weight, bias: hasBias ? bias + start : nil, M: M, N: rows, K: K, ldOut: N)
        }
    }

    /// Calls `body(firstRow, rows, weight)` over the named weights stacked by rows `[ΣNᵢ, K]`, as fp32 row blocks
    /// that together cover every row once. The fp32 source, cheapest first:
    /// - the whole matrix kept by `WidenedLayer` (gradient importance keeps small models' weights widened);
    /// - a single f32 tensor, in place;
    /// - 16-bit rows widened just before use into one reusable buffer, in blocks of at most `widenBlockBytes`,
    ///   so even OPT-66B's fc1 `[36864, 9216]` never exists in fp32 all at once.
    func weightBlocks(_ w: DecodedLayer, _ names: [String], K: Int,
                      _ body: (_ start: Int, _ rows: Int, _ weight: UnsafePointer<Float>) -> Void) throws {
        var parts: [(suffix: String, rows: Int)] = []
        for name in names {
            guard let weight = w.info(name + ".weight") else { throw missing(w, name + ".weight") }
            parts.append((name + ".weight", weight.shape[0]))
        }
        let N = parts.reduce(0) { $0 + $1.rows }
        let key = names.joined(separator: "+") + ".weight"
        let kept = try scratch.widened.keeping ? scratch.widened.memo(w.index, key) { stackedFloats(w, parts, N: N, K: K) }
                                               : scratch.widened.cached(w.index, key)
        if let kept, kept.count == N * K {
            kept.withUnsafeBufferPointer { body(0, N, $0.baseAddress!) }
            return
        }
        if parts.count == 1, w.info(parts[0].suffix)?.dtype == .f32, let f32 = w.tensor(parts[0].suffix) {
            body(0, N, f32.pointer.assumingMemoryBound(to: Float.self))
            return
        }
        let blockRows = max(1, min(N, widenBlockBytes / max(1, 4 * K)))
        let weight = scratch.layer.weight.reserve(blockRows * K)
        // Walk the stacked rows in blocks; a block may span parts.
        var start = 0
        while start < N {
            let end = min(N, start + blockRows)
            Profile.measure("widen") { widenRows(w, parts, start..<end, K: K, into: weight) }
            body(start, end - start, weight)
            start = end
        }
    }

    /// Rows `range` of the parts stacked by rows `[ΣNᵢ, K]`, widened to fp32 at `destination`.
    private func widenRows(_ w: DecodedLayer, _ parts: [(suffix: String, rows: Int)], _ range: Range<Int>, K: Int,
                           into destination: UnsafeMutablePointer<Float>) {
        var partStart = 0
        for part in parts {
            let lo = max(range.lowerBound, partStart), hi = min(range.upperBound, partStart + part.rows)
            if lo < hi {
                w.widen(part.suffix, elements: (lo - partStart) * K..<(hi - partStart) * K, into: destination + (lo - range.lowerBound) * K)
            }
            partStart += part.rows
        }
    }

    private func stackedFloats(_ w: DecodedLayer, _ parts: [(suffix: String, rows: Int)], N: Int, K: Int) -> [Float] {
        var out = [Float](repeating: 0, count: N * K)
        out.withUnsafeMutableBufferPointer { widenRows(w, parts, 0..<N, K: K, into: $0.baseAddress!) }
        return out
    }

    func norm(_ w: DecodedLayer, _ name: String, out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, T: Int) throws {
        let C = config.hiddenSize
        guard config.layerNormElementwiseAffine else {
            layerNorm(out: out, input: input, weight: nil, bias: nil, T: T, C: C)
            return
        }
        guard let weight = w.tensor(name + ".weight"), let bias = w.tensor(name + ".bias") else { throw missing(w, name) }
        let s = scratch.layer
        let wp = fp32(weight, buffer: s.weight), bp = fp32(bias, buffer: s.bias)
        Profile.measure("layer norm") { layerNorm(out: out, input: input, weight: wp, bias: bp, T: T, C: C) }
    }

    func broadcastBias(_ w: DecodedLayer, _ name: String, out: UnsafeMutablePointer<Float>, T: Int, C: Int) throws {
        guard config.enableBias else { out.update(repeating: 0, count: T * C); return }
        guard let bias = w.tensor(name) else { throw missing(w, name) }
        let b = fp32(bias, buffer: scratch.layer.bias)
        for t in 0..<T { (out + t * C).update(from: b, count: C) }
    }

    /// The tensor as fp32: in place when stored as f32, else widened into `buffer`.
    func fp32(_ t: (info: TensorInfo, pointer: UnsafeMutableRawPointer), buffer: FloatBuffer) -> UnsafeMutablePointer<Float> {
        if t.info.dtype == .f32 { return t.pointer.assumingMemoryBound(to: Float.self) }
        let count = t.info.elementCount
        let out = buffer.reserve(count)
        widen(t.pointer, dtype: t.info.dtype, into: out, count: count)
        return out
    }

    func missing(_ w: DecodedLayer, _ name: String) -> HRZError {
        HRZError(.missingTensor, file: reader.path, tensor: "layers.\(w.index).\(name)")
    }
}
