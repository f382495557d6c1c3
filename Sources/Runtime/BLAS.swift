/// The one file that imports COpenBLAS. Every GEMM in Headroom goes through `linear` or `gemm`.
import COpenBLAS
import Foundation
import Files

public enum BLAS {
    /// Sets OpenBLAS's thread count. C: `openblas_set_num_threads`.
    public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(max(1, n))) }

    /// The kernel family OpenBLAS chose at load time, e.g. `SkylakeX`. C: `openblas_get_corename`.
    public static var coreName: String { String(cString: openblas_get_corename()) }

    /// OpenBLAS picks kernels from CPUID when it loads. On CPUs it does not recognize (VMs often report a
    /// generic model) it falls back to `Prescott` (SSE3) kernels at a sixth of the speed. This returns the
    /// core type to force with `OPENBLAS_CORETYPE` when that happened and the CPU has AVX-512 or AVX2+FMA,
    /// or nil (also when the user already set the variable).
    public static func betterCoreType(cpuFlags: Set<String>? = nil) -> String? {
        guard getenv("OPENBLAS_CORETYPE") == nil, ["Prescott", "Core2", "Katmai", "Coppermine", "Northwood", "Banias"].contains(coreName) else {
            return nil
        }
        let flags = cpuFlags ?? Self.cpuFlags()
        if flags.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq"]) { return "SkylakeX" }
        if flags.isSuperset(of: ["avx2", "fma"]) { return "Haswell" }
        return nil
    }

    /// The `flags` line of /proc/cpuinfo (empty elsewhere).
    static func cpuFlags() -> Set<String> {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
        else { return [] }
        return Set(line.split(separator: ":").last?.split(separator: " ").map(String.init) ?? [])
    }

    /// Environment OpenBLAS should have been loaded with, for variables the user has not set:
    /// - `OPENBLAS_CORETYPE`: see `betterCoreType`.
    /// - `OPENBLAS_THREAD_TIMEOUT=4`: idle OpenBLAS workers otherwise spin in `sched_yield` for 2^28 cycles after
    ///   each call, taking a core from Headroom's own kernels and even from OpenBLAS's next GEMM; measured
    ///   here, 2048×8192×2048 sgemm on 2 threads went from 159–269 to 228–313 GFLOP/s.
    /// Both are read only when OpenBLAS loads, so the executable re-runs itself once with them set.
    public static func preferredEnvironment() -> [String: String] {
        var env: [String: String] = [:]
        if let core = betterCoreType() { env["OPENBLAS_CORETYPE"] = core }
        if getenv("OPENBLAS_THREAD_TIMEOUT") == nil { env["OPENBLAS_THREAD_TIMEOUT"] = "4" }
        return env
    }

    /// OpenBLAS's thread count. C: `openblas_get_num_threads`.
    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// out `[M, N]` (row stride `ldOut`) = input `[M, K]` (row stride `ldInput`) · weight `[N, K]`ᵀ + bias `[N]`.
    /// The weight layout is HF `Linear`'s `[out, in]`, so `transB` lives here and nowhere else.
    /// Overwrites `out`, or accumulates into it when `accumulate` (then the bias is added too, if given).
    /// C: `cblas_sgemm`.
    public static func linear(
        out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        bias: UnsafePointer<Float>?, M: Int, N: Int, K: Int,
        ldInput: Int? = nil, ldOut: Int? = nil, accumulate: Bool = false
    ) {
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
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, CblasTrans, Int32(M), Int32(N), Int32(K), 1,
            input, Int32(ldInput ?? K), weight, Int32(K), beta, out, Int32(ldo))
    }

    /// c `[M, N]` = alpha · op(a) · op(b) + beta · c, row-major, with explicit leading dimensions. C: `cblas_sgemm`.
    public static func gemm(
        transA: Bool = false, transB: Bool = false, M: Int, N: Int, K: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard M > 0, N > 0 else { return }
        if K == 0 {
            for m in 0..<M { let row = c + m * ldc; for n in 0..<N { row[n] *= beta } }
            return
        }
        cblas_sgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            Int32(M), Int32(N), Int32(K), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}
