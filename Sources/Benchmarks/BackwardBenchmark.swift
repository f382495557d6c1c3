/// `headroom bench backward`: time of gradient head importance (forward + backward with per-layer recompute)
/// against the forward alone, on the same random sequences in the same process.
import Foundation
import HRZFormat
import Runtime
import Basics
import Analysis

public struct BackwardBenchResult: Codable, Sendable {
    public var model: String
    public var sequences: Int
    public var tokens: Int
    public var runs: Int
    /// Medians over runs. The forward the loss needs: logits at the positions that predict the continuation.
    public var forwardSeconds: Double
    /// The forward with logits at the last position only (no LM head work to speak of).
    public var forwardLastSeconds: Double
    public var backwardSeconds: Double
    /// Medians of the per-run ratios (each run times the three back to back, so a ratio pairs one moment).
    public var ratio: Double
    public var ratioLast: Double
    /// Every run's ratio against the loss forward, in order.
    public var ratios: [Double]

    enum CodingKeys: String, CodingKey {
        case model, sequences, tokens, runs, ratio, ratios
        case forwardSeconds = "forward_seconds", forwardLastSeconds = "forward_last_seconds"
        case backwardSeconds = "forward_backward_seconds", ratioLast = "ratio_last"
    }
}

public enum BackwardBenchmark {
    /// Each sequence is `tokens` random ids: the first three quarters context, the rest continuation.
    public static func run(
        model path: String, sequences: Int, tokens: Int, threads: Int, runs: Int = 3, precision: Precision = .fp32,
        progress: ((String) -> Void)? = nil
    ) throws -> BackwardBenchResult {
        Threads.set(threads)
        let model = try OPTModel(path: path, precision: precision)
        var rng = SplitMix64(seed: 1)
        let requests = (0..<sequences).map { _ in
            let ids = (0..<tokens).map { _ in 3 + Int(rng.next() % UInt64(min(model.config.vocabSize, 50265) - 3)) }
            return ImportanceRequest(context: Array(ids[..<(tokens * 3 / 4)]), continuation: Array(ids[(tokens * 3 / 4)...]))
        }
        // Warm-up: decodes the layers and widens the weights the backward keeps in fp32 (the forward reuses them).
        _ = try HeadImportance(model).scores(Array(requests.prefix(1)))
        func seconds(_ body: () throws -> Void) rethrows -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        func forward(_ logits: (ImportanceRequest) -> LogitsRequest) throws -> Double {
            try seconds { for r in requests { _ = try model.forward([SequenceInput(tokens: r.context + r.continuation, logits: logits(r))]) } }
        }
        var forwards: [Double] = [], lasts: [Double] = [], backwards: [Double] = []
        for run in 1...runs {
            forwards.append(try forward { r in .positions(Array((r.context.count - 1)..<(r.context.count + r.continuation.count - 1))) })
            lasts.append(try forward { _ in .last })
            Profile.reset()  // with HEADROOM_PROFILE=1 the command prints the last backward's sections only
            backwards.append(try seconds { _ = try HeadImportance(model).scores(requests) })
            progress?(
                String(
                    format: "run %d/%d: forward %.3f s, forward + backward %.3f s (%.2f×)",
                    run, runs, forwards.last!, backwards.last!, backwards.last! / forwards.last!))
        }
        let ratios = zip(backwards, forwards).map { $0 / $1 }
        return BackwardBenchResult(
            model: (path as NSString).lastPathComponent, sequences: sequences, tokens: tokens, runs: runs,
            forwardSeconds: median(forwards), forwardLastSeconds: median(lasts), backwardSeconds: median(backwards),
            ratio: median(ratios), ratioLast: median(zip(backwards, lasts).map { $0 / $1 }), ratios: ratios)
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
}
