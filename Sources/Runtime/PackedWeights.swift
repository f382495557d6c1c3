/// The bf16 weight representation: each projection packed once into the bf16 kernel's panels, straight from
/// its decoded 16-bit or fp32 rows (fp16 rounds to bf16 here, once; bf16 is copied exactly). Packs are kept
/// across passes and runs while they fit `limit`; past it only the current layer's stay, so a streamed
/// model's memory stays bounded.
import Foundation
import CBF16

final class PackedWeights {
    private var matrices: [String: (layer: Int, matrix: PackedMatrix)] = [:]
    private var bytes = 0
    /// Bytes of packed weights kept at most (default 6 GiB: every layer of opt-2.7b).
    var limit = 6 << 30
    let scratch = BF16Scratch()

    /// The pack for (layer, key), made by `make` on first use. Layer −1 holds model-level matrices.
    func get(_ layer: Int, _ key: String, _ make: () -> PackedMatrix) -> PackedMatrix {
        let name = "\(layer).\(key)"
        if let m = matrices[name] { return m.matrix }
        let m = make()
        if bytes + m.bytes > limit {
            matrices = matrices.filter { $0.value.layer == layer || $0.value.layer < 0 }
            bytes = matrices.values.reduce(0) { $0 + $1.matrix.bytes }
        }
        matrices[name] = (layer, m)
        bytes += m.bytes
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
                var all = [Float](repeating: 0, count: N * K)
                weightBlocks(p, layer: layer, K: K) { start, rows, weight in (all.withUnsafeMutableBufferPointer { $0.baseAddress! } + start * K).update(from: weight, count: rows * K) }
                return all.withUnsafeBufferPointer { PackedMatrix(transposing: $0.baseAddress!, rows: K, columns: N) }
            }
            let matrix = PackedMatrix(rows: N, columns: K)
            // fp32 row blocks of a multiple of 32 rows (the kernel's panel), widened just before packing.
            let blockRows = max(32, min(N, widenBlockBytes / max(1, 4 * K)) / 32 * 32)
            let block = scratch.layer.weight.reserve(min(N, blockRows) * K)
            var start = 0
            while start < N {
                let end = min(N, start + blockRows)
                widenRows(p, start..<end, K: K, into: block)
                matrix.pack(fp32: block, rows: start..<end)
                start = end
            }
            return matrix
        }
    }

    /// embed_tokens `[V, E]` packed (the tied LM head), or transposed `[E, V]` (its input gradient).
    func packedEmbedding(transposed: Bool = false) -> PackedMatrix {
        scratch.packed.get(-1, transposed ? "embed_tokens.T" : "embed_tokens") {
            let V = config.vocabSize, E = config.wordEmbedProjDim
            let dtype = embedTokens.info.dtype
            let table = UnsafeRawPointer(embedTokens.buffer.pointer)
            if transposed {
                var all = [Float](repeating: 0, count: V * E)
                all.withUnsafeMutableBufferPointer { widen(table, dtype: dtype, into: $0.baseAddress!, count: V * E) }
                return all.withUnsafeBufferPointer { PackedMatrix(transposing: $0.baseAddress!, rows: E, columns: V) }
            }
            let matrix = PackedMatrix(rows: V, columns: E)
            let blockRows = 8192
            let block = scratch.layer.weight.reserve(min(V, blockRows) * E)
            var start = 0
            while start < V {
                let end = min(V, start + blockRows)
                widen(table + start * E * dtype.size, dtype: dtype, into: block, count: (end - start) * E)
                matrix.pack(fp32: block, rows: start..<end)
                start = end
            }
            return matrix
        }
    }
}
