import Foundation
import Testing
import TestSupport
@testable import HRZFormat
@testable import Runtime
import Basics
import OPTSchema
@testable import Files
@testable import Analysis

/// Inline streaming keeps a read-ahead layer's 16-bit matrices as byte planes and widens straight from them.
/// Whatever the codecs and chunk boundaries, that must give exactly the values the map gives.
struct LayerStreamTests {
    init() { Threads.set(2) }

    /// A 2-layer model whose layer-1 matrices are cut into 1000-element chunks (not a multiple of any row)
    /// with every codec pairing: normal weights (high plane zstd, low raw), few distinct values (both zstd),
    /// random bit patterns, NaN and infinity included (both raw). fc2 is bf16, out_proj f32.
    static func mixedCodecModel() throws -> String { try written.get() }

    /// Written once per run (a static let is initialized once, even with tests in parallel).
    static let written = Result { try writeMixedCodecModel() }

    static func writeMixedCodecModel() throws -> String {
        try FileManager.default.createDirectory(atPath: ModelCache.shared.directory, withIntermediateDirectories: true)
        let path = ModelCache.shared.directory + "/mixed-codecs.hrz"
        let config = OPTConfig(hiddenSize: 64, numHiddenLayers: 2, numAttentionHeads: 4, ffnDim: 256)
        let plans = Metadata.fullLayers(config)
        let writer = try HRZWriter(path: path, level: 3, threads: 2, chunkElements: 1000)
        for (index, t) in ModelSchema.tensors(config: config, layers: plans).enumerated() {
            let dtype: DType = t.name.hasSuffix("out_proj.weight") ? .f32 : t.name.hasSuffix("fc2.weight") ? .bf16 : .f16
            try writer.add(name: t.name, dtype: dtype, shape: t.shape, layer: t.layer) { range, destination in
                var rng = SplitMix64(seed: UInt64(index) << 32 ^ UInt64(range.lowerBound))
                for i in 0..<range.count {
                    let kind = (range.lowerBound / 1000) % 3
                    let value: Float =
                        kind == 0
                        ? Float(Int(rng.next() % 2001) - 1000) / 20000
                        : kind == 1 ? (rng.next() % 2 == 0 ? 0.5 : -0.25) : 0
                    switch dtype {
                    case .f32: destination.storeBytes(of: value, toByteOffset: 4 * i, as: Float.self)
                    case .f16, .bf16:
                        let bits =
                            kind == 2
                            ? UInt16(truncatingIfNeeded: rng.next())
                            : dtype == .f16 ? Half.f32ToF16(value) : Half.f32ToBF16(value)
                        destination.storeBytes(of: bits, toByteOffset: 2 * i, as: UInt16.self)
                    }
                }
            }
        }
        try writer.finish(
            metadata: Metadata(
                config: config, layers: plans, tokenizer: nil,
                provenance: Provenance(converter: "test", sources: [], dtype: "mixed")))
        return path
    }

    @Test func planarLayerEqualsMappedLayer() throws {
        let reader = try HRZReader(path: try Self.mixedCodecModel())
        let fc1 = try reader.tensor("layers.1.fc1.weight")
        let codecs = Set(fc1.chunks.map { $0.planes.map(\.codec.rawValue).joined(separator: "+") })
        #expect(codecs == ["zstd+raw", "zstd+zstd", "raw+raw"], "fc1's chunks should cover every codec pairing")
        let stream = LayerStream(reader: reader, resident: false, schedule: .inline)
        _ = try stream.layer(0, next: 1)  // reads layer 1 ahead
        let staged = try stream.layer(1, next: nil)  // decoded from the staging buffer
        #expect(staged.isPlanar("fc1.weight") && staged.isPlanar("fc2.weight") && staged.isPlanar("self_attn.q_proj.weight"))
        #expect(!staged.isPlanar("self_attn.out_proj.weight") && !staged.isPlanar("fc1.bias"))
        for name in staged.tensors.keys.sorted() {
            let info = try reader.tensor("layers.1.\(name)")
            let expected = try reader.floats(info.name)
            // Ranges that start and end inside chunks, cross several boundaries, and cover the whole tensor.
            let n = info.elementCount
            for range in [0..<n, min(n, 999)..<min(n, 3001), min(n, 1500)..<min(n, 1501), n / 3..<n] where !range.isEmpty {
                var out = [Float](repeating: 7, count: range.count)
                out.withUnsafeMutableBufferPointer { staged.widen(name, elements: range, into: $0.baseAddress!) }
                expectBitEqual(out, Array(expected[range]), "layers.1.\(name) elements \(range)")
            }
            // Interleaved on demand for consumers that want the stored bytes.
            let t = try #require(staged.tensor(name))
            #expect(
                Array(UnsafeRawBufferPointer(start: t.pointer, count: info.byteCount)) == (try reader.bytes(info.name)),
                "layers.1.\(name) bytes")
        }
        // A layer nobody read ahead is decoded from the map, packed; it widens to the same values.
        let mapped = try LayerStream(reader: reader, resident: false, schedule: .inline).layer(1, next: nil)
        #expect(!mapped.isPlanar("fc1.weight"))
        var out = [Float](repeating: 0, count: fc1.elementCount)
        out.withUnsafeMutableBufferPointer { mapped.widen("fc1.weight", elements: 0..<fc1.elementCount, into: $0.baseAddress!) }
        expectBitEqual(out, try reader.floats(fc1.name), "fc1 from the map")
    }

    /// Chunks are checked two at a time; a flipped byte in either chunk of a pair is reported with that
    /// chunk's tensor, index and offset, whether the layer comes from the read-ahead or the map.
    @Test func flippedByteInEitherChunkOfAPairIsNamed() throws {
        let good = try Self.mixedCodecModel()
        let fc1 = try HRZReader(path: good).tensor("layers.1.fc1.weight")
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: good)))
        for c in [0, 1, 6, 7] {
            let chunk = fc1.chunks[c]
            var bytes = original
            bytes[chunk.offset + chunk.storedLength - 1] ^= 0x01
            let bad = ModelCache.shared.directory + "/flip-fc1-chunk\(c).hrz"
            try Data(bytes).write(to: URL(fileURLWithPath: bad))
            for readAhead in [true, false] {
                let stream = LayerStream(reader: try HRZReader(path: bad), resident: false, schedule: .inline)
                if readAhead { _ = try stream.layer(0, next: 1) }
                do {
                    _ = try stream.layer(1, next: nil)
                    Issue.record("chunk \(c): a flipped byte went unnoticed (read ahead: \(readAhead))")
                } catch let error as HRZError {
                    guard case .checksumMismatch = error.kind else { Issue.record("\(error)"); continue }
                    #expect(
                        error.tensor == fc1.name && error.chunk == c && error.offset == chunk.offset,
                        "chunk \(c), read ahead \(readAhead): \(error)")
                }
            }
        }
    }

    /// Layers streamed in a row alternate staging buffers: the next read never lands under the planes of
    /// the layer in use, including when the walk wraps from the last layer to the first (generation does).
    @Test func readAheadNeverOverwritesTheLayerInUse() throws {
        let reader = try HRZReader(path: try Self.mixedCodecModel())
        let stream = LayerStream(reader: reader, resident: false, schedule: .inline)
        let expected = try reader.floats("layers.0.fc1.weight") + reader.floats("layers.1.fc1.weight")
        let n = expected.count / 2
        for step in 0..<5 {
            let l = step % 2
            let w = try stream.layer(l, next: 1 - l)  // starts reading the other layer ahead
            stream.drain()  // that read is done before we look
            var out = [Float](repeating: 0, count: n)
            out.withUnsafeMutableBufferPointer { w.widen("fc1.weight", elements: 0..<n, into: $0.baseAddress!) }
            expectBitEqual(out, Array(expected[(l * n)..<((l + 1) * n)]), "step \(step), layer \(l)")
            #expect(step == 0 || w.isPlanar("fc1.weight"), "step \(step)")
        }
        var dropped: LayerStream? = LayerStream(reader: reader, resident: false, schedule: .inline)
        dropped?.prefetch(1)
        dropped = nil  // waits for the read in flight before freeing its buffer
    }

    /// A streamed forward and gradient pass widen every matrix straight from its planes: no layer-sized
    /// interleaved copy is made on the way (it would cost the CPU time and memory planes exist to save).
    @Test func forwardAndBackwardNeverInterleaveMatrices() throws {
        let model = try OPTModel(path: try ModelCache.shared.path("safetensors-sharded-f16"), resident: false, schedule: .inline)
        let tokens = [2, 10, 20, 30, 40]
        _ = try model.forward([SequenceInput(tokens: tokens, logits: .last)])
        let last = try model.stream.layer(1, next: nil)  // still in the slot, as the forward left it
        #expect(last.isPlanar("fc1.weight"))
        #expect(last.interleavedNames == [])
        model.scratch.widened.limit = 0  // widen in blocks, as for a large model
        _ = try HeadImportance(model).scores([ImportanceRequest(context: [2, 10, 20], continuation: [30, 40])])
        #expect(try model.stream.layer(0, next: nil).interleavedNames == [])
    }
}
