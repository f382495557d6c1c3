import Analysis
import Foundation
import HRZFormat
import Runtime
import Tokenizer
import Files

struct InductionCommand: Command {
    static let name = "induction"
    static let summary = "induction-head scores: prefix matching and the copying probe, on random or given sequences"
    static let usage = """
    Usage: headroom induction prefix-matching|copying MODEL.hrz [--count N --seed S | --sequences FILE.jsonl] [--precision fp32|bf16] -o scores.json

    Input per base sequence: BOS (id 2) and the sequence repeated 4 times. A head's prefix-matching score
    is its attention, from each token in copies 2-4, to the token right after every earlier occurrence of
    the same token, averaged over the 3n query positions and then over sequences. Positions are the
    correct ones at copy boundaries (the paper's code is off by one there).

    copying (the paper's probe), on BOS + each base sequence once: every layer sees only the token
    embeddings plus positions (through project_in), then its attention layer norm. For each head, each
    position's own value vector goes through out_proj (bias included), project_out and the LM head; over
    the tokens attendable so far, relu(p - mean p); the score is the share of that relu taken by the
    position the head attends to most, averaged over positions 1..T-1, then over sequences.

    Random sequences (default): N (default 100) sequences of lengths 2s+25, s = 0..N-1, of unique tokens
    drawn from the middle 92% of BPE merge ranks (the model's embedded tokenizer), deterministic for S
    (default 0). --sequences: one JSON array of ids per line, used as given.
    Writes a scores file (formats/scores.md) with kind "prefix-matching" or "copying", scores [layers][heads].
    """

    var kind: String
    var model: String
    var output: String
    var count: Int
    var seed: Int
    var sequencesFile: String?
    var precision = Precision.fp32

    init(_ args: inout Arguments) throws(UsageError) {
        kind = try args.positional("prefix-matching or copying")
        guard kind == "prefix-matching" || kind == "copying" else { throw UsageError("unknown score '\(kind)'; available: prefix-matching, copying") }
        guard let o = try args.option("-o") else { throw UsageError("missing -o scores.json") }
        output = o
        count = try args.option("--count", default: 100, in: 1...100_000)
        seed = try args.option("--seed", default: 0, in: 0...Int.max)
        precision = try args.precision()
        sequencesFile = try args.option("--sequences")
        model = try args.positional("MODEL.hrz")
    }

    var inputs: [String] { [model] + [sequencesFile].compactMap { $0 } }
    var outputs: [FileGuard.Output] { [.file(output)] }

    func run() throws -> Int32 {
        Threads.set(ProcessInfo.processInfo.activeProcessorCount)
        let opt = try OPTModel(path: model, precision: precision)
        let sequences = try sequencesFile.map { try InductionSequences.read($0, kind: kind, vocabSize: opt.config.vocabSize, positions: opt.config.maxPositionEmbeddings) }
            ?? InductionSequences.random(count: count, seed: UInt64(seed), tokenizer: try Tokenizer.load(model))
        let bar = ProgressBar("induction")
        let report = { (done: Int, total: Int) in bar.update(phase: self.kind, done: done, total: total, unit: .count) }
        let scores = kind == "copying" ? try opt.copyingScores(sequences, progress: report) : try opt.prefixMatching(sequences, progress: report)
        bar.finish()
        let method = kind == "copying" ? "share of relu(p - mean p) on the most-attended position (own value via out_proj and the LM head)"
                                       : "attention to the token after earlier occurrences, copies 2-4"
        try ScoresFile(kind: kind, method: method, task: nil, shots: nil,
                       model_sha256: opt.contentID, examples: sequences.count, scores: scores,
                       notes: sequencesFile == nil ? "random sequences, seed \(seed)" : "sequences from \(sequencesFile!)",
                       precision: precision.rawValue).write(to: output)
        print("wrote \(output): \(kind) scores of \(sequences.count) sequences, [\(scores.count)][\(scores.first?.count ?? 0)]")
        return 0
    }
}
