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
/// reused across layers and examples; an observer of the one layer `layer` of the forward walk fills them.
final class LayerSaved: ForwardObserver {
    private let buffers = TapPoint.allCases.map { _ in FloatBuffer() }
    /// The layer whose internals are kept.
    var layer = -1
    static let kept: Set<TapPoint> = [.attentionNormInput, .qkv, .ctx, .ffnNormInput, .hidden]

    func wants(_ point: TapPoint, layer: Int) -> Bool { layer == self.layer && Self.kept.contains(point) }
    func observe(_ tap: Tap) throws {
        buffers[tap.point.rawValue].reserve(tap.count).update(from: tap.values, count: tap.count)
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

extension OPTModel {
    /// ∂L/∂input of the bound layer norm, from ∂L/∂output `dOut` and the norm's saved input; accumulated into
    /// `dInput`, or overwriting it (then it may alias `dOut`).
    func normBackward(
        _ n: BoundNorm?, layer: Int, dOut: UnsafePointer<Float>, input: UnsafePointer<Float>, T: Int,
        into dInput: UnsafeMutablePointer<Float>, accumulate: Bool
    ) {
        let weight = n.map { scratch.widened.get($0.weight, key: WeightKey(layer: layer, role: $0.weightRole)) }
        Profile.measure("bw layer norm") {
            weight.withOptionalBuffer { wp in
                layerNormBackward(dInput: dInput, dOut: dOut, input: input, weight: wp, T: T, C: config.hiddenSize, accumulate: accumulate)
            }
        }
    }

    /// dx `[T, C]` ← ∂L/∂(layer input), in place, from dx = ∂L/∂(layer output) and what the layer's forward
    /// kept in `saved`. `observer` sees the heads' outputs and their gradient.
    func backwardLayer(
        _ w: DecodedLayer, layer l: Int, saved s: LayerSaved, dx: UnsafeMutablePointer<Float>, T: Int,
        scratch b: BackwardScratch, observer: any BackwardObserver
    ) throws {
        let C = config.hiddenSize, D = config.headDim, H = plans[l].heads.count, HD = H * D, F = config.ffnDim
        let preLN = config.doLayerNormBefore
        let lw = try bind(w, layer: l)
        // --- FFN block, reversed ---
        if !preLN {  // dx: ∂L/∂(x1 + FFN)
            normBackward(lw.ffnNorm, layer: l, dOut: dx, input: s[.ffnNormInput], T: T, into: dx, accumulate: false)
        }
        if let fc1 = lw.fc1, let fc2 = lw.fc2 {  // dx += FFN's input gradient
            let dHidden = b.dHidden.reserve(T * F)
            Profile.measure("bw fc2") { backend.projectBackward(fc2, layer: l, dOut: dx, T: T, K: F, into: dHidden, accumulate: false) }  // [T, F]
            Profile.measure("bw relu") { reluBackward(dHidden, output: s[.hidden], count: T * F) }
            if preLN {
                let dNormed = b.dNormed.reserve(T * C)
                Profile.measure("bw fc1") { backend.projectBackward(fc1, layer: l, dOut: dHidden, T: T, K: C, into: dNormed, accumulate: false) }
                normBackward(lw.ffnNorm, layer: l, dOut: dNormed, input: s[.ffnNormInput], T: T, into: dx, accumulate: true)
            } else {
                Profile.measure("bw fc1") { backend.projectBackward(fc1, layer: l, dOut: dHidden, T: T, K: C, into: dx, accumulate: true) }
            }
        }
        // --- attention block, reversed ---
        if !preLN {  // dx: ∂L/∂(x0 + attention)
            normBackward(lw.attentionNorm, layer: l, dOut: dx, input: s[.attentionNormInput], T: T, into: dx, accumulate: false)
        }
        guard let qkvWeights = lw.qkv, let outWeights = lw.outProj else { return }
        let dCtx = b.dCtx.reserve(T * HD), dQKV = b.dQKV.reserve(T * 3 * HD)
        Profile.measure("bw out_proj") { backend.projectBackward(outWeights, layer: l, dOut: dx, T: T, K: HD, into: dCtx, accumulate: false) }  // [T, H·D]
        try Profile.measure("observer") {
            if observer.wants(.ctx, layer: l) {
                try observer.observe(BackwardTap(layer: l, point: .ctx, values: s[.ctx], gradient: dCtx, count: T * HD, tokens: T, heads: H, headDim: D))
            }
        }
        Profile.measure("bw attention") { attentionBackward(dQKV: dQKV, dCtx: dCtx, qkv: s[.qkv], T: T, H: H, D: D, work: b.heads) }
        if preLN {
            let dNormed = b.dNormed.reserve(T * C)
            Profile.measure("bw qkv") { backend.projectBackward(qkvWeights, layer: l, dOut: dQKV, T: T, K: C, into: dNormed, accumulate: false) }
            normBackward(lw.attentionNorm, layer: l, dOut: dNormed, input: s[.attentionNormInput], T: T, into: dx, accumulate: true)
        } else {
            Profile.measure("bw qkv") { backend.projectBackward(qkvWeights, layer: l, dOut: dQKV, T: T, K: C, into: dx, accumulate: true) }
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
func attentionBackward(
    dQKV: UnsafeMutablePointer<Float>, dCtx: UnsafePointer<Float>, qkv: UnsafePointer<Float>,
    T: Int, H: Int, D: Int, work: FloatBuffer
) {
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
