import Foundation
import Testing
@testable import Checkpoints
@testable import HRZFormat

/// Each bad input gets one clear error naming the file and the tensor or offset, and leaves no output.
struct BadInputTests {
    @Test func missingTensor() throws {
        let dir = try copyFixture("safetensors-f32")
        let file = dir + "/model.safetensors"
        try writeSafetensors(file, try safetensorsContents(file).filter { $0.name != "model.decoder.layers.1.fc2.bias" })
        let e = try #require(convertError(dir))
        #expect(e.kind == .missingTensor)
        #expect(e.tensor == "layers.1.fc2.bias")
        #expect(e.file.hasSuffix("model.safetensors"))
    }

    @Test func unexpectedTensor() throws {
        let dir = try copyFixture("safetensors-f32")
        let file = dir + "/model.safetensors"
        try writeSafetensors(file, try safetensorsContents(file) + [("model.decoder.layers.0.extra.weight", "F32", [1], [0, 0, 0, 0])])
        let e = try #require(convertError(dir))
        #expect(e.kind == .unexpectedTensor && e.tensor == "model.decoder.layers.0.extra.weight")
    }

    @Test func shapeDisagreesWithConfig() throws {
        let dir = try copyFixture("bin-sharded-bf16")
        try editJSON(dir + "/config.json") { $0["ffn_dim"] = 48 }
        let e = try #require(convertError(dir))
        #expect(e.kind == .shapeMismatch(expected: [48, 16], actual: [32, 16]))
        #expect(e.tensor == "model.decoder.layers.0.fc1.weight")
        #expect(e.file.hasSuffix(".bin"))
    }

    @Test func unsupportedDType() throws {
        let dir = try copyFixture("safetensors-f32")
        let file = dir + "/model.safetensors"
        var tensors = try safetensorsContents(file)
        let i = tensors.firstIndex { $0.name == "model.decoder.layers.0.fc1.bias" }!
        tensors[i].dtype = "F64"
        tensors[i].bytes += tensors[i].bytes
        try writeSafetensors(file, tensors)
        let e = try #require(convertError(dir))
        #expect(e.kind == .unsupportedDType("F64") && e.tensor == "model.decoder.layers.0.fc1.bias" && e.offset == 8)
    }

    @Test func unsupportedActivation() throws {
        let dir = try copyFixture("safetensors-f32")
        try editJSON(dir + "/config.json") { $0["activation_function"] = "gelu" }
        let e = try #require(convertError(dir))
        #expect(e.kind == .badConfig("activation_function: unsupported activation 'gelu' (OPT uses relu)"))
        #expect(e.file.hasSuffix("config.json"))
    }

    @Test func configFieldMissingOrWrongType() throws {
        let dir = try copyFixture("safetensors-f32")
        try editJSON(dir + "/config.json") { $0.removeValue(forKey: "hidden_size") }
        #expect(convertError(dir)?.kind == .badConfig("hidden_size: missing"))
        try editJSON(dir + "/config.json") {
            $0["hidden_size"] = 16; $0["num_hidden_layers"] = "two"
        }
        guard case .badConfig(let why)? = convertError(dir)?.kind else { Issue.record("expected badConfig"); return }
        #expect(why.hasPrefix("num_hidden_layers:"))
    }

    @Test func disallowedPickleGlobalIsNeverExecuted() throws {
        let e = try #require(convertError(fixture("bad-pickle-global")))
        #expect(e.kind == .disallowedGlobal("posix system") || e.kind == .disallowedGlobal("os system"))
        #expect(e.offset != nil && e.file.hasSuffix("pytorch_model.bin"))
    }

    @Test func flippedByteInPickleStorageFailsCRC() throws {
        let dir = try copyFixture("bin-f32")
        let file = dir + "/pytorch_model.bin"
        let archive = try ZipArchive(path: file)
        let storage = archive.entries.values.filter { $0.name.contains("/data/") }.max { $0.size < $1.size }!
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
        bytes[storage.dataOffset + storage.size / 2] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        let e = try #require(convertError(dir))
        guard case .crcMismatch = e.kind else { Issue.record("expected a CRC mismatch, got \(e)"); return }
        #expect(e.offset == storage.dataOffset)
    }

    @Test(arguments: ["safetensors-f32/model.safetensors", "bin-f32/pytorch_model.bin"])
    func truncatedWeights(_ relative: String) throws {
        let name = String(relative.split(separator: "/")[0])
        let dir = try copyFixture(name)
        let file = dir + "/" + relative.split(separator: "/")[1]
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
        try Data(bytes[..<(bytes.count - 100)]).write(to: URL(fileURLWithPath: file))
        let e = try #require(convertError(dir))
        #expect(e.file == file)
    }

    @Test func missingShard() throws {
        let dir = try copyFixture("safetensors-sharded-f16")
        try FileManager.default.removeItem(atPath: dir + "/model-00002-of-00003.safetensors")
        let e = try #require(convertError(dir))
        #expect(e.kind == .missingFile && e.file.hasSuffix("model-00002-of-00003.safetensors"))
    }

    @Test func noWeights() throws {
        let dir = scratchDirectory("empty")
        try FileManager.default.copyItem(atPath: fixture("bin-f32") + "/config.json", toPath: dir + "/config.json")
        guard case .malformed(let why)? = convertError(dir)?.kind else { Issue.record("expected malformed"); return }
        #expect(why.contains("no weights found"))
    }
}
