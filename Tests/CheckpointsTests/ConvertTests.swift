import Foundation
import Testing
@testable import Checkpoints
@testable import HRZFormat
import Basics

/// Every layout converts to a .hrz whose tensors equal torch's bytes, bit for bit, under every --dtype.
struct ConvertTests {
    static let cases: [(String, DTypeChoice)] = layoutFixtures.flatMap { f in DTypeChoice.allCases.map { (f, $0) } }

    @Test(arguments: cases)
    func roundTripMatchesTorch(fixtureName: String, dtype: DTypeChoice) throws {
        let reference = try Reference.load(fixtureName)
        let output = scratchDirectory("rt") + "/model.hrz"
        var options = ConvertOptions()
        options.dtype = dtype
        options.threads = 2
        options.chunkElements = 100  // Several chunks per tensor, even on tiny fixtures.
        let report = try Converter.convert(fixture(fixtureName), to: output, options: options)
        let reader = try HRZReader(path: output)
        #expect(Set(reader.tensors.map(\.name)) == Set(reference.tensors.keys))
        #expect(report.tensors == reference.tensors.count)
        for (name, expected) in reference.tensors {
            let info = try reader.tensor(name)
            #expect(info.shape == expected.shape, "\(name)")
            #expect(info.dtype.rawValue == (dtype == .keep ? expected.dtype : dtype.rawValue), "\(name)")
            var h = SHA256()
            h.update(try reader.bytes(name))
            #expect(h.finalizeHex() == expected.sha256[dtype.rawValue], "\(fixtureName) \(name) as \(dtype)")
        }
        #expect(reader.verify().isEmpty)
        #expect(reader.metadata.layers == Metadata.fullLayers(reader.config))
        #expect(reader.metadata.provenance.sources.map(\.file).contains("config.json"))
        #expect(reader.metadata.provenance.dtype == dtype.rawValue)
    }

    @Test func tensorsAreStoredLayerByLayerInExecutionOrder() throws {
        let output = scratchDirectory("order") + "/model.hrz"
        _ = try Converter.convert(fixture("post-ln-350m-style"), to: output)
        let reader = try HRZReader(path: output)
        let names = reader.tensors.map(\.name)
        #expect(names.first == "embed_tokens.weight")
        #expect(names[2] == "project_in.weight")
        #expect(names.last == "project_out.weight")
        #expect(!names.contains("final_layer_norm.weight"))  // Post-LN has no final norm.
        let layer0 = names.filter { $0.hasPrefix("layers.0.") }
        #expect(
            layer0 == [
                "layers.0.self_attn_layer_norm.weight", "layers.0.self_attn_layer_norm.bias",
                "layers.0.self_attn.q_proj.weight", "layers.0.self_attn.q_proj.bias",
                "layers.0.self_attn.k_proj.weight", "layers.0.self_attn.k_proj.bias",
                "layers.0.self_attn.v_proj.weight", "layers.0.self_attn.v_proj.bias",
                "layers.0.self_attn.out_proj.weight", "layers.0.self_attn.out_proj.bias",
                "layers.0.final_layer_norm.weight", "layers.0.final_layer_norm.bias",
                "layers.0.fc1.weight", "layers.0.fc1.bias", "layers.0.fc2.weight", "layers.0.fc2.bias",
            ])
        let offsets = reader.tensors.flatMap { $0.chunks.map(\.offset) }
        #expect(offsets == offsets.sorted())
    }

    @Test func tokenizerIsEmbedded() throws {
        let output = scratchDirectory("tok") + "/model.hrz"
        let report = try Converter.convert(fixture("safetensors-f32"), to: output)
        #expect(report.tokenizerEmbedded)
        let reader = try HRZReader(path: output)
        let vocab = try String(contentsOfFile: fixture("safetensors-f32") + "/vocab.json", encoding: .utf8)
        #expect(reader.metadata.tokenizer?.vocab == vocab)
        #expect(reader.metadata.tokenizer?.merges == "#version: 0.2\na b\n")
        // --tokenizer overrides, and a directory without the files is an error naming the file.
        var options = ConvertOptions()
        options.tokenizerDirectory = fixture("bin-f32")
        do {
            _ = try Converter.convert(fixture("safetensors-f32"), to: scratchDirectory("tok2") + "/m.hrz", options: options)
            Issue.record("expected a missing-file error")
        } catch let e as CheckpointError {
            #expect(e.kind == .missingFile && e.file.hasSuffix("vocab.json"))
        }
    }

    @Test func sourceChecksumsAreRecorded() throws {
        let output = scratchDirectory("sha") + "/model.hrz"
        _ = try Converter.convert(fixture("safetensors-f32"), to: output)
        let reader = try HRZReader(path: output)
        let source = try #require(reader.metadata.provenance.sources.first { $0.file == "model.safetensors" })
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixture("safetensors-f32") + "/model.safetensors")))
        #expect(source.sha256 == SHA256.hex(bytes))
        #expect(source.bytes == bytes.count)
    }
}
