/// Oracle FFN importance: Score[l] = baseline metric − the metric with layer l's FFN removed, on the task's
/// eval split (acc; ReCoRD: em). The layers below l, and layer l up to its FFN, compute exactly what the
/// baseline computes, so the baseline pass records each layer's FFN-less output and each ablation computes
/// only layers > l. (Single heads: from each layer's recorded input, layers ≥ l.)
import Evaluation
import Foundation
import Runtime

public enum OracleImportance {
    public struct Result: Sendable {
        public var baseline: Double
        /// Metric with each ablation applied, in the order of `ablations` (every layer or head unless a subset was asked for).
        public var ablated: [Double]
        /// Which layer (FFNs) or layer · H + head (heads) each entry of `ablated` removes.
        public var ablations: [Int]
        public var scores: [Double] { ablated.map { baseline - $0 } }
        public var docs: Int
        public var seconds: Double
    }

    /// The headline metric of a task.
    static func metric(_ task: EvalTask, _ metrics: [String: Double]) -> Double { metrics[task.headlineMetric] ?? .nan }

    /// `layers`: only these ablations (a shard of the layers; the baseline pass is the same in every shard,
    /// so shards merge exactly); nil: every layer.
    public static func ffns(evaluator: Evaluator, task: EvalTask, shots: Int, cached: Bool = true, layers: [Int]? = nil,
                            progress: ((Int, Int) -> Void)? = nil) throws -> Result {
        let L = evaluator.layerCount
        // The layers below l compute what the baseline computed, and so does layer l up to its FFN: each
        // ablation starts at layer l + 1 from layer l's recorded FFN-less output.
        return try sweep(evaluator: evaluator, task: task, shots: shots, cached: cached, progress: progress, withoutFFN: true,
                         ablations: (layers ?? Array(0..<L)).map { l in (l,
                             ({ (mask: inout ModelMask) in
                                 var ffns = mask.ffns ?? Array(repeating: true, count: L)
                                 ffns[l] = false
                                 mask.ffns = ffns
                             }, { $0.replayWithoutFFN(layer: l) }))
                         })
    }

    /// The same for single heads: `ablated[l · H + h]` is the metric with head h of layer l masked. It costs
    /// one evaluation of layers ≥ l per head, so it is meant for small models.
    public static func heads(evaluator: Evaluator, task: EvalTask, shots: Int, cached: Bool = true,
                             progress: ((Int, Int) -> Void)? = nil) throws -> Result {
        let L = evaluator.layerCount, H = evaluator.headCount
        return try sweep(evaluator: evaluator, task: task, shots: shots, cached: cached, progress: progress, withoutFFN: false,
                         ablations: (0..<(L * H)).map { i in
                             (i, ({ (mask: inout ModelMask) in
                                 var heads = mask.heads ?? Array(repeating: Array(repeating: true, count: H), count: L)
                                 heads[i / H][i % H] = false
                                 mask.heads = heads
                             }, { $0.replay(fromLayer: i / H) }))
                         })
    }

    /// Baseline, then one evaluation per ablation; each ablation edits the mask and changes nothing below its layer.
    static func sweep(evaluator: Evaluator, task: EvalTask, shots: Int, cached: Bool, progress: ((Int, Int) -> Void)?, withoutFFN: Bool,
                      ablations: [(index: Int, change: (apply: (inout ModelMask) -> Void, replay: (LayerInputCache) -> Void))]) throws -> Result {
        let started = Date()
        let work = try evaluator.prepareCell(task, shots: shots)
        var options = evaluator.forwardOptions
        let cache = LayerInputCache(budget: options.memoryBudget, recordWithoutFFN: withoutFFN)
        if cached { options.layerInputs = cache }
        let baseline = metric(task, try evaluator.score(work, forward: options).metrics)
        progress?(1, ablations.count + 1)
        var ablated: [Double] = []
        for (i, ablation) in ablations.map(\.change).enumerated() {
            var variant = options
            ablation.apply(&variant.mask)
            if cached { ablation.replay(cache) }
            ablated.append(metric(task, try evaluator.score(work, forward: variant).metrics))
            progress?(i + 2, ablations.count + 1)
        }
        return Result(baseline: baseline, ablated: ablated, ablations: ablations.map(\.index), docs: work.docs, seconds: Date().timeIntervalSince(started))
    }
}
