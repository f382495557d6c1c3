import Foundation
import Testing
@testable import Checkpoints
@testable import HRZFormat
@testable import Runtime
import TestSupport

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let checkpointFixtures = repositoryRoot.appendingPathComponent("Tests/CheckpointsTests/Fixtures").path
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

/// Max |a − b| and where, reported through the caller's source location.
func expectClose(_ a: [Float], _ b: [Float], tolerance: Float, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    guard a.count == b.count else {
        Issue.record("\(what): \(a.count) values, expected \(b.count)", sourceLocation: sourceLocation)
        return
    }
    var worst: Float = 0, at = 0
    for i in 0..<a.count where abs(a[i] - b[i]) > worst || a[i].isNaN { worst = a[i].isNaN ? .infinity : abs(a[i] - b[i]); at = i }
    #expect(worst <= tolerance, "\(what): max abs diff \(worst) at index \(at) (\(a.isEmpty ? 0 : a[at]) vs \(b.isEmpty ? 0 : b[at]))",
            sourceLocation: sourceLocation)
}

func allLogits(_ sequences: [[Int]]) -> [SequenceInput] { sequences.map { SequenceInput(tokens: $0, logits: .all) } }

/// Bit-for-bit equality (NaN payloads included), reporting the first difference rather than both arrays.
func expectBitEqual(_ a: [Float], _ b: [Float], _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let first = a.count == b.count ? a.indices.first { a[$0].bitPattern != b[$0].bitPattern } : 0
    var detail = "\(what): \(a.count) vs \(b.count) values; first difference at \(first ?? -1)"
    if let i = first, i < min(a.count, b.count) { detail += " (\(a[i]) vs \(b[i]))" }
    #expect(first == nil, "\(detail)", sourceLocation: sourceLocation)
}
