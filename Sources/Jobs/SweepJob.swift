/// Pruning sweeps (`headroom sweep`, the study's sweep units): for every task × shots cell and every point of
/// a heads% × FFNs% grid, the lowest-ranked heads and FFNs are removed with masks (not by rewriting the
/// model) and the cell is scored. Each point of each cell is a cell of the part scheme: its items are the
/// cell's scoring batches, its output one point file (OUTDIR/points/STEM-hH-fF.json); OUTDIR/sweep.json and
/// sweep.csv are assembled from the point files after every point, rows in task, shots, FFNs%, heads% order.
/// The unpruned value of each cell (every row's baseline) is a point of its own, computed first.
import Foundation
import Analysis
import Evaluation
import HRZFormat
import OPTSchema
import Pruning
import Runtime
import Files

public struct SweepRow: Codable, Sendable, Equatable {
    public var task: String
    public var shots: Int
    public var heads_percent: Double
    public var ffns_percent: Double
    public var heads_removed: Int
    public var ffns_removed: Int
    /// Where the ranking came from: a task name, `aggregate`, or a file.
    public var ranking: String
    public var metric: String
    public var value: Double
    public var baseline: Double
    public var delta: Double
    public var docs: Int
    /// The cell's inputs plus the rankings used (their order); a rerun recomputes a row whose record differs.
    public var inputs: InputRecord?

    var key: String { "\(task)/\(shots)/\(heads_percent)/\(ffns_percent)/\(ranking)" }
}

public struct SweepTable: Codable, Sendable {
    public var model: String
    public var model_sha256: String
    public var rows: [SweepRow]

    public static let csvHeader = "task,shots,heads_percent,ffns_percent,heads_removed,ffns_removed,ranking,metric,value,baseline,delta,docs"

    public var csv: String {
        let lines = rows.map { r in
            [
                r.task, "\(r.shots)", fmt(r.heads_percent), fmt(r.ffns_percent), "\(r.heads_removed)", "\(r.ffns_removed)", r.ranking,
                r.metric, fmt(r.value), fmt(r.baseline), fmt(r.delta), "\(r.docs)",
            ].joined(separator: ",")
        }
        return ([Self.csvHeader] + lines).joined(separator: "\n") + "\n"
    }

    private func fmt(_ x: Double) -> String { x == x.rounded() && abs(x) < 1e9 ? String(Int(x)) : String(format: "%.6g", x) }
}

public struct SweepOptions: Sendable {
    public var tasks: [EvalTask]
    public var shots: [Int]
    public var dataDirectory: String
    public var outputDirectory: String
    public var grid = SweepGrid()
    public var limit: Int?
    public var memoryBudget: Int?
    public var batchTokens: Int?
    public var precision = Precision.fp32
    /// Heads scores files, e.g. one per task (and shots).
    public var heads: [(path: String, file: ScoresFile)] = []
    public var ffns: [(path: String, file: ScoresFile)] = []
    /// Rank every task by this task's scores (the paper's cross-task figures), or `aggregate`: the mean of all files.
    public var rankingFrom: String?

    public init(tasks: [EvalTask], shots: [Int], dataDirectory: String, outputDirectory: String) {
        self.tasks = tasks
        self.shots = shots
        self.dataDirectory = dataDirectory
        self.outputDirectory = outputDirectory
    }
}

public final class SweepJob {
    public let model: String
    public let options: SweepOptions
    public let skips = Skips()
    let evaluator: Evaluator
    let config: OPTConfig
    /// Each cell's docs and batches, prepared once for all its points.
    private var prepared: [String: (work: Evaluator.CellWork, plan: ScoringPlan)] = [:]

    public init(model: String, options: SweepOptions) throws {
        var eval = EvalOptions(tasks: options.tasks, shots: options.shots, dataDirectory: options.dataDirectory, outputDirectory: options.outputDirectory)
        eval.limit = options.limit
        eval.memoryBudget = options.memoryBudget
        eval.batchTokens = options.batchTokens
        eval.precision = options.precision
        evaluator = try Evaluator(modelPath: model, options: eval)
        config = evaluator.scorer.model.config
        self.model = model
        self.options = options
    }

    var directory: String { options.outputDirectory }
    public var cells: Cells { Cells(tasks: options.tasks, shots: options.shots) }

    /// Every point of every cell not done; `points(done, total)` is told after each point finishes.
    @discardableResult
    public func run(context: JobContext = JobContext(), points: ((Int, Int) -> Void)? = nil) throws -> SweepTable {
        let all = try cells.all.flatMap { try self.points($0.task, $0.shots) }
        var done = 0
        for (task, k) in cells.all {
            let mine = all.filter { $0.task == task && $0.shots == k }
            if try mine.allSatisfy({ try $0.status() == .done }) { context.log("\(Cells.key(task, k))-shot: all \(mine.count) points already done, kept") }
        }
        for var point in all {
            if try point.status() == .done {
                done += 1
                continue
            }
            try point.runWhole(context: context)
            if skips.entries.contains(where: { $0.cell == Cells.key(point.task, point.shots) }) { continue }
            done += 1
            points?(done, all.count)
        }
        return try assemble()
    }

    /// Part `part` of every point of one cell (a study unit), or of every cell.
    public func run(part: Part, task: EvalTask? = nil, shots: Int? = nil, context: JobContext = JobContext()) throws {
        for (t, k) in cells.all where (task == nil || t == task) && (shots == nil || k == shots) {
            for var point in try points(t, k) {
                if part == .whole { try point.runWhole(context: context) } else { try point.runPart(part, context: context) }
            }
        }
        if part == .whole { try assemble() }
    }

    /// Joins `count` parts of every point of one cell, or of every cell, then sweep.json.
    @discardableResult
    public func merge(parts count: Int, task: EvalTask? = nil, shots: Int? = nil, context: JobContext = JobContext()) throws -> SweepTable {
        for (t, k) in cells.all where (task == nil || t == task) && (shots == nil || k == shots) {
            for var point in try points(t, k) { try point.merge(count, context: context) }
        }
        return try assemble()
    }

    /// The ranking of one cell (label and scores) and the cell's record with the rankings' orders.
    func context(_ task: EvalTask, _ k: Int) throws -> (label: String, heads: [[Double]]?, ffns: [[Double]]?, record: InputRecord) {
        let heads =
            options.heads.isEmpty || options.grid.heads == [0]
            ? nil
            : try PruneRankings.choose(options.heads, task: task.rawValue, shots: k, from: options.rankingFrom, kind: "heads")
        let ffns =
            options.ffns.isEmpty || options.grid.ffns == [0]
            ? nil
            : try PruneRankings.choose(options.ffns, task: task.rawValue, shots: k, from: options.rankingFrom, kind: "ffns")
        let labels = [heads?.label, ffns?.label].compactMap { $0 }
        let label = labels.isEmpty ? "none" : Set(labels).count == 1 ? labels[0] : "heads: \(labels[0]); ffns: \(labels[1])"
        var record = evaluator.cellInputs(task, shots: k)
        // A point depends on its ranking only through the order it removes in (float noise in a recomputed
        // scores file that keeps the order keeps the points).
        if let heads { record["heads ranking"] = InputRecord.digest(Ranking.ascending(heads.scores).map { [$0.layer, $0.head] }) }
        if let ffns { record["ffns ranking"] = InputRecord.digest(Ranking.ascending(ffns.scores).map { [$0.layer, $0.head] }) }
        return (label, heads?.scores, ffns?.scores, record)
    }

    /// The cell's points: the unpruned baseline first, then the grid's (the 0%/0% point is the baseline).
    func points(_ task: EvalTask, _ k: Int) throws -> [SweepPoint] {
        let c = try context(task, k)
        var out = [
            SweepPoint(job: self, task: task, shots: k, heads: 0, ffns: 0, label: c.label, rankings: (c.heads, c.ffns), cellRecord: c.record, inGrid: false)
        ]
        for p in options.grid.points {
            if p.heads == 0 && p.ffns == 0 {
                out[0].inGrid = true
            } else {
                out.append(
                    SweepPoint(
                        job: self, task: task, shots: k, heads: p.heads, ffns: p.ffns, label: c.label, rankings: (c.heads, c.ffns),
                        cellRecord: c.record, inGrid: true))
            }
        }
        return out
    }

    func prepare(_ task: EvalTask, _ k: Int) throws -> (work: Evaluator.CellWork, plan: ScoringPlan) {
        let key = Cells.key(task, k)
        if let p = prepared[key] { return p }
        let work = try evaluator.prepareCell(task, shots: k)
        let p = (work, try evaluator.scorer.plan(work.requests))
        prepared[key] = p
        return p
    }

    /// Relative paths of one cell's point files.
    public func outputs(_ task: EvalTask, _ k: Int) throws -> [String] { try points(task, k).map { "points/\($0.stem).json" } }

    /// sweep.json and sweep.csv from every point file of this model in OUTDIR (the CSV from the same table).
    @discardableResult
    public func assemble() throws -> SweepTable {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return try DirectoryLock.withLock(directory) {
            var files: [SweepPointFile] = []
            for name in ((try? FileManager.default.contentsOfDirectory(atPath: directory + "/points")) ?? []).sorted() where name.hasSuffix(".json") {
                if let f = try? JSONFiles.read(SweepPointFile.self, from: "\(directory)/points/\(name)", what: "a sweep point"),
                    f.row.inputs?["model"] == evaluator.modelID
                {
                    files.append(f)
                }
            }
            // The baseline of each (cell, ranking, record) is its unpruned point's value.
            var baselines: [String: Double] = [:]
            for f in files where f.row.heads_removed == 0 && f.row.ffns_removed == 0 && f.row.heads_percent == 0 && f.row.ffns_percent == 0 {
                baselines[f.baselineKey] = f.row.value
            }
            var rows: [SweepRow] = []
            for f in files where f.inGrid {
                guard let baseline = baselines[f.baselineKey] else { continue }
                var row = f.row
                row.baseline = baseline
                row.delta = row.value - baseline
                rows.append(row)
            }
            let order = Dictionary(uniqueKeysWithValues: options.tasks.enumerated().map { ($1.rawValue, $0) })
            rows.sort { a, b in
                (order[a.task] ?? Int.max, a.task, a.shots, a.ranking, a.ffns_percent, a.heads_percent)
                    < (order[b.task] ?? Int.max, b.task, b.shots, b.ranking, b.ffns_percent, b.heads_percent)
            }
            let table = SweepTable(model: model, model_sha256: evaluator.modelID, rows: rows)
            try JSONFiles.write(table, to: directory + "/sweep.json")
            try AtomicFile.write([UInt8](table.csv.utf8), to: directory + "/sweep.csv")
            return table
        }
    }
}

/// OUTDIR/points/STEM.json: one scored point (its row without baseline and delta, which the table fills in).
struct SweepPointFile: Codable {
    var row: SweepRow
    /// Whether the point is on the grid (the baseline point of a grid without 0%/0% is not).
    var inGrid: Bool
    var baselineKey: String { "\(row.task)/\(row.shots)/\(row.ranking)/\(InputRecord.digest(row.inputs))" }
}

/// One point of one sweep cell, as the part scheme runs it.
struct SweepPoint: PartedCell {
    typealias Result = [[Double]]  // per request of the batch: [request index, loglikelihood, is_greedy 0/1]
    let job: SweepJob
    let task: EvalTask
    let shots: Int
    let heads: Double
    let ffns: Double
    /// Where the ranking came from (the row's `ranking`).
    let ranking: String
    let rankings: (heads: [[Double]]?, ffns: [[Double]]?)
    let cellRecord: InputRecord
    var inGrid: Bool
    var prepared: (work: Evaluator.CellWork, plan: ScoringPlan)?

    init(
        job: SweepJob, task: EvalTask, shots: Int, heads: Double, ffns: Double, label: String, rankings: (heads: [[Double]]?, ffns: [[Double]]?),
        cellRecord: InputRecord, inGrid: Bool
    ) {
        (self.job, self.task, self.shots, self.heads, self.ffns, self.ranking, self.rankings, self.cellRecord, self.inGrid) = (
            job, task, shots, heads, ffns, label, rankings, cellRecord, inGrid
        )
    }

    var label: String { "sweep \(Cells.key(task, shots))-shot at heads \(heads)%, FFNs \(ffns)%" }

    var selection: PrunePlan {
        PrunePlan.select(
            heads: rankings.heads.map { (ranking, ScoresFile(scores: $0), heads) }, ffns: rankings.ffns.map { (ranking, ScoresFile(scores: $0), ffns) })
    }

    var record: InputRecord { cellRecord }
    var partDirectory: String { job.directory }
    var stem: String {
        func p(_ x: Double) -> String { x == x.rounded() ? String(Int(x)) : String(x) }
        return "\(Cells.stem(task, shots))-h\(p(heads))-f\(p(ffns))"
            + (ranking == task.rawValue || ranking == "none" ? "" : "-" + ranking.filter { $0.isLetter || $0.isNumber || $0 == "_" })
    }
    var filePath: String { "\(job.directory)/points/\(stem).json" }

    func status() throws -> OutputStatus {
        guard let f = try? JSONFiles.read(SweepPointFile.self, from: filePath, what: "a sweep point") else { return .absent }
        return .of(
            f.row.inputs, against: record, intact: f.row.ranking == ranking && f.row.heads_percent == heads && f.row.ffns_percent == ffns && f.inGrid == inGrid)
    }

    mutating func prepare() throws -> Int {
        prepared = try job.prepare(task, shots)
        return prepared!.plan.batches.count
    }

    mutating func run(item: Int, context: JobContext) throws -> [[Double]] {
        var forward = job.evaluator.forwardOptions
        forward.mask = selection.mask(config: job.config)
        return BatchScores.encode(try job.evaluator.scorer.score(prepared!.plan, batch: item, options: forward))
    }

    func check(_ result: [[Double]], item: Int) -> String? { BatchScores.check(result, plan: prepared?.plan, batch: item) }

    mutating func finish(_ results: [[[Double]]], context: JobContext) throws {
        guard let (work, _) = prepared else { return }
        let metric = task.headlineMetric
        let value = try job.evaluator.outcomes(work, scores: BatchScores.assemble(results, requests: work.requests.count)).metrics[metric] ?? .nan
        let plan = selection
        let row = SweepRow(
            task: task.rawValue, shots: shots, heads_percent: heads, ffns_percent: ffns, heads_removed: plan.heads.count,
            ffns_removed: plan.ffns.count, ranking: ranking, metric: metric, value: value, baseline: .nan, delta: .nan,
            docs: work.docs, inputs: record)
        var stored = row
        stored.baseline = 0
        stored.delta = 0
        try JSONFiles.write(SweepPointFile(row: stored, inGrid: inGrid), to: filePath)
        try job.assemble()
    }

    mutating func skip(_ reason: TaskError, context: JobContext) {
        if !job.skips.entries.contains(where: { $0.cell == Cells.key(task, shots) }) { job.skips.add(Cells.key(task, shots), reason) }
    }
}
