import Analysis
import Evaluation
import Foundation
import HRZFormat
import Jobs
import Runtime
import Files

struct ImportanceCommand: Command {
    static let spec = CommandSpec(
        name: "importance", summary: "gradient head importance (the paper's definition) per task and shots, or on explicit requests",
        synopsis: [
            "heads MODEL.hrz --task T --shots K --data DIR [--limit N] [--target-space] -o scores.json",
            "heads MODEL.hrz --requests FILE.jsonl -o scores.json",
            "ffns MODEL.hrz --task T --shots K --data DIR [--limit N] [--single-heads] [--no-cache] -o scores.json",
            "heads|ffns … [--memory-budget B] [--threads N] [--precision fp32|bf16] [--shard i/N | --merge-shards N]",
        ],
        positionals: [Positional("heads or ffns", "heads: gradient importance; ffns: the oracle"), Positional("MODEL.hrz", "")],
        groups: [
            OptionGroup(
                "Examples",
                [
                    Option("--task", aliases: ["--tasks"], value: "T", "one task"), Groups.shots(), Groups.data,
                    Option(
                        "--limit", value: "N", defaultText: "2500 (heads), all docs (ffns)",
                        "heads: the first N train docs (the paper: 2500); ffns: the first N eval docs"),
                    Option(
                        "--target-space",
                        "heads: keep the gold continuation's leading space (the paper's code drops it for arc, hellaswag, openbookqa, piqa, mathqa)"),
                    Option("--requests", value: "FILE", "heads: {\"context\": [ids], \"continuation\": [ids]} per line, used as given"),
                ]),
            OptionGroup(
                "Oracle",
                [
                    Option("--single-heads", "ffns: the oracle over every single head instead (meant for small models)"),
                    Option("--no-cache", "ffns: run every ablation from scratch instead of replaying the recorded layer inputs"),
                    Option("--heads", "(refused: --heads names a scores file in prune and sweep)"),
                ]),
            OptionGroup("Output", [Groups.output("scores.json", "the scores file (formats/scores.md)")]),
            Groups.compute, Groups.parts("heads: chunks of 25 examples; ffns: scoring batches"),
        ],
        discussion: """
            heads: for each example the loss is the mean NLL of the gold continuation given its few-shot context;
            with A[l,h](t) head h's output before out_proj, I[l,h] = Σ_examples Σ_t |<A[l,h](t), dL/dA[l,h](t)>|,
            layers 0..L-2 divided by Σ(tokens − 1) and the last layer by Σ continuation tokens, as the paper's code.
            The backward pass streams the layers in reverse, recomputing each from its saved input. The examples
            are the first N docs of the train split (LAMBADA: its eval split), each with K few-shot examples drawn
            by random.Random(1234).

            ffns (oracle): Score[l] = baseline metric − the metric with layer l's FFN removed, on the task's eval
            split with the evaluator's prompts (acc; ReCoRD: em). Each scoring batch runs its baseline once,
            recording every layer's input, and each ablation recomputes only the layers above its FFN from that
            record (exact). --single-heads does the same for every single head (Score[l][h], kind "heads",
            method "oracle").

            Saved layer inputs (the oracle's record, the backward pass's checkpoints) beyond --memory-budget bytes
            spill to a temporary file in $TMPDIR, deleted when the command ends however it ends.

            Writes a scores file (formats/scores.md) with kind "heads" (or "ffns"), scores [layers][heads] by
            original index. --shard i/N writes part i of N to DIR/shards/STEM-iofN.json beside the output (a killed
            part resumes); --merge-shards N checks and joins the N parts into the output: gradient sums are added
            in chunk order, so any split gives the bits an unsharded run gives.
            """)

    var kind: String
    var model: String
    var output: String
    var task: EvalTask?
    var shots = 0
    var data: String?
    var limit: Int?
    var targetSpace = false
    var requestsFile: String?
    var cached = true
    var oracleHeads = false
    var memoryBudget: Int?
    var threads: Int
    var precision = Precision.fp32
    var part: Part?
    var mergeShards: Int?

    init(_ args: ParsedArguments) throws(UsageError) {
        kind = try args.positional(required: 0)
        guard kind == "heads" || kind == "ffns" else { throw UsageError("unknown importance '\(kind)'; available: heads, ffns") }
        if args.flag("--heads") {
            throw UsageError("--heads names a scores file in prune and sweep; the oracle over single heads is importance ffns --single-heads")
        }
        cached = !args.flag("--no-cache")
        oracleHeads = args.flag("--single-heads")
        if (oracleHeads || !cached) && kind != "ffns" { throw UsageError("--single-heads and --no-cache belong to the oracle: headroom importance ffns …") }
        memoryBudget = try args.memoryBudget()
        threads = try args.threads()
        precision = try args.precision()
        output = try args.required("-o")
        requestsFile = args.string("--requests")
        if let t = args.string("--task") {
            guard !t.contains(",") else { throw UsageError("importance takes one task at a time, got '\(t)'") }
            data = try args.required("--data", " (needed with --task)")
            guard let task = EvalTask.named(t, dataDirectory: data) else { throw UsageError("unknown task '\(t)' (and no \(data!)/\(t)/validation.jsonl)") }
            self.task = task
            let shotList = try parseShots(args.string("--shots")!)
            guard shotList.count == 1 else { throw UsageError("importance takes one --shots value at a time, got '\(args.string("--shots")!)'") }
            shots = shotList[0]
            limit = try args.int("--limit", in: 1...10_000_000)
            targetSpace = args.flag("--target-space")
        }
        part = try args.part()
        mergeShards = try args.mergeShards()
        guard (task == nil) != (requestsFile == nil) else { throw UsageError("give exactly one of --task and --requests") }
        if kind == "ffns" && task == nil { throw UsageError("importance ffns needs --task, --shots and --data") }
        model = try args.positional(required: 1)
    }

    var inputs: [String] { [model] + [requestsFile, data].compactMap { $0 } }
    var outputs: [FileGuard.Output] { [.file(output)] }

    func run() throws -> Int32 {
        Threads.set(threads)
        let bar = ProgressBar("importance")
        let context = JobContext(
            log: {
                bar.finish(); printError($0)
            }, progress: { what, done, total in bar.update(phase: what, done: done, total: total, unit: .count) })
        if kind == "ffns" {
            var spec = OracleSpec(model: model, kind: oracleHeads ? .heads : .ffns, task: task!, shots: shots, data: data!, output: output)
            spec.limit = limit
            spec.cached = cached
            spec.precision = precision
            spec.memoryBudget = memoryBudget
            var job = try OracleJob(spec)
            defer { for (cell, error) in job.skips.entries { printError("skipped \(cell)-shot: \(error)") } }
            return try drive(&job, bar: bar, context: context) {
                let file = try ScoresFile.load(output)
                return String(
                    format: "wrote %@: oracle %@ importance over %d docs (baseline %.4f)", output, oracleHeads ? "head" : "FFN",
                    file.examples, OracleJob.baseline(file) ?? .nan)
            }
        }
        let source: ImportanceSource =
            requestsFile.map { .requests($0) }
            ?? .task(task!, shots: shots, data: data!, limit: limit ?? 2500, targetSpace: targetSpace)
        var spec = HeadImportanceSpec(model: model, source: source, output: output)
        spec.precision = precision
        spec.memoryBudget = memoryBudget
        var job = try HeadImportanceJob(spec)
        defer { for (cell, error) in job.skips.entries { printError("skipped \(cell): \(error)") } }
        return try drive(&job, bar: bar, context: context) {
            let file = try ScoresFile.load(output)
            let positions = try HRZReader(path: model).config.maxPositionEmbeddings
            return "wrote \(output): head importance of \(file.examples) examples, [\(file.scores.count)][\(file.scores.first?.count ?? 0)]"
                + ((file.truncated ?? 0) > 0 ? "; \(file.truncated!) contexts left-truncated to fit \(positions) positions" : "")
        }
    }

    /// Runs the job whole, one part, or the merge of its parts; prints what it wrote.
    func drive<J: PartedCell>(_ job: inout J, bar: ProgressBar, context: JobContext, wrote: () throws -> String) throws -> Int32 {
        if let part {
            try job.runPart(part, context: context)
            bar.finish()
            print("wrote part \(part) of \(output); merge with --merge-shards \(part.count)")
        } else {
            if let count = mergeShards { try job.merge(count, context: context) } else { try job.runWhole(context: context) }
            bar.finish()
            guard FileManager.default.fileExists(atPath: output) else { return 1 }
            print(try wrote())
        }
        return 0
    }
}
