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
    let work = spans.filter { $0.count > 0 }.flatMap { span in (0..<H).map { (span, $0) } }
    // One scores buffer per task: [Ts, Tp + Ts] for the largest span.
    let biggest = spans.map { $0.count * ($0.count + ($0.prefix?.count ?? 0)) }.max() ?? 0
    let tasks = max(1, min(work.count, Runtime.threads))
    let all = scores.reserve(tasks * biggest)
    let next = AtomicCounter()
    parallelWithSerialBLAS(tasks) { task in
        let p = all + task * biggest
        while true {
            let i = next.increment()
            guard i < work.count else { return }
            let (span, h) = work[i]
            let Tp = span.prefix?.count ?? 0, Ts = span.count, Tk = Tp + Ts
            let out = ctx + span.start * HD + h * D
            if let active, !active[h] {
                for r in 0..<Ts { (out + r * HD).update(repeating: 0, count: D) }
                continue
            }
            let q = qkv + span.start * ld + h * D
            let k = qkv + span.start * ld + HD + h * D
            let v = qkv + span.start * ld + 2 * HD + h * D
            if let prefix = span.prefix, Tp > 0 {
                BLAS.gemm(transB: true, M: Ts, N: Tp, K: D, a: q, lda: ld, b: prefix.keys + h * D, ldb: prefix.ld, c: p, ldc: Tk)
            }
            BLAS.gemm(transB: true, M: Ts, N: Ts, K: D, a: q, lda: ld, b: k, ldb: ld, c: p + Tp, ldc: Tk)
            causalSoftmax(p, rows: Ts, prefix: Tp, ld: Tk, parallel: false)
            if let prefix = span.prefix, Tp > 0 {
                BLAS.gemm(M: Ts, N: D, K: Tp, a: p, lda: Tk, b: prefix.values + h * D, ldb: prefix.ld, c: out, ldc: HD)
            }
            BLAS.gemm(M: Ts, N: D, K: Ts, a: p + Tp, lda: Tk, b: v, ldb: ld, beta: Tp > 0 ? 1 : 0, c: out, ldc: HD)
        }
    }
}

/// A shared work counter for dynamic scheduling.
final class AtomicCounter: @unchecked Sendable {
    private var value = 0
    private let lock = NSLock()
    func increment() -> Int {
        lock.lock(); defer { lock.unlock() }
        value += 1
        return value - 1
    }
}

/// In place: row i keeps columns 0 ..< prefix + i + 1 (softmax over them) and zeroes the rest.
/// Masked positions get exactly 0, as softmax with a −∞ mask does.
public func causalSoftmax(_ p: UnsafeMutablePointer<Float>, rows: Int, prefix: Int, ld: Int, parallel: Bool = true) {
    let body = { (range: Range<Int>) in
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
    if parallel { parallelRanges(rows, minimumPerTask: max(1, 16384 / max(1, ld)), body) } else { body(0..<rows) }
}
