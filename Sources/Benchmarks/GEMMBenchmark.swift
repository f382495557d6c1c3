/// GEMM throughput: `cblas_sgemm` (fp32) and Headroom's bf16 GEMM at given shapes, the hardware limits the
/// forward's figures are fractions of. The bf16 weights are packed before timing (the runtime packs a layer
/// once); the activations' rounding and packing are inside each timed call, as in the runtime.
import Foundation
import Runtime
import CKernels

public struct GEMMShape: Codable, Sendable, CustomStringConvertible {
    public var m: Int, n: Int, k: Int
    public init(m: Int, n: Int, k: Int) { (self.m, self.n, self.k) = (m, n, k) }
    public var description: String { "\(m)x\(n)x\(k)" }
}

public struct GEMMBenchRow: Codable, Sendable {
    public var shape: GEMMShape
    public var fp32Gflops: Double
    public var bf16Gflops: Double
    public var bf16Kernel: String
    /// Each precision's arithmetic limit on the same threads (`GEMMBenchmark.instructionLimit`), where measurable.
    public var fp32LimitGflops: Double?
    public var bf16LimitGflops: Double?
    enum CodingKeys: String, CodingKey {
        case shape, fp32Gflops = "fp32_gflops", bf16Gflops = "bf16_gflops", bf16Kernel = "bf16_kernel"
        case fp32LimitGflops = "fp32_limit_gflops", bf16LimitGflops = "bf16_limit_gflops"
    }
}

public enum GEMMBenchmark {
    /// Squares and opt-1.3b's projections at 2048 tokens (q/k/v fused, out_proj, fc1, fc2).
    public static let defaultShapes = [
        GEMMShape(m: 2048, n: 2048, k: 2048), GEMMShape(m: 4096, n: 4096, k: 4096),
        GEMMShape(m: 2048, n: 6144, k: 2048), GEMMShape(m: 2048, n: 8192, k: 2048),
        GEMMShape(m: 2048, n: 2048, k: 8192),
    ]

    /// Best of `rounds` GFLOP/s of out `[M, N]` = a `[M, K]` · bᵀ in each precision.
    public static func measure(_ s: GEMMShape, threads: Int, rounds: Int = 5) -> GEMMBenchRow {
        GEMMBenchRow(
            shape: s, fp32Gflops: gflops(s, .fp32, threads: threads, rounds: rounds),
            bf16Gflops: gflops(s, .bf16, threads: threads, rounds: rounds), bf16Kernel: BF16Kernel.current.rawValue)
    }

    /// Best of `rounds` GFLOP/s of one precision's GEMM at shape `s`, after one untimed call: `cblas_sgemm`
    /// for fp32, Headroom's bf16 GEMM (weights packed beforehand) for bf16.
    public static func gflops(_ s: GEMMShape, _ precision: Precision, threads: Int, rounds: Int = 5) -> Double {
        Threads.set(threads)
        let a = (0..<(s.m * s.k)).map { Float($0 % 7) * 0.01 - 0.03 }
        let b = (0..<(s.n * s.k)).map { Float($0 % 5) * 0.01 - 0.02 }
        var c = [Float](repeating: 0, count: s.m * s.n)
        let flops = 2 * Double(s.m) * Double(s.n) * Double(s.k)
        func best(_ body: () -> Void) -> Double {
            body()
            var top = 0.0
            for _ in 0..<rounds {
                let start = DispatchTime.now().uptimeNanoseconds
                body()
                top = max(top, flops / (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) / 1e9)
            }
            return top
        }
        switch precision {
        case .fp32:
            return best { BLAS.linear(out: &c, input: a, weight: b, bias: nil, M: s.m, N: s.n, K: s.k) }
        case .bf16:
            let packed = b.withUnsafeBufferPointer { PackedMatrix(fp32: $0.baseAddress!, rows: s.n, columns: s.k) }
            let scratch = BF16Scratch()
            return best { BF16.gemm(out: &c, input: a, weight: packed, bias: nil, M: s.m, scratch: scratch) }
        }
    }

    /// The arithmetic limit in GFLOP/s: `threads` threads at once issuing multiply-adds from registers only
    /// (vdpbf16ps for bf16, AVX-512 FMA for fp32), best of three rounds of about 0.1 s; nil where this CPU lacks
    /// the instruction. What no kernel can beat: GEMM and forward figures are quoted as fractions of it.
    public static func instructionLimit(_ precision: Precision, threads: Int) -> Double? {
        let bf16: Int32 = precision == .bf16 ? 1 : 0, iterations = 4_000_000, threads = max(1, threads)
        let perThread = hr_limit_loop(bf16, iterations)  // also the warm-up
        guard perThread > 0 else { return nil }
        var best = 0.0
        for _ in 0..<3 {
            let start = DispatchTime.now().uptimeNanoseconds
            DispatchQueue.concurrentPerform(iterations: threads) { _ in _ = hr_limit_loop(bf16, iterations) }
            best = max(best, Double(threads) * perThread / (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) / 1e9)
        }
        return best
    }
}
