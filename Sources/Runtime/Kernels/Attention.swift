/// Causal multi-head attention over packed sequences, each optionally preceded by a key/value prefix.
/// Reference: HF `modeling_opt.py`, `OPTAttention.forward` (eager path): softmax(q·kᵀ + causal mask)·v,
/// with q already scaled by 1/√D.
import Foundation

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
/// Heads with `active[h] == false` get zero output (the paper's head mask). Overwrites `ctx`.
public func attention(ctx: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>, spans: [AttentionSpan],
                      H: Int, D: Int, active: [Bool]?, scores: FloatBuffer) {
    let HD = H * D, ld = 3 * HD
    for span in spans where span.count > 0 {
        let Tp = span.prefix?.count ?? 0, Ts = span.count, Tk = Tp + Ts
        let p = scores.reserve(Ts * Tk)
        for h in 0..<H {
            let out = ctx + span.start * HD + h * D
            if let active, !active[h] {
                for i in 0..<Ts { (out + i * HD).update(repeating: 0, count: D) }
                continue
            }
            let q = qkv + span.start * ld + h * D
            let k = qkv + span.start * ld + HD + h * D
            let v = qkv + span.start * ld + 2 * HD + h * D
            if let prefix = span.prefix, Tp > 0 {
                BLAS.gemm(transB: true, M: Ts, N: Tp, K: D, a: q, lda: ld, b: prefix.keys + h * D, ldb: prefix.ld, c: p, ldc: Tk)
            }
            BLAS.gemm(transB: true, M: Ts, N: Ts, K: D, a: q, lda: ld, b: k, ldb: ld, c: p + Tp, ldc: Tk)
            causalSoftmax(p, rows: Ts, prefix: Tp, ld: Tk)
            if let prefix = span.prefix, Tp > 0 {
                BLAS.gemm(M: Ts, N: D, K: Tp, a: p, lda: Tk, b: prefix.values + h * D, ldb: prefix.ld, c: out, ldc: HD)
            }
            BLAS.gemm(M: Ts, N: D, K: Ts, a: p + Tp, lda: Tk, b: v, ldb: ld, beta: Tp > 0 ? 1 : 0, c: out, ldc: HD)
        }
    }
}

/// In place: row i keeps columns 0 ..< prefix + i + 1 (softmax over them) and zeroes the rest.
/// Masked positions get exactly 0, as softmax with a −∞ mask does.
public func causalSoftmax(_ p: UnsafeMutablePointer<Float>, rows: Int, prefix: Int, ld: Int) {
    parallelRanges(rows, minimumPerTask: max(1, 16384 / max(1, ld))) { range in
        for i in range {
            let row = p + i * ld
            let valid = prefix + i + 1
            var maximum = -Float.infinity
            for j in 0..<valid { maximum = max(maximum, row[j]) }
            var sum: Float = 0
            for j in 0..<valid { let e = expf(row[j] - maximum); row[j] = e; sum += e }
            let inverse = 1 / sum
            for j in 0..<valid { row[j] *= inverse }
            if valid < ld { (row + valid).update(repeating: 0, count: ld - valid) }
        }
    }
}
