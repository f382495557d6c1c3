/// bf16 compute: GEMM inputs rounded to bf16 (round to nearest even), products accumulated in fp32. Weights are
/// packed once into the kernel's panel layout (`PackedMatrix`); activations are rounded and packed per call.
/// Two paths with the same meaning: the AVX512-BF16 microkernel (`vdpbf16ps`, C target CKernels) where the CPU
/// has it, else the rounded values widened back to fp32 and multiplied by `cblas_sgemm`.
import Foundation
import CKernels
import Basics

/// The arithmetic of the model's large GEMMs.
public enum Precision: String, Sendable, Codable, CaseIterable {
    /// fp32 throughout: exact against HF transformers in fp32.
    case fp32
    /// GEMM inputs (weights and activations) rounded to bf16, fp32 accumulation; norms, softmax, residuals and
    /// the loss stay fp32.
    case bf16
}

/// Which bf16 kernel runs on this machine.
public enum BF16Kernel: String, Sendable {
    /// vdpbf16ps microkernel (AVX512-BF16).
    case avx512bf16 = "avx512-bf16"
    /// bf16-rounded values widened to fp32, multiplied by cblas_sgemm: same meaning, fp32 speed.
    case portable

    /// The kernel in use: what this CPU can run, unless `HEADROOM_BF16_KERNEL=portable` forces the portable
    /// path (tests compare both).
    public static let current: BF16Kernel = forced || hr_bf16_fast_available() == 0 ? .portable : .avx512bf16

    /// `HEADROOM_BF16_KERNEL=portable` is set.
    static let forced = ProcessInfo.processInfo.environment["HEADROOM_BF16_KERNEL"] == "portable"

    /// Says once, on stderr, which path bf16 uses (a static's initializer runs once, thread-safely).
    static func announce() { _ = announcement }
    private static let announcement: Void = {
        guard !quiet else { return }
        let why = forced ? " (forced by HEADROOM_BF16_KERNEL)" : " (this CPU lacks avx512_bf16: the same bf16 arithmetic at fp32 speed)"
        FileHandle.standardError.write("headroom: bf16 GEMM kernel: \(current.rawValue)\(current == .portable ? why : "")\n".data(using: .utf8)!)
    }()
    /// Tests silence the announcement.
    nonisolated(unsafe) public static var quiet = false
}

/// B `[N, K]` in the bf16 kernel's panel layout (32-row panels, k in pairs), rounded once.
public final class PackedMatrix: @unchecked Sendable {
    public let rows: Int
    public let columns: Int
    let storage: UnsafeMutablePointer<UInt16>
    let count: Int

    init(rows N: Int, columns K: Int) {
        rows = N
        columns = K
        count = hr_bf16_packed_b_count(Int32(N), Int32(K))
        storage = .allocate(capacity: max(1, count))
    }

    deinit { storage.deallocate() }

    public var bytes: Int { 2 * count }

    /// Packs fp32 `[N, K]` row-major (row stride `ld`).
    public convenience init(fp32 source: UnsafePointer<Float>, rows N: Int, columns K: Int, ld: Int? = nil) {
        self.init(rows: N, columns: K)
        pack(fp32: source, ld: ld ?? K, rows: 0..<N)
    }

    /// Packs the transpose of fp32 `[K, N]` row-major: element (n, k) is `source[k·N + n]` (the backward's
    /// input gradient multiplies by Wᵀ).
    public convenience init(transposing source: UnsafePointer<Float>, rows N: Int, columns K: Int) {
        self.init(rows: N, columns: K)
        pack(rows: 0..<N) { range, out in
            hr_bf16_pack_b(
                source + range.lowerBound, Int32(HR_F32.rawValue), 1, N, Int32(N), Int32(K),
                Int32(range.lowerBound), Int32(range.upperBound), out)
        }
    }

    /// Fills rows in panel-aligned ranges on all cores; `body(range, storage)` packs one range.
    func pack(rows range: Range<Int>, _ body: (Range<Int>, UnsafeMutablePointer<UInt16>) -> Void) {
        let nr = Int(HR_NR)
        let first = range.lowerBound / nr, last = (range.upperBound + nr - 1) / nr
        let storage = self.storage
        parallelRanges(last - first, minimumPerTask: 4) { panels in
            let lo = (first + panels.lowerBound) * nr, hi = min(range.upperBound, (first + panels.upperBound) * nr)
            body(max(lo, range.lowerBound)..<hi, storage)
        }
    }

    /// Rows `range` (starting on a 32-row panel) from fp32 rows at `source` `[range.count, K]` (row stride `ld`).
    func pack(fp32 source: UnsafePointer<Float>, ld: Int? = nil, rows range: Range<Int>) {
        let (N, K) = (rows, columns), ld = ld ?? K
        let fast = BF16Kernel.current == .avx512bf16
        pack(rows: range) { sub, out in
            let rows = source + (sub.lowerBound - range.lowerBound) * ld
            if fast {
                hr_bf16_pack_b_fast(rows, ld, Int32(N), Int32(K), Int32(sub.lowerBound), Int32(sub.upperBound), out)
            } else {
                hr_bf16_pack_b(rows, Int32(HR_F32.rawValue), ld, 1, Int32(N), Int32(K), Int32(sub.lowerBound), Int32(sub.upperBound), out)
            }
        }
    }

    /// Rows `range` widened to fp32 `[range.count, K]`.
    func unpack(rows range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        hr_bf16_unpack_b(storage, Int32(rows), Int32(columns), Int32(range.lowerBound), Int32(range.upperBound), out)
    }
}

/// Work buffers of the bf16 GEMM.
public final class BF16Scratch {
    public init() {}
    /// The prepared activations: packed 32-bit pairs (avx512bf16) or rounded floats (portable).
    let activations = FloatBuffer()
    /// A second set, written by one GEMM's epilogue for the next (`BF16.multiplyReLU`).
    let next = FloatBuffer()
    /// The portable path's widened weight block.
    let widened = FloatBuffer()
}

/// Activations `[M, K]` rounded and laid out for one kernel path, reusable against several weight blocks.
struct PreparedActivations {
    let M: Int, K: Int
    let kernel: BF16Kernel
    /// avx512bf16: packed panels; portable: the rounded values as fp32 `[M, K]`.
    let packed: UnsafeMutableRawPointer
}

public enum BF16 {
    /// out `[M, N]` (row stride ldOut) = round(input `[M, K]`) · Bᵀ (+ bias) (+ out, with `accumulate`),
    /// B packed; fp32 accumulation.
    public static func gemm(
        out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, ldInput: Int? = nil, weight b: PackedMatrix,
        bias: UnsafePointer<Float>?, M: Int, ldOut: Int? = nil, accumulate: Bool = false, scratch: BF16Scratch,
        kernel: BF16Kernel = BF16Kernel.current
    ) {
        guard M > 0, b.rows > 0 else { return }
        let a = prepare(input, ldInput: ldInput, M: M, K: b.columns, scratch: scratch, kernel: kernel)
        multiply(a, weight: b, bias: bias, out: out, ldOut: ldOut ?? b.rows, accumulate: accumulate, scratch: scratch)
    }

    /// Rounds and lays out input `[M, K]` (row stride ldInput) for `multiply`; valid until `scratch` is used again.
    static func prepare(
        _ input: UnsafePointer<Float>, ldInput: Int? = nil, M: Int, K: Int, scratch: BF16Scratch,
        kernel: BF16Kernel
    ) -> PreparedActivations {
        BF16Kernel.announce()
        let lda = ldInput ?? K
        let a = room(M: M, K: K, kernel: kernel, in: scratch.activations)
        switch kernel {
        case .avx512bf16:
            let mr = Int(HR_MR), panels = (M + mr - 1) / mr
            let packed = a.packed.assumingMemoryBound(to: UInt32.self)
            parallelRanges(panels, minimumPerTask: 4) { r in
                hr_bf16_pack_a_fast(input, lda, Int32(M), Int32(K), Int32(r.lowerBound * mr), Int32(min(M, r.upperBound * mr)), packed)
            }
        case .portable:
            let rounded = a.packed.assumingMemoryBound(to: Float.self)
            for m in 0..<M { (rounded + m * K).update(from: input + m * lda, count: K) }
            hr_bf16_round_floats(rounded, M * K)
        }
        return a
    }

    /// Room in `buffer` for activations `[M, K]` laid out for `kernel` (contents unset).
    static func room(M: Int, K: Int, kernel: BF16Kernel, in buffer: FloatBuffer) -> PreparedActivations {
        let count = kernel == .avx512bf16 ? hr_bf16_packed_a_count(Int32(M), Int32(K)) : M * K
        return PreparedActivations(M: M, K: K, kernel: kernel, packed: UnsafeMutableRawPointer(buffer.reserve(count)))
    }

    /// Columns `column0 ..< column0 + N` of `next` (activations `[M, next.K]` from `room(…, in: scratch.next)`) =
    /// round(max(0, a · Bᵀ + bias)): fc1 feeding fc2 with no fp32 `[M, F]` hidden state written and read back.
    /// The fast kernel does it in its tile epilogue; the portable path multiplies into `next`'s rounded floats
    /// and applies max and rounding there. Either way the same values as `multiply`, max(0, ·) and `prepare`.
    static func multiplyReLU(
        _ a: PreparedActivations, weight b: PackedMatrix, bias: UnsafePointer<Float>?,
        into next: PreparedActivations, column0: Int, scratch: BF16Scratch
    ) {
        let M = a.M, N = b.rows, K = b.columns
        precondition(
            K == a.K && next.M == M && next.kernel == a.kernel && column0 % 2 == 0 && column0 + N <= next.K,
            "bf16 GEMM: activations \(a.M)×\(a.K) and \(next.M)×\(next.K) (from column \(column0)) against weights \(N)×\(K)")
        guard M > 0, N > 0 else { return }
        switch a.kernel {
        case .avx512bf16:
            let packed = a.packed.assumingMemoryBound(to: UInt32.self), out = next.packed.assumingMemoryBound(to: UInt32.self)
            inTasks(N) { lo, hi in
                hr_bf16_gemm_relu_pack_fast(
                    packed, Int32(M), Int32(K), b.storage, Int32(N), Int32(lo), Int32(hi), bias, out,
                    Int32(next.K), Int32(column0))
            }
        case .portable:
            let out = next.packed.assumingMemoryBound(to: Float.self) + column0
            multiply(a, weight: b, bias: bias, out: out, ldOut: next.K, accumulate: false, scratch: scratch)
            for m in 0..<M {
                let row = out + m * next.K
                for j in 0..<N { row[j] = max(row[j], 0) }
                hr_bf16_round_floats(row, N)
            }
        }
    }

    /// Runs `body(lo, hi)` over C's columns split into 32-column panels, one range per thread.
    private static func inTasks(_ N: Int, _ body: (Int, Int) -> Void) {
        let nr = Int(HR_NR), nPanels = (N + nr - 1) / nr
        let tasks = min(Threads.count, nPanels)
        func run(_ t: Int) {
            let lo = nPanels * t / tasks * nr, hi = min(N, nPanels * (t + 1) / tasks * nr)
            if lo < hi { body(lo, hi) }
        }
        if tasks <= 1 { run(0) } else { DispatchQueue.concurrentPerform(iterations: tasks) { run($0) } }
    }

    /// out `[M, N]` (row stride ldOut) = a · Bᵀ (+ bias) (+ out, with `accumulate`).
    static func multiply(
        _ a: PreparedActivations, weight b: PackedMatrix, bias: UnsafePointer<Float>?, out: UnsafeMutablePointer<Float>,
        ldOut ldc: Int, accumulate: Bool, scratch: BF16Scratch
    ) {
        let M = a.M, N = b.rows, K = b.columns
        precondition(K == a.K, "bf16 GEMM: activations have \(a.K) columns, weights \(K)")
        guard M > 0, N > 0 else { return }
        switch a.kernel {
        case .avx512bf16:
            let packed = a.packed.assumingMemoryBound(to: UInt32.self)
            inTasks(N) { lo, hi in
                hr_bf16_gemm_fast(packed, Int32(M), Int32(K), b.storage, Int32(N), Int32(lo), Int32(hi), bias, accumulate ? 1 : 0, out, ldc)
            }
        case .portable:
            let rounded = a.packed.assumingMemoryBound(to: Float.self)
            let blockRows = max(32, min(N, (64 << 20) / max(1, 4 * K)) / 32 * 32)
            let widened = scratch.widened.reserve(min(N, blockRows) * K)
            var n0 = 0
            while n0 < N {
                let n1 = min(N, n0 + blockRows)
                b.unpack(rows: n0..<n1, into: widened)
                BLAS.linear(
                    out: out + n0, input: rounded, weight: widened, bias: bias.map { $0 + n0 }, M: M, N: n1 - n0, K: K,
                    ldOut: ldc, accumulate: accumulate)
                n0 = n1
            }
        }
    }
}
