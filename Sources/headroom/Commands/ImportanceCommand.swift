import Analysis
import Evaluation
import Foundation
import Runtime
import Tokenizer

struct ImportanceCommand: Command {
    static let name = "importance"
    static let summary = "gradient head importance (the paper's definition) per task and shots, or on explicit requests"
    static let usage = """
    Usage: headroom importance heads MODEL.hrz --task T --shots K --data DIR [--limit N] [--target-space] -o scores.json
           headroom importance heads MODEL.hrz --requests FILE.jsonl -o scores.json
           headroom importance ffns MODEL.hrz --task T --shots K --data DIR [--limit N] [--no-cache] -o scores.json

    ffns (oracle): Score[l] = baseline metric − the metric with layer l's FFN removed, on the task's eval
    split with the evaluator's prompts (acc; ReCoRD: em). The baseline pass records every layer's input;
    each ablation then recomputes only layers ≥ l (exact: the layers below compute what the baseline did).
    --no-cache runs every ablation from scratch instead (for comparison). Layer inputs are kept in memory.

    For each example the loss is the mean NLL of the gold continuation given its few-shot context; with
    A[l,h](t) head h's output before out_proj, I[l,h] = Σ_examples Σ_t |<A[l,h](t), dL/dA[l,h](t)>|,
    layers 0..L-2 divided by Σ(tokens − 1) and the last layer by Σ continuation tokens, as the paper's code.
    The backward pass streams the layers in reverse, recomputing each from its saved input.

    With --task: the first N (default 2500) docs of the train split (LAMBADA: its eval split), each with K
    few-shot examples drawn by random.Random(1234). For arc, hellaswag, openbookqa, piqa and mathqa the gold
    continuation is the choice text WITHOUT its leading space (the paper's code); --target-space adds it.
    With --requests: one {"context": [ids], "continuation": [ids]} per line, used as given.

    Writes a scores file (formats/scores.md) with kind "heads", scores [layers][heads] by original index.
    """

    var model: String
    var output: String
    var task: Task?
    var shots = 0
    var data: String?
    var limit = 2500
    var targetSpace = false
    var requestsFile: String?
    var kind: String
    var cached = true

    init(_ args: inout Arguments) throws(UsageError) {
        kind = try args.positional("heads or ffns")
        guard kind == "heads" || kind == "ffns" else { throw UsageError("unknown importance '\(kind)'; available: heads, ffns") }
        cached = !args.flag("--no-cache")
        guard let o = try args.option("-o") else { throw UsageError("missing -o scores.json") }
        output = o
        requestsFile = try args.option("--requests")
        if let t = try args.option("--task") {
            guard let task = Task(rawValue: t) else { throw UsageError("unknown task '\(t)'") }
            self.task = task
            shots = try args.option("--shots", default: 0, in: 0...64)
            data = try args.option("--data")
            guard data != nil else { throw UsageError("--task needs --data DIR") }
            limit = try args.option("--limit", default: 2500, in: 1...10_000_000)
            targetSpace = args.flag("--target-space")
        }
        guard (task == nil) != (requestsFile == nil) else { throw UsageError("give exactly one of --task and --requests") }
        if kind == "ffns" && task == nil { throw UsageError("importance ffns needs --task, --shots and --data") }
        model = try args.positional("MODEL.hrz")
    }

    func run() throws -> Int32 {
        Runtime.setThreads(ProcessInfo.processInfo.activeProcessorCount)
        if kind == "ffns" { return try runFFNs() }
        let opt = try OPTModel(path: model)
        var requests: [ImportanceRequest]
        if let requestsFile {
            requests = try ImportanceData.tokenRequests(requestsFile)
        } else {
            let scorer = Scorer(model: opt, tokenizer: try Tokenizer.load(model))
            requests = try ImportanceData.requests(task: task!, shots: shots, dataDirectory: data!, limit: limit, targetSpace: targetSpace)
                .map { r in let t = try scorer.tokens(r); return ImportanceRequest(context: t.context, continuation: t.continuation) }
        }
        let bar = ProgressBar("importance")
        let scores = try opt.headImportance(requests) { done, total in bar.update(phase: "heads", done: done, total: total, unit: .count) }
        bar.finish()
        try ScoresFile(kind: "heads", method: "gradient", task: task?.rawValue, shots: task == nil ? nil : shots, model_sha256: opt.contentID,
                       examples: requests.count, scores: scores,
                       notes: task == nil ? nil : (targetSpace ? "gold continuation with its leading space" : nil)).write(to: output)
        print("wrote \(output): head importance of \(requests.count) examples, [\(scores.count)][\(scores.first?.count ?? 0)]")
        return 0
    }

    func runFFNs() throws -> Int32 {
        var options = EvalOptions(tasks: [task!], shots: [shots], dataDirectory: data!, outputDirectory: NSTemporaryDirectory())
        options.limit = limit
        let evaluator = try Evaluator(modelPath: model, options: options)
        let bar = ProgressBar("importance")
        let result = try OracleImportance.ffns(evaluator: evaluator, task: task!, shots: shots, cached: cached) { done, total in
            bar.update(phase: "ffns", done: done, total: total, unit: .count)
        }
        bar.finish()
        try ScoresFile(kind: "ffns", method: cached ? "oracle (cached layer inputs)" : "oracle (from scratch)", task: task!.rawValue, shots: shots,
                       model_sha256: evaluator.modelID, examples: result.docs, scores: result.scores.map { [$0] },
                       notes: String(format: "baseline %.6f; scores[l][0] = baseline − metric without layer l's FFN; %.2f s", result.baseline, result.seconds))
            .write(to: output)
        print(String(format: "wrote %@: oracle FFN importance over %d docs (baseline %.4f) in %.2f s", output, result.docs, result.baseline, result.seconds))
        return 0
    }
}
