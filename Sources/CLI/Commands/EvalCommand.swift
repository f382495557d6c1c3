import Evaluation
import Foundation
import HRZFormat
import Jobs
import Runtime
import Files

struct EvalCommand: Command {
    static let spec = CommandSpec(
        name: "eval", summary: "evaluate on the paper's 16 tasks at 0/1/5 shots, prompts byte-identical to the pinned harness",
        synopsis: [
            "MODEL.hrz --tasks copa,piqa|all --shots 0,1,5 --data DIR -o OUTDIR",
            "MODEL.hrz … [--limit N] [--mask-heads FILE] [--mask-ffns FILE] [--memory-budget B] [--threads N] [--precision fp32|bf16]",
            "--tasks list --data DIR      (the tasks, their splits, and which are under DIR)",
            "MODEL.hrz … -o OUTDIR --shard i/N      then      headroom eval MODEL.hrz … -o OUTDIR --merge-shards N",
        ],
        positionals: [Positional("MODEL.hrz", "")],
        groups: [
            OptionGroup("Tasks and data", [Groups.tasks, Groups.shots(), Groups.data, Groups.limit]),
            OptionGroup("Output", [Groups.output("OUTDIR", "the results directory")]),
            OptionGroup(
                "Masks",
                [
                    Option("--mask-heads", value: "FILE", "heads to mask, {\"heads\": [[layer, head], …]} (formats/masks.md)"),
                    Option("--mask-ffns", value: "FILE", "FFNs to mask, {\"ffns\": [layer, …]}"),
                ]),
            OptionGroup("Compute", Groups.compute.options + [Groups.batchTokens]),
            Groups.parts("docs by scoring batch: batches i, i+N, … of each cell"),
        ],
        discussion: """
            Emulates lm-evaluation-harness 11fa0bf with amazon-science/llm-interpret's tasks: the eval split is
            shuffled with random.Random(42), each doc's few-shot examples are drawn with rnd.sample from the same
            generator, no BOS is added, and log-softmax runs over the first 50265 logits. Requests sharing a context
            are scored with the context computed once.

            DIR holds HF `datasets` rows as DIR/<task>/<split>.jsonl. Any other name is a generic task when
            DIR/<name>/validation.jsonl exists: rows of {"context", "choices", "gold"}, few-shot examples from
            DIR/<name>/train.jsonl (formats/tasks.md). Tasks: \(EvalTask.allCases.map { $0.rawValue }.joined(separator: ", ")).

            Writes OUTDIR/results.json (metrics per task × shots cell, doc count, model sha256, mask, inputs),
            OUTDIR/requests/<task>-<k>shot.jsonl (doc, position, context, continuation, loglikelihood, is_greedy),
            OUTDIR/samples/<task>-<k>shot.jsonl (per doc: requests, gold, prediction, correct; as lm-eval's
            --log_samples), OUTDIR/lm-eval/results-<k>shot.json (lm-eval's results layout with _stderr, one
            file per shots value because lm-eval's config.num_fewshot is one number) and OUTDIR/cells/ (each cell's
            result and record; results.json and the lm-eval files are assembled from them after every cell).
            Finished cells are kept; a killed run resumes inside its cell, at the first unfinished scoring batch.
            A cell whose split is missing from DIR is skipped with a message naming the file, the others still
            run, and the exit status is 1. Parts take whole scoring batches, so a part's log-likelihoods are
            bit-identical to an unsharded run's with the same --batch-tokens.
            """)

    var model: String
    var options: EvalOptions
    var maskHeads: String?
    var maskFFNs: String?
    var threads: Int
    /// `--tasks list`: print the tasks and their splits under --data instead of evaluating.
    var listOnly = false
    var part: Part?
    var mergeShards: Int?

    init(_ args: ParsedArguments) throws(UsageError) {
        let data = try args.required("--data")
        let taskText = args.string("--tasks")
        listOnly = taskText == "list"
        let list = listOnly ? [] : try parseTasks(taskText, data: data)
        let shots = try parseShots(args.string("--shots")!)
        guard let out = args.string("-o") ?? (listOnly ? "" : nil) else { throw UsageError("missing -o OUTDIR") }
        options = EvalOptions(tasks: list, shots: shots, dataDirectory: data, outputDirectory: out)
        options.limit = try args.int("--limit", in: 1...100_000_000)
        options.precision = try args.precision()
        part = try args.part()
        mergeShards = try args.mergeShards()
        options.batchTokens = try args.int("--batch-tokens", in: 1...10_000_000)
        maskHeads = args.string("--mask-heads")
        maskFFNs = args.string("--mask-ffns")
        options.memoryBudget = try args.memoryBudget()
        threads = try args.threads()
        model = listOnly ? ((try? args.positional(0)) ?? nil) ?? "" : try args.positional(required: 0)
    }

    var inputs: [String] { listOnly ? [options.dataDirectory] : [model, options.dataDirectory] + [maskHeads, maskFFNs].compactMap { $0 } }
    var outputs: [FileGuard.Output] { listOnly ? [] : [.directory(options.outputDirectory)] }

    func run() throws -> Int32 {
        if listOnly {
            print(taskListing(data: options.dataDirectory))
            return 0
        }
        Threads.set(threads)
        var options = self.options
        let config = try HRZReader(path: model).config
        if let maskHeads { options.mask.heads = try MaskFile.heads(maskHeads, config: config) }
        if let maskFFNs { options.mask.ffns = try MaskFile.ffns(maskFFNs, config: config) }
        if maskHeads != nil || maskFFNs != nil {
            options.maskDescription = [maskHeads.map { "heads: \($0)" }, maskFFNs.map { "ffns: \($0)" }].compactMap { $0 }.joined(separator: "; ")
        }
        let bar = ProgressBar("eval")
        let job = try EvalJob(model: model, options: options)
        let counter = CellCounter(total: options.tasks.count * options.shots.count)
        let context = JobContext(
            log: {
                bar.finish(); printError($0)
            },
            progress: { cell, done, total in
                bar.update(phase: counter.label(cell), done: done, total: total, unit: .count)
            })
        if let part {
            try job.run(part: part, context: context)
            bar.finish()
            print("wrote \(options.outputDirectory)/shards/*-\(part.index)of\(part.count).json; merge with --merge-shards \(part.count)")
        } else {
            let results = try mergeShards.map { try job.merge(parts: $0, context: context) } ?? job.run(context: context)
            bar.finish()
            print(CompareCommand.table([(options.outputDirectory + "/results.json", results)]))
            print("wrote \(options.outputDirectory)/results.json")
        }
        for (cell, error) in job.skips.entries { printError("skipped \(cell)-shot: \(error)") }
        return job.skips.isEmpty ? 0 : 1
    }
}

/// `--tasks list`: every task, the splits it reads, and which of them DIR holds (with row counts); then the
/// generic tasks found in DIR.
func taskListing(data: String) -> String {
    func rows(_ path: String) -> String {
        guard let text = try? FileGuard.contents(atPath: path) else { return "missing" }
        return "\(text.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }) rows"
    }
    var lines = ["splits under \(data):", "task              eval split                        few-shot split"]
    for task in EvalTask.allCases {
        let eval = "\(task.evalSplit): " + rows("\(data)/\(task.rawValue)/\(task.evalSplit).jsonl")
        let shots = task.fewshotSplit.map { "\($0): " + rows("\(data)/\(task.rawValue)/\($0).jsonl") } ?? "(draws from its eval split)"
        lines.append(task.rawValue.padding(toLength: 18, withPad: " ", startingAt: 0) + eval.padding(toLength: 34, withPad: " ", startingAt: 0) + shots)
    }
    let known = Set(EvalTask.allCases.map(\.rawValue))
    let generic = ((try? FileManager.default.contentsOfDirectory(atPath: data)) ?? []).sorted()
        .filter { !known.contains($0) && FileManager.default.fileExists(atPath: "\(data)/\($0)/validation.jsonl") }
    for name in generic {
        lines.append(
            name.padding(toLength: 18, withPad: " ", startingAt: 0)
                + ("validation: " + rows("\(data)/\(name)/validation.jsonl")).padding(toLength: 34, withPad: " ", startingAt: 0)
                + "train: " + rows("\(data)/\(name)/train.jsonl") + "  (generic)")
    }
    return lines.joined(separator: "\n")
}
