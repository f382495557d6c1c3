/// The evaluation engine: the harness's protocol for each task × shots cell (docs in the harness's order,
/// few-shot draws, requests), scored with shared contexts, and the files a scored cell is written to. The
/// job that runs cells, resumes and merges parts is `EvalJob` (Jobs).
import Foundation
import HRZFormat
import Runtime
import Tokenizer
import Files

public struct CellResult: Codable, Sendable, Equatable {
    public var task: String
    public var shots: Int
    public var metrics: [String: Double]
    public var docs: Int
    public var requests: Int
    public var seconds: Double
    /// What the cell was computed from (model, data files, limit, mask contents, precision, tool version);
    /// a rerun recomputes the cell when this differs. nil in files written before it was recorded.
    public var inputs: InputRecord?
    /// `<metric>` → standard error as the harness computes it (`EvalTask.standardErrors`).
    public var stderr: [String: Double]?

    public init(
        task: String, shots: Int, metrics: [String: Double], docs: Int, requests: Int, seconds: Double, inputs: InputRecord?,
        stderr: [String: Double]?
    ) {
        (self.task, self.shots, self.metrics, self.docs, self.requests, self.seconds, self.inputs, self.stderr) = (
            task, shots, metrics, docs, requests, seconds, inputs, stderr
        )
    }
}

public struct ResultsFile: Codable, Sendable {
    public var harness: String
    public var model: String
    public var model_sha256: String
    public var mask: String?
    /// "fp32" or "bf16" (absent in files written before bf16 existed: fp32).
    public var precision: String?
    /// Keyed "task/shots", e.g. "copa/5".
    public var cells: [String: CellResult]

    public init(harness: String, model: String, model_sha256: String, mask: String?, precision: String?, cells: [String: CellResult]) {
        (self.harness, self.model, self.model_sha256, self.mask, self.precision, self.cells) = (harness, model, model_sha256, mask, precision, cells)
    }
}

extension ResultsFile {
    /// A results.json; nil when it does not exist. A file that does not decode is an error naming it.
    public static func read(_ path: String) throws -> ResultsFile? {
        guard let data = try FileGuard.contents(atPath: path) else { return nil }
        do { return try JSONDecoder().decode(ResultsFile.self, from: data) } catch {
            throw TaskError(file: path, line: nil, "not a headroom results.json: \(error)")
        }
    }

    /// A results.json that must exist.
    public static func load(_ path: String) throws -> ResultsFile {
        guard let results = try read(path) else { throw TaskError(file: path, line: nil, "cannot read (missing?)") }
        return results
    }
}

public struct EvalOptions: Sendable {
    public var tasks: [EvalTask]
    public var shots: [Int]
    public var dataDirectory: String
    public var outputDirectory: String
    public var limit: Int?
    public var mask = ModelMask()
    /// A description of the mask for results.json (the files given), nil when unmasked.
    public var maskDescription: String?
    public var memoryBudget: Int?
    /// Tokens per scoring batch (one forward); nil: the scorer's default. Shards of one cell must agree on it.
    public var batchTokens: Int?
    /// The arithmetic of the model's GEMMs; part of every cell's inputs.
    public var precision = Precision.fp32

    public init(tasks: [EvalTask], shots: [Int], dataDirectory: String, outputDirectory: String) {
        self.tasks = tasks
        self.shots = shots
        self.dataDirectory = dataDirectory
        self.outputDirectory = outputDirectory
    }
}

public final class Evaluator {
    public static let harness = "lm-evaluation-harness 11fa0bf with amazon-science/llm-interpret tasks (emulated by Headroom)"
    /// The model and tokenizer it scores with (the study's cost estimate tokenizes with them too).
    public let scorer: Scorer
    let options: EvalOptions
    let modelPath: String

    public init(modelPath: String, options: EvalOptions) throws {
        let model = try OPTModel(path: modelPath, precision: options.precision)
        scorer = Scorer(model: model, tokenizer: try Tokenizer.load(modelPath))
        scorer.options = ForwardOptions(memoryBudget: options.memoryBudget, mask: options.mask)
        if let batch = options.batchTokens { scorer.tokensPerBatch = batch }
        self.options = options
        self.modelPath = modelPath
    }

    var resultsPath: String { (options.outputDirectory as NSString).appendingPathComponent("results.json") }

    /// What a cell depends on: the model's content, the split files' identities, the doc limit, the mask's
    /// contents (not its path), the tokens per scoring batch, the precision and the tool's version.
    public func cellInputs(_ task: EvalTask, shots k: Int) -> InputRecord {
        var record = InputRecord.base(modelID: scorer.model.contentID, precision: scorer.model.precision.rawValue)
        record["limit"] = options.limit.map(String.init) ?? "all"
        let eval = "\(options.dataDirectory)/\(task.rawValue)/\(task.evalSplit).jsonl"
        record["data \(task.evalSplit)"] = InputRecord.fileIdentity(eval) ?? "missing"
        if k > 0, let split = task.fewshotSplit {
            record["data \(split)"] = InputRecord.fileIdentity("\(options.dataDirectory)/\(task.rawValue)/\(split).jsonl") ?? "missing"
        }
        if options.mask != ModelMask() { record["mask"] = InputRecord.digest(options.mask) }
        record["batch tokens"] = String(scorer.tokensPerBatch)  // parts must split the same batches
        return record
    }

    /// Writes results.json and the lm-eval files for `results`.
    public func writeResults(_ results: ResultsFile) throws {
        try JSONFiles.write(results, to: resultsPath)
        try writeLMEval(results)
    }

    func file(_ task: EvalTask, _ split: String) throws -> JSONLFile {
        let path = "\(options.dataDirectory)/\(task.rawValue)/\(split).jsonl"
        guard FileManager.default.fileExists(atPath: path) else {
            var error = TaskError(file: path, line: nil, "task \(task.rawValue): split '\(split)' is missing")
            error.missingData = true
            throw error
        }
        return try JSONLFile(path: path)
    }

    /// A cell's docs in the harness's order with their requests, ready to score under any forward options.
    public struct CellWork {
        public var task: EvalTask
        public var shots: Int
        var items: [(position: Int, index: Int, row: Row, doc: TaskDoc, requests: [Request])]
        public var requests: [Request] { items.flatMap(\.requests) }
        public var docs: Int { items.count }
        /// Requests of each doc, in order (a doc's prediction is the argmax over its requests).
        public var requestsPerDoc: [Int] { items.map(\.requests.count) }
    }

    /// Docs in the harness's shuffled order, few-shot draws from the same generator, contexts and requests.
    public func prepareCell(_ task: EvalTask, shots k: Int) throws -> CellWork {
        let eval = try file(task, task.evalSplit)
        guard eval.count > 0 else { throw TaskError(file: eval.path, line: nil, "task \(task.rawValue): the \(task.evalSplit) split has no rows") }
        var population: [Int] = []
        var train: JSONLFile?
        if k > 0, let split = task.fewshotSplit {
            do { train = try file(task, split) } catch {
                var error = TaskError(
                    file: "\(options.dataDirectory)/\(task.rawValue)/\(split).jsonl", line: nil,
                    "task \(task.rawValue): the few-shot source split '\(split)' is missing, so \(k)-shot cannot run (0-shot still works)")
                error.missingData = true
                throw error
            }
            population = try (0..<train!.count).filter { try task.eligibleForFewshot(try train!.row($0)) }
        }
        var rnd = PythonRandom(seed: 42)
        var order = Array(0..<eval.count)
        rnd.shuffle(&order)
        let count = min(options.limit ?? order.count, order.count)
        var work = CellWork(task: task, shots: k, items: [])
        for position in 0..<count {
            let row = try eval.row(order[position])
            let doc = try task.doc(row)
            var examples: [TaskDoc] = []
            if k > 0 {
                if let train {
                    examples = try drawFewshot(
                        &rnd, task: task, k: k, population: population.count, file: train.path,
                        what: task == .wsc ? "rows with label 1" : "rows"
                    )
                    .map { try task.doc(try train.row(population[$0])) }
                } else {
                    // No training docs: sample k + 1 eval docs, drop any equal to this doc, keep the first k.
                    let text = try row.string("text")
                    examples = try drawFewshot(
                        &rnd, task: task, k: k + 1, population: eval.count, file: eval.path,
                        what: "rows (LAMBADA draws k + 1 from its own split)"
                    ).map { try eval.row($0) }.filter { try $0.string("text") != text }
                        .prefix(k).map { try task.doc($0) }
                }
            }
            work.items.append((position, order[position], row, doc, doc.requests(context: fewshotContext(doc, examples: examples))))
        }
        return work
    }

    /// Scores a prepared cell with `forward` options (masks, layer-input cache) and aggregates its metrics.
    public func score(
        _ work: CellWork, forward: ForwardOptions? = nil,
        progress: ((Int, Int) -> Void)? = nil
    ) throws -> (metrics: [String: Double], scores: [Score], outcomes: [DocOutcome]) {
        let saved = scorer.options
        if let forward { scorer.options = forward }
        defer { scorer.options = saved }
        let scores = try scorer.score(work.requests, progress: progress)
        let (metrics, outcomes) = try self.outcomes(work, scores: scores)
        return (metrics, scores, outcomes)
    }

    /// Each doc's outcome from its requests' scores (in the cell's request order), and the cell's metrics.
    public func outcomes(_ work: CellWork, scores: [Score]) throws -> (metrics: [String: Double], outcomes: [DocOutcome]) {
        var outcomes: [DocOutcome] = []
        var offset = 0
        for item in work.items {
            outcomes.append(try work.task.outcome(item.doc, row: item.row, scores: Array(scores[offset..<(offset + item.requests.count)])))
            offset += item.requests.count
        }
        return (work.task.aggregate(outcomes), outcomes)
    }

    /// The forward options this evaluator scores with (memory budget, masks).
    public var forwardOptions: ForwardOptions { scorer.options }

    /// Layers of the model.
    public var layerCount: Int { scorer.model.config.numHiddenLayers }
    public var headCount: Int { scorer.model.config.numAttentionHeads }

    /// The model's content id.
    public var modelID: String { scorer.model.contentID }

    /// OUTDIR/requests/<task>-<k>shot.jsonl and OUTDIR/samples/<task>-<k>shot.jsonl for a scored cell.
    public func writeCellFiles(_ work: CellWork, scores: [Score], outcomes: [DocOutcome]) throws {
        var lines: [String] = [], samples: [String] = []
        var offset = 0
        func json(_ object: [String: Any]) throws -> String {
            String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self)
        }
        for (item, outcome) in zip(work.items, outcomes) {
            let mine = Array(scores[offset..<(offset + item.requests.count)])
            for (r, s) in zip(item.requests, mine) {
                lines.append(
                    try json([
                        "doc": item.index, "position": item.position, "context": r.context, "continuation": r.continuation,
                        "loglikelihood": s.loglikelihood, "is_greedy": s.isGreedy,
                    ]))
            }
            // --log_samples-style: per doc, its requests and scores, the gold, the prediction and whether it was right.
            let ll = mine.map(\.loglikelihood)
            let prediction = ll.indices.max { ll[$0] < ll[$1] || (ll[$0] == ll[$1] && $0 > $1) } ?? 0
            var sample: [String: Any] = [
                "doc_id": item.index, "position": item.position, "target": item.doc.target,
                "requests": zip(item.requests, mine).map {
                    [
                        "context": $0.context, "continuation": $0.continuation,
                        "loglikelihood": $1.loglikelihood, "is_greedy": $1.isGreedy,
                    ] as [String: Any]
                },
                "prediction": work.task == .lambadaOpenAI ? (mine.last?.isGreedy == true ? 1 : 0) : prediction,
                "metrics": outcome.values.filter { $0.value.isFinite },
            ]
            if let gold = item.doc.gold { sample["gold"] = gold }
            if let correct = outcome.values["acc"] ?? outcome.values["em"] ?? outcome.prediction.map(Double.init) { sample["correct"] = correct == 1 }
            samples.append(try json(sample))
            offset += item.requests.count
        }
        let path = "\(options.outputDirectory)/requests/\(work.task.rawValue)-\(work.shots)shot.jsonl"
        try FileManager.default.createDirectory(atPath: options.outputDirectory + "/requests", withIntermediateDirectories: true)
        try AtomicFile.write(Array((lines.joined(separator: "\n") + "\n").utf8), to: path)
        try FileManager.default.createDirectory(atPath: options.outputDirectory + "/samples", withIntermediateDirectories: true)
        try AtomicFile.write(
            Array((samples.joined(separator: "\n") + "\n").utf8), to: "\(options.outputDirectory)/samples/\(work.task.rawValue)-\(work.shots)shot.jsonl")
    }

}
