import Foundation
import Testing
@testable import Analysis
@testable import Checkpoints
@testable import Evaluation
@testable import Runtime

/// Oracle FFN importance: the cached sweep equals the from-scratch sweep, and each ablation equals the
/// evaluator run with that FFN masked. (Masked-FFN logits themselves are checked against HF in RuntimeTests.)
struct OracleTests {
    @Test func cachedSweepEqualsScratchAndMaskedEvaluation() throws {
        Runtime.setThreads(2)
        let model = try convertFixture("Tests/EvaluationTests/Fixtures/tiny-real-vocab", tokenizer: true)
        var options = EvalOptions(tasks: [.copa], shots: [1], dataDirectory: ImportanceDataTests.tasks, outputDirectory: NSTemporaryDirectory())
        options.limit = 12
        let evaluator = try Evaluator(modelPath: model, options: options)
        let cached = try OracleImportance.ffns(evaluator: evaluator, task: .copa, shots: 1, cached: true)
        let scratch = try OracleImportance.ffns(evaluator: evaluator, task: .copa, shots: 1, cached: false)
        #expect(cached.baseline == scratch.baseline && cached.ablated == scratch.ablated)
        // Per-request log-likelihoods too, not only the (coarse) accuracy.
        let work = try evaluator.prepareCell(.copa, shots: 1)
        let cache = LayerInputCache()
        var record = evaluator.forwardOptions
        record.layerInputs = cache
        _ = try evaluator.score(work, forward: record)
        for l in 0..<evaluator.layerCount {
            var masked = evaluator.forwardOptions
            masked.mask.ffns = (0..<evaluator.layerCount).map { $0 != l }
            let direct = try evaluator.score(work, forward: masked)
            var replay = masked
            replay.layerInputs = cache
            cache.replay(fromLayer: l)
            let fromCache = try evaluator.score(work, forward: replay)
            #expect(direct.metrics["acc"] == cached.ablated[l])
            for (a, b) in zip(direct.scores, fromCache.scores) { #expect(abs(a.loglikelihood - b.loglikelihood) <= 1e-5) }
        }
    }
}
