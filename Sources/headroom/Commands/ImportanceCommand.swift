import Analysis
import Evaluation
import Foundation
import HRZFormat
import Runtime
import Tokenizer
import Files

struct ImportanceCommand: Command {
    static let name = "importance"
    static let summary = "gradient head importance (the paper's definition) per task and shots, or on explicit requests"
    static let usage = """
    Usage: headroom importance heads MODEL.hrz --task T --shots K --data DIR [--limit N] [--target-space] -o scores.json
           headroom importance heads MODEL.hrz --requests FILE.jsonl -o scores.json
           headroom importance ffns MODEL.hrz --task T --shots K --data DIR [--limit N] [--single-heads] [--no-cache] -o scores.json
           common: [--memory-budget B] [--threads N] [--precision fp32|bf16]
           heads on several machines: add --shard i/N (writes scores.json.shard-<i>ofN.json), then --merge-shards N

    ffns (oracle): Score[l] = baseline metric − the metric with layer l's FFN removed, on the task's eval
    split with the evaluator's prompts (acc; ReCoRD: em). The baseline pass records every layer's input;
    each ablation then recomputes only layers ≥ l (exact: the layers below compute what the baseline did).
    --no-cache runs every ablation from scratch instead (for comparison). --single-heads does the same for every
    single head (Score[l][h] = baseline − metric with head h of layer l masked; kind "heads", method
    "oracle"): one evaluation of layers ≥ l per head, so meant for small models.

    Saved layer inputs (the oracle's cache, the backward pass's checkpoints) beyond --memory-budget bytes
    spill to a temporary file in $TMPDIR, deleted when the command ends however it ends.

    For each example the loss is the mean NLL of the gold continuation given its few-shot context; with
    A[l,h](t) head h's output before out_proj, I[l,h] = Σ_examples Σ_t |<A[l,h](t), dL/dA[l,h](t)>|,
    layers 0..L-2 divided by Σ(tokens − 1) and the last layer by Σ continuation tokens, as the paper's code.
    The backward pass streams the layers in reverse, recomputing each from its saved input.

    With --task: the first N (default 2500) docs of the train split (LAMBADA: its eval split), each with K
    few-shot examples drawn by random.Random(1234). For arc, hellaswag, openbookqa, piqa and mathqa the gold
    continuation is the choice text WITHOUT its leading space (the paper's code); --target-space adds it.
    With --requests: one {"context": [ids], "continuation": [ids]} per line, used as given.

    Writes a scores file (formats/scores.md) with kind "heads", scores [layers][heads] by original index.

    --shard i/N computes the fp64 sums of examples i, i+N, … (each exactly as alone) into
    OUT.shard-<i>ofN.json; --merge-shards N adds the N shards in order, divides as above and writes OUT,
    within 1e-9 relative of an unsharded run (only the order of the fp64 additions differs). The merge
    checks that every shard used the same model and the same tokenized examples.
    """

    var model: String
    var output: String
    var task: EvalTask?
    var shots = 0
    var data: String?
    var limit = 2500
    var targetSpace = false
    var requestsFile: String?
    var kind: String
    var cached = true
    var oracleHeads = false
    var memoryBudget: Int?
    var threads = ProcessInfo.processInfo.activeProcessorCount
    var precision = Precision.fp32
    var shard: Shard?
    var mergeShards: Int?

    init(_ args: inout Arguments) throws(UsageError) {
        kind = try args.positional("heads or ffns")
        guard kind == "heads" || kind == "ffns" else { throw UsageError("unknown importance '\(kind)'; available: heads, ffns") }
        cached = !args.flag("--no-cache")
        if args.flag("--heads") {
            throw UsageError("--heads names a scores file in prune and sweep; the oracle over single heads is importance ffns --single-heads")
        }
        oracleHeads = args.flag("--single-heads")
        if oracleHeads && kind != "ffns" { throw UsageError("--single-heads belongs to the oracle: headroom importance ffns --single-heads …") }
        memoryBudget = try parseBytes(try args.option("--memory-budget"), "--memory-budget")
        threads = try args.option("--threads", default: ProcessInfo.processInfo.activeProcessorCount, in: 1...1024)
        precision = try args.precision()
        guard let o = try args.option("-o") else { throw UsageError("missing -o scores.json") }
        output = o
        requestsFile = try args.option("--requests")
        if let t = try args.tasks() {
            guard !t.contains(",") else { throw UsageError("importance takes one task at a time, got '\(t)'") }
            data = try args.option("--data")
            guard data != nil else { throw UsageError("--task needs --data DIR") }
            guard let task = EvalTask.named(t, dataDirectory: data) else { throw UsageError("unknown task '\(t)' (and no \(data!)/\(t)/validation.jsonl)") }
            self.task = task
            shots = try args.option("--shots", default: 0, in: 0...64)
            limit = try args.option("--limit", default: 2500, in: 1...10_000_000)
            targetSpace = args.flag("--target-space")
        }
        shard = try args.shard()
        mergeShards = try args.positive("--merge-shards")
        if (shard != nil || mergeShards != nil) && kind != "heads" { throw UsageError("--shard and --merge-shards go with importance heads") }
        if shard != nil && mergeShards != nil { throw UsageError("give --shard i/N or --merge-shards N, not both") }
        guard (task == nil) != (requestsFile == nil) else { throw UsageError("give exactly one of --task and --requests") }
        if kind == "ffns" && task == nil { throw UsageError("importance ffns needs --task, --shots and --data") }
        model = try args.positional("MODEL.hrz")
    }

    var inputs: [String] { [model] + [requestsFile, data].compactMap { $0 } }
    var outputs: [FileGuard.Output] { [.file(shard.map { shardPath($0) } ?? output)] }

    func shardPath(_ s: Shard) -> String { "\(output).shard-\(s.index)of\(s.count).json" }

    func run() throws -> Int32 {
        Threads.set(threads)
        if kind == "ffns" { return try runFFNs() }
        let opt = try OPTModel(path: model, precision: precision)
        var requests: [ImportanceRequest], truncated: Int
        if let requestsFile {
            (requests, truncated) = try ImportanceData.fit(try ImportanceData.tokenRequests(requestsFile, vocabSize: opt.config.vocabSize),
                                                           positions: opt.config.maxPositionEmbeddings)
        } else {
            let scorer = Scorer(model: opt, tokenizer: try Tokenizer.load(model))
            (requests, truncated) = try ImportanceData.tokenized(task: task!, shots: shots, dataDirectory: data!, limit: limit, targetSpace: targetSpace,
                                                    scorer: scorer)
        }
        // The examples themselves (token ids) stand for task, shots, data, limit and draws.
        var inputs = InputRecord.base(modelID: opt.contentID, precision: precision.rawValue)
        inputs["examples"] = InputRecord.digest(requests.map { [$0.context, $0.continuation] })
        let bar = ProgressBar("importance")
        let tick = { (done: Int, total: Int) in bar.update(phase: "heads", done: done, total: total, unit: .count) }
        if let shard {
            let sums = try opt.headImportanceSums(requests, select: { $0 % shard.count == shard.index }, memoryBudget: memoryBudget, progress: tick)
            bar.finish()
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            try AtomicFile.write([UInt8](try encoder.encode(HeadImportanceShard(shard: shard, inputs: inputs, sums: sums, truncated: truncated))),
                                 to: shardPath(shard))
            print("wrote \(shardPath(shard)): sums of \(sums.examples) of \(requests.count) examples; merge with --merge-shards \(shard.count)")
            return 0
        }
        let scores: [[Double]]
        if let count = mergeShards {
            let parts = try HeadImportanceShard.read(count: count, path: { shardPath(Shard(index: $0, count: count)) }, inputs: inputs,
                                                     command: "importance heads").map(\.sums)
            let merged = ImportanceSums.merged(parts)!
            guard merged.examples == requests.count else {
                throw TaskError(file: shardPath(Shard(index: 0, count: count)), line: nil, "the shards hold \(merged.examples) examples, expected \(requests.count)")
            }
            scores = merged.normalized()
        } else {
            scores = try opt.headImportance(requests, memoryBudget: memoryBudget, progress: tick)
        }
        bar.finish()
        try ScoresFile(kind: "heads", method: "gradient", task: task?.rawValue, shots: task == nil ? nil : shots, model_sha256: opt.contentID,
                       examples: requests.count, scores: scores,
                       notes: task == nil ? nil : (targetSpace ? "gold continuation with its leading space" : nil),
                       truncated: truncated > 0 ? truncated : nil, precision: precision.rawValue).write(to: output)
        print("wrote \(output): head importance of \(requests.count) examples, [\(scores.count)][\(scores.first?.count ?? 0)]"
              + (truncated > 0 ? "; \(truncated) contexts left-truncated to fit \(opt.config.maxPositionEmbeddings) positions" : ""))
        return 0
    }

    func runFFNs() throws -> Int32 {
        var options = EvalOptions(tasks: [task!], shots: [shots], dataDirectory: data!, outputDirectory: NSTemporaryDirectory())
        options.limit = limit
        options.memoryBudget = memoryBudget
        options.precision = precision
        let evaluator = try Evaluator(modelPath: model, options: options)
        let bar = ProgressBar("importance")
        let tick = { (done: Int, total: Int) in bar.update(phase: oracleHeads ? "heads" : "ffns", done: done, total: total, unit: .count) }
        let result = oracleHeads ? try OracleImportance.heads(evaluator: evaluator, task: task!, shots: shots, cached: cached, progress: tick)
                                 : try OracleImportance.ffns(evaluator: evaluator, task: task!, shots: shots, cached: cached, progress: tick)
        bar.finish()
        let H = evaluator.headCount
        let scores = oracleHeads ? stride(from: 0, to: result.scores.count, by: H).map { Array(result.scores[$0..<($0 + H)]) } : result.scores.map { [$0] }
        let what = oracleHeads ? "head h of layer l" : "layer l's FFN"
        try ScoresFile(kind: oracleHeads ? "heads" : "ffns", method: cached ? "oracle (cached layer inputs)" : "oracle (from scratch)",
                       task: task!.rawValue, shots: shots, model_sha256: evaluator.modelID, examples: result.docs, scores: scores,
                       notes: String(format: "baseline %.6f; scores = baseline − metric without %@; %.2f s", result.baseline, what, result.seconds),
                       precision: precision.rawValue)
            .write(to: output)
        print(String(format: "wrote %@: oracle %@ importance over %d docs (baseline %.4f) in %.2f s", output, oracleHeads ? "head" : "FFN",
                     result.docs, result.baseline, result.seconds))
        return 0
    }
}
