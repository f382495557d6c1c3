/// One decoder layer, backward for activation gradients (no weight gradients). The caller re-runs the
/// layer's forward from its saved input (checkpointing at layer granularity) with `saving:`, then the
/// forward's operations run here in reverse with `d`-prefixed names, as llm.c's `gpt2_backward`.
/// Reference: torch autograd through HF `OPTDecoderLayer` (checked in the tests). One sequence, no prefix:
/// batch-size-1 semantics.
import Foundation
import HRZFormat
import Basics

/// What the backward of one layer needs from its forward. No weight gradients are computed, so no GEMM
/// input is kept: only the layer norms' inputs, q/k/v, the heads' outputs and the ReLU's output. Buffers are
/// reused across layers and examples; as the layer's taps, `forwardLayer` fills them.
final class LayerSaved: LayerTaps {
    typealias Slot = TapPoint
    private let buffers = TapPoint.allCases.map { _ in FloatBuffer() }

    func wants(_ point: TapPoint) -> Bool { point != .outputWithoutFFN }
    func tap(_ point: TapPoint, _ values: UnsafePointer<Float>, count: Int) throws {
        buffers[point.rawValue].reserve(count).update(from: values, count: count)
    }

    subscript(_ slot: TapPoint) -> UnsafeMutablePointer<Float> { buffers[slot.rawValue].pointer }
}

/// Work buffers of the backward pass, sized for the largest layer and sequence seen.
final class BackwardScratch {
    let saved = LayerSaved()
    /// [T, C]: ∂L/∂(the current layer's output), then of its input
    let dx = FloatBuffer()
    /// [T, C]: a layer's input, read back from its checkpoint
    let x = FloatBuffer()
    /// [T, C]: the gradient reaching a pre-LN layer norm's output
    let dNormed = FloatBuffer()
    /// [T, F]
    let dHidden = FloatBuffer()
    /// [T, H·D]
    let dCtx = FloatBuffer()
    /// [T, 3·H·D]
    let dQKV = FloatBuffer()
    /// Per task of the head loop: P and dP `[T, T]`.
    let heads = FloatBuffer()
}

/// fp32 copies of layer weights, widened once and reused by later passes over the same layer: a reverse
/// walk runs three passes per example (forward, recompute, backward), so a small model is widened once
/// for the whole run. `weightBlocks` keeps whole matrices here only while `keeping` is set (by a caller that
/// checked the model's fp32 layers fit in `limit`); otherwise it widens in bounded blocks and only small
/// tensors (layer norms) are kept. Past `limit` only the current layer's tensors stay: memory stays bounded.
final class WidenedLayer {
    private var tensors: [String: (layer: Int, values: [Float])] = [:]
    private var bytes = 0
    var limit = 512 << 20
    /// Whether `weightBlocks` keeps whole widened matrices.
    var keeping = false

    /// The tensor of layer `layer` as an fp32 array, memoised under `key`.
    func get(_ t: DecodedLayer.Entry, layer: Int, key: String) -> [Float] {
        memo(layer, key) {
            var out = [Float](repeating: 0, count: t.info.elementCount)
            out.withUnsafeMutableBufferPointer { t.widen(elements: 0..<t.info.elementCount, into: $0.baseAddress!) }
            return out
        }
    }

    /// The array stored for (layer, key), if any: the fast forward reuses these after a backward widened them.
    func cached(_ layer: Int, _ name: String) -> [Float]? { tensors["\(layer).\(name)"]?.values }

    /// The array stored for (layer, key), made by `make` on first use (e.g. q, k and v stacked).
    func memo(_ layer: Int, _ name: String, _ make: () throws -> [Float]) rethrows -> [Float] {
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
    /// dInput `[T, K]` = dOut `[T, N]` · W `[N, K]` for the bound projections stacked by rows (HF `Linear`'s
    /// input gradient), over the same fp32 weight blocks as the forward; `accumulate` adds to dInput instead.
    func linearBackward(_ p: BoundLinear, layer: Int, dOut: UnsafePointer<Float>, T: Int, K: Int,
                        into dInput: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
        let N = p.rows
        if precision == .bf16 {  // the same bf16 GEMM, with Wᵀ packed
            if scratch.packed.keeps {
                BF16.gemm(out: dInput, input: dOut, weight: packed(p, layer: layer, K: K, transposed: true), bias: nil, M: T,
                          accumulate: accumulate, scratch: scratch.packed.scratch, kernel: bf16Kernel)
            } else {
                linearBackwardPackingPerUse(p, layer: layer, dOut: dOut, T: T, K: K, into: dInput, accumulate: accumulate)
            }
            return
        }
        weightBlocks(p, layer: layer, K: K) { start, rows, weight in
            BLAS.gemm(M: T, N: K, K: rows, a: dOut + start, lda: N, b: weight, ldb: K,
                      beta: accumulate || start > 0 ? 1 : 0, c: dInput, ldc: K)
        }
    }

    /// ∂L/∂input of the bound layer norm, from ∂L/∂output `dOut` and the norm's saved input; accumulated into
    /// `dInput`, or overwriting it (then it may alias `dOut`).
    func normBackward(_ n: BoundNorm?, layer: Int, dOut: UnsafePointer<Float>, input: UnsafePointer<Float>, T: Int,
                      into dInput: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let weight = n.map { scratch.widened.get($0.weight, layer: layer, key: $0.key + ".weight") }
        Profile.measure("bw layer norm") { weight.withOptionalBuffer { wp in
            layerNormBackward(dInput: dInput, dOut: dOut, input: input, weight: wp, T: T, C: config.hiddenSize, accumulate: accumulate)
        } }
    }

    /// dx `[T, C]` ← ∂L/∂(layer input), in place, from dx = ∂L/∂(layer output) and what the layer's forward
    /// kept in `saved`. `observer` sees the heads' outputs and their gradient.
    func backwardLayer(_ w: DecodedLayer, layer l: Int, saved s: LayerSaved, dx: UnsafeMutablePointer<Float>, T: Int,
                       scratch b: BackwardScratch, observer: any BackwardObserver) throws {
        let C = config.hiddenSize, D = config.headDim, H = plans[l].heads.count, HD = H * D, F = config.ffnDim
        let preLN = config.doLayerNormBefore
        let lw = try bind(w, layer: l)
        // --- FFN block, reversed ---
        if !preLN {                                                                       // dx: ∂L/∂(x1 + FFN)
            normBackward(lw.ffnNorm, layer: l, dOut: dx, input: s[.ffnNormInput], T: T, into: dx, accumulate: false)
        }
        if let fc1 = lw.fc1, let fc2 = lw.fc2 {                                           // dx += FFN's input gradient
            let dHidden = b.dHidden.reserve(T * F)
            Profile.measure("bw fc2") { linearBackward(fc2, layer: l, dOut: dx, T: T, K: F, into: dHidden) }   // [T, F]
            Profile.measure("bw relu") { reluBackward(dHidden, output: s[.hidden], count: T * F) }
            if preLN {
                let dNormed = b.dNormed.reserve(T * C)
                Profile.measure("bw fc1") { linearBackward(fc1, layer: l, dOut: dHidden, T: T, K: C, into: dNormed) }
                normBackward(lw.ffnNorm, layer: l, dOut: dNormed, input: s[.ffnNormInput], T: T, into: dx, accumulate: true)
            } else {
                Profile.measure("bw fc1") { linearBackward(fc1, layer: l, dOut: dHidden, T: T, K: C, into: dx, accumulate: true) }
            }
        }
        // --- attention block, reversed ---
        if !preLN {                                                                       // dx: ∂L/∂(x0 + attention)
            normBackward(lw.attentionNorm, layer: l, dOut: dx, input: s[.attentionNormInput], T: T, into: dx, accumulate: false)
        }
        guard let qkvWeights = lw.qkv, let outWeights = lw.outProj else { return }
        let dCtx = b.dCtx.reserve(T * HD), dQKV = b.dQKV.reserve(T * 3 * HD)
        Profile.measure("bw out_proj") { linearBackward(outWeights, layer: l, dOut: dx, T: T, K: HD, into: dCtx) }  // [T, H·D]
        Profile.measure("observer") { observer.headOutputs(layer: l, ctx: s[.ctx], dCtx: dCtx, T: T, heads: H, headDim: D) }
        Profile.measure("bw attention") { attentionBackward(dQKV: dQKV, dCtx: dCtx, qkv: s[.qkv], T: T, H: H, D: D, work: b.heads) }
        if preLN {
            let dNormed = b.dNormed.reserve(T * C)
            Profile.measure("bw qkv") { linearBackward(qkvWeights, layer: l, dOut: dQKV, T: T, K: C, into: dNormed) }
            normBackward(lw.attentionNorm, layer: l, dOut: dNormed, input: s[.attentionNormInput], T: T, into: dx, accumulate: true)
        } else {
            Profile.measure("bw qkv") { linearBackward(qkvWeights, layer: l, dOut: dQKV, T: T, K: C, into: dx, accumulate: true) }
        }
    }
}

/// dHidden[i] = 0 where the ReLU's output is 0 (its input was ≤ 0), in place.
func reluBackward(_ dHidden: UnsafeMutablePointer<Float>, output: UnsafePointer<Float>, count: Int) {
    parallelRanges(count, minimumPerTask: 1 << 16) { r in
        var i = r.lowerBound
        let d = UnsafeMutableRawPointer(dHidden), o = UnsafeRawPointer(output)
        while i + 8 <= r.upperBound {  // branch-free, 8 lanes
            let keep = o.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self) .> 0
            let g = d.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
            d.storeBytes(of: SIMD8<Float>(repeating: 0).replacing(with: g, where: keep), toByteOffset: 4 * i, as: SIMD8<Float>.self)
            i += 8
        }
        while i < r.upperBound { if output[i] <= 0 { dHidden[i] = 0 }; i += 1 }
    }
}

/// P `[T, T]` = causal softmax(q_h · k_hᵀ) of head h, from qkv `[T, 3·H·D]` with q pre-scaled. Single-threaded.
public func attentionProbabilities(_ p: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>, head h: Int, T: Int, H: Int, D: Int) {
    let HD = H * D
    BLAS.gemm(transB: true, M: T, N: T, K: D, a: qkv + h * D, lda: 3 * HD, b: qkv + HD + h * D, ldb: 3 * HD, c: p, ldc: T)
    causalSoftmax(p, rows: T, prefix: 0, ld: T, parallel: false)
}

/// dQKV `[T, 3·H·D]` (q's part with respect to q before scaling) from dCtx `[T, H·D]`, recomputing each head's
/// P from q and k. Heads run in parallel with single-threaded BLAS, each task with its own P and dP in `work`.
func attentionBackward(dQKV: UnsafeMutablePointer<Float>, dCtx: UnsafePointer<Float>, qkv: UnsafePointer<Float>,
                       T: Int, H: Int, D: Int, work: FloatBuffer) {
    let HD = H * D, scaling = 1 / Float(D).squareRoot()
    let tasks = max(1, min(H, Threads.count))
    let all = work.reserve(tasks * 2 * T * T)
    let next = LockedCounter()
    parallelWithSerialBLAS(tasks) { task in
        let p = all + task * 2 * T * T, dP = p + T * T
        while true {
            let h = next.add()
            guard h < H else { return }
            let q = qkv + h * D, k = qkv + HD + h * D, v = qkv + 2 * HD + h * D
            attentionProbabilities(p, qkv: qkv, head: h, T: T, H: H, D: D)
            // dP = dCtx · Vᵀ; dV = Pᵀ · dCtx
            BLAS.gemm(transB: true, M: T, N: T, K: D, a: dCtx + h * D, lda: HD, b: v, ldb: 3 * HD, c: dP, ldc: T)
            BLAS.gemm(transA: true, M: T, N: D, K: T, a: p, lda: T, b: dCtx + h * D, ldb: HD, c: dQKV + 2 * HD + h * D, ldc: 3 * HD)
            // Softmax backward over each causal row, in place: dS = P ⊙ (dP − ⟨dP, P⟩).
            for i in 0..<T {
                let pr = p + i * T, dr = dP + i * T
                let dot = laneDot(dr, pr, i + 1)
                for j in 0...i { dr[j] = pr[j] * (dr[j] - dot) }
                if i + 1 < T { (dr + i + 1).update(repeating: 0, count: T - i - 1) }
            }
            // dq (before scaling) = dS · K · scaling; dK = dSᵀ · q (scaled)
            BLAS.gemm(M: T, N: D, K: T, alpha: scaling, a: dP, lda: T, b: k, ldb: 3 * HD, c: dQKV + h * D, ldc: 3 * HD)
            BLAS.gemm(transA: true, M: T, N: D, K: T, a: dP, lda: T, b: q, ldb: 3 * HD, c: dQKV + HD + h * D, ldc: 3 * HD)
        }
    }
}

/// Σ a[i]·b[i] for i < n, accumulated in 8 lanes.
@inline(__always)
func laneDot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD8<Float>()
    var i = 0
    let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
    while i + 8 <= n {
        acc += ra.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self) * rb.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
        i += 8
    }
    var total = acc.sum()
    while i < n { total += a[i] * b[i]; i += 1 }
    return total
}

extension Optional where Wrapped == [Float] {
    /// The array's base address, or nil, for the duration of `body`.
    func withOptionalBuffer<R>(_ body: (UnsafePointer<Float>?) throws -> R) rethrows -> R {
        guard let self else { return try body(nil) }
        return try self.withUnsafeBufferPointer { try body($0.baseAddress) }
    }
}
