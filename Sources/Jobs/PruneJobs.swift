/// The rank report, the physically pruned model and the pruned-vs-original comparison: single-step jobs
/// (`headroom rank`, `headroom prune`, the study's ranks, prune and compare units).
import Foundation
import Analysis
import Benchmarks
import Evaluation
import HRZFormat
import OPTSchema
import Pruning
import Runtime
import Files

/// Rankings, the aggregate, Spearman matrices and overlaps of scores files (`RankReport`).
public struct RankJob: Sendable {
    public var inputs: [String]
    public var aggregate: Bool
    public var output: String
    public init(inputs: [String], aggregate: Bool, output: String) {
        self.inputs = inputs
        self.aggregate = aggregate
        self.output = output
    }

    /// The files written.
    @discardableResult
    public func run() throws -> [String] {
        let loaded = try inputs.map { path -> (path: String, scores: ScoresFile) in (path, try ScoresFile.load(path)) }
        return try RankReport.write(loaded, aggregate: aggregate, to: output)
    }
}

public struct PruneSpec: Sendable {
    public var model: String
    /// The pruned .hrz; nil with `dryRun`.
    public var output: String?
    /// A scores file and the percentage of its lowest heads (FFNs) to remove.
    public var heads: (path: String, percent: Double)?
    public var ffns: (path: String, percent: Double)?
    public var removeHeads: [[Int]] = []
    public var removeFFNs: [Int] = []
    public var planFile: String?
    /// When set, the scores paths are relative to this directory (and recorded in the plan as given).
    public var scoresRoot: String?
    /// Also write the plan used here.
    public var planOutput: String?
    public var dryRun = false
    public var level = 3
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    public init(model: String, output: String?) {
        self.model = model
        self.output = output
    }
}

public struct PruneOutcome: Sendable {
    public var plan: PrunePlan
    public var before: [LayerPlan]
    public var after: [LayerPlan]
    /// nil on a dry run, or when an existing output was already this model pruned by this plan.
    public var report: PruneReport?
    public var kept: Bool
}

public struct PruneJob: Sendable {
    public var spec: PruneSpec
    public init(_ spec: PruneSpec) { self.spec = spec }

    /// The plan: the selections' union with the explicit lists and plan file, checked against the model.
    public func plan(config: OPTConfig) throws -> PrunePlan {
        func full(_ path: String) -> String { spec.scoresRoot.map { ($0 as NSString).appendingPathComponent(path) } ?? path }
        var chosen = PrunePlan.select(
            heads: try spec.heads.map { ($0.path, try PrunePlan.scores(full($0.path), kind: "heads", config: config), $0.percent) },
            ffns: try spec.ffns.map { ($0.path, try PrunePlan.scores(full($0.path), kind: "ffns", config: config), $0.percent) })
        let selection = chosen.selection
        chosen = chosen.union(PrunePlan(heads: spec.removeHeads, ffns: spec.removeFFNs))
        if let file = spec.planFile { chosen = chosen.union(try PrunePlan.load(file, config: config)) }
        chosen.selection = selection
        try chosen.validate(config: config, file: "the command line")
        return chosen
    }

    /// Prunes, unless the output already is this model pruned by this plan (its lineage says so).
    public func run(context: JobContext = JobContext()) throws -> PruneOutcome {
        let reader = try HRZReader(path: spec.model)
        let chosen = try plan(config: reader.config)
        if let planOutput = spec.planOutput { try chosen.write(to: planOutput) }
        let before = reader.metadata.layers
        var outcome = PruneOutcome(plan: chosen, before: before, after: chosen.apply(to: before), report: nil, kept: false)
        guard !spec.dryRun, let output = spec.output else { return outcome }
        let planJSON = String(decoding: try chosen.json(), as: UTF8.self)
        if let existing = try? HRZReader(path: output) {
            if let step = existing.metadata.provenance.lineage.last, step.parent == reader.contentID, step.plan == planJSON {
                context.log("\(output): already this model pruned by this plan, kept")
                outcome.kept = true
                return outcome
            }
            context.log("\(output) was made by another plan or from another model; pruning again")
        }
        outcome.report = try Pruner.prune(spec.model, plan: chosen, to: output, level: spec.level, threads: spec.threads) { done, total in
            context.progress("prune", done, total)
        }
        return outcome
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

/// Size, parameters, scoring speed and accuracy of a pruned model against its original.
public struct ComparisonJob: Sendable {
    public var original: String
    public var pruned: String
    public var originalResults: String
    public var prunedResults: String
    public var plan: String
    public var output: String
    /// Task data (for each task's headline metric).
    public var data: String
    public var precision = Precision.fp32
    public init(original: String, pruned: String, originalResults: String, prunedResults: String, plan: String, output: String, data: String) {
        (self.original, self.pruned, self.originalResults, self.prunedResults, self.plan, self.output, self.data) = (
            original, pruned, originalResults, prunedResults, plan, output, data
        )
    }

    @discardableResult
    public func run(context: JobContext = JobContext()) throws -> Comparison {
        let baseline = try ResultsFile.load(originalResults)
        let results = try ResultsFile.load(prunedResults)
        let originalReader = try HRZReader(path: original)
        let plan = try PrunePlan.load(self.plan, config: originalReader.config)
        var inputs = InputRecord.base(modelID: originalReader.contentID, precision: precision.rawValue)
        inputs["pruned"] = try HRZReader(path: pruned).contentID
        inputs["original results"] = InputRecord.digest(baseline.cells)
        inputs["pruned results"] = InputRecord.digest(results.cells)
        if let old = try? JSONFiles.read(Comparison.self, from: output, what: "a comparison"), inputs.changes(from: old.inputs) == nil {
            context.log("comparison kept")
            return old
        }
        var comparison = Comparison(original: try facts(original, baseline, context: context), pruned: try facts(pruned, results, context: context), plan: plan)
        comparison.inputs = inputs
        try JSONFiles.write(comparison, to: output)
        return comparison
    }

    /// Size, parameters, scoring speed (a short forward benchmark) and accuracy of one model.
    func facts(_ model: String, _ results: ResultsFile, context: JobContext) throws -> ModelFacts {
        let reader = try HRZReader(path: model)
        var bench = ForwardBenchOptions()
        bench.model = model
        bench.sequences = 4
        bench.tokens = 128
        bench.lastOnly = true
        bench.runs = 3
        bench.threads = Threads.count
        context.log("timing \((model as NSString).lastPathComponent)")
        let speed = try ForwardBenchmark.run(bench) { _ in }
        var cells: [String: Double] = [:]
        for (key, cell) in results.cells { cells[key] = cell.metrics[(EvalTask.named(cell.task, dataDirectory: data) ?? .copa).headlineMetric] }
        let values = cells.values.filter(\.isFinite)
        return ModelFacts(
            path: model, fileBytes: reader.file.bytes.count, layerParameters: reader.layerParameters,
            heads: reader.metadata.layers.reduce(0) { $0 + $1.heads.count }, ffns: reader.metadata.layers.filter(\.ffn).count,
            tokensPerS: speed.tokensPerS, meanMetric: values.isEmpty ? .nan : values.reduce(0, +) / Double(values.count), cells: cells)
    }
}
