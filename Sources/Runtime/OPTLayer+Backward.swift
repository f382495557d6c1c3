/// One decoder layer, backward for activation gradients (no weight gradients). The layer's internals are
/// recomputed from its saved input (checkpointing at layer granularity), then the forward's operations run
/// in reverse with `d`-prefixed names, as llm.c's `gpt2_backward`. Reference: torch autograd through HF
/// `OPTDecoderLayer` (checked in the tests). One sequence, no prefix: batch-size-1 semantics.
import Foundation
import HRZFormat

/// What the backward of one layer needs from its forward: `[T, …]` activations and norm statistics.
final class LayerSaved {
    var x0: [Float] = [], ln1: [Float] = [], mean1: [Float] = [], rstd1: [Float] = []
    var qkv: [Float] = [], probs: [[Float]] = [], ctx: [Float] = []
    /// Post-LN: the sums before each norm (x0 + attention, x1 + FFN).
    var x1Pre: [Float] = [], x1: [Float] = [], ln2: [Float] = [], mean2: [Float] = [], rstd2: [Float] = []
    var fc1: [Float] = [], x2Pre: [Float] = []
}

/// fp32 copies of layer tensors, widened once and shared by the recompute and the backward of every example
/// (each matrix is needed two or three times per example). Up to `limit` bytes are kept, across layers, so a
/// small model is widened once for the whole run; beyond it (a 66B layer is 4 GB in fp32) only the current
/// layer's tensors are kept, or none, and the rest are widened on each use: memory stays bounded.
final class WidenedLayer {
    private var tensors: [String: (layer: Int, values: [Float])] = [:]
    private var bytes = 0
    let limit = 512 << 20

    func get(_ w: DecodedLayer, _ name: String, missing: () -> Error) throws -> [Float] {
        try memo(w.index, name) {
            guard let t = w.tensor(name) else { throw missing() }
            var out = [Float](repeating: 0, count: t.info.elementCount)
            out.withUnsafeMutableBufferPointer { widen(t.pointer, dtype: t.info.dtype, into: $0.baseAddress!, count: t.info.elementCount) }
            return out
        }
    }

    /// The array stored for (layer, key), if any: the fast forward reuses these after a backward widened them.
    func cached(_ layer: Int, _ name: String) -> [Float]? { tensors["\(layer).\(name)"]?.values }

    /// The array stored for (layer, key), made by `make` on first use (e.g. q, k and v stacked).
    func memo(_ layer: Int, _ name: String, _ make: () throws -> [Float]) throws -> [Float] {
        let key = "\(layer).\(name)"
        if let t = tensors[key] { return t.values }
        let out = try make()
        if bytes + 4 * out.count > limit {
            // Over budget: keep only this layer's tensors.
            tensors = tensors.filter { $0.value.layer == layer }
            bytes = tensors.values.reduce(0) { $0 + 4 * $1.values.count }
        }
        if bytes + 4 * out.count <= limit {
            tensors[key] = (layer, out)
            bytes += 4 * out.count
        }
        return out
    }
}

extension OPTModel {
    /// The fp32 copy of a layer tensor, from the per-layer memo.
    func floats(_ w: DecodedLayer, _ name: String) throws -> [Float] {
        try scratch.widened.get(w, name) { missing(w, name) }
    }

    func normParameters(_ w: DecodedLayer, _ name: String) throws -> (weight: [Float], bias: [Float])? {
        config.layerNormElementwiseAffine ? (try floats(w, name + ".weight"), try floats(w, name + ".bias")) : nil
    }

    /// out `[T, C]` = LN(input), saving mean and rstd.
    func savedNorm(_ input: [Float], _ params: (weight: [Float], bias: [Float])?, T: Int) -> (out: [Float], mean: [Float], rstd: [Float]) {
        let C = config.hiddenSize
        var out = [Float](repeating: 0, count: T * C), mean = [Float](repeating: 0, count: T), rstd = [Float](repeating: 0, count: T)
        layerNorm(out: &out, mean: &mean, rstd: &rstd, input: input, weight: params?.weight, bias: params?.bias, T: T, C: C)
        return (out, mean, rstd)
    }

    /// The named tensors stacked by rows (q, k and v into one `[3·H·D, C]`), built once per layer visit.
    func stacked(_ w: DecodedLayer, _ names: [String], _ suffix: String) throws -> [Float] {
        if names.count == 1 { return try floats(w, names[0] + suffix) }
        return try scratch.widened.memo(w.index, names.joined(separator: "+") + suffix) { try names.flatMap { try floats(w, $0 + suffix) } }
    }

    /// out `[T, N]` = input `[T, K]` · Wᵀ + b for the named projections stacked by rows.
    func dense(_ w: DecodedLayer, _ names: [String], _ input: [Float], T: Int, K: Int) throws -> [Float] {
        let weight = try stacked(w, names, ".weight")
        let bias = config.enableBias ? try stacked(w, names, ".bias") : nil
        let N = weight.count / K
        var out = [Float](repeating: 0, count: T * N)
        BLAS.linear(out: &out, input: input, weight: weight, bias: bias, M: T, N: N, K: K)
        return out
    }

    /// dInput `[T, K]` = dOut `[T, N]` · W `[N, K]` for the named projections stacked by rows.
    func denseBackward(_ w: DecodedLayer, _ names: [String], _ dOut: [Float], T: Int, K: Int) throws -> [Float] {
        let weight = try stacked(w, names, ".weight")
        let N = weight.count / K
        var dInput = [Float](repeating: 0, count: T * K)
        BLAS.gemm(M: T, N: K, K: N, a: dOut, lda: N, b: weight, ldb: K, c: &dInput, ldc: K)
        return dInput
    }

    /// Forward of layer `l` on x0 `[T, C]` (one causal sequence), keeping what the backward needs.
    func forwardSaving(_ w: DecodedLayer, layer l: Int, x0: [Float], T: Int) throws -> (out: [Float], saved: LayerSaved) {
        let C = config.hiddenSize, D = config.headDim, H = plans[l].heads.count, HD = H * D
        let s = LayerSaved()
        s.x0 = x0
        let preLN = config.doLayerNormBefore
        var attention = [Float](repeating: 0, count: T * C)
        if HD > 0 {
            var input = x0
            if preLN { (s.ln1, s.mean1, s.rstd1) = savedNorm(x0, try normParameters(w, "self_attn_layer_norm"), T: T); input = s.ln1 }
            s.qkv = try dense(w, ["q_proj", "k_proj", "v_proj"].map { "self_attn.\($0)" }, input, T: T, K: C)
            let scaling = 1 / Float(D).squareRoot()
            for t in 0..<T { for j in 0..<HD { s.qkv[t * 3 * HD + j] *= scaling } }
            s.ctx = [Float](repeating: 0, count: T * HD)
            // Heads in parallel, each with single-threaded BLAS: T×T×D GEMMs are too small for OpenBLAS's pool.
            let probs = (0..<H).map { _ in FloatBuffer() }
            s.qkv.withUnsafeBufferPointer { q in
                s.ctx.withUnsafeMutableBufferPointer { c in
                    let base = q.baseAddress!, ctx = c.baseAddress!
                    parallelWithSerialBLAS(H) { h in
                        let p = probs[h].reserve(T * T)
                        BLAS.gemm(transB: true, M: T, N: T, K: D, a: base + h * D, lda: 3 * HD, b: base + HD + h * D, ldb: 3 * HD, c: p, ldc: T)
                        causalSoftmax(p, rows: T, prefix: 0, ld: T, parallel: false)
                        BLAS.gemm(M: T, N: D, K: T, a: p, lda: T, b: base + 2 * HD + h * D, ldb: 3 * HD, c: ctx + h * D, ldc: HD)
                    }
                }
            }
            s.probs = probs.map { Array(UnsafeBufferPointer(start: $0.pointer, count: T * T)) }
            attention = try dense(w, ["self_attn.out_proj"], s.ctx, T: T, K: HD)
        } else if config.enableBias {
            let b = try floats(w, "self_attn.out_proj.bias")
            for t in 0..<T { for c in 0..<C { attention[t * C + c] = b[c] } }
        }
        s.x1Pre = zip(x0, attention).map { $0 + $1 }
        if preLN { s.x1 = s.x1Pre } else { (s.x1, s.mean1, s.rstd1) = savedNorm(s.x1Pre, try normParameters(w, "self_attn_layer_norm"), T: T) }
        var ffn = [Float](repeating: 0, count: T * C)
        if plans[l].ffn {
            var input = s.x1
            if preLN { (s.ln2, s.mean2, s.rstd2) = savedNorm(s.x1, try normParameters(w, "final_layer_norm"), T: T); input = s.ln2 }
            s.fc1 = try dense(w, ["fc1"], input, T: T, K: C)
            ffn = try dense(w, ["fc2"], s.fc1.map { max($0, 0) }, T: T, K: config.ffnDim)
        }
        s.x2Pre = zip(s.x1, ffn).map { $0 + $1 }
        if preLN { return (s.x2Pre, s) }
        let (out, mean, rstd) = savedNorm(s.x2Pre, try normParameters(w, "final_layer_norm"), T: T)
        s.mean2 = mean
        s.rstd2 = rstd
        return (out, s)
    }

    /// dx0 `[T, C]` from dOut `[T, C]`; adds Σₜ |⟨A_h(t), ∂L/∂A_h(t)⟩| per present head to `importance`.
    func backwardLayer(_ w: DecodedLayer, layer l: Int, saved s: LayerSaved, dOut: [Float], T: Int,
                       importance: inout [Double]) throws -> [Float] {
        let C = config.hiddenSize, D = config.headDim, H = plans[l].heads.count, HD = H * D, F = config.ffnDim
        let preLN = config.doLayerNormBefore
        func normBackward(_ dOut: [Float], _ input: [Float], _ mean: [Float], _ rstd: [Float], _ name: String, into d: inout [Float]) throws {
            let params = try normParameters(w, name)
            layerNormBackward(dInput: &d, dOut: dOut, input: input, mean: mean, rstd: rstd, weight: params?.weight, T: T, C: C)
        }
        // --- FFN block, reversed ---
        var dx2Pre = dOut
        if !preLN {
            dx2Pre = [Float](repeating: 0, count: T * C)
            try normBackward(dOut, s.x2Pre, s.mean2, s.rstd2, "final_layer_norm", into: &dx2Pre)
        }
        var dx1 = dx2Pre                                                                  // residual
        if plans[l].ffn {
            var dHidden = try denseBackward(w, ["fc2"], dx2Pre, T: T, K: F)               // [T, F]
            for i in 0..<dHidden.count where s.fc1[i] <= 0 { dHidden[i] = 0 }              // relu
            let dInput = try denseBackward(w, ["fc1"], dHidden, T: T, K: C)               // [T, C]
            if preLN { try normBackward(dInput, s.x1, s.mean2, s.rstd2, "final_layer_norm", into: &dx1) }
            else { for i in 0..<dx1.count { dx1[i] += dInput[i] } }
        }
        // --- attention block, reversed ---
        var dx1Pre = dx1
        if !preLN {
            dx1Pre = [Float](repeating: 0, count: T * C)
            try normBackward(dx1, s.x1Pre, s.mean1, s.rstd1, "self_attn_layer_norm", into: &dx1Pre)
        }
        var dx0 = dx1Pre                                                                  // residual
        guard HD > 0 else { return dx0 }
        let dCtx = try denseBackward(w, ["self_attn.out_proj"], dx1Pre, T: T, K: HD)      // [T, H·D]
        for h in 0..<H {
            var total = 0.0
            for t in 0..<T {
                var dot = 0.0
                for d in 0..<D { dot += Double(s.ctx[t * HD + h * D + d]) * Double(dCtx[t * HD + h * D + d]) }
                total += abs(dot)
            }
            importance[h] += total
        }
        var dQKV = [Float](repeating: 0, count: T * 3 * HD)
        let scaling = 1 / Float(D).squareRoot()
        // Heads in parallel, each with single-threaded BLAS and its own T×T scratch.
        let scratch = (0..<H).map { _ in (dP: FloatBuffer(), dS: FloatBuffer()) }
        dCtx.withUnsafeBufferPointer { dc in
            s.qkv.withUnsafeBufferPointer { q in
                dQKV.withUnsafeMutableBufferPointer { dq in
                    let base = q.baseAddress!, dctx = dc.baseAddress!, dqkv = dq.baseAddress!
                    parallelWithSerialBLAS(H) { h in
                        s.probs[h].withUnsafeBufferPointer { pb in
                            let p = pb.baseAddress!
                            let dP = scratch[h].dP.reserve(T * T), dS = scratch[h].dS.reserve(T * T)
                            // dP = dCtx · Vᵀ; dV = Pᵀ · dCtx
                            BLAS.gemm(transB: true, M: T, N: T, K: D, a: dctx + h * D, lda: HD, b: base + 2 * HD + h * D, ldb: 3 * HD, c: dP, ldc: T)
                            BLAS.gemm(transA: true, M: T, N: D, K: T, a: p, lda: T, b: dctx + h * D, ldb: HD, c: dqkv + 2 * HD + h * D, ldc: 3 * HD)
                            for i in 0..<T {                                                // softmax backward, causal rows
                                var dot: Float = 0
                                for j in 0...i { dot += dP[i * T + j] * p[i * T + j] }
                                for j in 0...i { dS[i * T + j] = p[i * T + j] * (dP[i * T + j] - dot) }
                                for j in (i + 1)..<T { dS[i * T + j] = 0 }
                            }
                            // dq (pre-scaling) = dS · K · scaling; dK = dSᵀ · q (scaled)
                            BLAS.gemm(M: T, N: D, K: T, alpha: scaling, a: dS, lda: T, b: base + HD + h * D, ldb: 3 * HD, c: dqkv + h * D, ldc: 3 * HD)
                            BLAS.gemm(transA: true, M: T, N: D, K: T, a: dS, lda: T, b: base + h * D, ldb: 3 * HD, c: dqkv + HD + h * D, ldc: 3 * HD)
                        }
                    }
                }
            }
        }
        let dInput = try denseBackward(w, ["q_proj", "k_proj", "v_proj"].map { "self_attn.\($0)" }, dQKV, T: T, K: C)
        if preLN { try normBackward(dInput, s.x0, s.mean1, s.rstd1, "self_attn_layer_norm", into: &dx0) }
        else { for i in 0..<dx0.count { dx0[i] += dInput[i] } }
        return dx0
    }
}
