/// Oracle FFN importance: Score[l] = baseline metric − the metric with layer l's FFN removed, on the task's
/// eval split (acc; ReCoRD: em). The layers below l compute exactly what the baseline computes, so the
/// baseline pass records every layer's input and each ablation recomputes only layers ≥ l.
import Evaluation
import Foundation
import Runtime

public enum OracleImportance {
    public struct Result: Sendable {
        public var baseline: Double
        /// Metric with each layer's FFN removed.
        public var ablated: [Double]
        public var scores: [Double] { ablated.map { baseline - $0 } }
        public var docs: Int
        public var seconds: Double
    }

    /// The headline metric of a task.
    static func metric(_ task: Task, _ metrics: [String: Double]) -> Double { metrics[task.headlineMetric] ?? .nan }

    public static func ffns(evaluator: Evaluator, task: Task, shots: Int, cached: Bool = true,
                            progress: ((Int, Int) -> Void)? = nil) throws -> Result {
        let started = Date()
        let work = try evaluator.prepareCell(task, shots: shots)
        let L = evaluator.layerCount
        var options = evaluator.forwardOptions
        let cache = LayerInputCache()
        if cached { options.layerInputs = cache }
        let baseline = metric(task, try evaluator.score(work, forward: options).metrics)
        progress?(1, L + 1)
        var ablated: [Double] = []
        for l in 0..<L {
            var mask = options.mask.ffns ?? Array(repeating: true, count: L)
            mask[l] = false
            var ablation = options
            ablation.mask.ffns = mask
            if cached { cache.replay(fromLayer: l) }
            ablated.append(metric(task, try evaluator.score(work, forward: ablation).metrics))
            progress?(l + 2, L + 1)
        }
        return Result(baseline: baseline, ablated: ablated, docs: work.docs, seconds: Date().timeIntervalSince(started))
    }
}
