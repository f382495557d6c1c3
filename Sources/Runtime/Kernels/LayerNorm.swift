/// Layer norm over the last dimension. Reference: `torch.nn.LayerNorm` (biased variance, eps inside the sqrt),
/// as HF `OPTDecoderLayer` uses it with eps = 1e-5.

/// out `[T, C]` = (input − mean) · rstd · weight + bias, per row. Saves `mean` and `rstd` `[T]` when given
/// (the backward pass needs them). `weight`/`bias` nil means no elementwise affine. Overwrites `out`;
/// `out` may alias `input`. `parallel` false: on the calling thread (a caller already splits the rows).
public func layerNorm(
    out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>? = nil,
    rstd: UnsafeMutablePointer<Float>? = nil, input: UnsafePointer<Float>,
    weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?, T: Int, C: Int, eps: Float = 1e-5,
    parallel: Bool = true
) {
    let body = { (rows: Range<Int>) in
        for t in rows {
            let x = input + t * C, y = out + t * C
            // Two passes (mean, then squared deviations) with 8-lane partial sums: vectorized, and as
            // accurate as torch's own fp32 reduction for rows of a few thousand.
            let m = laneSum(x, C) { $0 } / Float(C)
            let variance = laneSum(x, C) { ($0 - m) * ($0 - m) } / Float(C)
            let s = 1 / (variance + eps).squareRoot()
            mean?[t] = m
            rstd?[t] = s
            if let weight, let bias {
                for i in 0..<C { y[i] = (x[i] - m) * s * weight[i] + bias[i] }
            } else {
                for i in 0..<C { y[i] = (x[i] - m) * s }
            }
        }
    }
    if parallel { parallelRanges(T, minimumPerTask: max(1, 4096 / max(1, C)), body) } else { body(0..<T) }
}

/// Σ f(x[i]) for i < n, accumulated in 8 lanes.
@inline(__always)
func laneSum(_ x: UnsafePointer<Float>, _ n: Int, _ f: (SIMD8<Float>) -> SIMD8<Float>) -> Float {
    var acc = SIMD8<Float>()
    var i = 0
    let raw = UnsafeRawPointer(x)
    while i + 8 <= n {
        acc += f(raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self))
        i += 8
    }
    var total = acc.sum()
    while i < n { total += f(SIMD8<Float>(repeating: x[i]))[0]; i += 1 }
    return total
}

/// dInput `[T, C]` += ∂(layerNorm)/∂input applied to dOut `[T, C]`, given the forward's input (llm.c
/// `layernorm_backward`, without weight gradients). `mean` and `rstd` `[T]` are the forward's, or nil to
/// recompute them from `input` as `layerNorm` does. `weight` nil means no affine. Accumulates into `dInput`,
/// or overwrites it when `accumulate` is false; then `dInput` may alias `dOut`.
public func layerNormBackward(
    dInput: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>, input: UnsafePointer<Float>,
    mean: UnsafePointer<Float>? = nil, rstd: UnsafePointer<Float>? = nil, weight: UnsafePointer<Float>?,
    T: Int, C: Int, eps: Float = 1e-5, accumulate: Bool = true
) {
    parallelRanges(T, minimumPerTask: max(1, 4096 / max(1, C))) { rows in
        for t in rows {
            let x = input + t * C, dy = dOut + t * C, dx = dInput + t * C
            let m: Float, s: Float
            if let mean, let rstd {
                (m, s) = (mean[t], rstd[t])
            } else {
                m = laneSum(x, C) { $0 } / Float(C)
                s = 1 / (laneSum(x, C) { ($0 - m) * ($0 - m) } / Float(C) + eps).squareRoot()
            }
            var meanD = 0.0, meanDN = 0.0
            for i in 0..<C {
                let n = (x[i] - m) * s
                let d = dy[i] * (weight?[i] ?? 1)
                meanD += Double(d)
                meanDN += Double(d * n)
            }
            let a = Float(meanD / Double(C)), b = Float(meanDN / Double(C))
            for i in 0..<C {
                let n = (x[i] - m) * s
                let d = dy[i] * (weight?[i] ?? 1)
                if accumulate { dx[i] += (d - a - n * b) * s } else { dx[i] = (d - a - n * b) * s }
            }
        }
    }
}
