/// Layer norm over the last dimension. Reference: `torch.nn.LayerNorm` (biased variance, eps inside the sqrt),
/// as HF `OPTDecoderLayer` uses it with eps = 1e-5.

/// out `[T, C]` = (input − mean) · rstd · weight + bias, per row. Saves `mean` and `rstd` `[T]` when given
/// (the backward pass needs them). `weight`/`bias` nil means no elementwise affine. Overwrites `out`;
/// `out` may alias `input`.
public func layerNorm(out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>? = nil,
                      rstd: UnsafeMutablePointer<Float>? = nil, input: UnsafePointer<Float>,
                      weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?, T: Int, C: Int, eps: Float = 1e-5) {
    parallelRanges(T, minimumPerTask: max(1, 4096 / max(1, C))) { rows in
        for t in rows {
            let x = input + t * C, y = out + t * C
            var sum: Double = 0
            for i in 0..<C { sum += Double(x[i]) }
            let m = Float(sum / Double(C))
            var sq: Double = 0
            for i in 0..<C { let d = Double(x[i] - m); sq += d * d }
            let s = Float(1 / (sq / Double(C) + Double(eps)).squareRoot())
            mean?[t] = m
            rstd?[t] = s
            if let weight, let bias {
                for i in 0..<C { y[i] = (x[i] - m) * s * weight[i] + bias[i] }
            } else {
                for i in 0..<C { y[i] = (x[i] - m) * s }
            }
        }
    }
}
