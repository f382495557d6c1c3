import Foundation
import Testing
@testable import HRZFormat
import TestSupport
import OPTSchema
@testable import Files

/// A small model-shaped file: f16, bf16 and f32 tensors, several chunks each, one empty tensor.
func writeSample(_ path: String, chunkElements: Int = 100, split: Bool = true) throws -> [String: [UInt8]] {
    let config = OPTConfig(
        vocabSize: 8, hiddenSize: 4, numHiddenLayers: 1, numAttentionHeads: 2, ffnDim: 8,
        maxPositionEmbeddings: 4)
    var rng = SystemRandomNumberGenerator()
    var contents: [String: [UInt8]] = [:]
    let writer = try HRZWriter(path: path, level: 3, threads: 2, chunkElements: chunkElements, splitPlanes: split)
    let tensors: [(String, DType, [Int], Int?)] = [
        ("embed_tokens.weight", .f16, [30, 11], nil), ("layers.0.fc1.weight", .bf16, [7, 13], 0),
        ("layers.0.fc1.bias", .f32, [250], 0), ("layers.0.empty", .f16, [0, 4], 0), ("project_out.weight", .f32, [3, 3], nil),
    ]
    for (name, dtype, shape, layer) in tensors {
        let count = shape.reduce(1, *) * dtype.size
        // Small-magnitude values, like weights: the high bytes compress, the low bytes do not.
        let bytes = (0..<count).map { i in i % 2 == 1 ? UInt8.random(in: 0x20...0x23, using: &rng) : UInt8.random(in: 0...255, using: &rng) }
        contents[name] = bytes
        try writer.add(name: name, dtype: dtype, shape: shape, layer: layer, bytes: bytes)
    }
    let metadata = Metadata(
        config: config, layers: Metadata.fullLayers(config), tokenizer: EmbeddedTokenizer(vocab: "{}", merges: ""),
        provenance: Provenance(converter: "test", sources: [], dtype: "keep"))
    try writer.finish(metadata: metadata)
    return contents
}

func temporaryPath(_ name: String) -> String {
    let dir = testScratch() + "headroom-tests-\(getpid())"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir + "/" + name
}

/// Rewrites a file with one byte changed.
func mutate(_ path: String, to out: String, _ change: (inout [UInt8]) -> Void) throws {
    var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    change(&bytes)
    try Data(bytes).write(to: URL(fileURLWithPath: out))
}

struct ContainerTests {
    @Test(arguments: [true, false])
    func roundTripIsBitExact(split: Bool) throws {
        let path = temporaryPath("roundtrip-\(split).hrz")
        let contents = try writeSample(path, split: split)
        let reader = try HRZReader(path: path)
        for (name, bytes) in contents { #expect(try reader.bytes(name) == bytes, "\(name)") }
        #expect(reader.tensors.map(\.name) == ["embed_tokens.weight", "layers.0.fc1.weight", "layers.0.fc1.bias", "layers.0.empty", "project_out.weight"])
        #expect(try reader.tensor("embed_tokens.weight").chunks.count == 4)
        #expect(reader.verify().isEmpty)
        for t in reader.tensors { for c in t.chunks { #expect(c.offset % 4096 == 0) } }
        #expect(!FileManager.default.fileExists(atPath: path + ".partial-\(FileGuard.hostTag)-\(getpid())"))
    }

    @Test func widensToFloat() throws {
        let path = temporaryPath("widen.hrz")
        let contents = try writeSample(path)
        let reader = try HRZReader(path: path)
        let floats = try reader.floats("layers.0.fc1.weight")
        let raw = contents["layers.0.fc1.weight"]!
        for i in 0..<floats.count {
            #expect(floats[i].bitPattern == UInt32(raw[2 * i + 1]) << 24 | UInt32(raw[2 * i]) << 16)
        }
    }

    @Test func headerEncodesAsSpecified() throws {
        let h = HRZHeader(indexOffset: 8192, indexLength: 100, fileLength: 8292, indexChecksum: 7).encoded()
        #expect(h.count == 64)
        #expect(Array(h[0..<8]) == [0x89, 0x48, 0x52, 0x5A, 0x0D, 0x0A, 0x1A, 0x0A])
        #expect(h[8] == 1 && h[9] == 0 && h[10] == 0)
        #expect(h[16] == 0x00 && h[17] == 0x20)  // 8192 little-endian
    }

    @Test func missingTensorNamed() throws {
        let path = temporaryPath("missing.hrz")
        _ = try writeSample(path)
        let reader = try HRZReader(path: path)
        #expect(throws: HRZError.self) { try reader.tensor("nope") }
        do { _ = try reader.tensor("nope") } catch { #expect(error.kind == .missingTensor && error.tensor == "nope") }
    }
}

/// formats/HRZ.md §9's worked example, written by Tools/make_minimal_hrz.py from the spec alone.
struct SpecExampleTests {
    @Test func handWrittenFileReads() throws {
        let path = Bundle.module.resourceURL!.appendingPathComponent("Fixtures/minimal.hrz").path
        let reader = try HRZReader(path: path)
        #expect(reader.header.indexOffset == 4104 && reader.header.indexLength == 706 && reader.header.fileLength == 4810)
        #expect(try reader.floats("final_layer_norm.bias") == [1, -2, 0.5, 0])
        #expect(try reader.tensor("final_layer_norm.bias").chunks[0].xxh64 == "1c76d7e94083c383")
        #expect(reader.verify().isEmpty)
    }
}
