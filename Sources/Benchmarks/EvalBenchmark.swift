/// `headroom bench eval`: wall time of the evaluator on real tasks, for comparison with a harness-style HF
/// loop (Tools/bench_peers.py eval) that scores the same request files pair by pair at batch size 8.
import Evaluation
import Foundation
import Runtime

public struct EvalBenchResult: Codable, Sendable {
    public var model: String
    public var cells: [String]
    public var requests: Int
    public var seconds: Double
    public var requestsPerS: Double
    public var outputDirectory: String

    enum CodingKeys: String, CodingKey {
        case model, cells, requests, seconds
        case requestsPerS = "requests_per_s", outputDirectory = "output_directory"
    }
}

public enum EvalBenchmark {
    /// Runs a fresh evaluation into `outputDirectory` (emptied first) and times it, model loading included:
    /// `evaluate` is the evaluation job (Jobs sits above this target), loading the model and running every cell.
    public static func run(model: String, options: EvalOptions, evaluate: () throws -> ResultsFile) throws -> EvalBenchResult {
        try? FileManager.default.removeItem(atPath: options.outputDirectory)
        let start = DispatchTime.now().uptimeNanoseconds
        let results = try evaluate()
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let requests = results.cells.values.reduce(0) { $0 + $1.requests }
        return EvalBenchResult(
            model: (model as NSString).lastPathComponent, cells: results.cells.keys.sorted(), requests: requests,
            seconds: seconds, requestsPerS: Double(requests) / seconds, outputDirectory: options.outputDirectory)
    }
}
