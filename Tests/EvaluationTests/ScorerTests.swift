import Foundation
import Testing
@testable import Checkpoints
@testable import Evaluation
@testable import HRZFormat
@testable import Runtime
@testable import Tokenizer
import TestSupport

/// The scoring engine against HF (Tools/make_eval_reference.py): token ids, log-likelihoods, is_greedy.
struct ScorerTests {
    struct Reference: Decodable {
        struct Item: Decodable {
            var context: String; var continuation: String; var context_ids: [Int]; var continuation_ids: [Int]
            var loglikelihood: Double; var is_greedy: Bool
        }
        var requests: [Item]
    }

    static let fixture = Bundle.module.resourceURL!.appendingPathComponent("Fixtures/tiny-real-vocab").path

    static func scorer() throws -> Scorer {
        let out = testScratch() + "headroom-eval-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).hrz"
        var options = ConvertOptions()
        options.tokenizerDirectory = HarnessDrawTests.shared.appendingPathComponent("tokenizer/opt").path
        _ = try Converter.convert(fixture, to: out, options: options)
        Threads.set(2)
        return Scorer(model: try OPTModel(path: out), tokenizer: try Tokenizer.load(out))
    }

    static func reference() throws -> Reference {
        try JSONDecoder().decode(Reference.self, from: Data(contentsOf: URL(fileURLWithPath: fixture + "/requests.json")))
    }

    /// The bar moves inside a batch, layer by layer, and the scores are the same with the observer attached.
    @Test func progressMovesWithinABatch() throws {
        let reference = try Self.reference()
        let scorer = try Self.scorer()
        let requests = reference.requests.map { Request(context: $0.context, continuation: $0.continuation) }
        final class Seen: @unchecked Sendable { var values: [(Int, Int)] = [] }
        let seen = Seen()
        let scores = try scorer.score(requests) { done, total in seen.values.append((done, total)) }
        let total = try #require(seen.values.last?.1)
        #expect(seen.values.first?.0 == 0 && seen.values.last?.0 == total)
        #expect(seen.values.contains { $0.0 > 0 && $0.0 < total }, "no report between 0 and \(total): \(seen.values)")
        #expect(zip(seen.values, seen.values.dropFirst()).allSatisfy { $0.0 <= $1.0 }, "progress never goes back")
        // Without the observer: the same scores (within fp32 noise: other suites may change the process's
        // BLAS thread count between the two calls, which reorders sums).
        let plain = try scorer.score(requests)
        #expect(zip(plain, scores).allSatisfy { abs($0.loglikelihood - $1.loglikelihood) <= 1e-5 && $0.isGreedy == $1.isGreedy })
    }

    @Test func matchesHF() throws {
        let reference = try Self.reference()
        let scorer = try Self.scorer()
        let requests = reference.requests.map { Request(context: $0.context, continuation: $0.continuation) }
        for (r, item) in zip(requests, reference.requests) {
            let t = try scorer.tokens(r)
            #expect(t.context == item.context_ids && t.continuation == item.continuation_ids, "\(item.continuation)")
        }
        let scores = try scorer.score(requests)
        #expect(reference.requests.contains { $0.is_greedy })
        for (score, item) in zip(scores, reference.requests) {
            let tolerance = 1e-3 * Double(item.continuation_ids.count)
            #expect(
                abs(score.loglikelihood - item.loglikelihood) <= tolerance,
                "\(item.continuation.prefix(30)): \(score.loglikelihood) vs HF \(item.loglikelihood)")
            #expect(score.isGreedy == item.is_greedy)
        }
    }

    /// Shared-context scoring equals scoring each whole context+continuation alone, within 1e-4,
    /// including across several forward calls and with a tiny memory budget.
    @Test func sharedContextsEqualSeparateScoring() throws {
        let reference = try Self.reference()
        let scorer = try Self.scorer()
        let requests = reference.requests.map { Request(context: $0.context, continuation: $0.continuation) }
        let separate = try scorer.score(requests, shareContexts: false)
        scorer.tokensPerBatch = 300
        scorer.options = ForwardOptions(memoryBudget: 1 << 16)
        let shared = try scorer.score(requests)
        for (a, b) in zip(shared, separate) {
            #expect(abs(a.loglikelihood - b.loglikelihood) <= 1e-4, "\(a.loglikelihood) vs \(b.loglikelihood)")
            #expect(a.isGreedy == b.isGreedy)
        }
    }
}
