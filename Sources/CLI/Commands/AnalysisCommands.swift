import Analysis
import Foundation
import HRZFormat
import Jobs
import Runtime
import Files

struct RankCommand: Command {
    static let spec = CommandSpec(
        name: "rank", summary: "rankings, aggregate, Spearman across tasks and shots, top-k% overlap of scores files",
        synopsis: ["SCORES.json [SCORES.json ...] [--aggregate] -o DIR"],
        positionals: [Positional("SCORES.json", variadic: true, "scores files (formats/scores.md) or [layers, heads] .npy tensors")],
        groups: [
            OptionGroup(
                "Options",
                [
                    Option("--aggregate", "also write the plain mean of the raw matrices (as the paper) and its ranking"),
                    Groups.output("DIR", "the output directory"),
                ])
        ],
        discussion: """
            Writes to DIR, as CSV (and JSON where noted), ready to plot:
              ranking-<task>-<k>-shot.csv    every (layer, head) in ascending score order: what pruning removes first
              aggregate.json, ranking-aggregate.csv   with --aggregate: the plain mean of the raw matrices (as the paper)
              spearman.csv                   Spearman rank correlation between every pair of inputs (ties: average ranks)
              spearman-tasks-<k>shot.csv     across tasks at each shots value, when there are several
              spearman-shots-<task>.csv      across shots for each task, when there are several
              overlap.csv                    share of the top 10/20/30/50% (highest scores) two inputs have in common
              summary.json                   the labels and the Spearman matrix
            """)

    var job: RankJob

    init(_ args: ParsedArguments) throws(UsageError) {
        let files = args.positionals
        guard !files.isEmpty else { throw UsageError("give at least one scores file") }
        job = RankJob(inputs: files, aggregate: args.flag("--aggregate"), output: try args.required("-o"))
    }

    var inputs: [String] { job.inputs }
    var outputs: [FileGuard.Output] { [.directory(job.output)] }

    func run() throws -> Int32 {
        let written = try job.run()
        print("wrote \(written.count) files to \(job.output)")
        return 0
    }
}

struct InductionCommand: Command {
    static let spec = CommandSpec(
        name: "induction", summary: "induction-head scores: prefix matching and the copying probe, on random or given sequences",
        synopsis: ["prefix-matching|copying MODEL.hrz [--count N --seed S | --sequences FILE.jsonl] [--precision fp32|bf16] -o scores.json"],
        positionals: [Positional("prefix-matching or copying", ""), Positional("MODEL.hrz", "")],
        groups: [
            OptionGroup(
                "Sequences",
                [
                    Option("--count", value: "N", default: "100", "random sequences (lengths 2s+25, s = 0..N-1)"),
                    Option("--seed", value: "S", default: "0", "their seed"),
                    Option("--sequences", value: "FILE", "one JSON array of ids per line, used as given"),
                ]),
            OptionGroup("Output", [Groups.output("scores.json", "the scores file (formats/scores.md)")]),
            OptionGroup("Compute", [Groups.threads, Groups.precision]),
        ],
        discussion: """
            Input per base sequence: BOS (id 2) and the sequence repeated 4 times. A head's prefix-matching score
            is its attention, from each token in copies 2-4, to the token right after every earlier occurrence of
            the same token, averaged over the 3n query positions and then over sequences. Positions are the
            correct ones at copy boundaries (the paper's code is off by one there).

            copying (the paper's probe), on BOS + each base sequence once: every layer sees only the token
            embeddings plus positions (through project_in), then its attention layer norm. For each head, each
            position's own value vector goes through out_proj (bias included), project_out and the LM head; over
            the tokens attendable so far, relu(p - mean p); the score is the share of that relu taken by the
            position the head attends to most, averaged over positions 1..T-1, then over sequences.

            Random sequences are unique tokens drawn from the middle 92% of BPE merge ranks (the model's embedded
            tokenizer), deterministic for S. Writes kind "prefix-matching" or "copying", scores [layers][heads].
            """)

    var spec: InductionSpec
    var threads: Int

    init(_ args: ParsedArguments) throws(UsageError) {
        let kind = try args.positional(required: 0)
        guard let k = InductionKind(rawValue: kind) else { throw UsageError("unknown score '\(kind)'; available: prefix-matching, copying") }
        let output = try args.required("-o")
        let source: InductionSource
        if let file = args.string("--sequences") {
            if args.given("--count") || args.given("--seed") { throw UsageError("give --sequences or --count/--seed, not both") }
            source = .file(file)
        } else {
            source = .random(count: try args.int("--count", in: 1...100_000)!, seed: try args.int("--seed", in: 0...Int(Int32.max))!)
        }
        spec = InductionSpec(model: try args.positional(required: 1), kind: k, source: source, output: output)
        spec.precision = try args.precision()
        threads = try args.threads()
    }

    var inputs: [String] {
        if case .file(let f) = spec.source { return [spec.model, f] }
        return [spec.model]
    }
    var outputs: [FileGuard.Output] { [.file(spec.output)] }

    func run() throws -> Int32 {
        Threads.set(threads)
        let bar = ProgressBar("induction")
        var job = try InductionJob(spec)
        try job.runWhole(
            context: JobContext(
                log: {
                    bar.finish(); printError($0)
                },
                progress: { what, done, total in
                    bar.update(phase: what, done: done, total: total, unit: .count)
                }))
        bar.finish()
        let file = try ScoresFile.load(spec.output)
        print("wrote \(spec.output): \(spec.kind.rawValue) scores of \(file.examples) sequences, [\(file.scores.count)][\(file.scores.first?.count ?? 0)]")
        return 0
    }
}
