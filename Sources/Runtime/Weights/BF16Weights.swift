/// The bf16 backend: GEMM inputs rounded to bf16, products accumulated in fp32 (`Kernels/BF16.swift`). Each
/// projection is packed into the bf16 kernel's panels straight from its decoded 16-bit or fp32 rows (fp16
/// rounds to bf16 here, once; bf16 is copied exactly). When every layer's packs fit `OPTModel.packedLimit`
/// they are made once and kept across passes and runs (packing opt-1.3b costs about 0.3 s); otherwise each
/// matrix is packed for its one use, in blocks, so a model streamed from disk never holds a whole matrix's
/// pack. Layer norms and fc1's epilogue write the next GEMM's packed activations directly (`fuses`).
import Foundation
import CKernels

final class BF16Weights: WeightBackend {
    unowned let model: OPTModel
    let precision = Precision.bf16
    private var packs: [WeightKey: PackedMatrix] = [:]
    let scratch = BF16Scratch()

    init(model: OPTModel) { self.model = model }

    /// The kernel path (the model's; tests run both on one machine).
    var kernel: BF16Kernel { model.bf16Kernel }
    /// Whether packs are made once and kept (every layer's fit `OPTModel.packedLimit`).
    var keeps: Bool { 2 * model.layerElements <= model.packedLimit }
    var fuses: Bool { model.fusesIntoGEMMs }

    func reuse(_ on: Bool) {}

    /// Packs of a selection of a matrix (a mask's heads left out): one kept per layer and role, replaced when
    /// the selection changes (a sweep point keeps one selection over all its batches).
    private var selections: [WeightKey: (variant: Int, pack: PackedMatrix)] = [:]

    /// The kept pack under `key`, made by `make` on first use.
    private func kept(_ key: WeightKey, _ make: () -> PackedMatrix) -> PackedMatrix {
        if key.variant != 0 {
            var whole = key
            whole.variant = 0
            if let s = selections[whole], s.variant == key.variant { return s.pack }
            let m = make()
            selections[whole] = (key.variant, m)
            return m
        }
        if let m = packs[key] { return m }
        let m = make()
        packs[key] = m
        return m
    }

    // MARK: The operations

    func normalized(_ n: BoundNorm?, input: UnsafePointer<Float>, T: Int, into out: UnsafeMutablePointer<Float>) -> GEMMInput {
        guard fuses else {
            model.norm(n, out: out, input: input, T: T)
            return .floats(out)
        }
        return .prepared(normPrepared(n, input: input, T: T))
    }

    func project(_ p: BoundLinear, layer: Int, out: UnsafeMutablePointer<Float>, input: GEMMInput, M: Int, K: Int) {
        let a = prepared(input, M: M, K: K)
        let bias = model.stackedBias(p)
        if keeps {
            BF16.multiply(a, weight: packed(p, layer: layer, K: K), bias: bias, out: out, ldOut: p.rows, accumulate: false, scratch: scratch)
            return
        }
        perUseBlocks(p, K: K) { start, block in
            BF16.multiply(a, weight: block, bias: bias.map { $0 + start }, out: out + start, ldOut: p.rows, accumulate: false, scratch: scratch)
        }
    }

    /// fc1's tiles round and pack the hidden state for fc2 as they finish (`BF16.multiplyReLU`): the `[M, F]`
    /// fp32 hidden state is never written, cleared by a ReLU pass and read back to be packed. The same values
    /// as fc1, ReLU and fc2 one after another, which run instead when the hidden state is tapped.
    func feedForward(
        fc1: BoundLinear, fc2: BoundLinear, layer: Int, out: UnsafeMutablePointer<Float>, input: GEMMInput, M: Int,
        hidden tap: ((UnsafePointer<Float>, Int) throws -> Void)?
    ) throws {
        let C = model.config.hiddenSize, F = fc1.rows
        guard fuses, tap == nil else {
            let hidden = model.scratch.layer.ffn.reserve(M * F)
            Profile.measure("fc1") { project(fc1, layer: layer, out: hidden, input: input, M: M, K: C) }
            Profile.measure("relu") { reluInPlace(hidden, count: M * F) }
            try tap?(hidden, M * F)
            Profile.measure("fc2") { project(fc2, layer: layer, out: out, input: .floats(hidden), M: M, K: F) }
            return
        }
        let next = BF16.room(M: M, K: F, kernel: kernel, in: scratch.next)
        Profile.measure("fc1") {
            let a = prepared(input, M: M, K: C)
            let bias = model.stackedBias(fc1)
            if keeps {
                BF16.multiplyReLU(a, weight: packed(fc1, layer: layer, K: C), bias: bias, into: next, column0: 0, scratch: scratch)
            } else {
                perUseBlocks(fc1, K: C) { start, block in
                    BF16.multiplyReLU(a, weight: block, bias: bias.map { $0 + start }, into: next, column0: start, scratch: scratch)
                }
            }
        }
        Profile.measure("fc2") { project(fc2, layer: layer, out: out, input: .prepared(next), M: M, K: F) }
    }

    /// The same bf16 GEMM with Wᵀ packed; without kept packs, W's rows in blocks of at most 64 MB of fp32, each
    /// block's transpose packed and its products accumulated.
    func projectBackward(
        _ p: BoundLinear, layer: Int, dOut: UnsafePointer<Float>, T: Int, K: Int, into dInput: UnsafeMutablePointer<Float>,
        accumulate: Bool
    ) {
        if keeps {
            BF16.gemm(
                out: dInput, input: dOut, weight: packed(p, layer: layer, K: K, transposed: true), bias: nil, M: T, accumulate: accumulate,
                scratch: scratch, kernel: kernel)
            return
        }
        let N = p.rows, rows = max(1, min(N, min(model.widenBlockBytes, 64 << 20) / max(1, 4 * K)))
        let fp32 = model.scratch.layer.weight.reserve(rows * K)
        var n0 = 0
        while n0 < N {
            let n1 = min(N, n0 + rows)
            model.widenRows(p, n0..<n1, K: K, into: fp32)
            let block = PackedMatrix(transposing: fp32, rows: K, columns: n1 - n0)
            BF16.gemm(
                out: dInput, input: dOut + n0, ldInput: N, weight: block, bias: nil, M: T, ldOut: K,
                accumulate: accumulate || n0 > 0, scratch: scratch, kernel: kernel)
            n0 = n1
        }
    }

    /// The whole packed table when packs are kept, else packed and multiplied in blocks of at most 64 MB of rows.
    func unembed(_ features: UnsafePointer<Float>, rows R: Int, into out: UnsafeMutablePointer<Float>) {
        let V = model.config.vocabSize, E = model.config.wordEmbedProjDim
        if keeps {
            BF16.gemm(out: out, input: features, weight: packedEmbedding(), bias: nil, M: R, scratch: scratch, kernel: kernel)
            return
        }
        model.embeddingBlocks { v0, n, rows in
            let block = PackedMatrix(rows: n, columns: E)
            block.pack(fp32: rows, rows: 0..<n)
            BF16.gemm(out: out + v0, input: features, weight: block, bias: nil, M: R, ldOut: V, scratch: scratch, kernel: kernel)
        }
    }

    /// Over vocabulary blocks accumulated when packs are not kept.
    func unembedBackward(_ dLogits: UnsafePointer<Float>, rows n: Int, into out: UnsafeMutablePointer<Float>) {
        let V = model.config.vocabSize, E = model.config.wordEmbedProjDim
        if keeps {
            BF16.gemm(out: out, input: dLogits, weight: packedEmbedding(transposed: true), bias: nil, M: n, scratch: scratch, kernel: kernel)
            return
        }
        model.embeddingBlocks { v0, count, rows in
            let block = PackedMatrix(transposing: rows, rows: E, columns: count)
            BF16.gemm(out: out, input: dLogits + v0, ldInput: V, weight: block, bias: nil, M: n, accumulate: v0 > 0, scratch: scratch, kernel: kernel)
        }
    }

    // MARK: Packing

    /// The bound projection `[ΣNᵢ, K]` packed for the bf16 kernel; with `transposed`, its transpose `[K, ΣNᵢ]`.
    func packed(_ p: BoundLinear, layer: Int, K: Int, transposed: Bool = false) -> PackedMatrix {
        kept(WeightKey(layer: layer, role: p.role, transposed: transposed, variant: p.variant)) {
            let N = p.rows
            if transposed {
                return model.stackedFloats(p, N: N, K: K).withUnsafeBufferPointer { PackedMatrix(transposing: $0.baseAddress!, rows: K, columns: N) }
            }
            let matrix = PackedMatrix(rows: N, columns: K)
            pack(p, rows: 0..<N, K: K, into: matrix)
            return matrix
        }
    }

    /// Rows `range` of the bound projection packed into `matrix`'s rows from 0, widened to fp32 just before in
    /// blocks of at most 64 MB (a multiple of the 32-row panel), so a 66B layer's memory is its decoded planes
    /// plus the pack.
    func pack(_ p: BoundLinear, rows range: Range<Int>, K: Int, into matrix: PackedMatrix) {
        let blockRows = max(32, min(model.widenBlockBytes, 64 << 20) / max(1, 4 * K) / 32 * 32)
        let fp32 = model.scratch.layer.weight.reserve(min(range.count, blockRows) * K)
        var start = range.lowerBound
        while start < range.upperBound {
            let end = min(range.upperBound, start + blockRows)
            model.widenRows(p, start..<end, K: K, into: fp32)
            matrix.pack(fp32: fp32, rows: (start - range.lowerBound)..<(end - range.lowerBound))
            start = end
        }
    }

    /// Calls `body(firstRow, pack)` over the bound projection's rows in blocks of at most `packBlockBytes` (a
    /// multiple of 32 rows), each packed just before and dropped after.
    func perUseBlocks(_ p: BoundLinear, K: Int, _ body: (Int, PackedMatrix) -> Void) {
        let N = p.rows, blockRows = max(32, model.packBlockBytes / max(1, 2 * K) / 32 * 32)
        var start = 0
        while start < N {
            let end = min(N, start + blockRows)
            let block = PackedMatrix(rows: end - start, columns: K)
            pack(p, rows: start..<end, K: K, into: block)
            body(start, block)
            start = end
        }
    }

    /// embed_tokens `[V, E]` packed (the tied LM head), or transposed `[E, V]` (its input gradient).
    func packedEmbedding(transposed: Bool = false) -> PackedMatrix {
        kept(WeightKey(layer: nil, role: .embedding, transposed: transposed)) {
            let V = model.config.vocabSize, E = model.config.wordEmbedProjDim
            if transposed {
                return model.embeddingFloats().withUnsafeBufferPointer { PackedMatrix(transposing: $0.baseAddress!, rows: E, columns: V) }
            }
            let matrix = PackedMatrix(rows: V, columns: E)
            model.embeddingBlocks { v0, n, rows in matrix.pack(fp32: rows, rows: v0..<(v0 + n)) }
            return matrix
        }
    }

    // MARK: Activations

    /// `input` as the bf16 kernel's activations `[M, K]`: prepared now unless it already is.
    func prepared(_ input: GEMMInput, M: Int, K: Int) -> PreparedActivations {
        switch input {
        case .prepared(let a):
            precondition(a.M == M && a.K == K && a.kernel == kernel, "bf16 GEMM: activations \(a.M)×\(a.K), expected \(M)×\(K)")
            return a
        case .floats(let x):
            return Profile.measure("bf16 prepare") { BF16.prepare(x, M: M, K: K, scratch: scratch, kernel: kernel) }
        }
    }

    /// The layer norm of input `[T, C]` written straight into the bf16 kernel's activations: twelve rows (one
    /// panel) at a time through a buffer that stays in L2, then packed, so the `[T, C]` fp32 output is never
    /// written whole and read back. The same values as `norm` then `BF16.prepare`.
    func normPrepared(_ n: BoundNorm?, input: UnsafePointer<Float>, T: Int) -> PreparedActivations {
        let C = model.config.hiddenSize, s = model.scratch.layer
        let weight = n.map { UnsafePointer($0.weight.floats(into: s.weight)) }, bias = n.map { UnsafePointer($0.bias.floats(into: s.bias)) }
        let a = BF16.room(M: T, K: C, kernel: kernel, in: scratch.activations)
        Profile.measure("layer norm") {
            switch kernel {
            case .avx512bf16:
                let mr = Int(HR_MR), panels = (T + mr - 1) / mr, Kp = (C + 1) / 2
                let packed = a.packed.assumingMemoryBound(to: UInt32.self)
                parallelRanges(panels, minimumPerTask: 4) { r in
                    let rows = UnsafeMutablePointer<Float>.allocate(capacity: mr * C)
                    defer { rows.deallocate() }
                    for panel in r {
                        let m0 = panel * mr, count = min(mr, T - m0)
                        layerNorm(out: rows, input: input + m0 * C, weight: weight, bias: bias, T: count, C: C, parallel: false)
                        hr_bf16_pack_a_fast(rows, C, Int32(count), Int32(C), 0, Int32(count), packed + panel * Kp * mr)
                    }
                }
            case .portable:
                let rounded = a.packed.assumingMemoryBound(to: Float.self)
                layerNorm(out: rounded, input: input, weight: weight, bias: bias, T: T, C: C)
                hr_bf16_round_floats(rounded, T * C)
            }
        }
        return a
    }
}
