import Foundation
import Testing
import TestSupport
@testable import Checkpoints
@testable import HRZFormat
@testable import Runtime
@testable import Analysis

/// Gradient head importance against torch autograd through HF (Tools/make_importance_reference.py).
struct ImportanceTests {
    struct Reference: Decodable {
        struct Item: Decodable { var context: [Int]; var continuation: [Int] }
        var requests: [Item]
        var scores: [[Double]]
    }

    static let root = Repository.root

    /// `blocked`: as for a model too big to keep widened (OPT-66B), weights widen in 3-row blocks on every
    /// use, so each backward GEMM accumulates over blocks that straddle q/k/v.
    @Test(arguments: [
        ("safetensors-f32", false), ("post-ln-350m-style", false), ("safetensors-sharded-f16", false),
        ("post-ln-350m-style", true), ("safetensors-sharded-f16", true),
    ])
    func headImportanceMatchesAutograd(_ fixture: String, blocked: Bool) throws {
        Threads.set(2)
        let reference = try JSONDecoder().decode(
            Reference.self,
            from: Data(
                contentsOf: Bundle.module.resourceURL!
                    .appendingPathComponent("Fixtures/\(fixture)/importance.json")))
        let out = try convertFixture("Tests/CheckpointsTests/Fixtures/\(fixture)")
        let model = try OPTModel(path: out)
        if blocked {
            model.scratch.widened.limit = 0
            model.widenBlockBytes = 3 * 4 * model.config.hiddenSize
        }
        let scores = try HeadImportance(model).scores(reference.requests.map { ImportanceRequest(context: $0.context, continuation: $0.continuation) })
        for (l, row) in scores.enumerated() {
            for (h, value) in row.enumerated() {
                let expected = reference.scores[l][h]
                #expect(
                    abs(value - expected) <= 1e-3 * abs(expected) + 1e-9, "\(fixture) blocked \(blocked) layer \(l) head \(h): \(value) vs autograd \(expected)"
                )
            }
        }
    }
}
