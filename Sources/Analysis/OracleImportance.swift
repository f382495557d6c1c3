/// Oracle importance: Score[l] = baseline metric − the metric with layer l's FFN removed (or, for single
/// heads, head h of layer l masked), on the task's eval split (acc; ReCoRD: em). The work goes one scoring
/// batch at a time: the batch's baseline forward records every layer's input (and, for FFNs, each layer's
/// output as if its FFN were removed), then each ablation recomputes only the layers it changes, from that
/// record. The layers below l, and layer l up to its FFN, compute exactly what the baseline computed, so this
/// is exact; the record holds one batch, so its memory is bounded whatever the cell's size (beyond the memory
/// budget it spills to disk). A cell's metrics come from the per-request scores of every batch
/// (`combine`), so batches may run anywhere, in any order.
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

    /// What is removed: each layer's FFN, or each single head (layer · H + head).
    public enum Kind: String, Sendable, Codable {
        case ffns, heads
        /// The ablations of a model with `layers` layers of `heads` heads.
        public func ablations(layers: Int, heads: Int) -> [Int] { Array(0..<(self == .ffns ? layers : layers * heads)) }
    }

    /// The headline metric of a task.
    static func metric(_ task: EvalTask, _ metrics: [String: Double]) -> Double { metrics[task.headlineMetric] ?? .nan }

    /// Every ablation of one scoring batch: `[0]` is the baseline's scores of the batch's requests, `[1 + a]`
    /// those with ablation `ablations[a]` applied. With `cached` false each ablation runs the whole model
    /// (the reference the cached replay is tested against).
    public static func batch(
        _ kind: Kind, evaluator: Evaluator, plan: ScoringPlan, batch b: Int, ablations: [Int],
        cached: Bool = true
    ) throws -> [[Score]] {
        let L = evaluator.layerCount, H = evaluator.headCount
        var options = evaluator.forwardOptions
        let cache = LayerInputCache(budget: options.memoryBudget, recordWithoutFFN: kind == .ffns)
        if cached { options.layerInputs = cache }
        var out = [try evaluator.scorer.score(plan, batch: b, options: options).map(\.score)]
        for a in ablations {
            var variant = options
            switch kind {
            case .ffns:
                var ffns = variant.mask.ffns ?? Array(repeating: true, count: L)
                ffns[a] = false
                variant.mask.ffns = ffns
                if cached { cache.replayWithoutFFN(layer: a) }
            case .heads:
                var heads = variant.mask.heads ?? Array(repeating: Array(repeating: true, count: H), count: L)
                heads[a / H][a % H] = false
                variant.mask.heads = heads
                if cached { cache.replay(fromLayer: a / H) }
            }
            out.append(try evaluator.scorer.score(plan, batch: b, options: variant).map(\.score))
        }
        return out
    }

    /// The cell's baseline and ablated metrics from every batch's `batch` result, batches in order.
    public static func combine(
        _ batches: [[[Score]]], task: EvalTask, evaluator: Evaluator, work: Evaluator.CellWork, plan: ScoringPlan,
        ablations: [Int]
    ) throws -> (baseline: Double, ablated: [Double]) {
        var metrics: [Double] = []
        for a in 0...ablations.count {
            var scores = [Score?](repeating: nil, count: work.requests.count)
            for (b, result) in batches.enumerated() {
                for (r, s) in zip(plan.requests(inBatch: b), result[a]) { scores[r] = s }
            }
            metrics.append(metric(task, try evaluator.outcomes(work, scores: scores.map { $0! }).metrics))
        }
        return (metrics[0], Array(metrics.dropFirst()))
    }

    /// FFN importance of one cell, every batch on this machine.
    public static func ffns(
        evaluator: Evaluator, task: EvalTask, shots: Int, cached: Bool = true, layers: [Int]? = nil,
        progress: ((Int, Int) -> Void)? = nil
    ) throws -> Result {
        try cell(.ffns, evaluator: evaluator, task: task, shots: shots, cached: cached, ablations: layers, progress: progress)
    }

    /// The same for single heads: `ablated[l · H + h]` is the metric with head h of layer l masked. It costs
    /// one evaluation of layers ≥ l per head, so it is meant for small models.
    public static func heads(
        evaluator: Evaluator, task: EvalTask, shots: Int, cached: Bool = true,
        progress: ((Int, Int) -> Void)? = nil
    ) throws -> Result {
        try cell(.heads, evaluator: evaluator, task: task, shots: shots, cached: cached, ablations: nil, progress: progress)
    }

    static func cell(
        _ kind: Kind, evaluator: Evaluator, task: EvalTask, shots: Int, cached: Bool, ablations: [Int]?,
        progress: ((Int, Int) -> Void)?
    ) throws -> Result {
        let started = Date()
        let work = try evaluator.prepareCell(task, shots: shots)
        let plan = try evaluator.scorer.plan(work.requests)
        let ablations = ablations ?? kind.ablations(layers: evaluator.layerCount, heads: evaluator.headCount)
        var batches: [[[Score]]] = []
        for b in plan.batches.indices {
            batches.append(try batch(kind, evaluator: evaluator, plan: plan, batch: b, ablations: ablations, cached: cached))
            progress?(b + 1, plan.batches.count)
        }
        let (baseline, ablated) = try combine(batches, task: task, evaluator: evaluator, work: work, plan: plan, ablations: ablations)
        return Result(baseline: baseline, ablated: ablated, ablations: ablations, docs: work.docs, seconds: Date().timeIntervalSince(started))
    }
}
