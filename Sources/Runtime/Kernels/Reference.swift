/// Naive scalar versions of the fast kernels, for tests on odd shapes (llm.c's `matmul_forward_naive`).

/// out `[M, N]` = input `[M, K]` · weight `[N, K]`ᵀ + bias, in Double accumulation.
public func referenceLinear(_ input: [Float], _ weight: [Float], _ bias: [Float]?, M: Int, N: Int, K: Int) -> [Float] {
    var out = [Float](repeating: 0, count: M * N)
    for m in 0..<M {
        for n in 0..<N {
            var s = Double(bias?[n] ?? 0)
            for k in 0..<K { s += Double(input[m * K + k]) * Double(weight[n * K + k]) }
            out[m * N + n] = Float(s)
        }
    }
    return out
}

/// Causal attention for one sequence without prefix: q, k, v `[T, H·D]` (q pre-scaled) → ctx `[T, H·D]`.
public func referenceAttention(q: [Float], k: [Float], v: [Float], T: Int, H: Int, D: Int) -> [Float] {
    let HD = H * D
    var ctx = [Float](repeating: 0, count: T * HD)
    for h in 0..<H {
        for i in 0..<T {
            var scores = [Double](repeating: 0, count: i + 1)
            for j in 0...i {
                var s = 0.0
                for d in 0..<D { s += Double(q[i * HD + h * D + d]) * Double(k[j * HD + h * D + d]) }
                scores[j] = s
            }
            let m = scores.max()!
            let e = scores.map { Foundation.exp($0 - m) }
            let z = e.reduce(0, +)
            for d in 0..<D {
                var s = 0.0
                for j in 0...i { s += e[j] / z * Double(v[j * HD + h * D + d]) }
                ctx[i * HD + h * D + d] = Float(s)
            }
        }
    }
    return ctx
}

import Foundation
