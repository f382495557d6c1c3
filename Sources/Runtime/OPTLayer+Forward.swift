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
        /// Every layer's cached keys and values (generation).
        case cached(KVCache)
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
    /// x `[T, C]` ← layer(x), in place. `taps` show the layer's internals to the observers that want them.
    func forwardLayer(
        x: UnsafeMutablePointer<Float>, T: Int, layer l: Int, weights w: DecodedLayer, spans: [LayerSpan],
        mask: LayerMask, taps: LayerTaps
    ) throws {
        let C = config.hiddenSize, D = config.headDim, H = plans[l].heads.count
        let preLN = config.doLayerNormBefore
        let lw = try bind(w, layer: l)
        let s = scratch.layer, weights = backend

        // --- self-attention block ---
        let ln = s.ln.reserve(T * C)
        let out = s.out.reserve(T * C)
        // Masked heads are not computed: their rows of q/k/v, their attention and their columns of out_proj are
        // left out (the same values as computing them and zeroing their outputs, up to the order of fp32 sums).
        // When an observer reads qkv or the heads' outputs, every present head is computed and the masked ones
        // are zeroed, so the tap shows the layer's full layout.
        var heads = H, active = mask.heads
        var qkvBound = lw.qkv, outBound = lw.outProj
        if let m = mask.heads, m.contains(false), !taps.wants(.qkv), !taps.wants(.ctx) {
            let kept = m.indices.filter { m[$0] }
            let variant = kept.reduce(H) { $0 &* 1_000_003 &+ $1 &+ 1 }
            heads = kept.count
            active = nil
            qkvBound = heads == 0 ? nil : qkvBound?.selectingRows(ofHeads: kept, headDim: D, variant: variant)
            outBound = heads == 0 ? nil : outBound?.selectingColumns(ofHeads: kept, headDim: D, variant: variant)
        }
        if let qkvWeights = qkvBound, let outWeights = outBound {
            let HD = heads * D
            var input = GEMMInput.floats(x)
            if preLN {
                try taps.tap(.attentionNormInput, x, T * C)
                input = weights.normalized(lw.attentionNorm, input: x, T: T, into: ln)
            }
            let qkv = s.qkv.reserve(T * 3 * HD)
            Profile.measure("qkv") { weights.project(qkvWeights, layer: l, out: qkv, input: input, M: T, K: C) }       // [T, 3·H·D]
            let scaling = 1 / Float(D).squareRoot()                                              // HF scales q after its bias
            parallelRanges(T, minimumPerTask: 64) { r in for t in r { let q = qkv + t * 3 * HD; for j in 0..<HD { q[j] *= scaling } } }
            try taps.tap(.qkv, qkv, T * 3 * HD)
            let ctx = s.ctx.reserve(T * HD)
            let attentionSpans = spans.map { span in
                let prefix: KVPrefix?
                switch span.prefix {
                case .rows(let start, let count)?:
                    prefix = KVPrefix(keys: qkv + start * 3 * HD + HD, values: qkv + start * 3 * HD + 2 * HD, ld: 3 * HD, count: count)
                case .cached(let cache)?: prefix = cache.prefix(layer: l)
                case nil: prefix = nil
                }
                return AttentionSpan(start: span.start, count: span.count, prefix: prefix)
            }
            Profile.measure("attention") {
                attention(ctx: ctx, qkv: qkv, spans: attentionSpans, H: heads, D: D, active: active, scores: s.scores)  // [T, H·D]
            }
            try taps.tap(.ctx, ctx, T * HD)
            Profile.measure("out_proj") { weights.project(outWeights, layer: l, out: out, input: .floats(ctx), M: T, K: HD) }  // [T, C]
        } else {
            broadcastBias(lw.outBias, out: out, T: T, C: C)                                     // no heads: bias only
        }
        Profile.measure("residual") { addInPlace(x, out, count: T * C) }  // residual
        if !preLN {
            try taps.tap(.attentionNormInput, x, T * C)
            norm(lw.attentionNorm, out: x, input: x, T: T)
        }
        if taps.wants(.outputWithoutFFN) {  // what this layer would output with its FFN removed
            if preLN {
                try taps.tap(.outputWithoutFFN, x, T * C)
            } else {
                norm(lw.ffnNorm, out: ln, input: x, T: T)
                try taps.tap(.outputWithoutFFN, ln, T * C)
            }
        }

        // --- FFN block ---
        if mask.ffn, let fc1 = lw.fc1, let fc2 = lw.fc2 {
            var input = GEMMInput.floats(x)
            if preLN {
                try taps.tap(.ffnNormInput, x, T * C)
                input = weights.normalized(lw.ffnNorm, input: x, T: T, into: ln)
            }
            let hidden: ((UnsafePointer<Float>, Int) throws -> Void)? = taps.wants(.hidden) ? { try taps.tap(.hidden, $0, $1) } : nil
            try weights.feedForward(fc1: fc1, fc2: fc2, layer: l, out: out, input: input, M: T, hidden: hidden)  // [T, C]
            addInPlace(x, out, count: T * C)  // residual
        }
        if !preLN {
            try taps.tap(.ffnNormInput, x, T * C)
            norm(lw.ffnNorm, out: x, input: x, T: T)
        }
    }
}
