/// lm-evaluation-harness-compatible outputs: standard errors computed as the pinned harness computes them
/// (`lm_eval/metrics.py` at 11fa0bf: `mean_stderr`, `acc_all_stderr`, and `bootstrap_stderr` with 100000
/// resamples for perplexity), a `results.json` per shots value in lm-eval's layout, and per-doc sample logs
/// in the spirit of `--log_samples`.
import Foundation
import HRZFormat
import Files

extension EvalTask {
    /// The harness's task `VERSION` (what lm-eval writes under `versions`).
    public var harnessVersion: Int {
        switch self {
        case .boolq, .cb, .multirc: return 1
        default: return 0
        }
    }

    /// `<metric>_stderr` for each metric the harness gives one: mean-aggregated metrics by `mean_stderr`;
    /// MultiRC's acc by `acc_all_stderr` (which groups answers by question id only, unlike `acc_all`);
    /// LAMBADA's perplexity by the harness's bootstrap (100 chunks of 1000 resamples, chunk i drawn by
    /// `random.Random(i).choices`). CB's F1 (`cb_multi_fi`) has none, as in the harness.
    public func standardErrors(_ outcomes: [DocOutcome], bootstrapIterations: Int = 100_000) -> [String: Double] {
        var out: [String: Double] = [:]
        func values(_ key: String) -> [Double] { outcomes.compactMap { $0.values[key] } }
        switch self {
        case .multirc:
            var order: [String] = [], all: [String: Bool] = [:]
            for o in outcomes {
                guard let question = o.group?.split(separator: "/").last.map(String.init) else { continue }
                if all[question] == nil { order.append(question) }
                all[question] = (all[question] ?? true) && o.prediction == 1
            }
            out["acc"] = meanStderr(order.map { all[$0]! ? 1 : 0 })
            return out
        case .lambadaOpenAI:
            out["acc"] = meanStderr(values("acc"))
            out["ppl"] = bootstrapStderr(values("ppl"), iterations: bootstrapIterations) { Foundation.exp(-pyMean($0)) }
            return out
        case .cb:
            out["acc"] = meanStderr(values("acc"))
            return out
        default:
            for key in ["acc", "acc_norm", "em", "f1"] where outcomes.contains(where: { $0.values[key] != nil }) {
                out[key] = meanStderr(values(key))
            }
            return out
        }
    }
}

/// Python's `sum(arr) / len(arr)`: left-to-right double sum.
func pyMean(_ xs: [Double]) -> Double { xs.reduce(0, +) / Double(xs.count) }

/// `sample_stddev(arr) / sqrt(len(arr))`; NaN below two values (Python would divide by zero).
func meanStderr(_ xs: [Double]) -> Double {
    guard xs.count > 1 else { return .nan }
    let mu = pyMean(xs)
    let variance = xs.reduce(0) { $0 + ($1 - mu) * ($1 - mu) } / Double(xs.count - 1)
    return variance.squareRoot() / Double(xs.count).squareRoot()
}

/// The harness's `bootstrap_stderr(f, xs, iters)`: chunks of min(1000, iters) resamples; chunk i uses
/// `random.Random(i)` and `choices(xs, k=len(xs))` (`xs[floor(random() * n)]`); the result is the sample
/// standard deviation of all resampled statistics, in chunk order.
func bootstrapStderr(_ xs: [Double], iterations: Int, _ statistic: ([Double]) -> Double) -> Double {
    guard xs.count > 0 else { return .nan }
    let chunk = min(1000, iterations)
    var results: [Double] = []
    results.reserveCapacity(iterations)
    let n = Double(xs.count)
    var sample = [Double](repeating: 0, count: xs.count)
    for i in 0..<(iterations / chunk) {
        var rnd = PythonRandom(seed: UInt64(i))
        for _ in 0..<chunk {
            for j in 0..<xs.count { sample[j] = xs[Int((rnd.random() * n).rounded(.down))] }
            results.append(statistic(sample))
        }
    }
    guard results.count > 1 else { return .nan }
    let mu = pyMean(results)
    return (results.reduce(0) { $0 + ($1 - mu) * ($1 - mu) } / Double(results.count - 1)).squareRoot()
}

/// lm-eval's results layout for one shots value: `results` keyed by task (each metric and its `_stderr`),
/// `versions`, and `config`.
public struct LMEvalResults: Codable, Sendable {
    public struct Config: Codable, Sendable {
        public var model: String
        public var model_args: String
        public var model_sha256: String
        public var num_fewshot: Int
        public var batch_size: Int?
        public var device: String
        public var no_cache: Bool
        public var limit: Int?
        public var bootstrap_iters: Int
        public var description_dict: [String: String]
        public var memory_budget: Int?
        public var mask: String?
        public var precision: String
        public var seed: Int
        public var harness: String
        public var tool_version: String
        public var date: String
    }
    public var results: [String: [String: Double]]
    public var versions: [String: Int]
    public var config: Config
}

extension Evaluator {
    /// Writes OUTDIR/lm-eval/results-<k>shot.json for each shots value in `results` (one file per shots
    /// value, because lm-eval's `config.num_fewshot` is one number per run).
    func writeLMEval(_ results: ResultsFile) throws {
        let directory = options.outputDirectory + "/lm-eval"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let date = ISO8601DateFormatter().string(from: Date())
        for k in Set(results.cells.values.map(\.shots)).sorted() {
            var metrics: [String: [String: Double]] = [:], versions: [String: Int] = [:]
            for cell in results.cells.values where cell.shots == k {
                var entry = cell.metrics
                for (key, value) in cell.stderr ?? [:] where value.isFinite { entry[key + "_stderr"] = value }
                metrics[cell.task] = entry.filter { $0.value.isFinite }
                versions[cell.task] = (EvalTask.named(cell.task, dataDirectory: options.dataDirectory) ?? .generic(cell.task)).harnessVersion
            }
            let config = LMEvalResults.Config(
                model: "headroom", model_args: "pretrained=\(results.model)", model_sha256: results.model_sha256,
                num_fewshot: k, batch_size: nil, device: "cpu", no_cache: true, limit: options.limit,
                bootstrap_iters: 100_000, description_dict: [:], memory_budget: options.memoryBudget,
                mask: results.mask, precision: results.precision ?? "fp32", seed: 1234, harness: results.harness,
                tool_version: "headroom \(Headroom.version)", date: date)
            let file = LMEvalResults(results: metrics, versions: versions, config: config)
            try JSONFiles.write(file, to: "\(directory)/results-\(k)shot.json")
        }
    }
}
