/// Random base sequences for induction scores: unique tokens drawn from the middle 92% of BPE merge ranks
/// (the 4% most and the 4% least frequent merges excluded), lengths 2s + 25 for s = 0 … N−1, deterministic
/// for a seed (CPython's `random.Random(seed).sample` over the candidate list).
import Evaluation
import Foundation
import HRZFormat
import Tokenizer
import Basics
import Files

public enum InductionSequences {
    public static func random(count: Int, seed: UInt64, tokenizer: Tokenizer) -> [[Int]] {
        let ranked = tokenizer.mergedTokenIDs
        let cut = ranked.count * 4 / 100
        let candidates = Array(ranked[cut..<(ranked.count - cut)])
        var rnd = PythonRandom(seed: seed)
        return (0..<count).map { s in rnd.sample(candidates.count, min(2 * s + 25, candidates.count)).map { candidates[$0] } }
    }

    /// One JSON array of ids per line, checked for the probe it feeds so a bad line is named by file and line:
    /// ids in 0..<vocabSize, and BOS plus the sequence (prefix matching: four copies, all ids distinct) within
    /// `positions`.
    public static func read(_ path: String, kind: String = "copying", vocabSize: Int = Int.max, positions: Int = Int.max) throws -> [[Int]] {
        guard let data = try FileGuard.contents(atPath: path) else { throw TaskError(file: path, line: nil, "cannot read") }
        if let bad = firstInvalidUTF8(data) { throw TaskError(file: path, line: nil, "invalid UTF-8 at byte \(bad)") }
        let text = String(decoding: data, as: UTF8.self)
        var out: [[Int]] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
            guard let ids = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [Int], ids.count >= 2 else {
                throw TaskError(file: path, line: i + 1, "expected a JSON array of at least 2 token ids")
            }
            if let bad = ids.first(where: { $0 < 0 || $0 >= vocabSize }) {
                throw TaskError(file: path, line: i + 1, "token id \(bad) is outside the vocabulary (0..<\(vocabSize))")
            }
            let length = 1 + (kind == "prefix-matching" ? 4 : 1) * ids.count
            guard length <= positions else {
                throw TaskError(
                    file: path, line: i + 1,
                    "\(ids.count) ids make \(length) positions with BOS\(kind == "prefix-matching" ? " and 4 copies" : ""); the model has \(positions)")
            }
            if kind == "prefix-matching", Set(ids).count != ids.count {
                throw TaskError(file: path, line: i + 1, "prefix matching needs distinct ids in a base sequence")
            }
            out.append(ids)
        }
        guard !out.isEmpty else { throw TaskError(file: path, line: nil, "no sequences (one JSON array of ids per line)") }
        return out
    }
}
