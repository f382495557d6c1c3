import Foundation
import Testing
import CKernels
@testable import Runtime

/// The bf16 GEMM against a float64 reference computed from the same bf16-rounded inputs, over odd shapes, tails
/// and every blocking edge (12-row panels, 32-column panels, 4096-pair K blocks, 8-panel M blocks, ~4 MB
/// column blocks), on both kernel paths; the two paths against each other; and fc1's fused ReLU-and-pack
/// epilogue against the GEMM, ReLU and packing one after another.
struct BF16KernelTests {
    init() { Threads.set(2); BF16Kernel.quiet = true }

    static func bf16(_ x: Float) -> Double {
        Double(Float(bitPattern: UInt32(hr_bf16_round(x)) << 16))
    }

    /// Random values with a wide spread of magnitudes (a few large, as activations have).
    static func values(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed &* 6364136223846793005 &+ 1442695040888963407
        return (0..<count).map { i in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let u = Float(Double(state >> 11) / Double(1 << 53)) * 2 - 1
            return i % 97 == 0 ? u * 40 : u
        }
    }

    static let shapes: [(M: Int, N: Int, K: Int)] = [
        (1, 1, 1), (1, 31, 3), (7, 33, 5), (8, 32, 2), (9, 65, 255), (17, 64, 256), (3, 100, 257),
        (8, 32, 511), (257, 97, 300), (300, 40, 64), (5, 2049, 17), (64, 96, 1024), (2, 7, 0), (10, 40, 4099), (9, 33, 8200), (13, 545, 4500), (25, 64, 24),
    ]

    static var paths: [BF16Kernel] { hr_bf16_fast_available() != 0 ? [.avx512bf16, .portable] : [.portable] }

    /// |C − C₆₄| ≤ 1e-6 · Σₖ|aₖ·bₖ| + tiny, per element: fp32 accumulation of exact bf16 products.
    @Test(arguments: BF16KernelTests.paths)
    func gemmMatchesFloat64OnBF16RoundedInputs(_ path: BF16Kernel) throws {
        for (i, s) in Self.shapes.enumerated() {
            for (withBias, accumulate) in [(false, false), (true, false), (true, true)] {
                let a = Self.values(s.M * s.K, seed: UInt64(i) * 7 + 1)
                let w = Self.values(s.N * s.K, seed: UInt64(i) * 7 + 2)
                let bias = Self.values(s.N, seed: UInt64(i) * 7 + 3)
                let start = Self.values(s.M * s.N, seed: UInt64(i) * 7 + 4)
                let packed = w.withUnsafeBufferPointer { PackedMatrix(fp32: $0.baseAddress!, rows: s.N, columns: s.K) }
                var out = start
                a.withUnsafeBufferPointer { ap in
                    bias.withUnsafeBufferPointer { bp in
                        BF16.gemm(
                            out: &out, input: ap.baseAddress!, weight: packed, bias: withBias ? bp.baseAddress! : nil,
                            M: s.M, accumulate: accumulate, scratch: BF16Scratch(), kernel: path)
                    }
                }
                var worst = 0.0
                for m in 0..<s.M {
                    for n in 0..<s.N {
                        var exact = withBias ? Double(bias[n]) : 0, magnitude = abs(exact)
                        if accumulate { exact += Double(start[m * s.N + n]); magnitude += abs(Double(start[m * s.N + n])) }
                        for k in 0..<s.K {
                            let p = Self.bf16(a[m * s.K + k]) * Self.bf16(w[n * s.K + k])
                            exact += p
                            magnitude += abs(p)
                        }
                        let error =
                            abs(Double(out[m * s.N + n]) - exact)
                            / (magnitude * 1e-6 * Double(max(1, s.K).bitWidth - max(1, s.K).leadingZeroBitCount + 1) + 1e-30)
                        worst = max(worst, error)
                    }
                }
                #expect(worst <= 1, "\(path) \(s) bias \(withBias) accumulate \(accumulate): error \(worst) of the bound")
            }
        }
    }

    /// `multiplyReLU` writes, bit for bit, what multiplying, max(0, ·) and `prepare` give, into a column block of
    /// the next GEMM's activations (other columns untouched), over partial row panels, partial and odd column
    /// tails, a K past one block, an empty K (ReLU of the bias alone), and a block that starts mid-matrix.
    @Test(arguments: BF16KernelTests.paths)
    func reluPackEpilogueMatchesGEMMThenReLUThenPacking(_ path: BF16Kernel) throws {
        let cases: [(M: Int, N: Int, K: Int, column0: Int, nextK: Int)] = [
            (1, 1, 1, 0, 1), (37, 70, 300, 0, 70), (25, 64, 24, 32, 128), (13, 33, 8200, 0, 33), (113, 96, 513, 64, 161),
            (12, 32, 64, 0, 32), (13, 33, 0, 32, 66),
        ]
        for (i, c) in cases.enumerated() {
            let a = Self.values(c.M * c.K, seed: UInt64(i) * 5 + 1), w = Self.values(c.N * c.K, seed: UInt64(i) * 5 + 2)
            let bias = Self.values(c.N, seed: UInt64(i) * 5 + 3)
            let packed = w.withUnsafeBufferPointer { PackedMatrix(fp32: $0.baseAddress!, rows: c.N, columns: c.K) }
            // Reference: C, ReLU, placed in columns column0 ..< column0 + N of zeros, prepared.
            var product = [Float](repeating: 0, count: c.M * c.N)
            BF16.gemm(out: &product, input: a, weight: packed, bias: bias, M: c.M, scratch: BF16Scratch(), kernel: path)
            var hidden = [Float](repeating: 0, count: c.M * c.nextK)
            for m in 0..<c.M { for n in 0..<c.N { hidden[m * c.nextK + c.column0 + n] = max(0, product[m * c.N + n]) } }
            let reference = BF16Scratch()
            let expected = BF16.prepare(hidden, M: c.M, K: c.nextK, scratch: reference, kernel: path)
            // Under test: the epilogue into zeroed activations.
            let scratch = BF16Scratch()
            let next = BF16.room(M: c.M, K: c.nextK, kernel: path, in: scratch.next)
            let words = path == .avx512bf16 ? hr_bf16_packed_a_count(Int32(c.M), Int32(c.nextK)) : c.M * c.nextK
            next.packed.initializeMemory(as: UInt32.self, repeating: 0, count: words)
            let prepared = BF16.prepare(a, M: c.M, K: c.K, scratch: scratch, kernel: path)
            BF16.multiplyReLU(prepared, weight: packed, bias: bias, into: next, column0: c.column0, scratch: scratch)
            let got = UnsafeBufferPointer(start: next.packed.assumingMemoryBound(to: UInt32.self), count: words)
            let want = UnsafeBufferPointer(start: expected.packed.assumingMemoryBound(to: UInt32.self), count: words)
            let differing = zip(got, want).filter { $0 != $1 }.count
            #expect(differing == 0, "\(path) \(c): \(differing) of \(words) words differ")
        }
    }

    /// The arithmetic-limit probe counts its work exactly (64 operations per vdpbf16ps, 32 per AVX-512 FMA, 24
    /// per iteration) and declines where the CPU lacks the instruction, so benchmarks' fractions of it are sound.
    @Test func limitProbeCountsItsOperations() {
        #expect(hr_limit_loop(1, 10) == (hr_bf16_fast_available() != 0 ? 10 * 24 * 64 : -1))
        #expect(hr_limit_loop(0, 10) == (hr_avx512_available() != 0 ? 10 * 24 * 32 : -1))
    }

    /// Same inputs, both paths: equal within fp32 summation-order differences.
    @Test func fastAndPortablePathsAgree() throws {
        guard hr_bf16_fast_available() != 0 else { return }
        let (M, N, K) = (37, 131, 777)
        let a = Self.values(M * K, seed: 11), w = Self.values(N * K, seed: 12), bias = Self.values(N, seed: 13)
        let packed = w.withUnsafeBufferPointer { PackedMatrix(fp32: $0.baseAddress!, rows: N, columns: K) }
        var results: [[Float]] = []
        for path in [BF16Kernel.avx512bf16, .portable] {
            var out = [Float](repeating: .nan, count: M * N)
            BF16.gemm(out: &out, input: a, weight: packed, bias: bias, M: M, scratch: BF16Scratch(), kernel: path)
            results.append(out)
        }
        let scale = results[1].map(abs).max()!
        let diff = zip(results[0], results[1]).map { abs($0 - $1) }.max()!
        #expect(diff <= 1e-5 * scale, "fast vs portable: max |Δ| \(diff), scale \(scale)")
    }

    /// Rounding is to nearest even, as torch's `.to(torch.bfloat16)`; NaN stays NaN, infinities stay.
    @Test func roundingIsNearestEven() {
        #expect(hr_bf16_round(1.0) == 0x3F80)
        #expect(hr_bf16_round(Float(bitPattern: 0x3F80_8000)) == 0x3F80)  // tie, even stays
        #expect(hr_bf16_round(Float(bitPattern: 0x3F81_8000)) == 0x3F82)  // tie, odd rounds up
        #expect(hr_bf16_round(Float(bitPattern: 0x3F80_8001)) == 0x3F81)
        #expect(hr_bf16_round(.infinity) == 0x7F80)
        #expect(Float(bitPattern: UInt32(hr_bf16_round(.nan)) << 16).isNaN)
        #expect(hr_bf16_round(Float(bitPattern: 0x7F7F_FFFF)) == 0x7F80)  // the largest float rounds to infinity
    }

    /// The AVX512-BF16 packers write exactly what the portable ones write, tails and odd K included, also when a
    /// matrix is packed in panel-aligned pieces.
    @Test func fastPackersMatchPortablePackers() {
        guard hr_bf16_fast_available() != 0 else { return }
        for (N, K) in [(1, 1), (33, 31), (64, 64), (97, 2057), (40, 96)] {
            let w = Self.values(N * K, seed: UInt64(N * 31 + K))
            let count = hr_bf16_packed_b_count(Int32(N), Int32(K))
            var portable = [UInt16](repeating: 1, count: count), fast = [UInt16](repeating: 2, count: count)
            hr_bf16_pack_b(w, Int32(HR_F32.rawValue), K, 1, Int32(N), Int32(K), 0, Int32(N), &portable)
            let split = min(N, 32)
            w.withUnsafeBufferPointer { p in
                hr_bf16_pack_b_fast(p.baseAddress! + split * K, K, Int32(N), Int32(K), Int32(split), Int32(N), &fast)
                hr_bf16_pack_b_fast(p.baseAddress!, K, Int32(N), Int32(K), 0, Int32(split), &fast)
            }
            #expect(portable == fast, "B \(N)×\(K)")
            let aCount = hr_bf16_packed_a_count(Int32(N), Int32(K))
            var a1 = [UInt32](repeating: 1, count: aCount), a2 = [UInt32](repeating: 2, count: aCount)
            hr_bf16_pack_a(w, K, Int32(N), Int32(K), 0, Int32(N), &a1)
            hr_bf16_pack_a_fast(w, K, Int32(N), Int32(K), 0, Int32(N), &a2)
            #expect(a1 == a2, "A \(N)×\(K)")
        }
    }

    /// Packing a transposed matrix equals packing its explicit transpose.
    @Test func transposedPackingMatchesExplicitTranspose() {
        let (N, K) = (45, 70)
        let w = Self.values(K * N, seed: 5)  // [K, N]
        var t = [Float](repeating: 0, count: N * K)
        for k in 0..<K { for n in 0..<N { t[n * K + k] = w[k * N + n] } }
        let a = w.withUnsafeBufferPointer { PackedMatrix(transposing: $0.baseAddress!, rows: N, columns: K) }
        let b = t.withUnsafeBufferPointer { PackedMatrix(fp32: $0.baseAddress!, rows: N, columns: K) }
        #expect(a.count == b.count)
        #expect((0..<a.count).allSatisfy { a.storage[$0] == b.storage[$0] })
    }
}
