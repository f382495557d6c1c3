/// The study's stages and what each unit computes. With one shard, a cell (or sweep) is one unit writing its
/// final file; with N, each unit writes one shard file and a merge stage joins them exactly (see
/// Evaluation/Shards.swift, Analysis/ImportanceShards.swift and Pruning/Sweep.swift).
import Analysis
import Benchmarks
import Evaluation
import Foundation
import HRZFormat
import Pruning
import Runtime
import Tokenizer
import Files

/// What one unit does.
enum Work {
    /// An evaluation of the original model ("baseline") or the pruned one ("pruned/eval"), whole or one shard.
    case eval(directory: String, shard: Shard?)
    case evalMerge(directory: String)
    case heads(EvalTask, Int, Shard?)
    case headsMerge
    case ffns(EvalTask, Int, Shard?)
    case ffnsMerge
    case ranks
    case sweep(String, Shard?)
    case sweepsMerge
    case induction(String)
    case prune
    case compare
    case report
}

extension Study {
    static let sweepNames = ["heads", "ffns", "combined"]
    static let inductionKinds = ["prefix-matching", "copying"]

    var cells: [(task: EvalTask, shots: Int)] { tasks.flatMap { task in options.shots.map { (task, $0) } } }
    var shardList: [Shard?] { shards == 1 ? [nil] : (0..<shards).map { Shard(index: $0, count: shards) } }
    var merged: Bool { shards > 1 }

    /// The stages and their units, without costs (`StudyCost` adds them).
    public func plan() -> StudyPlan {
        var stages: [StudyPlan.Stage] = []
        func add(_ name: String, _ title: String, after: [String], _ works: [(Work, String)]) {
            stages.append(StudyPlan.Stage(name: name, title: title, after: after,
                                          units: works.enumerated().map { StudyPlan.Unit(id: $0.offset, what: $0.element.1, outputs: outputs($0.element.0), cost: nil) }))
        }
        func shardText(_ s: Shard?) -> String { s.map { " (shard \($0))" } ?? "" }
        let evalWorks = { (dir: String) in self.shardList.map { s in (Work.eval(directory: dir, shard: s), "evaluate every cell\(shardText(s))") } }
        add("eval", "baseline evaluation", after: [], evalWorks("baseline"))
        if merged { add("eval-merge", "baseline evaluation: merge", after: ["eval"], [(.evalMerge(directory: "baseline"), "merge \(shards) shards")]) }
        add("heads", "gradient head importance", after: [],
            cells.flatMap { c in shardList.map { s in (Work.heads(c.task, c.shots, s), "\(c.task.rawValue) \(c.shots)-shot\(shardText(s))") } })
        if merged { add("heads-merge", "gradient head importance: merge", after: ["heads"], [(.headsMerge, "merge \(shards) shards of every cell")]) }
        add("ffns", "oracle FFN importance", after: [],
            cells.flatMap { c in shardList.map { s in (Work.ffns(c.task, c.shots, s), "\(c.task.rawValue) \(c.shots)-shot\(s.map { " (layers ≡ \($0.index) mod \($0.count))" } ?? "")") } })
        if merged { add("ffns-merge", "oracle FFN importance: merge", after: ["ffns"], [(.ffnsMerge, "merge \(shards) shards of every cell")]) }
        let importance = merged ? ["heads-merge", "ffns-merge"] : ["heads", "ffns"]
        add("ranks", "rankings and correlations", after: importance, [(.ranks, "rankings, aggregates, Spearman matrices")])
        add("sweeps", "pruning sweeps", after: ["ranks"],
            Self.sweepNames.flatMap { name in shardList.map { s in (Work.sweep(name, s), "\(name) sweep\(s.map { " (points ≡ \($0.index) mod \($0.count))" } ?? "")") } })
        if merged { add("sweeps-merge", "pruning sweeps: merge", after: ["sweeps"], [(.sweepsMerge, "merge \(shards) shards of each sweep")]) }
        add("induction", "induction heads", after: [], Self.inductionKinds.map { (.induction($0), $0) })
        add("prune", "pruned model", after: ["ranks"], [(.prune, "prune by the aggregate rankings")])
        add("pruned-eval", "pruned model: evaluation", after: ["prune"], evalWorks("pruned/eval"))
        if merged { add("pruned-merge", "pruned model: merge", after: ["pruned-eval"], [(.evalMerge(directory: "pruned/eval"), "merge \(shards) shards")]) }
        add("compare", "pruned model: comparison", after: [merged ? "eval-merge" : "eval", merged ? "pruned-merge" : "pruned-eval"],
            [(.compare, "size, speed and accuracy against the original")])
        add("report", "report", after: ["ranks", merged ? "sweeps-merge" : "sweeps", "induction", "compare"], [(.report, "report.html and figures")])
        return StudyPlan(shards: shards, stages: stages)
    }

    /// The unit `unit` of the plan.
    func work(_ unit: UnitID) -> Work? {
        let s = shardList
        let perCell = { (i: Int) -> (EvalTask, Int, Shard?)? in
            guard i < self.cells.count * s.count else { return nil }
            let c = self.cells[i / s.count]
            return (c.task, c.shots, s[i % s.count])
        }
        switch unit.stage {
        case "eval", "pruned-eval":
            return unit.id < s.count ? .eval(directory: unit.stage == "eval" ? "baseline" : "pruned/eval", shard: s[unit.id]) : nil
        case "eval-merge": return .evalMerge(directory: "baseline")
        case "pruned-merge": return .evalMerge(directory: "pruned/eval")
        case "heads": return perCell(unit.id).map { .heads($0.0, $0.1, $0.2) }
        case "heads-merge": return .headsMerge
        case "ffns": return perCell(unit.id).map { .ffns($0.0, $0.1, $0.2) }
        case "ffns-merge": return .ffnsMerge
        case "ranks": return .ranks
        case "sweeps":
            return unit.id < Self.sweepNames.count * s.count ? .sweep(Self.sweepNames[unit.id / s.count], s[unit.id % s.count]) : nil
        case "sweeps-merge": return .sweepsMerge
        case "induction": return unit.id < Self.inductionKinds.count ? .induction(Self.inductionKinds[unit.id]) : nil
        case "prune": return .prune
        case "compare": return .compare
        case "report": return .report
        default: return nil
        }
    }

    static func scoresName(_ kind: String, _ task: EvalTask, _ k: Int) -> String { "importance/\(kind)-\(task.rawValue)-\(k)shot.json" }
    static func shardName(_ kind: String, _ task: EvalTask, _ k: Int, _ s: Shard) -> String {
        "importance/shards/\(kind)-\(task.rawValue)-\(k)shot-\(s.index)of\(s.count).json"
    }

    /// The files a unit writes (relative to the study directory).
    func outputs(_ work: Work) -> [String] {
        switch work {
        case .eval(let dir, nil), .evalMerge(let dir): return ["\(dir)/results.json"]
        case .eval(let dir, let s?): return cells.map { "\(dir)/shards/\($0.task.rawValue)-\($0.shots)shot-\(s.index)of\(s.count).json" }
        case .heads(let t, let k, nil): return [Self.scoresName("heads", t, k)]
        case .heads(let t, let k, let s?): return [Self.shardName("heads", t, k, s)]
        case .ffns(let t, let k, nil): return [Self.scoresName("ffns", t, k)]
        case .ffns(let t, let k, let s?): return [Self.shardName("ffns", t, k, s)]
        case .headsMerge: return cells.map { Self.scoresName("heads", $0.task, $0.shots) }
        case .ffnsMerge: return cells.map { Self.scoresName("ffns", $0.task, $0.shots) }
        case .ranks: return ["ranks/heads/aggregate.json", "ranks/ffns/aggregate.json"]
        case .sweep(let name, nil): return ["sweeps/\(name)/sweep.json", "sweeps/\(name)/sweep.csv"]
        case .sweep(let name, let s?): return ["sweeps/\(name)/shards/sweep-\(s.index)of\(s.count).json"]
        case .sweepsMerge: return Self.sweepNames.flatMap { ["sweeps/\($0)/sweep.json", "sweeps/\($0)/sweep.csv"] }
        case .induction(let kind): return ["induction/\(kind).json"]
        case .prune: return ["pruned/model.hrz", "pruned/plan.json"]
        case .compare: return ["pruned/comparison.json"]
        case .report: return ["report.html"]
        }
    }

    func execute(_ unit: UnitID) throws {
        guard let work = work(unit) else { throw PruneError(file: path("study.json"), "no unit \(unit) in this study's plan") }
        switch work {
        case .eval(let dir, let shard): try evaluate(dir, shard: shard)
        case .evalMerge(let dir):
            let evaluator = try Evaluator(modelPath: dir == "baseline" ? options.model : path("pruned/model.hrz"), options: evalOptions(dir))
            _ = try evaluator.mergeShards(shards, log: { self.log("  " + $0) })
            skipped += evaluator.skipped.map { "\(dir) \($0.cell): \($0.error)" }
        case .heads(let t, let k, let shard): try headImportance(t, k, shard: shard)
        case .headsMerge: try mergeHeadImportance()
        case .ffns(let t, let k, let shard): try ffnImportance(t, k, shard: shard)
        case .ffnsMerge: try mergeFFNImportance()
        case .ranks: try rankings()
        case .sweep(let name, let shard): try sweep(name, shard: shard, merge: false)
        case .sweepsMerge: for name in Self.sweepNames { try sweep(name, shard: nil, merge: true) }
        case .induction(let kind): try induction(kind)
        case .prune: try prune()
        case .compare: try compare()
        case .report: _ = try StudyReport.render(directory: directory)
        }
    }

    func evalOptions(_ out: String) -> EvalOptions {
        var o = EvalOptions(tasks: tasks, shots: options.shots, dataDirectory: options.data, outputDirectory: path(out))
        o.limit = options.limit
        o.memoryBudget = options.memoryBudget
        o.precision = options.arithmetic
        return o
    }

    func evaluate(_ dir: String, shard: Shard?) throws {
        let model = dir == "baseline" ? options.model : path("pruned/model.hrz")
        guard FileManager.default.fileExists(atPath: model) else {
            skipped.append("\(dir): no pruned model")
            return
        }
        let evaluator = try Evaluator(modelPath: model, options: evalOptions(dir))
        let tick = { (cell: String, done: Int, total: Int) in self.progress("eval \(cell)", done, total) }
        if let shard { try evaluator.runShard(shard, progress: tick, log: { self.log("  " + $0) }) } else { _ = try evaluator.run(progress: tick, log: log) }
        skipped += evaluator.skipped.map { "\(dir) \($0.cell): \($0.error)" }
    }

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

    /// Whether this cell's scores file (or this shard's file) exists with these recorded inputs; logs "kept"
    /// or what changed.
    func kept<File: ImportanceShardFile>(_ kind: String, _ task: EvalTask, _ k: Int, shard: Shard?, as type: File.Type, inputs: InputRecord,
                                         label: String) throws -> Bool {
        guard let shard else { return try upToDate(Self.scoresName(kind, task, k), inputs, label: label) }
        guard let data = try FileGuard.contents(atPath: path(Self.shardName(kind, task, k, shard))),
              let old = try? JSONDecoder().decode(File.self, from: data), inputs.changes(from: old.inputs) == nil else { return false }
        log("  \(label) shard \(shard): kept")
        return true
    }

    /// The inputs of gradient importance for one task × shots: the model, the split it draws from, the number of
    /// examples and the draw rule.
    func importanceInputs(_ task: EvalTask, _ k: Int) -> InputRecord {
        var r = InputRecord.base(modelID: modelID, precision: options.arithmetic.rawValue)
        let split = task == .lambadaOpenAI ? task.evalSplit : "train"
        r["data \(split)"] = InputRecord.fileIdentity("\(options.data)/\(task.rawValue)/\(split).jsonl") ?? "missing"
        r["examples"] = String(options.importanceExamples)
        r["draws"] = "random.seed(1234), sample per example, num_hidden_layers random() calls after each"
        return r
    }

    /// Writes a JSON value atomically, creating its directory.
    func writeJSON<T: Encodable>(_ value: T, to relative: String) throws {
        try FileManager.default.createDirectory(atPath: (path(relative) as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try AtomicFile.write([UInt8](try encoder.encode(value)), to: path(relative))
    }

    func headImportance(_ task: EvalTask, _ k: Int, shard: Shard?) throws {
        let label = "\(task.rawValue) \(k)-shot", inputs = importanceInputs(task, k)
        if try kept("heads", task, k, shard: shard, as: HeadImportanceShard.self, inputs: inputs, label: label) {
            return
        }
        let model = try OPTModel(path: options.model, precision: options.arithmetic)
        let scorer = Scorer(model: model, tokenizer: try Tokenizer.load(options.model))
        let requests: [ImportanceRequest], truncated: Int
        do {
            (requests, truncated) = try ImportanceData.tokenized(task: task, shots: k, dataDirectory: options.data, limit: options.importanceExamples, scorer: scorer)
        } catch let error as TaskError {
            skipped.append("head importance \(task.rawValue)/\(k): \(error)")
            if let shard {
                try writeJSON(HeadImportanceShard(shard: shard, inputs: inputs, sums: ImportanceSums(sums: [], tokensMinusOne: 0, continuationTokens: 0, examples: 0),
                                                  truncated: 0, skipped: "\(error)"), to: Self.shardName("heads", task, k, shard))
            }
            return
        }
        let tick = { (done: Int, total: Int) in self.progress("heads \(label)", done, total) }
        if let shard {
            let sums = try model.headImportanceSums(requests, select: { $0 % shard.count == shard.index }, memoryBudget: options.memoryBudget, progress: tick)
            try writeJSON(HeadImportanceShard(shard: shard, inputs: inputs, sums: sums, truncated: truncated), to: Self.shardName("heads", task, k, shard))
            return
        }
        let scores = try model.headImportance(requests, memoryBudget: options.memoryBudget, progress: tick)
        try writeHeadScores(task, k, scores: scores, examples: requests.count, truncated: truncated, inputs: inputs)
    }

    func writeHeadScores(_ task: EvalTask, _ k: Int, scores: [[Double]], examples: Int, truncated: Int, inputs: InputRecord) throws {
        try FileManager.default.createDirectory(atPath: path("importance"), withIntermediateDirectories: true)
        var file = ScoresFile(kind: "heads", method: "gradient", task: task.rawValue, shots: k, model_sha256: modelID,
                              examples: examples, scores: scores, truncated: truncated > 0 ? truncated : nil)
        file.inputs = inputs
        file.precision = options.arithmetic.rawValue
        try file.write(to: path(Self.scoresName("heads", task, k)))
        if truncated > 0 { log("  \(task.rawValue) \(k)-shot: \(truncated) of \(examples) contexts left-truncated to fit the model's positions") }
    }

    func mergeHeadImportance() throws {
        for (task, k) in cells {
            let inputs = importanceInputs(task, k)
            if try upToDate(Self.scoresName("heads", task, k), inputs, label: "\(task.rawValue) \(k)-shot") { continue }
            let parts = try HeadImportanceShard.read(count: shards, path: { self.path(Self.shardName("heads", task, k, Shard(index: $0, count: self.shards))) },
                                                     inputs: inputs, command: "study --unit heads:ID")
            if let reason = parts.compactMap(\.skipped).first {
                skipped.append("head importance \(task.rawValue)/\(k): \(reason)")
                continue
            }
            let sums = ImportanceSums.merged(parts.map(\.sums))!
            try writeHeadScores(task, k, scores: sums.normalized(), examples: sums.examples, truncated: parts.map(\.truncated).first ?? 0, inputs: inputs)
        }
    }

    func ffnInputs(_ evaluator: Evaluator, _ task: EvalTask, _ k: Int) -> InputRecord {
        var inputs = evaluator.cellInputs(task, shots: k)
        inputs["method"] = "oracle (cached layer inputs)"
        return inputs
    }

    /// An evaluator for the oracle (it writes nothing of its own).
    func oracleEvaluator() throws -> Evaluator {
        var o = evalOptions("importance")
        o.outputDirectory = NSTemporaryDirectory()
        return try Evaluator(modelPath: options.model, options: o)
    }

    func ffnImportance(_ task: EvalTask, _ k: Int, shard: Shard?) throws {
        let evaluator = try oracleEvaluator()
        let label = "\(task.rawValue) \(k)-shot", inputs = ffnInputs(evaluator, task, k)
        if try kept("ffns", task, k, shard: shard, as: OracleImportanceShard.self, inputs: inputs, label: label) {
            return
        }
        let layers = shard.map { s in (0..<evaluator.layerCount).filter { $0 % s.count == s.index } }
        if let shard, layers == [] {
            // More shards than layers: this one has no ablation to run (and no baseline to repeat).
            try writeJSON(OracleImportanceShard(shard: shard, inputs: inputs, result: nil), to: Self.shardName("ffns", task, k, shard))
            return
        }
        let result: OracleImportance.Result
        do {
            result = try OracleImportance.ffns(evaluator: evaluator, task: task, shots: k, layers: layers) { done, total in
                self.progress("ffns \(label)", done, total)
            }
        } catch let error as TaskError where error.missingData {
            skipped.append("FFN importance \(task.rawValue)/\(k): \(error)")
            if let shard { try writeJSON(OracleImportanceShard(shard: shard, inputs: inputs, result: nil, skipped: "\(error)"), to: Self.shardName("ffns", task, k, shard)) }
            return
        }
        if let shard {
            try writeJSON(OracleImportanceShard(shard: shard, inputs: inputs, result: result), to: Self.shardName("ffns", task, k, shard))
        } else {
            try writeFFNScores(task, k, scores: result.scores, baseline: result.baseline, docs: result.docs, inputs: inputs)
        }
    }

    func writeFFNScores(_ task: EvalTask, _ k: Int, scores: [Double], baseline: Double, docs: Int, inputs: InputRecord) throws {
        try FileManager.default.createDirectory(atPath: path("importance"), withIntermediateDirectories: true)
        var file = ScoresFile(kind: "ffns", method: "oracle (cached layer inputs)", task: task.rawValue, shots: k, model_sha256: modelID,
                              examples: docs, scores: scores.map { [$0] }, notes: String(format: "baseline %.6f", baseline))
        file.inputs = inputs
        file.precision = options.arithmetic.rawValue
        try file.write(to: path(Self.scoresName("ffns", task, k)))
    }

    func mergeFFNImportance() throws {
        let evaluator = try oracleEvaluator()
        for (task, k) in cells {
            let inputs = ffnInputs(evaluator, task, k)
            if try upToDate(Self.scoresName("ffns", task, k), inputs, label: "\(task.rawValue) \(k)-shot") { continue }
            let shardPath = { (i: Int) in self.path(Self.shardName("ffns", task, k, Shard(index: i, count: self.shards))) }
            let parts = try OracleImportanceShard.read(count: shards, path: shardPath, inputs: inputs, command: "study --unit ffns:ID")
            if let reason = parts.compactMap(\.skipped).first {
                skipped.append("FFN importance \(task.rawValue)/\(k): \(reason)")
                continue
            }
            let merged = try OracleImportanceShard.merge(parts, layers: evaluator.layerCount, path: shardPath)
            try writeFFNScores(task, k, scores: merged.scores, baseline: merged.baseline, docs: merged.docs, inputs: inputs)
        }
    }

    /// The scores files of one kind that exist, in task × shots order.
    func scoresFiles(_ kind: String) throws -> [(path: String, scores: ScoresFile)] {
        try cells.compactMap { task, k in
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

    /// One sweep (or one shard of it, or the merge of its shards); a sweep whose scores are missing is skipped.
    func sweep(_ name: String, shard: Shard?, merge: Bool) throws {
        let heads = try scoresFiles("heads").map { ($0.path, $0.scores) }
        let ffns = try scoresFiles("ffns").map { ($0.path, $0.scores) }
        let grid: SweepGrid
        switch name {
        case "heads": grid = SweepGrid(heads: options.headsGrid)
        case "ffns": grid = SweepGrid(ffns: options.ffnsGrid)
        default: grid = SweepGrid(heads: options.headsGrid, ffns: options.combinedFFNs)
        }
        guard grid.heads == [0] || !heads.isEmpty, grid.ffns == [0] || !ffns.isEmpty else {
            if !merge { skipped.append("sweep \(name): no scores to rank by") }
            return
        }
        // The combined grid is the costly part (60 points per cell), so it runs at the largest shots value only.
        var o = SweepOptions(tasks: tasks, shots: name == "combined" ? options.shots.max().map { [$0] } ?? [] : options.shots, dataDirectory: options.data,
                             outputDirectory: path("sweeps/\(name)"))
        o.grid = grid
        o.limit = options.limit
        o.memoryBudget = options.memoryBudget
        o.precision = options.arithmetic
        o.heads = grid.heads == [0] ? [] : heads
        o.ffns = grid.ffns == [0] ? [] : ffns
        o.rankingFrom = name == "combined" ? "aggregate" : nil
        o.shard = shard
        let sweep = try Sweep(modelPath: options.model, options: o)
        if merge {
            _ = try sweep.mergeShards(shards, log: { self.log("  \(name): " + $0) })
        } else {
            _ = try sweep.run(progress: { done, total in self.progress("sweep \(name)", done, total) }, log: { self.log("  " + $0) })
        }
        skipped += sweep.skipped.map { "sweep \(name) \($0.cell): \($0.error)" }
    }

    func induction(_ kind: String) throws {
        let model = try OPTModel(path: options.model, precision: options.arithmetic)
        var inputs = InputRecord.base(modelID: model.contentID, precision: options.arithmetic.rawValue)
        inputs["sequences"] = "\(options.inductionSequences) random, seed \(options.inductionSeed)"
        if try upToDate("induction/\(kind).json", inputs, label: kind) { return }
        let sequences = InductionSequences.random(count: options.inductionSequences, seed: UInt64(options.inductionSeed),
                                                  tokenizer: try Tokenizer.load(options.model))
        try FileManager.default.createDirectory(atPath: path("induction"), withIntermediateDirectories: true)
        let tick = { (done: Int, total: Int) in self.progress(kind, done, total) }
        let scores = kind == "copying" ? try model.copyingScores(sequences, progress: tick) : try model.prefixMatching(sequences, progress: tick)
        var file = ScoresFile(kind: kind, method: kind == "copying" ? "the paper's copying probe" : "prefix matching, copies 2-4", task: nil, shots: nil,
                              model_sha256: model.contentID, examples: sequences.count, scores: scores,
                              notes: "random sequences, seed \(options.inductionSeed)")
        file.inputs = inputs
        file.precision = options.arithmetic.rawValue
        try file.write(to: path("induction/\(kind).json"))
    }

    func prune() throws {
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
    }

    func compare() throws {
        let prunedPath = path("pruned/model.hrz")
        guard exists("pruned/model.hrz"), exists("pruned/plan.json"), exists("pruned/eval/results.json"), exists("baseline/results.json") else {
            skipped.append("comparison: no pruned model or no evaluation")
            return
        }
        let baseline = try ResultsFile.load(path("baseline/results.json"))
        let results = try ResultsFile.load(path("pruned/eval/results.json"))
        let plan = try PrunePlan.load(path("pruned/plan.json"), config: try HRZReader(path: options.model).config)
        var inputs = InputRecord.base(modelID: modelID, precision: options.arithmetic.rawValue)
        inputs["pruned"] = try HRZReader(path: prunedPath).contentID
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
        bench.threads = Threads.count
        log("  timing \((model as NSString).lastPathComponent)")
        let speed = try ForwardBenchmark.run(bench) { _ in }
        var cells: [String: Double] = [:]
        for (key, cell) in results.cells { cells[key] = cell.metrics[(EvalTask.named(cell.task, dataDirectory: options.data) ?? .copa).headlineMetric] }
        let values = cells.values.filter(\.isFinite)
        return ModelFacts(path: model, fileBytes: reader.file.bytes.count,
                          layerParameters: reader.layerParameters,
                          heads: reader.metadata.layers.reduce(0) { $0 + $1.heads.count }, ffns: reader.metadata.layers.filter(\.ffn).count,
                          tokensPerS: speed.tokensPerS, meanMetric: values.isEmpty ? .nan : values.reduce(0, +) / Double(values.count), cells: cells)
    }
}
