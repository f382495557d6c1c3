import Foundation
import Testing
@testable import Analysis
@testable import Checkpoints
@testable import Evaluation
@testable import Runtime
import TestSupport

/// Oracle FFN importance: the cached sweep equals the from-scratch sweep, and each ablation equals the
/// evaluator run with that FFN masked. (Masked-FFN logits themselves are checked against HF in RuntimeTests.)
struct OracleTests {
    @Test func cachedSweepEqualsScratchAndMaskedEvaluation() throws {
        Threads.set(2)
        let model = try convertFixture("Tests/EvaluationTests/Fixtures/tiny-real-vocab", tokenizer: true)
        var options = EvalOptions(tasks: [.copa], shots: [1], dataDirectory: ImportanceDataTests.tasks, outputDirectory: testScratch())
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

/// Oracle FFN and single-head importance against HF with the same removal (Tools/make_oracle_reference.py),
/// on the harness's own first docs of copa 5-shot and arc_easy 0-shot. The caches spill (1-byte budget).
struct OracleReferenceTests {
    struct Reference: Decodable {
        struct Variant: Decodable { var loglikelihoods: [Double]; var acc: Double }
        struct Cell: Decodable { var task: String; var shots: Int; var docs: Int; var variants: [String: Variant] }
        var cells: [Cell]
    }

    @Test func oracleMatchesHF() throws {
        Threads.set(2)
        let reference = try JSONDecoder().decode(
            Reference.self,
            from: Data(
                contentsOf: Bundle.module.resourceURL!
                    .appendingPathComponent("Fixtures/oracle/oracle.json")))
        let model = try convertFixture("Tests/EvaluationTests/Fixtures/tiny-real-vocab", tokenizer: true)
        for cell in reference.cells {
            let task = EvalTask(rawValue: cell.task)!
            var options = EvalOptions(tasks: [task], shots: [cell.shots], dataDirectory: ImportanceDataTests.tasks, outputDirectory: testScratch())
            options.limit = cell.docs
            options.memoryBudget = 1  // every recorded layer input goes to the spill file
            let evaluator = try Evaluator(modelPath: model, options: options)
            let L = evaluator.layerCount, H = evaluator.headCount
            let ffns = try OracleImportance.ffns(evaluator: evaluator, task: task, shots: cell.shots)
            let heads = try OracleImportance.heads(evaluator: evaluator, task: task, shots: cell.shots)
            #expect(ffns.baseline == cell.variants["baseline"]!.acc && heads.baseline == ffns.baseline)
            for l in 0..<L { #expect(ffns.ablated[l] == cell.variants["ffn-\(l)"]!.acc, "\(cell.task) FFN \(l)") }
            for l in 0..<L { for h in 0..<H { #expect(heads.ablated[l * H + h] == cell.variants["head-\(l)-\(h)"]!.acc, "\(cell.task) head \(l).\(h)") } }
            // The log-likelihoods behind each accuracy, request by request, in the harness's order.
            let work = try evaluator.prepareCell(task, shots: cell.shots)
            for (name, variant) in cell.variants {
                var forward = evaluator.forwardOptions
                let parts = name.split(separator: "-").compactMap { Int($0) }
                if name.hasPrefix("ffn") { forward.mask.ffns = (0..<L).map { $0 != parts[0] } }
                if name.hasPrefix("head") { forward.mask.heads = (0..<L).map { l in (0..<H).map { !(l == parts[0] && $0 == parts[1]) } } }
                let scores = try evaluator.score(work, forward: forward).scores
                #expect(scores.count == variant.loglikelihoods.count)
                for (s, expected) in zip(scores, variant.loglikelihoods) {
                    #expect(abs(s.loglikelihood - expected) <= 1e-3, "\(cell.task) \(name): \(s.loglikelihood) vs HF \(expected)")
                }
            }
        }
    }
}

/// Saved activations spill past the budget and come back bit for bit.
struct SpillTests {
    @Test func importanceWithEverythingSpilledIsIdentical() throws {
        Threads.set(2)
        let out = try convertFixture("Tests/CheckpointsTests/Fixtures/post-ln-350m-style")
        let model = try OPTModel(path: out)
        let requests = [ImportanceRequest(context: [2, 5, 9, 11, 40], continuation: [7, 8]), ImportanceRequest(context: [3], continuation: [4, 6, 10])]
        #expect(try HeadImportance(model).scores(requests, memoryBudget: 1) == HeadImportance(model).scores(requests))
    }

    @Test func storeKeepsWhatFitsAndSpillsTheRest() throws {
        let store = SpillStore(budget: 40)
        let a = try store.append((0..<8).map(Float.init)), b = try store.append((0..<5).map { Float($0) * -1.5 })
        let c = try store.append([.pi, .infinity, -0.0])
        #expect(store.residentBytes == 32 && store.spilledBytes == 32)
        #expect(try store.array(a) == (0..<8).map(Float.init))
        #expect(try store.array(b) == (0..<5).map { Float($0) * -1.5 })
        #expect(try store.array(c).map(\.bitPattern) == [Float.pi, .infinity, -0.0].map(\.bitPattern))
        // The file is unlinked at creation: nothing named headroom-spill-<pid>-… is left in the directory.
        let left = try FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory()).filter { $0.hasPrefix("headroom-spill-\(getpid())-") }
        #expect(left.isEmpty)
    }
}

/// Replaying an FFN ablation from a layer's recorded FFN-less output equals running the masked model, on
/// pre-LN and post-LN (whose norm after the block stays) layouts.
struct ReplayWithoutFFNTests {
    @Test(arguments: ["Tests/CheckpointsTests/Fixtures/safetensors-f32", "Tests/CheckpointsTests/Fixtures/post-ln-350m-style"])
    func replayEqualsMaskedForward(_ fixture: String) throws {
        Threads.set(2)
        let model = try OPTModel(path: try convertFixture(fixture))
        let L = model.config.numHiddenLayers
        let batch = [[2, 7, 9, 11, 5], [3, 4], [8, 8, 8, 1, 6, 10, 12]].map { SequenceInput(tokens: $0, logits: .all) }
        var record = ForwardOptions(memoryBudget: 64)  // two passes, each recorded and replayed in order
        let cache = LayerInputCache(budget: 1, recordWithoutFFN: true)
        record.layerInputs = cache
        _ = try model.forward(batch, options: record)
        for l in 0..<L {
            var masked = ForwardOptions(memoryBudget: 64)
            masked.mask.ffns = (0..<L).map { $0 != l }
            let direct = try model.forward(batch, options: masked).flatMap(\.values)
            cache.replayWithoutFFN(layer: l)
            var replay = masked
            replay.layerInputs = cache
            let replayed = try model.forward(batch, options: replay).flatMap(\.values)
            #expect(direct == replayed, "\(fixture): FFN \(l)")
        }
    }
}
