/// Causal multi-head attention over packed sequences, each optionally preceded by a key/value prefix.
/// Reference: HF `modeling_opt.py`, `OPTAttention.forward` (eager path): softmax(q·kᵀ + causal mask)·v,
/// with q already scaled by 1/√D.
import Foundation
import CKernels
import HRZFormat
import Basics

/// Keys and values a span attends to before its own tokens: a context computed in the same pass, or a KV cache.
/// Rows `[count, ≥ H·D]` with row stride `ld`; head h occupies columns h·D ..< (h+1)·D.
public struct KVPrefix {
    public var keys: UnsafePointer<Float>
    public var values: UnsafePointer<Float>
    public var ld: Int
    public var count: Int

    public init(keys: UnsafePointer<Float>, values: UnsafePointer<Float>, ld: Int, count: Int) {
        self.keys = keys
        self.values = values
        self.ld = ld
        self.count = count
    }
}

/// One sequence's rows in the packed `[T, …]` activations.
public struct AttentionSpan {
    public var start: Int
    public var count: Int
    public var prefix: KVPrefix?
}

/// ctx `[T, H·D]` = per span and head, softmax(q·kᵀ, causal) · v over [prefix keys; own keys].
/// qkv `[T, 3·H·D]`: q (pre-scaled) in columns 0..<HD, k in HD..<2HD, v in 2HD..<3HD.
/// Heads with `active[h] == false` get zero output (the paper's head mask). Overwrites `ctx`. Heads of a span
/// without a prefix go to the AVX-512 head kernel where the CPU has it, unless `headKernel` is false (tests
/// compare it with the BLAS block loop).
public func attention(
    ctx: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>, spans: [AttentionSpan],
    H: Int, D: Int, active: [Bool]?, scores: FloatBuffer, headKernel: Bool = true
) {
    let HD = H * D, ld = 3 * HD
    let work = spans.filter { $0.count > 0 }.flatMap { span in (0..<H).map { (span, $0) } }
    // One scores buffer per task: [Ts, Tp + Ts] for the largest span, or the head kernel's scratch if larger.
    let biggest = spans.map { max($0.count * ($0.count + ($0.prefix?.count ?? 0)), hr_attention_scratch_count(Int32($0.count), Int32(D))) }.max() ?? 0
    let tasks = max(1, min(work.count, Threads.count))
    let all = scores.reserve(tasks * biggest)
    let next = LockedCounter()
    parallelWithSerialBLAS(tasks) { task in
        let p = all + task * biggest
        while true {
            let i = next.add()
            guard i < work.count else { return }
            let (span, h) = work[i]
            let Tp = span.prefix?.count ?? 0, Ts = span.count
            let out = ctx + span.start * HD + h * D
            if let active, !active[h] {
                for r in 0..<Ts { (out + r * HD).update(repeating: 0, count: D) }
                continue
            }
            let q = qkv + span.start * ld + h * D
            let k = qkv + span.start * ld + HD + h * D
            let v = qkv + span.start * ld + 2 * HD + h * D
            // Without a prefix, the AVX-512 head kernel where the CPU has it (the same sums in another order).
            if span.prefix == nil, headKernel, hr_attention_causal(q, k, v, ld, Int32(Ts), Int32(D), out, HD, p) != 0 { continue }
            // Query rows in blocks: block [r0, r1) needs only own keys < r1, so the upper triangle is skipped.
            var r0 = 0
            while r0 < Ts {
                let r1 = min(Ts, r0 + attentionBlock), rows = r1 - r0, width = Tp + r1
                let qb = q + r0 * ld, ob = out + r0 * HD
                if let prefix = span.prefix, Tp > 0 {
                    BLAS.gemm(transB: true, M: rows, N: Tp, K: D, a: qb, lda: ld, b: prefix.keys + h * D, ldb: prefix.ld, c: p, ldc: width)
                }
                BLAS.gemm(transB: true, M: rows, N: r1, K: D, a: qb, lda: ld, b: k, ldb: ld, c: p + Tp, ldc: width)
                causalSoftmax(p, rows: rows, prefix: Tp + r0, ld: width, parallel: false)
                if let prefix = span.prefix, Tp > 0 {
                    BLAS.gemm(M: rows, N: D, K: Tp, a: p, lda: width, b: prefix.values + h * D, ldb: prefix.ld, c: ob, ldc: HD)
                }
                BLAS.gemm(M: rows, N: D, K: r1, a: p + Tp, lda: width, b: v, ldb: ld, beta: Tp > 0 ? 1 : 0, c: ob, ldc: HD)
                r0 = r1
            }
        }
    }
}

/// Query rows per block of the causal attention loop.
let attentionBlock = 64

/// In place: row i keeps columns 0 ..< prefix + i + 1 (softmax over them) and zeroes the rest.
/// Masked positions get exactly 0, as softmax with a −∞ mask does.
public func causalSoftmax(_ p: UnsafeMutablePointer<Float>, rows: Int, prefix: Int, ld: Int, parallel: Bool = true) {
    let body = { (range: Range<Int>) in
        // AVX-512 where the CPU has it (C: Swift's scalar reductions here ran at one element per add latency).
        if hr_softmax_causal(p + range.lowerBound * ld, Int32(range.count), Int32(prefix + range.lowerBound), Int32(ld)) != 0 { return }
        for i in range {
            let row = p + i * ld
            let valid = prefix + i + 1
            var maximum = -Float.infinity
            for j in 0..<valid { maximum = max(maximum, row[j]) }
            for j in 0..<valid { row[j] = fastExp(row[j] - maximum) }
            var sum: Float = 0
            for j in 0..<valid { sum += row[j] }
            let inverse = 1 / sum
            for j in 0..<valid { row[j] *= inverse }
            if valid < ld { (row + valid).update(repeating: 0, count: ld - valid) }
        }
    }
    if parallel { parallelRanges(rows, minimumPerTask: max(1, 16384 / max(1, ld)), body) } else { body(0..<rows) }
}

/// e^x for x ≤ 0 (softmax after subtracting the row maximum), branch-free so loops over it vectorize.
/// Cody–Waite reduction x = n·ln2 + r, |r| ≤ ln2/2, then a degree-6 Taylor polynomial for e^r (relative
/// error < 3e-7, about 2 ulp, over the range; tested against `exp`). Inputs below −87 give 0, as e^x underflows there.
/// NaN (a row holding NaN or only −∞, as from a model with non-finite weights) gives NaN, as `exp` does;
/// the clamp keeps it away from the integer conversion, which would trap.
@inline(__always)
public func fastExp(_ x: Float) -> Float {
    let clamped = x > -87 ? min(x, 88) : -87
    // Round to nearest even by the 1.5·2²³ shift (exact for |v| < 2²²), not `rounded()`: that is a libm call,
    // which keeps softmax loops from vectorizing.
    let n = (clamped * 1.442695041 + 12582912) - 12582912
    let r = (clamped - n * 0.693359375) + n * 2.12194440e-4
    var p: Float = 1.0 / 720
    p = p * r + 1.0 / 120
    p = p * r + 1.0 / 24
    p = p * r + 1.0 / 6
    p = p * r + 0.5
    p = p * r + 1
    p = p * r + 1
    let scale = Float(bitPattern: UInt32(bitPattern: Int32(n) + 127) << 23)
    return x < -87 ? 0 : (x == x ? p * scale : x)
}
