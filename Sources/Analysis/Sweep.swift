/// Pruning sweeps: for every task × shots cell and every point of a heads% × FFNs% grid, remove the
/// lowest-ranked heads and FFNs with masks (not by rewriting the model) and score the cell. Each finished
/// point is appended to DIR/sweep.json and DIR/sweep.csv atomically, so a killed sweep resumes where it stopped.
import Evaluation
import Foundation
import HRZFormat
import Runtime
import Files

/// `heads=0:90:10,ffns=0:50:10`: each dimension a range `start:end:step` (end included) or listed values.
public struct SweepGrid: Sendable, Equatable {
    public var heads: [Double] = [0]
    public var ffns: [Double] = [0]

    public init(heads: [Double] = [0], ffns: [Double] = [0]) {
        self.heads = heads
        self.ffns = ffns
    }

    public init(parsing text: String) throws {
        var values: [String: [Double]] = [:]
        var current: String?
        for token in text.split(separator: ",").map(String.init) {
            var spec = token
            if let eq = token.firstIndex(of: "=") {
                current = String(token[..<eq])
                guard current == "heads" || current == "ffns" else { throw PruneError(file: nil, "--grid: unknown dimension '\(current!)'; use heads= and ffns=") }
                guard values[current!] == nil else { throw PruneError(file: nil, "--grid: '\(current!)' given twice") }
                values[current!] = []
                spec = String(token[token.index(after: eq)...])
            }
            guard let name = current else { throw PruneError(file: nil, "--grid: '\(token)' comes before any heads= or ffns=") }
            let parts = spec.split(separator: ":").map { Double($0) }
            if parts.count == 1, let v = parts[0] {
                values[name]!.append(v)
            } else if parts.count == 3, let a = parts[0], let b = parts[1], let s = parts[2], s > 0, a <= b {
                guard (b - a) / s <= 1000 else { throw PruneError(file: nil, "--grid: '\(spec)' makes more than 1000 points") }
                var v = a
                while v <= b + 1e-9 { values[name]!.append(v); v += s }
            } else {
                throw PruneError(file: nil, "--grid: '\(spec)' is not a percentage or start:end:step")
            }
        }
        for (name, list) in values where list.contains(where: { !(0...100).contains($0) }) {
            throw PruneError(file: nil, "--grid: \(name) percentages must lie in 0…100")
        }
        heads = values["heads"] ?? [0]
        ffns = values["ffns"] ?? [0]
    }

    /// Every (heads%, ffns%) pair, heads varying fastest.
    public var points: [(heads: Double, ffns: Double)] { ffns.flatMap { f in heads.map { ($0, f) } } }
}

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
    /// The cell's inputs plus the rankings used (their contents); a rerun recomputes a row whose record differs.
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
            [r.task, "\(r.shots)", fmt(r.heads_percent), fmt(r.ffns_percent), "\(r.heads_removed)", "\(r.ffns_removed)", r.ranking,
             r.metric, fmt(r.value), fmt(r.baseline), fmt(r.delta), "\(r.docs)"].joined(separator: ",")
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
    public var precision = Precision.fp32
    /// Heads scores files, e.g. one per task (and shots).
    public var heads: [(path: String, file: ScoresFile)] = []
    public var ffns: [(path: String, file: ScoresFile)] = []
    /// Rank every task by this task's scores (the paper's cross-task figures), or `aggregate`: the mean of all files.
    public var rankingFrom: String?
    /// Compute only the grid points i, i+N, … (over all cells, in run order) into DIR/shards/; `mergeShards` joins them.
    public var shard: Shard?

    public init(tasks: [EvalTask], shots: [Int], dataDirectory: String, outputDirectory: String) {
        self.tasks = tasks
        self.shots = shots
        self.dataDirectory = dataDirectory
        self.outputDirectory = outputDirectory
    }
}

public final class Sweep {
    let options: SweepOptions
    let evaluator: Evaluator
    let modelPath: String
    /// Cells skipped because their data is missing.
    public private(set) var skipped: [(cell: String, error: TaskError)] = []

    public init(modelPath: String, options: SweepOptions) throws {
        var eval = EvalOptions(tasks: options.tasks, shots: options.shots, dataDirectory: options.dataDirectory,
                               outputDirectory: options.outputDirectory)
        eval.limit = options.limit
        eval.memoryBudget = options.memoryBudget
        eval.precision = options.precision
        evaluator = try Evaluator(modelPath: modelPath, options: eval)
        self.options = options
        self.modelPath = modelPath
    }

    var jsonPath: String { options.shard.map { shardPath($0) } ?? options.outputDirectory + "/sweep.json" }
    var csvPath: String { (jsonPath as NSString).deletingPathExtension + ".csv" }
    func shardPath(_ s: Shard) -> String { "\(options.outputDirectory)/shards/sweep-\(s.index)of\(s.count).json" }

    /// A cell's ranking label, rankings and recorded inputs (the run and the merge compute them the same way).
    func cellContext(_ task: EvalTask, _ k: Int) throws -> (label: String, heads: (label: String, scores: [[Double]])?,
                                                          ffns: (label: String, scores: [[Double]])?, inputs: InputRecord) {
        let heads = options.heads.isEmpty ? nil : try Self.ranking(options.heads, task: task.rawValue, shots: k, from: options.rankingFrom, kind: "heads")
        let ffns = options.ffns.isEmpty ? nil : try Self.ranking(options.ffns, task: task.rawValue, shots: k, from: options.rankingFrom, kind: "ffns")
        let labels = [heads?.label, ffns?.label].compactMap { $0 }
        let label = labels.isEmpty ? "none" : Set(labels).count == 1 ? labels[0] : "heads: \(labels[0]); ffns: \(labels[1])"
        var inputs = evaluator.cellInputs(task, shots: k)
        // A point depends on its ranking only through the order it removes in (float noise in a
        // recomputed scores file that keeps the order keeps the points).
        if let heads { inputs["heads ranking"] = InputRecord.digest(Ranking.ascending(heads.scores).map { [$0.layer, $0.head] }) }
        if let ffns { inputs["ffns ranking"] = InputRecord.digest(Ranking.ascending(ffns.scores).map { [$0.layer, $0.head] }) }
        return (label, heads, ffns, inputs)
    }

    /// Joins the N shards into DIR/sweep.json and sweep.csv, rows in run order, as an unsharded sweep writes
    /// them. Every point of every cell must be in some shard, computed from this sweep's inputs.
    public func mergeShards(_ count: Int, log: (String) -> Void = { _ in }) throws -> SweepTable {
        var rows: [String: SweepRow] = [:]
        for i in 0..<count {
            let table = try readShard(SweepTable.self, at: shardPath(Shard(index: i, count: count)), index: i, count: count, command: "sweep")
            for row in table.rows { rows[row.key] = row }
        }
        var merged = SweepTable(model: modelPath, model_sha256: evaluator.modelID, rows: [])
        for task in options.tasks {
            for k in options.shots {
                let cell = try cellContext(task, k)
                for p in options.grid.points {
                    let key = "\(task.rawValue)/\(k)/\(p.heads)/\(p.ffns)/\(cell.label)"
                    guard let row = rows[key] else {
                        throw PruneError(file: shardPath(Shard(index: 0, count: count)), "no shard holds \(task.rawValue)/\(k)-shot at heads \(p.heads)%, FFNs \(p.ffns)%")
                    }
                    if let change = cell.inputs.changes(from: row.inputs) {
                        throw PruneError(file: options.outputDirectory + "/shards", "\(task.rawValue)/\(k)-shot was computed from other inputs (\(change))")
                    }
                    merged.rows.append(row)
                }
            }
        }
        try DirectoryLock.withLock(options.outputDirectory) {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            try AtomicFile.write([UInt8](try encoder.encode(merged)), to: options.outputDirectory + "/sweep.json")
            try AtomicFile.write([UInt8](merged.csv.utf8), to: options.outputDirectory + "/sweep.csv")
        }
        log("merged \(count) shards: \(merged.rows.count) points")
        return merged
    }

    /// The scores matrix ranking `task` at `shots`, and a label saying where it came from.
    /// Same task (preferring the same shots); a single file ranks every task; `aggregate` averages all files
    /// (those at the same shots, when there are any).
    public static func ranking(_ files: [(path: String, file: ScoresFile)], task: String, shots: Int,
                               from: String?, kind: String) throws -> (label: String, scores: [[Double]]) {
        let source = from ?? task
        if source == "aggregate" {
            let sameShots = files.filter { $0.file.shots == shots }
            let chosen = sameShots.isEmpty ? files : sameShots
            return ("aggregate", Ranking.mean(chosen.map(\.file.scores)))
        }
        let matching = files.filter { $0.file.task == source }
        if let best = matching.first(where: { $0.file.shots == shots }) ?? matching.first { return (source, best.file.scores) }
        if files.count == 1, from == nil { return (files[0].file.task ?? files[0].path, files[0].file.scores) }
        throw PruneError(file: nil, "no \(kind) scores for task '\(source)' among \(files.map(\.path).joined(separator: ", ")); "
                         + "give one file per task, or --ranking-from TASK|aggregate")
    }

    /// The table as this process last wrote it, with the file's identity (inode, size, mtime) right after:
    /// while the file still has that identity nobody else wrote it, and it need not be decoded again.
    private var written: (table: SweepTable, identity: String)?

    func tableStamp() -> String? { fileStamp(jsonPath) }

    func loadTable() throws -> SweepTable? {
        if let written, let now = tableStamp(), now == written.identity { return written.table }
        guard let data = try FileGuard.contents(atPath: jsonPath) else { return nil }
        do { return try JSONDecoder().decode(SweepTable.self, from: data) } catch {
            throw PruneError(file: jsonPath, "cannot read the existing sweep: \(error)")
        }
    }

    /// Runs every point that DIR/sweep.json does not already hold with the same recorded inputs (model, data
    /// files, limit, the rankings' contents, precision, tool version). `progress(done, total)` counts grid points.
    public func run(progress: ((Int, Int) -> Void)? = nil, log: (String) -> Void = { _ in }) throws -> SweepTable {
        try FileManager.default.createDirectory(atPath: (jsonPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let sha = evaluator.modelID
        var table = SweepTable(model: modelPath, model_sha256: sha, rows: [])
        // sweep.csv is derived from sweep.json; a run killed between the two writes left it behind: repair it now.
        try DirectoryLock.withLock(options.outputDirectory) {
            if let existing = try loadTable() { try AtomicFile.write([UInt8](existing.csv.utf8), to: csvPath) }
        }
        let config = try HRZReader(path: modelPath).config
        let allPoints = options.grid.points
        // A shard takes every N-th point over all cells in run order; each point is computed exactly as alone.
        func mine(_ cell: Int) -> [(heads: Double, ffns: Double)] {
            guard let shard = options.shard else { return allPoints }
            return allPoints.indices.filter { (cell * allPoints.count + $0) % shard.count == shard.index }.map { allPoints[$0] }
        }
        let cells = options.tasks.count * options.shots.count
        let total = (0..<cells).reduce(0) { $0 + mine($1).count }
        var finished = 0, cell = -1
        for task in options.tasks {
            for k in options.shots {
                cell += 1
                let points = mine(cell)
                if points.isEmpty { continue }
                let (label, heads, ffns, inputs) = try cellContext(task, k)
                func key(_ h: Double, _ f: Double) -> String { "\(task.rawValue)/\(k)/\(h)/\(f)/\(label)" }
                let keys = Set(points.map { key($0.heads, $0.ffns) })
                let existing = (try loadTable()?.rows ?? []).filter { keys.contains($0.key) }
                let kept = existing.filter { $0.inputs == inputs }
                if let stale = existing.first(where: { $0.inputs != inputs }), let change = inputs.changes(from: stale.inputs) {
                    log("\(task.rawValue) \(k)-shot: inputs changed (\(change)); recomputing its points")
                }
                let done = Set(kept.map(\.key))
                let pending = points.filter { !done.contains(key($0.heads, $0.ffns)) }
                finished += points.count - pending.count
                if pending.isEmpty { log("\(task.rawValue) \(k)-shot: all \(points.count) points already done, kept"); continue }
                let work: Evaluator.CellWork
                do { work = try evaluator.prepareCell(task, shots: k) } catch let error as TaskError where error.missingData {
                    skipped.append(("\(task.rawValue)/\(k)", error))
                    finished += pending.count
                    continue
                }
                let metric = task.headlineMetric
                func score(_ plan: PrunePlan) throws -> Double {
                    var forward = evaluator.forwardOptions
                    forward.mask = plan.mask(config: config)
                    return try evaluator.score(work, forward: forward).metrics[metric] ?? .nan
                }
                // The unpruned value is every point's baseline (and the 0%/0% point's value); a resumed cell keeps its own.
                let baseline = try kept.first?.baseline ?? score(PrunePlan())
                for point in pending {
                    let plan = PrunePlan.select(heads: heads.map { ($0.label, ScoresFile(scores: $0.scores), point.heads) },
                                                ffns: ffns.map { ($0.label, ScoresFile(scores: $0.scores), point.ffns) })
                    let value = point.heads == 0 && point.ffns == 0 ? baseline : try score(plan)
                    let row = SweepRow(task: task.rawValue, shots: k, heads_percent: point.heads, ffns_percent: point.ffns,
                                       heads_removed: plan.heads.count, ffns_removed: plan.ffns.count, ranking: label,
                                       metric: metric, value: value, baseline: baseline, delta: value - baseline, docs: work.docs, inputs: inputs)
                    table = try save(row)
                    finished += 1
                    progress?(finished, total)
                }
            }
        }
        return try loadTable() ?? table
    }

    /// Merges one row into sweep.json under the directory's lock (replacing a row with its key, dropping rows
    /// of another model), then writes sweep.csv from that same table: the CSV never disagrees with the JSON.
    func save(_ row: SweepRow) throws -> SweepTable {
        try DirectoryLock.withLock(options.outputDirectory) {
            var table = SweepTable(model: modelPath, model_sha256: evaluator.modelID, rows: [])
            if let current = try loadTable() {
                table.rows = current.rows.filter { $0.key != row.key && $0.inputs?["model"] == evaluator.modelID }
            }
            table.rows.append(row)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            try AtomicFile.write([UInt8](try encoder.encode(table)), to: jsonPath)
            written = tableStamp().map { (table, $0) }
            try AtomicFile.write([UInt8](table.csv.utf8), to: csvPath)
            return table
        }
    }
}

extension ScoresFile {
    /// A bare matrix as a scores file, for selection.
    public init(scores: [[Double]]) {
        self.init(kind: "", method: "", task: nil, shots: nil, model_sha256: "", examples: 0, scores: scores)
    }
}
