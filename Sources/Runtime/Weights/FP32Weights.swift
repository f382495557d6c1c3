/// The fp32 backend: weights widened from their stored dtype to fp32 rows and multiplied by OpenBLAS
/// (`cblas_sgemm`), exact against HF transformers in fp32. A matrix is used in place when stored as f32,
/// kept widened whole for a run that reuses it (`reuse`), or widened in row blocks of at most
/// `OPTModel.widenBlockBytes` just before use, so even OPT-66B's fc1 never exists in fp32 all at once.
import Foundation
import HRZFormat

final class FP32Weights: WeightBackend {
    unowned let model: OPTModel
    let precision = Precision.fp32
    /// embed_tokens widened once for a run that reuses it (the reverse walk's loss), else nil.
    private var embedding: [Float]?

    init(model: OPTModel) { self.model = model }

    var scratch: ForwardScratch { model.scratch }

    func reuse(_ on: Bool) {
        scratch.widened.keeping = on && 4 * model.layerElements <= scratch.widened.limit
        embedding = on ? model.embeddingFloats() : nil
    }

    func normalized(_ n: BoundNorm?, input: UnsafePointer<Float>, T: Int, into out: UnsafeMutablePointer<Float>) -> GEMMInput {
        model.norm(n, out: out, input: input, T: T)
        return .floats(out)
    }

    func project(_ p: BoundLinear, layer: Int, out: UnsafeMutablePointer<Float>, input: GEMMInput, M: Int, K: Int) {
        guard case .floats(let input) = input else { preconditionFailure("the fp32 backend was given bf16-prepared activations") }
        let N = p.rows
        let bias = model.stackedBias(p)
        weightBlocks(p, layer: layer, K: K) { start, rows, weight in
            BLAS.linear(out: out + start, input: input, weight: weight, bias: bias.map { $0 + start }, M: M, N: rows, K: K, ldOut: N)
        }
    }

    func feedForward(
        fc1: BoundLinear, fc2: BoundLinear, layer: Int, out: UnsafeMutablePointer<Float>, input: GEMMInput, M: Int,
        hidden tap: ((UnsafePointer<Float>, Int) throws -> Void)?
    ) throws {
        let C = model.config.hiddenSize, F = fc1.rows
        let hidden = scratch.layer.ffn.reserve(M * F)
        Profile.measure("fc1") { project(fc1, layer: layer, out: hidden, input: input, M: M, K: C) }  // [M, F]
        Profile.measure("relu") { reluInPlace(hidden, count: M * F) }
        try tap?(hidden, M * F)
        Profile.measure("fc2") { project(fc2, layer: layer, out: out, input: .floats(hidden), M: M, K: F) }  // [M, C]
    }

    func projectBackward(
        _ p: BoundLinear, layer: Int, dOut: UnsafePointer<Float>, T: Int, K: Int, into dInput: UnsafeMutablePointer<Float>,
        accumulate: Bool
    ) {
        let N = p.rows
        weightBlocks(p, layer: layer, K: K) { start, rows, weight in
            BLAS.gemm(M: T, N: K, K: rows, a: dOut + start, lda: N, b: weight, ldb: K, beta: accumulate || start > 0 ? 1 : 0, c: dInput, ldc: K)
        }
    }

    func unembed(_ features: UnsafePointer<Float>, rows R: Int, into logits: UnsafeMutablePointer<Float>) {
        let V = model.config.vocabSize, E = model.config.wordEmbedProjDim
        if let embedding {
            embedding.withUnsafeBufferPointer { BLAS.linear(out: logits, input: features, weight: $0.baseAddress!, bias: nil, M: R, N: V, K: E) }
        } else if model.embedTokens.info.dtype == .f32 {
            let table = UnsafeRawPointer(model.embedTokens.buffer.pointer).assumingMemoryBound(to: Float.self)
            BLAS.linear(out: logits, input: features, weight: table, bias: nil, M: R, N: V, K: E)
        } else {
            // 8192 rows of the tied matrix widened at a time.
            model.embeddingBlocks(maxBytes: 8192 * 4 * E) { v0, n, rows in
                BLAS.linear(out: logits + v0, input: features, weight: rows, bias: nil, M: R, N: n, K: E, ldOut: V)
            }
        }
    }

    func unembedBackward(_ dLogits: UnsafePointer<Float>, rows n: Int, into dFeatures: UnsafeMutablePointer<Float>) {
        let V = model.config.vocabSize, E = model.config.wordEmbedProjDim
        if let embedding {
            embedding.withUnsafeBufferPointer { BLAS.gemm(M: n, N: E, K: V, a: dLogits, lda: V, b: $0.baseAddress!, ldb: E, c: dFeatures, ldc: E) }
            return
        }
        model.embeddingBlocks { v0, count, rows in
            BLAS.gemm(M: n, N: E, K: count, a: dLogits + v0, lda: V, b: rows, ldb: E, beta: v0 > 0 ? 1 : 0, c: dFeatures, ldc: E)
        }
    }

    /// Calls `body(firstRow, rows, weight)` over the bound weights stacked by rows `[ΣNᵢ, K]`, as fp32 row blocks
    /// that together cover every row once. The fp32 source, cheapest first:
    /// - the whole matrix kept by `WidenedLayer` (a run that reuses weights keeps small models' widened);
    /// - a single packed f32 tensor, in place;
    /// - 16-bit rows widened just before use into one reusable buffer, in blocks of at most `widenBlockBytes`.
    func weightBlocks(_ p: BoundLinear, layer: Int, K: Int, _ body: (_ start: Int, _ rows: Int, _ weight: UnsafePointer<Float>) -> Void) {
        let N = p.rows, key = WeightKey(layer: layer, role: p.role, variant: p.variant)
        let kept = scratch.widened.keeping ? scratch.widened.memo(key) { model.stackedFloats(p, N: N, K: K) } : scratch.widened.cached(key)
        if let kept, kept.count == N * K {
            kept.withUnsafeBufferPointer { body(0, N, $0.baseAddress!) }
            return
        }
        if p.isWholeTensor, p.parts[0].weight.info.dtype == .f32, p.parts[0].weight.planes == nil {
            body(0, N, p.parts[0].weight.buffer.pointer.assumingMemoryBound(to: Float.self))
            return
        }
        let blockRows = max(1, min(N, model.widenBlockBytes / max(1, 4 * K)))
        let weight = scratch.layer.weight.reserve(blockRows * K)
        // Walk the stacked rows in blocks; a block may span parts.
        var start = 0
        while start < N {
            let end = min(N, start + blockRows)
            Profile.measure("widen") { model.widenRows(p, start..<end, K: K, into: weight) }
            body(start, end - start, weight)
            start = end
        }
    }
}
