/// Random base sequences for induction scores: unique tokens drawn from the middle 92% of BPE merge ranks
/// (the 4% most and the 4% least frequent merges excluded), lengths 2s + 25 for s = 0 … N−1, deterministic
/// for a seed (CPython's `random.Random(seed).sample` over the candidate list).
import Evaluation
import Foundation
import Tokenizer

public enum InductionSequences {
    public static func random(count: Int, seed: UInt64, tokenizer: Tokenizer) -> [[Int]] {
        let ranked = tokenizer.mergedTokenIDs
        let cut = ranked.count * 4 / 100
        let candidates = Array(ranked[cut..<(ranked.count - cut)])
        var rnd = PythonRandom(seed: seed)
        return (0..<count).map { s in rnd.sample(candidates.count, min(2 * s + 25, candidates.count)).map { candidates[$0] } }
    }

    /// One JSON array of ids per line.
    public static func read(_ path: String) throws -> [[Int]] {
        guard let text = String(data: FileManager.default.contents(atPath: path) ?? Data(), encoding: .utf8) else {
            throw TaskError(file: path, line: nil, "cannot read")
        }
        var out: [[Int]] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
            guard let ids = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [Int], ids.count >= 2 else {
                throw TaskError(file: path, line: i + 1, "expected a JSON array of at least 2 token ids")
            }
            out.append(ids)
        }
        return out
    }
}
