/// One decoder layer, forward. Reference: HF `modeling_opt.py`, `OPTDecoderLayer.forward` and
/// `OPTAttention.forward`. Pre-LN and post-LN differ by where the two layer norms sit: one `if` each.
/// A layer with H = 0 heads (pruned) adds only `out_proj.bias`; a layer without FFN skips the block
/// (post-LN still applies its layer norm, which acts on the residual stream).
import HRZFormat
import Files

/// A sequence's rows in the pass, and what it continues, if anything: the rows of an earlier sequence of the
/// same pass (shared-context scoring) or cached keys and values (generation).
struct LayerSpan {
    enum Prefix {
        case rows(start: Int, count: Int)
        case cached(KVPrefix)
    }
    var start: Int
    var count: Int
    var prefix: Prefix? = nil
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
    /// x `[T, C]` ← layer(x), in place. `taps` read the layer's internals at the points they want.
    func forwardLayer(x: UnsafeMutablePointer<Float>, T: Int, layer l: Int, weights w: DecodedLayer, spans: [LayerSpan],
                      mask: LayerMask, taps: (any LayerTaps)?) throws {
        let C = config.hiddenSize, D = config.headDim, H = plans[l].heads.count, HD = H * D, F = config.ffnDim
        let preLN = config.doLayerNormBefore
        let lw = try bind(w, layer: l)
        let s = scratch.layer
        func tap(_ point: TapPoint, _ values: UnsafePointer<Float>, _ count: Int) throws {
            if let taps, taps.wants(point) { try taps.tap(point, values, count: count) }
        }

        // --- self-attention block ---
        let ln = s.ln.reserve(T * C)
        let out = s.out.reserve(T * C)
        if let qkvWeights = lw.qkv, let outWeights = lw.outProj {
            var input = GEMMInput.floats(x)
            if preLN {
                try tap(.attentionNormInput, x, T * C)
                input = normForGEMM(lw.attentionNorm, out: ln, input: x, T: T)
            }
            let qkv = s.qkv.reserve(T * 3 * HD)
            Profile.measure("qkv") { linear(qkvWeights, layer: l, out: qkv, input: input, M: T, K: C) }       // [T, 3·H·D]
            let scaling = 1 / Float(D).squareRoot()                                              // HF scales q after its bias
            parallelRanges(T, minimumPerTask: 64) { r in for t in r { let q = qkv + t * 3 * HD; for j in 0..<HD { q[j] *= scaling } } }
            try tap(.qkv, qkv, T * 3 * HD)
            let ctx = s.ctx.reserve(T * HD)
            let attentionSpans = spans.map { span in
                let prefix: KVPrefix?
                switch span.prefix {
                case .rows(let start, let count)?:
                    prefix = KVPrefix(keys: qkv + start * 3 * HD + HD, values: qkv + start * 3 * HD + 2 * HD, ld: 3 * HD, count: count)
                case .cached(let cached)?: prefix = cached
                case nil: prefix = nil
                }
                return AttentionSpan(start: span.start, count: span.count, prefix: prefix)
            }
            Profile.measure("attention") {
                attention(ctx: ctx, qkv: qkv, spans: attentionSpans, H: H, D: D, active: mask.heads, scores: s.scores)  // [T, H·D]
            }
            try tap(.ctx, ctx, T * HD)
            Profile.measure("out_proj") { linear(outWeights, layer: l, out: out, input: .floats(ctx), M: T, K: HD) }  // [T, C]
        } else {
            broadcastBias(lw.outBias, out: out, T: T, C: C)                                     // no heads: bias only
        }
        Profile.measure("residual") { addInPlace(x, out, count: T * C) }                        // residual
        if !preLN {
            try tap(.attentionNormInput, x, T * C)
            norm(lw.attentionNorm, out: x, input: x, T: T)
        }
        if let taps, taps.wants(.outputWithoutFFN) {  // what this layer would output with its FFN removed
            if preLN { try taps.tap(.outputWithoutFFN, x, count: T * C) } else {
                norm(lw.ffnNorm, out: ln, input: x, T: T)
                try taps.tap(.outputWithoutFFN, ln, count: T * C)
            }
        }

        // --- FFN block ---
        if mask.ffn, let fc1 = lw.fc1, let fc2 = lw.fc2 {
            var input = GEMMInput.floats(x)
            if preLN {
                try tap(.ffnNormInput, x, T * C)
                input = normForGEMM(lw.ffnNorm, out: ln, input: x, T: T)
            }
            if precision == .bf16, fusesIntoGEMMs, !(taps?.wants(.hidden) ?? false) {
                feedForwardBF16(fc1: fc1, fc2: fc2, layer: l, out: out, input: input, M: T)             // no fp32 hidden state
            } else {
                let hidden = s.ffn.reserve(T * F)
                Profile.measure("fc1") { linear(fc1, layer: l, out: hidden, input: input, M: T, K: C) }  // [T, F]
                Profile.measure("relu") { reluInPlace(hidden, count: T * F) }
                try tap(.hidden, hidden, T * F)
                Profile.measure("fc2") { linear(fc2, layer: l, out: out, input: .floats(hidden), M: T, K: F) }  // [T, C]
            }
            addInPlace(x, out, count: T * C)                                                     // residual
        }
        if !preLN {
            try tap(.ffnNormInput, x, T * C)
            norm(lw.ffnNorm, out: x, input: x, T: T)
        }
    }

    /// out `[M, ΣNᵢ]` = input `[M, K]` · [W₁; W₂; …]ᵀ + [b₁; b₂; …]: the bound weights stacked by rows, as one
    /// matrix. In bf16, both inputs rounded to bf16 and the weights packed once (`PackedWeights`). A model whose matrices fit in one widening block (up to 6.7B) gets a single GEMM per projection,
    /// q/k/v fused.
    func linear(_ p: BoundLinear, layer: Int, out: UnsafeMutablePointer<Float>, input: GEMMInput, M: Int, K: Int) {
        let N = p.rows
        if precision == .bf16 {
            let a = prepared(input, M: M, K: K)
            let bias = stackedBias(p)
            if scratch.packed.keeps {
                BF16.multiply(a, weight: packed(p, layer: layer, K: K), bias: bias, out: out, ldOut: N, accumulate: false,
                              scratch: scratch.packed.scratch)
            } else {
                linearPackingPerUse(p, layer: layer, out: out, activations: a, bias: bias)
            }
            return
        }
        guard case .floats(let input) = input else { preconditionFailure("fp32 GEMM given bf16-prepared activations") }
        let bias = stackedBias(p)
        weightBlocks(p, layer: layer, K: K) { start, rows, weight in
            BLAS.linear(out: out + start, input: input, weight: weight, bias: bias.map { $0 + start }, M: M, N: rows, K: K, ldOut: N)
        }
    }

    /// The bound biases stacked `[ΣNᵢ]` in fp32 (zeros for a part without one), or nil when no part has one.
    /// Valid until the next call.
    func stackedBias(_ p: BoundLinear) -> UnsafePointer<Float>? {
        guard p.biases.contains(where: { $0 != nil }) else { return nil }
        let bias = scratch.layer.bias.reserve(p.rows)
        var row = 0
        for (part, b) in zip(p.parts, p.biases) {
            if let b { b.widen(elements: 0..<part.rows, into: bias + row) } else { (bias + row).update(repeating: 0, count: part.rows) }
            row += part.rows
        }
        return UnsafePointer(bias)
    }

    /// Calls `body(firstRow, rows, weight)` over the bound weights stacked by rows `[ΣNᵢ, K]`, as fp32 row blocks
    /// that together cover every row once. The fp32 source, cheapest first:
    /// - the whole matrix kept by `WidenedLayer` (the reverse walk keeps small models' weights widened);
    /// - a single packed f32 tensor, in place;
    /// - 16-bit rows widened just before use into one reusable buffer, in blocks of at most `widenBlockBytes`,
    ///   so even OPT-66B's fc1 `[36864, 9216]` never exists in fp32 all at once.
    func weightBlocks(_ p: BoundLinear, layer: Int, K: Int, _ body: (_ start: Int, _ rows: Int, _ weight: UnsafePointer<Float>) -> Void) {
        let N = p.rows
        let kept = scratch.widened.keeping ? scratch.widened.memo(layer, p.key) { stackedFloats(p, N: N, K: K) }
                                           : scratch.widened.cached(layer, p.key)
        if let kept, kept.count == N * K {
            kept.withUnsafeBufferPointer { body(0, N, $0.baseAddress!) }
            return
        }
        if p.parts.count == 1, p.parts[0].weight.info.dtype == .f32, p.parts[0].weight.planes == nil {
            body(0, N, p.parts[0].weight.buffer.pointer.assumingMemoryBound(to: Float.self))
            return
        }
        let blockRows = max(1, min(N, widenBlockBytes / max(1, 4 * K)))
        let weight = scratch.layer.weight.reserve(blockRows * K)
        // Walk the stacked rows in blocks; a block may span parts.
        var start = 0
        while start < N {
            let end = min(N, start + blockRows)
            Profile.measure("widen") { widenRows(p, start..<end, K: K, into: weight) }
            body(start, end - start, weight)
            start = end
        }
    }

    /// Rows `range` of the parts stacked by rows `[ΣNᵢ, K]`, widened to fp32 at `destination`.
    func widenRows(_ p: BoundLinear, _ range: Range<Int>, K: Int, into destination: UnsafeMutablePointer<Float>) {
        var partStart = 0
        for part in p.parts {
            let lo = max(range.lowerBound, partStart), hi = min(range.upperBound, partStart + part.rows)
            if lo < hi {
                part.weight.widen(elements: (lo - partStart) * K..<(hi - partStart) * K, into: destination + (lo - range.lowerBound) * K)
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

    /// The layer norm of input `[T, C]` as the next GEMM's input: in bf16, written straight into its prepared
    /// activations (`normPrepared`); in fp32, into `out`.
    func normForGEMM(_ n: BoundNorm?, out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, T: Int) -> GEMMInput {
        if precision == .bf16, fusesIntoGEMMs { return .prepared(normPrepared(n, input: input, T: T)) }
        norm(n, out: out, input: input, T: T)
        return .floats(out)
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

    func missing(_ w: DecodedLayer, _ name: String) -> HRZError {
        HRZError(.missingTensor, file: reader.path, tensor: "layers.\(w.index).\(name)")
    }
}
