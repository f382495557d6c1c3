/// The study's stages and what each unit computes. Every unit builds the spec of a job (Jobs) and runs it:
/// the same job `headroom eval`, `importance`, `sweep`, `induction`, `rank` and `prune` run. With one part
/// per cell a unit writes its job's final files; with N, each unit writes part files and a merge stage joins
/// them exactly (Jobs/Parts.swift).
import Analysis
import Evaluation
import Foundation
import HRZFormat
import Jobs
import Pruning
import Runtime
import Files

/// What one unit does.
enum Work {
    /// An evaluation of the original model ("baseline") or the pruned one ("pruned/eval"): every cell, or one part of each.
    case eval(directory: String, part: Part)
    case evalMerge(directory: String)
    case heads(EvalTask, Int, Part)
    case headsMerge
    case ffns(EvalTask, Int, Part)
    case ffnsMerge
    case ranks
    case sweep(String, Part)
    case sweepsMerge
    case induction(String)
    case prune
    case compare
    case report
}

extension Study {
    var cells: [(task: EvalTask, shots: Int)] { tasks.flatMap { task in options.shots.map { (task, $0) } } }
    var parts: [Part] { (0..<shards).map { Part(index: $0, count: shards) } }
    var merged: Bool { shards > 1 }
    /// The context a unit's job reports to.
    var jobContext: JobContext { JobContext(log: { [weak self] in self?.log("  " + $0) }, progress: { [weak self] in self?.progress($0, $1, $2) }) }

    /// The stages and their units, without costs (`StudyCost` adds them).
    public func plan() -> StudyPlan {
        var stages: [StudyPlan.Stage] = []
        func add(_ name: String, _ title: String, after: [String], _ works: [(Work, String)]) {
            stages.append(
                StudyPlan.Stage(
                    name: name, title: title, after: after,
                    units: works.enumerated().map { StudyPlan.Unit(id: $0.offset, what: $0.element.1, outputs: outputs($0.element.0), cost: nil) }))
        }
        func partText(_ p: Part) -> String { merged ? " (shard \(p))" : "" }
        let evalWorks = { (dir: String) in self.parts.map { p in (Work.eval(directory: dir, part: p), "evaluate every cell\(partText(p))") } }
        add("eval", "baseline evaluation", after: [], evalWorks(StudyLayout.baseline))
        if merged {
            add("eval-merge", "baseline evaluation: merge", after: ["eval"], [(.evalMerge(directory: StudyLayout.baseline), "merge \(shards) shards")])
        }
        add(
            "heads", "gradient head importance", after: [],
            cells.flatMap { c in parts.map { p in (Work.heads(c.task, c.shots, p), "\(c.task.rawValue) \(c.shots)-shot\(partText(p))") } })
        if merged { add("heads-merge", "gradient head importance: merge", after: ["heads"], [(.headsMerge, "merge \(shards) shards of every cell")]) }
        add(
            "ffns", "oracle FFN importance", after: [],
            cells.flatMap { c in
                parts.map { p in (Work.ffns(c.task, c.shots, p), "\(c.task.rawValue) \(c.shots)-shot\(merged ? " (batches ≡ \(p.index) mod \(p.count))" : "")")
                }
            })
        if merged { add("ffns-merge", "oracle FFN importance: merge", after: ["ffns"], [(.ffnsMerge, "merge \(shards) shards of every cell")]) }
        let importance = merged ? ["heads-merge", "ffns-merge"] : ["heads", "ffns"]
        add("ranks", "rankings and correlations", after: importance, [(.ranks, "rankings, aggregates, Spearman matrices")])
        add(
            "sweeps", "pruning sweeps", after: ["ranks"],
            StudyLayout.sweepNames.flatMap { name in
                parts.map { p in (Work.sweep(name, p), "\(name) sweep\(merged ? " (batches ≡ \(p.index) mod \(p.count))" : "")") }
            })
        if merged { add("sweeps-merge", "pruning sweeps: merge", after: ["sweeps"], [(.sweepsMerge, "merge \(shards) shards of each sweep")]) }
        add("induction", "induction heads", after: [], StudyLayout.inductionKinds.map { (.induction($0), $0) })
        add("prune", "pruned model", after: ["ranks"], [(.prune, "prune by the aggregate rankings")])
        add("pruned-eval", "pruned model: evaluation", after: ["prune"], evalWorks(StudyLayout.prunedEval))
        if merged {
            add("pruned-merge", "pruned model: merge", after: ["pruned-eval"], [(.evalMerge(directory: StudyLayout.prunedEval), "merge \(shards) shards")])
        }
        add(
            "compare", "pruned model: comparison", after: [merged ? "eval-merge" : "eval", merged ? "pruned-merge" : "pruned-eval"],
            [(.compare, "size, speed and accuracy against the original")])
        add("report", "report", after: ["ranks", merged ? "sweeps-merge" : "sweeps", "induction", "compare"], [(.report, "report.html and figures")])
        return StudyPlan(shards: shards, stages: stages)
    }

    /// The unit `unit` of the plan.
    func work(_ unit: UnitID) -> Work? {
        let s = parts
        let perCell = { (i: Int) -> (EvalTask, Int, Part)? in
            guard i >= 0, i < self.cells.count * s.count else { return nil }
            let c = self.cells[i / s.count]
            return (c.task, c.shots, s[i % s.count])
        }
        switch unit.stage {
        case "eval", "pruned-eval":
            return unit.id < s.count ? .eval(directory: unit.stage == "eval" ? StudyLayout.baseline : StudyLayout.prunedEval, part: s[unit.id]) : nil
        case "eval-merge": return .evalMerge(directory: StudyLayout.baseline)
        case "pruned-merge": return .evalMerge(directory: StudyLayout.prunedEval)
        case "heads": return perCell(unit.id).map { .heads($0.0, $0.1, $0.2) }
        case "heads-merge": return .headsMerge
        case "ffns": return perCell(unit.id).map { .ffns($0.0, $0.1, $0.2) }
        case "ffns-merge": return .ffnsMerge
        case "ranks": return .ranks
        case "sweeps":
            return unit.id < StudyLayout.sweepNames.count * s.count ? .sweep(StudyLayout.sweepNames[unit.id / s.count], s[unit.id % s.count]) : nil
        case "sweeps-merge": return .sweepsMerge
        case "induction": return unit.id < StudyLayout.inductionKinds.count ? .induction(StudyLayout.inductionKinds[unit.id]) : nil
        case "prune": return .prune
        case "compare": return .compare
        case "report": return .report
        default: return nil
        }
    }

    /// A part file of a job whose output is `output` (relative), as Jobs names it.
    static func partFile(_ output: String, _ p: Part) -> String {
        let dir = (output as NSString).deletingLastPathComponent, stem = ((output as NSString).lastPathComponent as NSString).deletingPathExtension
        return "\(dir)/shards/\(stem)-\(p.index)of\(p.count).json"
    }

    /// The files a unit writes (relative to the study directory).
    func outputs(_ work: Work) -> [String] {
        switch work {
        case .eval(let dir, let p) where p == .whole:
            return ["\(dir)/results.json"] + cells.flatMap { EvalJob.outputs($0.task, $0.shots).map { "\(dir)/\($0)" } }
        case .eval(let dir, let p): return cells.map { Self.partFile("\(dir)/\(Cells.stem($0.task, $0.shots)).json", p) }
        case .evalMerge(let dir): return ["\(dir)/results.json"]
        case .heads(let t, let k, let p):
            return p == .whole ? [StudyLayout.scores("heads", t.rawValue, k)] : [Self.partFile(StudyLayout.scores("heads", t.rawValue, k), p)]
        case .ffns(let t, let k, let p):
            return p == .whole ? [StudyLayout.scores("ffns", t.rawValue, k)] : [Self.partFile(StudyLayout.scores("ffns", t.rawValue, k), p)]
        case .headsMerge: return cells.map { StudyLayout.scores("heads", $0.task.rawValue, $0.shots) }
        case .ffnsMerge: return cells.map { StudyLayout.scores("ffns", $0.task.rawValue, $0.shots) }
        case .ranks: return [StudyLayout.aggregate("heads"), StudyLayout.aggregate("ffns")]
        case .sweep(let name, let p) where p == .whole: return [StudyLayout.sweepTable(name), StudyLayout.sweep(name) + "/sweep.csv"]
        case .sweep(let name, let p): return ["\(StudyLayout.sweep(name))/shards/*-\(p.index)of\(p.count).json"]
        case .sweepsMerge: return StudyLayout.sweepNames.flatMap { [StudyLayout.sweepTable($0), StudyLayout.sweep($0) + "/sweep.csv"] }
        case .induction(let kind): return [StudyLayout.induction(kind)]
        case .prune: return [StudyLayout.prunedModel, StudyLayout.prunedPlan]
        case .compare: return [StudyLayout.comparison]
        case .report: return [StudyLayout.report]
        }
    }

    func execute(_ unit: UnitID) throws {
        guard let work = work(unit) else { throw StudyError(file: path(StudyLayout.manifest), "no unit \(unit) in this study's plan") }
        let context = jobContext
        switch work {
        case .eval(let dir, let p):
            let job = try evalJob(dir)
            if p == .whole { try job.run(context: context) } else { try job.run(part: p, context: context) }
            skipped += job.skips.entries.map { "\(dir) \($0.cell): \($0.error)" }
        case .evalMerge(let dir):
            let job = try evalJob(dir)
            try job.merge(parts: shards, context: context)
            skipped += job.skips.entries.map { "\(dir) \($0.cell): \($0.error)" }
        case .heads(let t, let k, let p):
            var job = try headsJob(t, k)
            if p == .whole { try job.runWhole(context: context) } else { try job.runPart(p, context: context) }
            skipped += job.skips.entries.map { "head importance \($0.cell): \($0.error)" }
        case .headsMerge:
            for (t, k) in cells {
                var job = try headsJob(t, k)
                try job.merge(shards, context: context)
                skipped += job.skips.entries.map { "head importance \($0.cell): \($0.error)" }
            }
        case .ffns(let t, let k, let p):
            var job = try oracleJob(t, k)
            if p == .whole { try job.runWhole(context: context) } else { try job.runPart(p, context: context) }
            skipped += job.skips.entries.map { "FFN importance \($0.cell): \($0.error)" }
        case .ffnsMerge:
            for (t, k) in cells {
                var job = try oracleJob(t, k)
                try job.merge(shards, context: context)
                skipped += job.skips.entries.map { "FFN importance \($0.cell): \($0.error)" }
            }
        case .ranks: try rankings()
        case .sweep(let name, let p): try sweep(name, part: p, merge: false)
        case .sweepsMerge: for name in StudyLayout.sweepNames { try sweep(name, part: .whole, merge: true) }
        case .induction(let kind):
            var spec = InductionSpec(
                model: options.model, kind: InductionKind(rawValue: kind)!,
                source: .random(count: options.inductionSequences, seed: options.inductionSeed), output: path(StudyLayout.induction(kind)))
            spec.precision = options.arithmetic
            var job = try InductionJob(spec)
            try job.runWhole(context: context)
        case .prune: try prune()
        case .compare: try compare()
        case .report: _ = try StudyReport.render(directory: directory)
        }
    }

    // MARK: The jobs of the units

    func evalJob(_ dir: String) throws -> EvalJob {
        let model = dir == StudyLayout.baseline ? options.model : path(StudyLayout.prunedModel)
        guard FileManager.default.fileExists(atPath: model) else {
            throw StudyError(file: model, "the model to evaluate is missing\(dir == StudyLayout.baseline ? "" : "; run the prune unit first")")
        }
        var o = EvalOptions(tasks: tasks, shots: options.shots, dataDirectory: options.data, outputDirectory: path(dir))
        o.limit = options.limit
        o.memoryBudget = options.memoryBudget
        o.precision = options.arithmetic
        return try EvalJob(model: model, options: o)
    }

    func headsJob(_ task: EvalTask, _ k: Int) throws -> HeadImportanceJob {
        var spec = HeadImportanceSpec(
            model: options.model, source: .task(task, shots: k, data: options.data, limit: options.importanceExamples, targetSpace: false),
            output: path(StudyLayout.scores("heads", task.rawValue, k)))
        spec.precision = options.arithmetic
        spec.memoryBudget = options.memoryBudget
        return try HeadImportanceJob(spec)
    }

    func oracleJob(_ task: EvalTask, _ k: Int) throws -> OracleJob {
        var spec = OracleSpec(
            model: options.model, kind: .ffns, task: task, shots: k, data: options.data, output: path(StudyLayout.scores("ffns", task.rawValue, k)))
        spec.limit = options.limit
        spec.precision = options.arithmetic
        spec.memoryBudget = options.memoryBudget
        return try OracleJob(spec)
    }

    /// The scores files of one kind that exist, in task × shots order.
    func scoresFiles(_ kind: String) throws -> [(path: String, scores: ScoresFile)] {
        try cells.compactMap { task, k in
            let name = StudyLayout.scores(kind, task.rawValue, k)
            guard exists(name) else { return nil }
            return (path(name), try ScoresFile.load(path(name)))
        }
    }

    func rankings() throws {
        for kind in ["heads", "ffns"] {
            let files = try scoresFiles(kind)
            guard !files.isEmpty else { skipped.append("rankings of \(kind): no scores"); continue }
            try RankJob(inputs: files.map(\.path), aggregate: true, output: path(StudyLayout.ranks(kind))).run()
        }
    }

    /// One sweep (or one part of it, or the merge of its parts); a sweep whose scores are missing is skipped.
    func sweep(_ name: String, part: Part, merge: Bool) throws {
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
        var o = SweepOptions(
            tasks: tasks, shots: name == "combined" ? options.shots.max().map { [$0] } ?? [] : options.shots, dataDirectory: options.data,
            outputDirectory: path(StudyLayout.sweep(name)))
        o.grid = grid
        o.limit = options.limit
        o.memoryBudget = options.memoryBudget
        o.precision = options.arithmetic
        o.heads = grid.heads == [0] ? [] : heads
        o.ffns = grid.ffns == [0] ? [] : ffns
        o.rankingFrom = name == "combined" ? "aggregate" : nil
        let job = try SweepJob(model: options.model, options: o)
        let context = JobContext(
            log: { [weak self] in self?.log("  \(name): " + $0) }, progress: { [weak self] in self?.progress("sweep \(name) \($0)", $1, $2) })
        if merge {
            try job.merge(parts: shards, context: context)
        } else if part == .whole {
            try job.run(context: context)
        } else {
            try job.run(part: part, context: context)
        }
        skipped += job.skips.entries.map { "sweep \(name) \($0.cell): \($0.error)" }
    }

    func prune() throws {
        guard exists(StudyLayout.aggregate("heads")) else { skipped.append("pruned model: no head rankings"); return }
        var spec = PruneSpec(model: options.model, output: path(StudyLayout.prunedModel))
        // The plan names the study's relative paths, so it (and the model's lineage) does not depend on where
        // the study directory is.
        spec.scoresRoot = directory
        spec.heads = (StudyLayout.aggregate("heads"), options.pruneHeads)
        if exists(StudyLayout.aggregate("ffns")) { spec.ffns = (StudyLayout.aggregate("ffns"), options.pruneFFNs) }
        spec.planOutput = path(StudyLayout.prunedPlan)
        _ = try PruneJob(spec).run(context: jobContext)
    }

    func compare() throws {
        let needed = [StudyLayout.prunedModel, StudyLayout.prunedPlan, StudyLayout.prunedEval + "/results.json", StudyLayout.baseline + "/results.json"]
        guard needed.allSatisfy(exists) else {
            skipped.append("comparison: no pruned model or no evaluation")
            return
        }
        var job = ComparisonJob(
            original: options.model, pruned: path(StudyLayout.prunedModel), originalResults: path(StudyLayout.baseline + "/results.json"),
            prunedResults: path(StudyLayout.prunedEval + "/results.json"), plan: path(StudyLayout.prunedPlan),
            output: path(StudyLayout.comparison), data: options.data)
        job.precision = options.arithmetic
        try job.run(context: jobContext)
    }
}
