import Evaluation
import Foundation
import HRZFormat
import Runtime
import Files

struct EvalCommand: Command {
    static let name = "eval"
    static let summary = "evaluate on the paper's 16 tasks at 0/1/5 shots, prompts byte-identical to the pinned harness"
    static let usage = """
    Usage: headroom eval MODEL.hrz --tasks copa,piqa|all --shots 0,1,5 --data DIR -o OUTDIR
                         [--limit N] [--mask-heads FILE] [--mask-ffns FILE] [--memory-budget B] [--threads N]
                         [--precision fp32|bf16]
           headroom eval --tasks list --data DIR      (the tasks, their splits, and which are under DIR)
           headroom eval MODEL.hrz ... -o OUTDIR --shard i/N      then      headroom eval MODEL.hrz ... -o OUTDIR --merge-shards N

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
    --log_samples) and OUTDIR/lm-eval/results-<k>shot.json (lm-eval's results layout with _stderr, one
    file per shots value because lm-eval's config.num_fewshot is one number).
    Finished cells are kept: rerunning after a kill resumes at the first unfinished cell. A cell whose
    split is missing from DIR is skipped with a message naming the file, the others still run, and the
    exit status is 1.

    Options:
      --shard i/N         score only docs at positions i, i+N, … of each cell into OUTDIR/shards/ (one job of an array)
      --merge-shards N    merge the N shards of each cell into results.json, as an unsharded run writes it
      --batch-tokens N    tokens per scoring batch (default 16384); shards take whole batches, so a shard's
                          log-likelihoods are bit-identical to an unsharded run with the same N
      --limit N           the first N docs of the shuffled order, as the harness's limit
      --mask-heads FILE   heads to mask, {"heads": [[layer, head], …]} (formats/masks.md)
      --mask-ffns FILE    FFNs to mask, {"ffns": [layer, …]}
      --memory-budget B   activation bytes in flight (e.g. 2G)
      --threads N         threads (default: all cores)
      --precision P       fp32 (default, exact against HF) or bf16 (GEMM inputs rounded to bf16, fp32
                          accumulation; recorded in results.json and part of each cell's inputs)
    """

    var model: String
    var options: EvalOptions
    var maskHeads: String?
    var maskFFNs: String?
    var threads: Int

    /// `--tasks list`: print the tasks and their splits under --data instead of evaluating.
    var listOnly = false
    /// `--shard i/N`: score every N-th doc of each cell (positions i, i+N, …) into OUTDIR/shards/.
    var shard: Shard?
    /// `--merge-shards N`: merge the N shard files of every cell into results.json.
    var mergeShards: Int?

    init(_ args: inout Arguments) throws(UsageError) {
        guard let data = try args.option("--data") else { throw UsageError("missing --data DIR") }
        let taskText = try args.tasks()
        listOnly = taskText == "list"
        let list = listOnly ? [] : try parseTasks(taskText, data: data)
        let shots = try parseShots(try args.option("--shots") ?? "0")
        let o = try args.option("-o")
        guard let out = o ?? (listOnly ? "" : nil) else { throw UsageError("missing -o OUTDIR") }
        options = EvalOptions(tasks: list, shots: shots, dataDirectory: data, outputDirectory: out)
        options.limit = try args.positive("--limit")
        options.precision = try args.precision()
        shard = try args.shard()
        mergeShards = try args.positive("--merge-shards")
        options.batchTokens = try args.positive("--batch-tokens")
        if shard != nil && mergeShards != nil { throw UsageError("give --shard i/N or --merge-shards N, not both") }
        maskHeads = try args.option("--mask-heads")
        maskFFNs = try args.option("--mask-ffns")
        options.memoryBudget = try parseBytes(try args.option("--memory-budget"), "--memory-budget")
        threads = try args.option("--threads", default: ProcessInfo.processInfo.activeProcessorCount, in: 1...1024)
        model = listOnly ? ((try? args.positional("MODEL.hrz")) ?? "") : try args.positional("MODEL.hrz")
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
        let evaluator = try Evaluator(modelPath: model, options: options)
        let counter = CellCounter(total: options.tasks.count * options.shots.count)
        if let shard {
            try evaluator.runShard(shard, progress: { cell, done, total in
                bar.update(phase: counter.label(cell), done: done, total: total, unit: .tokens)
            }, log: { printError($0) })
            bar.finish()
            print("wrote \(options.outputDirectory)/shards/*-\(shard.index)of\(shard.count).json; merge with --merge-shards \(shard.count)")
            for (cell, error) in evaluator.skipped { printError("skipped \(cell)-shot: \(error)") }
            return evaluator.skipped.isEmpty ? 0 : 1
        }
        if let mergeShards {
            let results = try evaluator.mergeShards(mergeShards, log: { printError($0) })
            print(CompareCommand.table([(options.outputDirectory + "/results.json", results)]))
            print("wrote \(options.outputDirectory)/results.json")
            for (cell, error) in evaluator.skipped { printError("skipped \(cell)-shot: \(error)") }
            return evaluator.skipped.isEmpty ? 0 : 1
        }
        let results = try evaluator.run(progress: { cell, done, total in
            bar.update(phase: counter.label(cell), done: done, total: total, unit: .tokens)
        }, log: { printError($0) })
        bar.finish()
        print(CompareCommand.table([(options.outputDirectory + "/results.json", results)]))
        print("wrote \(options.outputDirectory)/results.json")
        for (cell, error) in evaluator.skipped { printError("skipped \(cell)-shot: \(error)") }
        return evaluator.skipped.isEmpty ? 0 : 1
    }
}
