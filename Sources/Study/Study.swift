/// `headroom study`: the paper's pipeline end to end, resumable at every step. Each step writes its outputs
/// atomically under the study directory and is skipped when they exist; evaluations and sweeps also resume
/// inside a step (per cell, per grid point). The report is rendered from the directory alone.
import Analysis
import Benchmarks
import Evaluation
import Foundation
import HRZFormat
import Pruning
import Runtime
import Tokenizer

public struct StudyOptions: Codable, Sendable {
    public var model: String
    public var tasks: [String]
    public var shots: [Int]
    public var data: String
    /// Eval docs per cell (the first N of the harness's shuffled order); nil: all.
    public var limit: Int?
    /// Examples for gradient importance per task and shots (the paper: 2500).
    public var importanceExamples = 2500
    public var memoryBudget: Int?
    public var headsGrid: [Double] = stride(from: 0.0, through: 90, by: 10).map { $0 }
    public var ffnsGrid: [Double] = stride(from: 0.0, through: 90, by: 10).map { $0 }
    public var combinedFFNs: [Double] = stride(from: 0.0, through: 50, by: 10).map { $0 }
    /// The physically pruned model: percentages of the aggregate rankings.
    public var pruneHeads: Double = 70
    public var pruneFFNs: Double = 20
    public var inductionSequences = 20
    public var inductionSeed = 0
    /// A label for the report ("demo" for the embedded model).
    public var label: String?

    public init(model: String, tasks: [String], shots: [Int], data: String) {
        self.model = model
        self.tasks = tasks
        self.shots = shots
        self.data = data
    }
}

/// One line of the pruned-vs-original comparison.
public struct ModelFacts: Codable, Sendable {
    public var path: String
    public var fileBytes: Int
    public var layerParameters: Int
    public var heads: Int
    public var ffns: Int
    public var tokensPerS: Double
    /// Mean headline metric over the evaluated cells.
    public var meanMetric: Double
    public var cells: [String: Double]
}

public struct Comparison: Codable, Sendable {
    public var original: ModelFacts
    public var pruned: ModelFacts
    public var plan: PrunePlan
    /// Both models' content ids and the digests of both evaluations it summarises.
    public var inputs: InputRecord?
}

public final class Study {
    public let options: StudyOptions
    public let directory: String
    let tasks: [Task]
    /// Messages for the user (steps started, kept, skipped).
    public var log: (String) -> Void = { _ in }
    /// Progress within the current step: (what, done, total).
    public var progress: (String, Int, Int) -> Void = { _, _, _ in }
    /// Cells or steps that could not run (missing data), with the reason.
    public private(set) var skipped: [String] = []

    public static let steps = ["baseline evaluation", "gradient head importance", "oracle FFN importance", "rankings and correlations",
                               "pruning sweeps", "induction heads", "pruned model", "report"]

    public init(options: StudyOptions, directory: String) throws {
        self.options = options
        self.directory = directory
        tasks = try options.tasks.map { name in
            guard let t = Task.named(name, dataDirectory: options.data) else { throw PruneError(file: nil, "unknown task '\(name)' (no \(options.data)/\(name)/validation.jsonl)") }
            return t
        }
    }

    func path(_ relative: String) -> String { (directory as NSString).appendingPathComponent(relative) }
    func exists(_ relative: String) -> Bool { FileManager.default.fileExists(atPath: path(relative)) }

    /// Runs every step not yet done and renders the report; returns the report's path.
    public func run() throws -> String {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let sha = try HRZReader(path: options.model).contentID
        try checkOrWriteManifest(sha)
        try step(1) { try baseline() }
        try step(2) { try headImportance() }
        try step(3) { try ffnImportance() }
        try step(4) { try rankings() }
        try step(5) { try sweeps() }
        try step(6) { try induction() }
        try step(7) { try prunedModel() }
        var path = ""
        try step(8) { path = try StudyReport.render(directory: directory) }
        return path
    }

    func step(_ n: Int, _ body: () throws -> Void) throws {
        log("[\(n)/\(Self.steps.count)] \(Self.steps[n - 1])")
        try body()
    }

    /// study.json records the options; a rerun must use the same model (other options may change).
    func checkOrWriteManifest(_ sha: String) throws {
        struct Manifest: Codable { var model_sha256: String; var options: StudyOptions }
        if let data = try FileGuard.contents(atPath: path("study.json")) {
            let old: Manifest
            do { old = try JSONDecoder().decode(Manifest.self, from: data) } catch {
                throw PruneError(file: path("study.json"), "not a study manifest: \(error)")
            }
            guard old.model_sha256 == sha else { throw PruneError(file: path("study.json"), "this directory holds a study of another model; use another -o") }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write([UInt8](try encoder.encode(Manifest(model_sha256: sha, options: options))), to: path("study.json"))
    }

    func evalOptions(_ out: String) -> EvalOptions {
        var o = EvalOptions(tasks: tasks, shots: options.shots, dataDirectory: options.data, outputDirectory: path(out))
        o.limit = options.limit
        o.memoryBudget = options.memoryBudget
        return o
    }

    func baseline() throws {
        let evaluator = try Evaluator(modelPath: options.model, options: evalOptions("baseline"))
        _ = try evaluator.run(progress: { cell, done, total in self.progress("eval \(cell)", done, total) }, log: log)
        skipped += evaluator.skipped.map { "baseline \($0.cell): \($0.error)" }
    }

    static func scoresName(_ kind: String, _ task: Task, _ k: Int) -> String { "importance/\(kind)-\(task.rawValue)-\(k)shot.json" }

    /// Whether the scores file `name` exists with these recorded inputs; logs "kept" or what changed.
    func upToDate(_ name: String, _ inputs: InputRecord, label: String) throws -> Bool {
        guard exists(name) else { return false }
        let old = try ScoresFile.load(path(name)).inputs
        if let change = inputs.changes(from: old) {
            log("  \(label): inputs changed (\(change)); recomputing")
            return false
        }
        log("  \(label): kept")
        return true
    }

    /// The inputs of gradient importance for one task × shots: the model, the split it draws from, the number of
    /// examples and the draw rule.
    func importanceInputs(_ modelID: String, _ task: Task, _ k: Int) -> InputRecord {
        var r = InputRecord.base(modelID: modelID)
        let split = task == .lambadaOpenAI ? task.evalSplit : "train"
        r["data \(split)"] = InputRecord.fileIdentity("\(options.data)/\(task.rawValue)/\(split).jsonl") ?? "missing"
        r["examples"] = String(options.importanceExamples)
        r["draws"] = "random.seed(1234), sample per example, num_hidden_layers random() calls after each"
        return r
    }

    func headImportance() throws {
        let model = try OPTModel(path: options.model)
        let scorer = Scorer(model: model, tokenizer: try Tokenizer.load(options.model))
        for task in tasks {
            for k in options.shots {
                let name = Self.scoresName("heads", task, k)
                let inputs = importanceInputs(model.contentID, task, k)
                if try upToDate(name, inputs, label: "\(task.rawValue) \(k)-shot") { continue }
                let requests: [ImportanceRequest], truncated: Int
                do {
                    (requests, truncated) = try ImportanceData.tokenized(task: task, shots: k, dataDirectory: options.data, limit: options.importanceExamples,
                                                            scorer: scorer)
                } catch let error as TaskError {
                    skipped.append("head importance \(task.rawValue)/\(k): \(error)")
                    continue
                }
                let scores = try model.headImportance(requests, memoryBudget: options.memoryBudget) { done, total in
                    self.progress("heads \(task.rawValue) \(k)-shot", done, total)
                }
                try FileManager.default.createDirectory(atPath: path("importance"), withIntermediateDirectories: true)
                var file = ScoresFile(kind: "heads", method: "gradient", task: task.rawValue, shots: k, model_sha256: model.contentID,
                                      examples: requests.count, scores: scores, truncated: truncated > 0 ? truncated : nil)
                file.inputs = inputs
                try file.write(to: path(name))
                if truncated > 0 { log("  \(task.rawValue) \(k)-shot: \(truncated) of \(requests.count) contexts left-truncated to fit the model's positions") }
            }
        }
    }

    func ffnImportance() throws {
        var o = evalOptions("importance")
        o.outputDirectory = NSTemporaryDirectory()
        let evaluator = try Evaluator(modelPath: options.model, options: o)
        for task in tasks {
            for k in options.shots {
                let name = Self.scoresName("ffns", task, k)
                var inputs = evaluator.cellInputs(task, shots: k)
                inputs["method"] = "oracle (cached layer inputs)"
                if try upToDate(name, inputs, label: "\(task.rawValue) \(k)-shot") { continue }
                let result: OracleImportance.Result
                do {
                    result = try OracleImportance.ffns(evaluator: evaluator, task: task, shots: k) { done, total in
                        self.progress("ffns \(task.rawValue) \(k)-shot", done, total)
                    }
                } catch let error as TaskError where error.missingData {
                    skipped.append("FFN importance \(task.rawValue)/\(k): \(error)")
                    continue
                }
                try FileManager.default.createDirectory(atPath: path("importance"), withIntermediateDirectories: true)
                var file = ScoresFile(kind: "ffns", method: "oracle (cached layer inputs)", task: task.rawValue, shots: k, model_sha256: evaluator.modelID,
                                      examples: result.docs, scores: result.scores.map { [$0] },
                                      notes: String(format: "baseline %.6f", result.baseline))
                file.inputs = inputs
                try file.write(to: path(name))
            }
        }
    }

    /// The scores files of one kind that exist, in task × shots order.
    func scoresFiles(_ kind: String) throws -> [(path: String, scores: ScoresFile)] {
        try tasks.flatMap { task in options.shots.map { (task, $0) } }.compactMap { task, k in
            let name = Self.scoresName(kind, task, k)
            guard exists(name) else { return nil }
            return (path(name), try ScoresFile.load(path(name)))
        }
    }

    func rankings() throws {
        for kind in ["heads", "ffns"] {
            let files = try scoresFiles(kind)
            guard !files.isEmpty else { skipped.append("rankings of \(kind): no scores"); continue }
            _ = try RankReport.write(files, aggregate: true, to: path("ranks/\(kind)"))
        }
    }

    func sweeps() throws {
        let heads = try scoresFiles("heads").map { ($0.path, $0.scores) }
        let ffns = try scoresFiles("ffns").map { ($0.path, $0.scores) }
        func run(_ name: String, _ grid: SweepGrid, rankingFrom: String?, shots: [Int]? = nil) throws {
            var o = SweepOptions(tasks: tasks, shots: shots ?? options.shots, dataDirectory: options.data, outputDirectory: path("sweeps/\(name)"))
            o.grid = grid
            o.limit = options.limit
            o.memoryBudget = options.memoryBudget
            o.heads = grid.heads == [0] ? [] : heads
            o.ffns = grid.ffns == [0] ? [] : ffns
            o.rankingFrom = rankingFrom
            let sweep = try Sweep(modelPath: options.model, options: o)
            _ = try sweep.run(progress: { done, total in self.progress("sweep \(name)", done, total) }, log: { self.log("  " + $0) })
            skipped += sweep.skipped.map { "sweep \(name) \($0.cell): \($0.error)" }
        }
        if !heads.isEmpty { try run("heads", SweepGrid(heads: options.headsGrid), rankingFrom: nil) }
        if !ffns.isEmpty { try run("ffns", SweepGrid(ffns: options.ffnsGrid), rankingFrom: nil) }
        if !heads.isEmpty && !ffns.isEmpty {
            // The grid is the costly part (60 points per cell), so it runs at the largest shots value only.
            try run("combined", SweepGrid(heads: options.headsGrid, ffns: options.combinedFFNs), rankingFrom: "aggregate",
                    shots: options.shots.max().map { [$0] })
        }
    }

    func induction() throws {
        let model = try OPTModel(path: options.model)
        let sequences = InductionSequences.random(count: options.inductionSequences, seed: UInt64(options.inductionSeed),
                                                  tokenizer: try Tokenizer.load(options.model))
        try FileManager.default.createDirectory(atPath: path("induction"), withIntermediateDirectories: true)
        var inputs = InputRecord.base(modelID: model.contentID)
        inputs["sequences"] = "\(options.inductionSequences) random, seed \(options.inductionSeed)"
        for kind in ["prefix-matching", "copying"] {
            if try upToDate("induction/\(kind).json", inputs, label: kind) { continue }
            let tick = { (done: Int, total: Int) in self.progress(kind, done, total) }
            let scores = kind == "copying" ? try model.copyingScores(sequences, progress: tick) : try model.prefixMatching(sequences, progress: tick)
            var file = ScoresFile(kind: kind, method: kind == "copying" ? "the paper's copying probe" : "prefix matching, copies 2-4", task: nil, shots: nil,
                                  model_sha256: model.contentID, examples: sequences.count, scores: scores,
                                  notes: "random sequences, seed \(options.inductionSeed)")
            file.inputs = inputs
            try file.write(to: path("induction/\(kind).json"))
        }
    }

    func prunedModel() throws {
        guard exists("ranks/heads/aggregate.json") else { skipped.append("pruned model: no head rankings"); return }
        let original = try HRZReader(path: options.model)
        let config = original.config
        let heads = try PrunePlan.scores(path("ranks/heads/aggregate.json"), kind: "heads", config: config)
        let ffns = exists("ranks/ffns/aggregate.json") ? try PrunePlan.scores(path("ranks/ffns/aggregate.json"), kind: "ffns", config: config) : nil
        let plan = PrunePlan.select(heads: ("ranks/heads/aggregate.json", heads, options.pruneHeads),
                                    ffns: ffns.map { ("ranks/ffns/aggregate.json", $0, options.pruneFFNs) })
        try FileManager.default.createDirectory(atPath: path("pruned"), withIntermediateDirectories: true)
        let prunedPath = path("pruned/model.hrz")
        // The pruned model is reused only if it is this model pruned by this plan (its lineage says so);
        // a changed --prune or new rankings prune again.
        let planJSON = String(decoding: try plan.json(), as: UTF8.self)
        let lineage = (try? HRZReader(path: prunedPath)).map { $0.metadata.provenance.lineage.last }  // closed again here
        if lineage??.parent != original.contentID || lineage??.plan != planJSON {
            if lineage != nil { log("  the pruned model was made by another plan or from another model; pruning again") }
            _ = try Pruner.prune(options.model, plan: plan, to: prunedPath) { done, total in self.progress("prune", done, total) }
        }
        try plan.write(to: path("pruned/plan.json"))
        let evaluator = try Evaluator(modelPath: prunedPath, options: evalOptions("pruned/eval"))
        let results = try evaluator.run(progress: { cell, done, total in self.progress("eval pruned \(cell)", done, total) }, log: log)
        let baseline = try ResultsFile.load(path("baseline/results.json"))
        var inputs = InputRecord.base(modelID: original.contentID)
        inputs["pruned"] = evaluator.modelID
        inputs["original results"] = InputRecord.digest(baseline.cells)
        inputs["pruned results"] = InputRecord.digest(results.cells)
        if let data = try FileGuard.contents(atPath: path("pruned/comparison.json")),
           let old = try? JSONDecoder().decode(Comparison.self, from: data), inputs.changes(from: old.inputs) == nil {
            log("  comparison kept")
            return
        }
        var comparison = Comparison(original: try facts(options.model, baseline), pruned: try facts(prunedPath, results), plan: plan)
        comparison.inputs = inputs
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write([UInt8](try encoder.encode(comparison)), to: path("pruned/comparison.json"))
    }

    /// Size, parameters, scoring speed (a short forward benchmark) and accuracy of one model.
    func facts(_ model: String, _ results: ResultsFile) throws -> ModelFacts {
        let reader = try HRZReader(path: model)
        var bench = ForwardBenchOptions()
        bench.model = model
        bench.sequences = 4
        bench.tokens = 128
        bench.lastOnly = true
        bench.runs = 3
        bench.threads = Runtime.threads
        log("  timing \((model as NSString).lastPathComponent)")
        let speed = try ForwardBenchmark.run(bench) { _ in }
        var cells: [String: Double] = [:]
        for (key, cell) in results.cells { cells[key] = cell.metrics[(Task.named(cell.task, dataDirectory: options.data) ?? .copa).headlineMetric] }
        let values = cells.values.filter(\.isFinite)
        return ModelFacts(path: model, fileBytes: reader.file.bytes.count,
                          layerParameters: reader.layerParameters,
                          heads: reader.metadata.layers.reduce(0) { $0 + $1.heads.count }, ffns: reader.metadata.layers.filter(\.ffn).count,
                          tokensPerS: speed.tokensPerS, meanMetric: values.isEmpty ? .nan : values.reduce(0, +) / Double(values.count), cells: cells)
    }
}


