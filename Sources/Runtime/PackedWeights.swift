/// The bf16 weight representation: each projection packed into the bf16 kernel's panels, straight from its
/// decoded 16-bit or fp32 rows (fp16 rounds to bf16 here, once; bf16 is copied exactly). When every layer's
/// packs fit `OPTModel.packedLimit` they are made once and kept across passes and runs (packing opt-1.3b costs
/// about 0.3 s); otherwise each matrix is packed for its one use, in blocks, so a model streamed from disk
/// never holds a whole matrix's pack.
import Foundation
import CBF16

final class PackedWeights {
    private var matrices: [String: PackedMatrix] = [:]
    /// Whether packs are made once and kept (every layer's fit `OPTModel.packedLimit`).
    var keeps = true
    let scratch = BF16Scratch()

    /// The kept pack for (layer, key), made by `make` on first use. Layer −1: model-level matrices.
    func get(_ layer: Int, _ key: String, _ make: () -> PackedMatrix) -> PackedMatrix {
        let name = "\(layer).\(key)"
        if let m = matrices[name] { return m }
        let m = make()
        matrices[name] = m
        return m
    }
}

extension OPTModel {
    /// The bound projection `[ΣNᵢ, K]` packed for the bf16 kernel; with `transposed`, its transpose `[K, ΣNᵢ]`
    /// (the backward's input gradient multiplies by W, not Wᵀ).
    func packed(_ p: BoundLinear, layer: Int, K: Int, transposed: Bool = false) -> PackedMatrix {
        scratch.packed.get(layer, transposed ? p.key + ".T" : p.key) {
            let N = p.rows
            if transposed {
                return stackedFloats(p, N: N, K: K).withUnsafeBufferPointer { PackedMatrix(transposing: $0.baseAddress!, rows: K, columns: N) }
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
        let blockRows = max(32, min(widenBlockBytes, 64 << 20) / max(1, 4 * K) / 32 * 32)
        let fp32 = scratch.layer.weight.reserve(min(range.count, blockRows) * K)
        var start = range.lowerBound
        while start < range.upperBound {
            let end = min(range.upperBound, start + blockRows)
            widenRows(p, start..<end, K: K, into: fp32)
            matrix.pack(fp32: fp32, rows: (start - range.lowerBound)..<(end - range.lowerBound))
            start = end
        }
    }

    /// out `[R, V]` = round(features `[R, E]`) · embed_tokensᵀ in bf16: the tied LM head. The whole packed
    /// table when packs are kept, else packed and multiplied in blocks of at most 64 MB of rows.
    func unembedBF16(_ features: UnsafePointer<Float>, rows R: Int, into out: UnsafeMutablePointer<Float>) {
        let V = config.vocabSize, E = config.wordEmbedProjDim
        if scratch.packed.keeps {
            BF16.gemm(out: out, input: features, weight: packedEmbedding(), bias: nil, M: R, scratch: scratch.packed.scratch, kernel: bf16Kernel)
            return
        }
        embeddingBlocks { v0, n, rows in
            let block = PackedMatrix(rows: n, columns: E)
            block.pack(fp32: rows, rows: 0..<n)
            BF16.gemm(out: out + v0, input: features, weight: block, bias: nil, M: R, ldOut: V, scratch: scratch.packed.scratch, kernel: bf16Kernel)
        }
    }

    /// out `[n, E]` = round(dLogits `[n, V]`) · embed_tokens in bf16: the LM head's input gradient, over vocabulary
    /// blocks accumulated when packs are not kept.
    func embedBackwardBF16(_ dLogits: UnsafePointer<Float>, rows n: Int, into out: UnsafeMutablePointer<Float>) {
        let V = config.vocabSize, E = config.wordEmbedProjDim
        if scratch.packed.keeps {
            BF16.gemm(out: out, input: dLogits, weight: packedEmbedding(transposed: true), bias: nil, M: n, scratch: scratch.packed.scratch, kernel: bf16Kernel)
            return
        }
        embeddingBlocks { v0, count, rows in
            let block = PackedMatrix(transposing: rows, rows: E, columns: count)
            BF16.gemm(out: out, input: dLogits + v0, ldInput: V, weight: block, bias: nil, M: n, accumulate: v0 > 0,
                      scratch: scratch.packed.scratch, kernel: bf16Kernel)
        }
    }

    /// Calls `body(firstRow, rows, fp32 [rows, E])` over embed_tokens in blocks of at most 64 MB (a multiple of
    /// 32 rows).
    private func embeddingBlocks(_ body: (Int, Int, UnsafePointer<Float>) -> Void) {
        let V = config.vocabSize, E = config.wordEmbedProjDim, blockRows = max(32, (64 << 20) / (4 * E) / 32 * 32)
        let dtype = embedTokens.info.dtype
        let table = UnsafeRawPointer(embedTokens.buffer.pointer)
        let block = scratch.layer.weight.reserve(min(V, blockRows) * E)
        var start = 0
        while start < V {
            let end = min(V, start + blockRows)
            widen(table + start * E * dtype.size, dtype: dtype, into: block, count: (end - start) * E)
            body(start, end - start, block)
            start = end
        }
    }

    /// embed_tokens `[V, E]` packed (the tied LM head), or transposed `[E, V]` (its input gradient).
    func packedEmbedding(transposed: Bool = false) -> PackedMatrix {
        scratch.packed.get(-1, transposed ? "embed_tokens.T" : "embed_tokens") {
            let V = config.vocabSize, E = config.wordEmbedProjDim
            if transposed {
                let dtype = embedTokens.info.dtype, table = UnsafeRawPointer(embedTokens.buffer.pointer)
                var all = [Float](repeating: 0, count: V * E)
                all.withUnsafeMutableBufferPointer { widen(table, dtype: dtype, into: $0.baseAddress!, count: V * E) }
                return all.withUnsafeBufferPointer { PackedMatrix(transposing: $0.baseAddress!, rows: E, columns: V) }
            }
            let matrix = PackedMatrix(rows: V, columns: E)
            embeddingBlocks { v0, n, rows in matrix.pack(fp32: rows, rows: v0..<(v0 + n)) }
            return matrix
        }
    }
}

/// A GEMM's activations: fp32 rows `[M, K]`, or already rounded and laid out for the bf16 kernel by the step that
/// produced them (a layer norm writing its output straight into the kernel's layout).
enum GEMMInput {
    case floats(UnsafePointer<Float>)
    case prepared(PreparedActivations)
}

extension OPTModel {
    /// `input` as the bf16 kernel's activations `[M, K]`: prepared now unless it already is.
    func prepared(_ input: GEMMInput, M: Int, K: Int) -> PreparedActivations {
        switch input {
        case .prepared(let a):
            precondition(a.M == M && a.K == K && a.kernel == bf16Kernel, "bf16 GEMM: activations \(a.M)×\(a.K), expected \(M)×\(K)")
            return a
        case .floats(let x):
            return Profile.measure("bf16 prepare") { BF16.prepare(x, M: M, K: K, scratch: scratch.packed.scratch, kernel: bf16Kernel) }
        }
    }

    /// The layer norm of input `[T, C]` written straight into the bf16 kernel's activations: twelve rows (one
    /// panel) at a time through a buffer that stays in L2, then packed, so the `[T, C]` fp32 output is never
    /// written whole and read back. The same values as `norm` then `BF16.prepare`.
    func normPrepared(_ n: BoundNorm?, input: UnsafePointer<Float>, T: Int) -> PreparedActivations {
        let C = config.hiddenSize, s = scratch.layer
        let weight = n.map { UnsafePointer($0.weight.floats(into: s.weight)) }, bias = n.map { UnsafePointer($0.bias.floats(into: s.bias)) }
        let a = BF16.room(M: T, K: C, kernel: bf16Kernel, in: scratch.packed.scratch.activations)
        Profile.measure("layer norm") {
            switch bf16Kernel {
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

    /// out `[M, C]` = fc2(max(0, fc1(input `[M, C]`))) in bf16, fc1's tiles rounding and packing the hidden state
    /// for fc2 as they finish (`BF16.multiplyReLU`): the `[M, F]` fp32 hidden state is never written, cleared
    /// by a ReLU pass and read back to be packed. The same values as fc1, ReLU and fc2 one after another; used
    /// when no tap reads the hidden state.
    func feedForwardBF16(fc1: BoundLinear, fc2: BoundLinear, layer: Int, out: UnsafeMutablePointer<Float>,
                         input: GEMMInput, M: Int) {
        let C = config.hiddenSize, F = fc1.rows, s = scratch.packed.scratch
        let hidden = BF16.room(M: M, K: F, kernel: bf16Kernel, in: s.next)
        Profile.measure("fc1") {
            let a = prepared(input, M: M, K: C)
            let bias = stackedBias(fc1)
            if scratch.packed.keeps {
                BF16.multiplyReLU(a, weight: packed(fc1, layer: layer, K: C), bias: bias, into: hidden, column0: 0, scratch: s)
            } else {
                perUseBlocks(fc1, K: C) { start, block in
                    BF16.multiplyReLU(a, weight: block, bias: bias.map { $0 + start }, into: hidden, column0: start, scratch: s)
                }
            }
        }
        Profile.measure("fc2") { linear(fc2, layer: layer, out: out, input: .prepared(hidden), M: M, K: F) }
    }

    /// out `[M, ΣNᵢ]` = a · Wᵀ (+ bias) for a model whose packs are not kept: the weights packed in row blocks of
    /// at most `packBlockBytes`, each multiplied and dropped.
    func linearPackingPerUse(_ p: BoundLinear, layer: Int, out: UnsafeMutablePointer<Float>, activations a: PreparedActivations,
                             bias: UnsafePointer<Float>?) {
        let N = p.rows
        perUseBlocks(p, K: a.K) { start, block in
            BF16.multiply(a, weight: block, bias: bias.map { $0 + start }, out: out + start, ldOut: N, accumulate: false,
                          scratch: scratch.packed.scratch)
        }
    }

    /// Calls `body(firstRow, pack)` over the bound projection's rows in blocks of at most `packBlockBytes` (a
    /// multiple of 32 rows), each packed just before and dropped after.
    func perUseBlocks(_ p: BoundLinear, K: Int, _ body: (Int, PackedMatrix) -> Void) {
        let N = p.rows, blockRows = max(32, packBlockBytes / max(1, 2 * K) / 32 * 32)
        var start = 0
        while start < N {
            let end = min(N, start + blockRows)
            let block = PackedMatrix(rows: end - start, columns: K)
            pack(p, rows: start..<end, K: K, into: block)
            body(start, block)
            start = end
        }
    }

    /// dInput `[T, K]` (+)= round(dOut `[T, ΣNᵢ]`) · W for a model whose packs are not kept: W's rows in blocks of
    /// at most 64 MB of fp32, each block's transpose packed and its products accumulated.
    func linearBackwardPackingPerUse(_ p: BoundLinear, layer: Int, dOut: UnsafePointer<Float>, T: Int, K: Int,
                                     into dInput: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let N = p.rows, rows = max(1, min(N, min(widenBlockBytes, 64 << 20) / max(1, 4 * K)))
        let fp32 = scratch.layer.weight.reserve(rows * K)
        var n0 = 0
        while n0 < N {
            let n1 = min(N, n0 + rows)
            widenRows(p, n0..<n1, K: K, into: fp32)
            let block = PackedMatrix(transposing: fp32, rows: K, columns: n1 - n0)
            BF16.gemm(out: dInput, input: dOut + n0, ldInput: N, weight: block, bias: nil, M: T, ldOut: K,
                      accumulate: accumulate || n0 > 0, scratch: scratch.packed.scratch, kernel: bf16Kernel)
            n0 = n1
        }
    }
}
