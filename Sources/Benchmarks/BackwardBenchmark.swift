/// `headroom bench backward`: time of gradient head importance (forward + backward with per-layer recompute)
/// against the forward alone, on the same random sequences in the same process.
import Foundation
import HRZFormat
import Runtime

public struct BackwardBenchResult: Codable, Sendable {
    public var model: String
    public var sequences: Int
    public var tokens: Int
    /// The forward the loss needs: logits at the positions that predict the continuation.
    public var forwardSeconds: Double
    /// The forward with logits at the last position only (no LM head work to speak of).
    public var forwardLastSeconds: Double
    public var backwardSeconds: Double
    public var ratio: Double
    public var ratioLast: Double

    enum CodingKeys: String, CodingKey {
        case model, sequences, tokens, ratio
        case forwardSeconds = "forward_seconds", forwardLastSeconds = "forward_last_seconds"
        case backwardSeconds = "forward_backward_seconds", ratioLast = "ratio_last"
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
        // Warm-up (decodes layers), then the forwards alone and forward + backward on the same sequences.
        _ = try model.forward(requests.prefix(1).map { SequenceInput(tokens: $0.context + $0.continuation, logits: .last) })
        func time(_ logits: (ImportanceRequest) -> LogitsRequest) throws -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            for r in requests { _ = try model.forward([SequenceInput(tokens: r.context + r.continuation, logits: logits(r))]) }
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        let forward = try time { r in .positions(Array((r.context.count - 1)..<(r.context.count + r.continuation.count - 1))) }
        let forwardLast = try time { _ in .last }
        let start = DispatchTime.now().uptimeNanoseconds
        _ = try model.headImportance(requests)
        let backward = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return BackwardBenchResult(model: (path as NSString).lastPathComponent, sequences: sequences, tokens: tokens,
                                   forwardSeconds: forward, forwardLastSeconds: forwardLast, backwardSeconds: backward,
                                   ratio: backward / forward, ratioLast: backward / forwardLast)
    }
}

