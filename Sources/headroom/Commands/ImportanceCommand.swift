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

    init(_ args: inout Arguments) throws(UsageError) {
        let kind = try args.positional("heads")
        guard kind == "heads" else { throw UsageError("only 'importance heads' is available in this version (FFN importance comes with the analysis issue)") }
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
        model = try args.positional("MODEL.hrz")
    }

    func run() throws -> Int32 {
        Runtime.setThreads(ProcessInfo.processInfo.activeProcessorCount)
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
}
