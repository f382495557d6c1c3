import Foundation
import Testing
@testable import Checkpoints
@testable import HRZFormat
@testable import Runtime
import TestSupport

let repositoryRoot = Repository.root
let checkpointFixtures = Repository.checkpoints
let runtimeFixtures = Bundle.module.resourceURL!.appendingPathComponent("Fixtures").path
let layouts = ["safetensors-f32", "safetensors-sharded-f16", "bin-f32", "bin-sharded-bf16", "bin-decoder-prefix-f16", "post-ln-350m-style"]

struct RuntimeReference: Decodable {
    struct Mask: Decodable { var heads: [[Bool]]?; var ffns: [Bool]? }
    struct Generation: Decodable { var prompt: [Int]; var tokens: [Int] }
    var sequences: [[Int]]
    var masks: [String: Mask]
    var generation: Generation

    static func load(_ fixture: String) throws -> RuntimeReference {
        try JSONDecoder().decode(RuntimeReference.self, from: Data(contentsOf: URL(fileURLWithPath: "\(runtimeFixtures)/\(fixture)/reference.json")))
    }

    /// HF logits `[ΣT, V]`, split per sequence.
    func logits(_ fixture: String, mask: String? = nil) throws -> [[Float]] {
        let (shape, values) = try NPY.read("\(runtimeFixtures)/\(fixture)/logits\(mask.map { "-" + $0 } ?? "").npy")
        let V = shape[1]
        var out: [[Float]] = []
        var row = 0
        for s in sequences {
            out.append(Array(values[(row * V)..<((row + s.count) * V)]))
            row += s.count
        }
        return out
    }
}

/// Converts a checkpoint fixture once per test process.
final class ModelCache: @unchecked Sendable {
    static let shared = ModelCache()
    private let lock = NSLock()
    private var paths: [String: String] = [:]
    let directory = testScratch() + "headroom-runtime-\(getpid())"

    func path(_ fixture: String) throws -> String {
        lock.lock()
        defer { lock.unlock() }
        if let p = paths[fixture] { return p }
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let out = "\(directory)/\(fixture).hrz"
        _ = try Converter.convert("\(checkpointFixtures)/\(fixture)", to: out)
        paths[fixture] = out
        return out
    }
}

func allLogits(_ sequences: [[Int]]) -> [SequenceInput] { sequences.map { SequenceInput(tokens: $0, logits: .all) } }
