/// What a scoring batch's item holds in a part file: one `[request index, loglikelihood, is_greedy 0/1]` per
/// request of the batch. Shared by evaluation, sweep and oracle items.
import Evaluation

enum BatchScores {
    static func encode(_ scores: [(request: Int, score: Score)]) -> [[Double]] {
        scores.map { [Double($0.request), $0.score.loglikelihood, $0.score.isGreedy ? 1 : 0] }
    }

    /// nil when `result` holds exactly batch `batch`'s requests of `plan`, in order; else what is wrong.
    static func check(_ result: [[Double]], plan: ScoringPlan?, batch: Int) -> String? {
        guard let plan else { return nil }
        guard plan.batches.indices.contains(batch) else { return "the cell has \(plan.batches.count) batches, not \(batch + 1)" }
        let mine = plan.requests(inBatch: batch)
        guard result.count == mine.count, result.allSatisfy({ $0.count == 3 }) else {
            return "expected [request, loglikelihood, is_greedy] for each of the batch's \(mine.count) requests"
        }
        return result.map({ Int(exactly: $0[0]) ?? -1 }) == mine ? nil : "scores requests that are not batch \(batch)'s"
    }

    /// Every request's score, in request order, from all batches' results.
    static func assemble(_ results: [[[Double]]], requests: Int) -> [Score] {
        var scores = [Score?](repeating: nil, count: requests)
        for entry in results.joined() { scores[Int(entry[0])] = Score(loglikelihood: entry[1], isGreedy: entry[2] == 1) }
        return scores.map { $0! }
    }
}
