/// The one file that imports COpenBLAS. Every GEMM in Headroom goes through `linear` or `gemm`.
import COpenBLAS

public enum BLAS {
    /// Sets OpenBLAS's thread count. C: `openblas_set_num_threads`.
    public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(max(1, n))) }

    /// OpenBLAS's thread count. C: `openblas_get_num_threads`.
    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// out `[M, N]` (row stride `ldOut`) = input `[M, K]` (row stride `ldInput`) · weight `[N, K]`ᵀ + bias `[N]`.
    /// The weight layout is HF `Linear`'s `[out, in]`, so `transB` lives here and nowhere else.
    /// Overwrites `out`, or accumulates into it when `accumulate` (then the bias is added too, if given).
    /// C: `cblas_sgemm`.
    public static func linear(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                              bias: UnsafePointer<Float>?, M: Int, N: Int, K: Int,
                              ldInput: Int? = nil, ldOut: Int? = nil, accumulate: Bool = false) {
        guard M > 0, N > 0 else { return }
        let ldo = ldOut ?? N
        if let bias {
            for m in 0..<M {
                let row = out + m * ldo
                if accumulate { for n in 0..<N { row[n] += bias[n] } } else { row.update(from: bias, count: N) }
            }
        }
        let beta: Float = (bias != nil || accumulate) ? 1 : 0
        if K == 0 {
            if beta == 0 { for m in 0..<M { (out + m * ldo).update(repeating: 0, count: N) } }
            return
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(M), Int32(N), Int32(K), 1,
                    input, Int32(ldInput ?? K), weight, Int32(K), beta, out, Int32(ldo))
    }

    /// c `[M, N]` = alpha · op(a) · op(b) + beta · c, row-major, with explicit leading dimensions. C: `cblas_sgemm`.
    public static func gemm(transA: Bool = false, transB: Bool = false, M: Int, N: Int, K: Int, alpha: Float = 1,
                            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                            beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard M > 0, N > 0 else { return }
        if K == 0 {
            for m in 0..<M { let row = c + m * ldc; for n in 0..<N { row[n] *= beta } }
            return
        }
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(M), Int32(N), Int32(K), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}
