import Foundation
import Testing
@testable import Checkpoints
@testable import HRZFormat
import Basics
@testable import Files

/// Random byte flips and truncations of real files: every parser either reads or throws; none crashes.
struct MutationTests {
    static let rounds = 300

    /// Applies `rounds` random mutations to `original` and feeds each to `parse`.
    func fuzz(_ original: [UInt8], seed: UInt64, parse: (String) throws -> Void) throws {
        var rng = SplitMix64(seed: seed)
        let path = scratchDirectory("fuzz") + "/input"
        var failures = 0
        for round in 0..<Self.rounds {
            var bytes = original
            switch round % 3 {
            case 0: bytes = Array(bytes[..<Int(rng.next() % UInt64(bytes.count))])
            case 1:
                for _ in 0..<(1 + Int(rng.next() % 4)) { bytes[Int(rng.next() % UInt64(bytes.count))] ^= UInt8(1 + rng.next() % 255) }
            default:
                // Flips concentrated in the first KB, where headers and directories live.
                let at = Int(rng.next() % UInt64(min(1024, bytes.count)))
                bytes[at] = UInt8(truncatingIfNeeded: rng.next())
            }
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            do { try parse(path) } catch is CheckpointError { failures += 1 } catch is HRZError { failures += 1 }
        }
        #expect(failures > 0)
    }

    /// Parses and touches every element of every tensor, as conversion would.
    func readAll(_ source: CheckpointSource) throws {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 1 << 16, alignment: 64)
        defer { buffer.deallocate() }
        for t in source.tensors {
            try source.verifyData(of: t.name)
            var start = 0
            while start < t.elementCount {
                let end = min(t.elementCount, start + 1024)
                t.copy(start..<end, as: .f32, to: buffer)
                start = end
            }
        }
    }

    @Test func safetensors() throws {
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixture("safetensors-f32") + "/model.safetensors")))
        try fuzz(original, seed: 1) { try readAll(try SafetensorsFile(path: $0)) }
    }

    @Test func zipAndPickle() throws {
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixture("bin-f32") + "/pytorch_model.bin")))
        try fuzz(original, seed: 2) { try readAll(try TorchCheckpoint(path: $0)) }
    }

    @Test func zipDirectoryOnly() throws {
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixture("bin-sharded-bf16") + "/pytorch_model-00001-of-00003.bin")))
        try fuzz(original, seed: 3) { _ = try ZipArchive(path: $0) }
    }

    @Test func pickleStream() throws {
        let archive = try ZipArchive(path: fixture("bin-f32") + "/pytorch_model.bin")
        let entry = archive.entries.values.first { $0.name.hasSuffix("data.pkl") }!
        let original = [UInt8](archive.data(entry))
        try fuzz(original, seed: 4) { path in
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            try bytes.withUnsafeBytes { b in
                var u = Unpickler(data: b, file: path)
                _ = try u.load()
            }
        }
    }
}
