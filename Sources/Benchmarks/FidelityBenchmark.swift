/// `headroom bench fidelity`: what bf16 costs in accuracy, measured against fp32 on the same prompts. Per cell
/// (task × shots): |Δ log-likelihood| of every request (max, median), the share of docs whose prediction
/// changes, and the headline metric in both precisions; per cell too, the Spearman correlation of gradient
/// head importance between the two precisions on the same examples.
import Foundation
import Analysis
import Evaluation
import Runtime

public struct FidelityRow: Codable, Sendable {
    public var task: String
    public var shots: Int
    public var docs: Int
    public var requests: Int
    public var maxAbsDeltaLL: Double
    public var medianAbsDeltaLL: Double
    /// Docs whose prediction (argmax over the doc's requests; for one-request docs, greedy or not) differs.
    public var flippedDocs: Int
    public var metric: String
    public var fp32: Double
    public var bf16: Double
    /// Spearman ρ of per-head gradient importance, bf16 vs fp32, over `importanceExamples` examples; nil when not run.
    public var importanceSpearman: Double?
    public var importanceExamples: Int
    enum CodingKeys: String, CodingKey {
        case task, shots, docs, requests, metric, fp32, bf16
        case maxAbsDeltaLL = "max_abs_delta_ll", medianAbsDeltaLL = "median_abs_delta_ll", flippedDocs = "flipped_docs"
        case importanceSpearman = "importance_spearman", importanceExamples = "importance_examples"
    }
}

public enum FidelityBenchmark {
    /// `limit` docs per cell; `importanceExamples` examples per cell for head importance (0: skip it).
    public static func run(
        model: String, dataDirectory: String, tasks: [EvalTask], shots: [Int], limit: Int?, importanceExamples: Int,
        log: (String) -> Void
    ) throws -> [FidelityRow] {
        func evaluator(_ precision: Precision) throws -> Evaluator {
            var o = EvalOptions(tasks: tasks, shots: shots, dataDirectory: dataDirectory, outputDirectory: NSTemporaryDirectory())
            o.limit = limit
            o.precision = precision
            return try Evaluator(modelPath: model, options: o)
        }
        let fp32 = try evaluator(.fp32), bf16 = try evaluator(.bf16)
        var rows: [FidelityRow] = []
        for task in tasks {
            for k in shots {
                let work: Evaluator.CellWork
                do { work = try fp32.prepareCell(task, shots: k) } catch let e as TaskError where e.missingData {
                    log("bench fidelity: \(task.rawValue) \(k)-shot skipped: \(e)")
                    continue
                }
                log("bench fidelity: \(task.rawValue) \(k)-shot: \(work.docs) docs, \(work.requests.count) requests")
                let a = try fp32.score(work), b = try bf16.score(work)
                let deltas = zip(a.scores, b.scores).map { abs($0.loglikelihood - $1.loglikelihood) }.sorted()
                var flipped = 0, offset = 0
                for n in work.requestsPerDoc {
                    let x = Array(a.scores[offset..<(offset + n)]), y = Array(b.scores[offset..<(offset + n)])
                    offset += n
                    if n == 1 { if x[0].isGreedy != y[0].isGreedy { flipped += 1 }; continue }
                    func argmax(_ s: [Score]) -> Int {
                        s.indices.max { s[$0].loglikelihood < s[$1].loglikelihood || (s[$0].loglikelihood == s[$1].loglikelihood && $0 > $1) }!
                    }
                    if argmax(x) != argmax(y) { flipped += 1 }
                }
                let metric = task.headlineMetric
                var rho: Double?
                if importanceExamples > 0 {
                    let requests: [ImportanceRequest]
                    do {
                        requests = try ImportanceData.tokenized(
                            task: task, shots: k, dataDirectory: dataDirectory, limit: importanceExamples,
                            scorer: fp32.scorer
                        ).requests
                    } catch let e as TaskError {
                        log("bench fidelity: \(task.rawValue) \(k)-shot: no head importance: \(e)")
                        requests = []
                    }
                    if !requests.isEmpty {
                        let x = try HeadImportance(fp32.scorer.model).scores(requests).flatMap { $0 }
                        let y = try HeadImportance(bf16.scorer.model).scores(requests).flatMap { $0 }
                        rho = Ranking.spearman(x, y)
                    }
                }
                rows.append(
                    FidelityRow(
                        task: task.rawValue, shots: k, docs: work.docs, requests: deltas.count,
                        maxAbsDeltaLL: deltas.last ?? 0, medianAbsDeltaLL: deltas.isEmpty ? 0 : deltas[deltas.count / 2],
                        flippedDocs: flipped, metric: metric, fp32: a.metrics[metric] ?? .nan, bf16: b.metrics[metric] ?? .nan,
                        importanceSpearman: rho, importanceExamples: importanceExamples))
            }
        }
        return rows
    }

    /// A Markdown table, as the docs quote it.
    public static func table(_ rows: [FidelityRow]) -> String {
        var lines = [
            "| task | shots | docs | max \\|Δll\\| | median \\|Δll\\| | docs flipped | metric fp32 → bf16 | head importance ρ |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in rows {
            lines.append(
                String(
                    format: "| %@ | %d | %d | %.2e | %.2e | %d (%.1f%%) | %@ %.1f → %.1f | %@ |", r.task, r.shots, r.docs,
                    r.maxAbsDeltaLL, r.medianAbsDeltaLL, r.flippedDocs, 100 * Double(r.flippedDocs) / Double(max(1, r.docs)),
                    r.metric, 100 * r.fp32, 100 * r.bf16,
                    r.importanceSpearman.map { String(format: "%.4f (%d ex.)", $0, r.importanceExamples) } ?? "–"))
        }
        return lines.joined(separator: "\n")
    }
}
