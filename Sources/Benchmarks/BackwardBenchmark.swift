/// `headroom bench backward`: time of gradient head importance (forward + backward with per-layer recompute)
/// against the forward alone, on the same random sequences in the same process.
import Foundation
import HRZFormat
import Runtime

public struct BackwardBenchResult: Codable, Sendable {
    public var model: String
    public var sequences: Int
    public var tokens: Int
    public var forwardSeconds: Double
    public var backwardSeconds: Double
    public var ratio: Double

    enum CodingKeys: String, CodingKey {
        case model, sequences, tokens, ratio
        case forwardSeconds = "forward_seconds", backwardSeconds = "forward_backward_seconds"
    }
}

public enum BackwardBenchmark {
    /// Each sequence is `tokens` random ids: the first three quarters context, the rest continuation.
    public static func run(model path: String, sequences: Int, tokens: Int, threads: Int) throws -> BackwardBenchResult {
        Runtime.setThreads(threads)
        let model = try OPTModel(path: path)
        var rng = SplitMix64(seed: 1)
        let requests = (0..<sequences).map { _ in
            let ids = (0..<tokens).map { _ in 3 + Int(rng.next() % UInt64(min(model.config.vocabSize, 50265) - 3)) }
            return ImportanceRequest(context: Array(ids[..<(tokens * 3 / 4)]), continuation: Array(ids[(tokens * 3 / 4)...]))
        }
        // Warm-up (decodes layers), then forward alone and forward + backward on the same sequences.
        _ = try model.forward(requests.prefix(1).map { SequenceInput(tokens: $0.context + $0.continuation, logits: .last) })
        var start = DispatchTime.now().uptimeNanoseconds
        for r in requests { _ = try model.forward([SequenceInput(tokens: r.context + r.continuation, logits: .last)]) }
        let forward = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        start = DispatchTime.now().uptimeNanoseconds
        _ = try model.headImportance(requests)
        let backward = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return BackwardBenchResult(model: (path as NSString).lastPathComponent, sequences: sequences, tokens: tokens,
                                   forwardSeconds: forward, backwardSeconds: backward, ratio: backward / forward)
    }
}

