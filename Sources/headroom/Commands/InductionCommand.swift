import Analysis
import Foundation
import Runtime
import Tokenizer

struct InductionCommand: Command {
    static let name = "induction"
    static let summary = "induction-head scores (prefix matching) on random or given repeated sequences"
    static let usage = """
    Usage: headroom induction prefix-matching MODEL.hrz [--count N --seed S | --sequences FILE.jsonl] -o scores.json

    Input per base sequence: BOS (id 2) and the sequence repeated 4 times. A head's prefix-matching score
    is its attention, from each token in copies 2-4, to the token right after every earlier occurrence of
    the same token, averaged over the 3n query positions and then over sequences. Positions are the
    correct ones at copy boundaries (the paper's code is off by one there).

    Random sequences (default): N (default 100) sequences of lengths 2s+25, s = 0..N-1, of unique tokens
    drawn from the middle 92% of BPE merge ranks (the model's embedded tokenizer), deterministic for S
    (default 0). --sequences: one JSON array of ids per line, used as given.
    Writes a scores file (formats/scores.md) with kind "prefix-matching", scores [layers][heads].
    (The copying probe is not implemented in this version.)
    """

    var model: String
    var output: String
    var count: Int
    var seed: Int
    var sequencesFile: String?

    init(_ args: inout Arguments) throws(UsageError) {
        let kind = try args.positional("prefix-matching")
        guard kind == "prefix-matching" else {
            throw UsageError(kind == "copying" ? "the copying probe is not implemented in this version; prefix-matching is"
                                               : "unknown score '\(kind)'; available: prefix-matching")
        }
        guard let o = try args.option("-o") else { throw UsageError("missing -o scores.json") }
        output = o
        count = try args.option("--count", default: 100, in: 1...100_000)
        seed = try args.option("--seed", default: 0, in: 0...Int.max)
        sequencesFile = try args.option("--sequences")
        model = try args.positional("MODEL.hrz")
    }

    func run() throws -> Int32 {
        Runtime.setThreads(ProcessInfo.processInfo.activeProcessorCount)
        let opt = try OPTModel(path: model)
        let sequences = try sequencesFile.map(InductionSequences.read)
            ?? InductionSequences.random(count: count, seed: UInt64(seed), tokenizer: try Tokenizer.load(model))
        let bar = ProgressBar("induction")
        let scores = try opt.prefixMatching(sequences) { done, total in bar.update(phase: "prefix-matching", done: done, total: total, unit: .count) }
        bar.finish()
        try ScoresFile(kind: "prefix-matching", method: "attention to the token after earlier occurrences, copies 2-4", task: nil, shots: nil,
                       model_sha256: opt.contentID, examples: sequences.count, scores: scores,
                       notes: sequencesFile == nil ? "random sequences, seed \(seed)" : "sequences from \(sequencesFile!)").write(to: output)
        print("wrote \(output): prefix-matching scores of \(sequences.count) sequences, [\(scores.count)][\(scores.first?.count ?? 0)]")
        return 0
    }
}
