import Analysis
import Evaluation
import Foundation
import HRZFormat
import Pruning
import Runtime
import Files

struct SweepCommand: Command {
    static let name = "sweep"
    static let summary = "pruning curves: score tasks with the lowest-ranked heads/FFNs masked over a grid of percentages"
    static let usage = """
    Usage: headroom sweep MODEL.hrz --tasks copa,piqa|all --shots 0,1,5 --data DIR --heads SCORES[,SCORES…]
                          [--ffns SCORES[,SCORES…]] [--grid heads=0:90:10[,ffns=0:50:10]]
                          [--ranking-from TASK|aggregate] [--limit N] [--memory-budget B] [--threads N] [--precision fp32|bf16] -o OUTDIR

    For each task × shots cell and each grid point (heads%, ffns%), removes the floor(p · total / 100)
    lowest-scoring heads and FFNs (the global ranking `prune` uses) with masks, not by rewriting the
    model, and scores the cell as `headroom eval` does (acc; ReCoRD: em). The grid is the product of its
    dimensions: `heads=0:90:10` alone is the iterative head curve, with `ffns=0:50:10` the combined grid.
    Values may also be listed: `heads=0,30,50,70,ffns=0,20`.

    Rankings: each task is ranked by the scores file of the same task (preferring the same shots); a
    single file ranks every task. --ranking-from TASK ranks every task by TASK's scores (the paper's
    cross-task pruning); --ranking-from aggregate by the mean of all files given.

    Writes OUTDIR/sweep.json and OUTDIR/sweep.csv, one row per point: task, shots, heads_percent,
    ffns_percent, heads_removed, ffns_removed, ranking, metric, value, baseline (0% / 0%), delta, docs.
    Each point is saved as it finishes; rerunning the same command after a kill resumes at the next one.

    Options:
      --shard i/N         compute grid points i, i+N, … (over all cells) into OUTDIR/shards/ (one job of an array)
      --merge-shards N    join the N shards into sweep.json and sweep.csv, as an unsharded sweep writes them
      --heads FILES        heads scores files (comma-separated or repeated)
      --ffns FILES         FFN scores files
      --grid SPEC          default heads=0:90:10
      --ranking-from T     rank every task by task T's scores, or by the aggregate
      --limit N            the first N docs of each cell's shuffled order
      --memory-budget B    activation bytes in flight (e.g. 2G)
      --threads N          threads (default: all cores)
      --precision P        fp32 (default, exact) or bf16 (GEMM inputs rounded to bf16, fp32 accumulation)
    """

    var model: String
    var options: SweepOptions
    var headFiles: [String] = []
    var ffnFiles: [String] = []
    var threads: Int
    var mergeShards: Int?

    init(_ args: inout Arguments) throws(UsageError) {
        guard let data = try args.option("--data") else { throw UsageError("missing --data DIR") }
        let tasks = try parseTasks(try args.tasks(), data: data)
        let shots = try parseShots(try args.option("--shots") ?? "0")
        guard let out = try args.option("-o") else { throw UsageError("missing -o OUTDIR") }
        options = SweepOptions(tasks: tasks, shots: shots, dataDirectory: data, outputDirectory: out)
        while let h = try args.option("--heads") { headFiles += h.split(separator: ",").map(String.init) }
        while let f = try args.option("--ffns") { ffnFiles += f.split(separator: ",").map(String.init) }
        let grid = try args.option("--grid") ?? "heads=0:90:10"
        do { options.grid = try SweepGrid(parsing: grid) } catch { throw UsageError("\(error)") }
        if options.grid.heads != [0] && headFiles.isEmpty { throw UsageError("the grid prunes heads: give --heads SCORES") }
        if options.grid.ffns != [0] && ffnFiles.isEmpty { throw UsageError("the grid prunes FFNs: give --ffns SCORES") }
        options.rankingFrom = try args.option("--ranking-from")
        if let r = options.rankingFrom, r != "aggregate", EvalTask.named(r, dataDirectory: data) == nil { throw UsageError("--ranking-from takes a task name or aggregate, got '\(r)'") }
        options.limit = try args.positive("--limit")
        options.memoryBudget = try parseBytes(try args.option("--memory-budget"), "--memory-budget")
        options.precision = try args.precision()
        options.shard = try args.shard()
        mergeShards = try args.positive("--merge-shards")
        if options.shard != nil && mergeShards != nil { throw UsageError("give --shard i/N or --merge-shards N, not both") }
        threads = try args.option("--threads", default: ProcessInfo.processInfo.activeProcessorCount, in: 1...1024)
        model = try args.positional("MODEL.hrz")
    }

    var inputs: [String] { [model, options.dataDirectory] + headFiles + ffnFiles }
    var outputs: [FileGuard.Output] { [.directory(options.outputDirectory)] }

    func run() throws -> Int32 {
        Threads.set(threads)
        var options = self.options
        let config = try HRZReader(path: model).config
        options.heads = try headFiles.map { ($0, try PrunePlan.scores($0, kind: "heads", config: config)) }
        options.ffns = try ffnFiles.map { ($0, try PrunePlan.scores($0, kind: "ffns", config: config)) }
        let sweep = try Sweep(modelPath: model, options: options)
        if let count = mergeShards {
            let table = try sweep.mergeShards(count, log: { printError($0) })
            print(Self.summary(table))
            print("wrote \(options.outputDirectory)/sweep.json and sweep.csv (\(table.rows.count) points from \(count) shards)")
            return 0
        }
        let bar = ProgressBar("sweep")
        let table = try sweep.run(progress: { done, total in bar.update(phase: "points", done: done, total: total, unit: .count) },
                                  log: { printError($0) })
        bar.finish()
        print(Self.summary(table))
        if let shard = options.shard {
            print("wrote \(options.outputDirectory)/shards/sweep-\(shard.index)of\(shard.count).json (\(table.rows.count) points); merge with --merge-shards \(shard.count)")
        } else {
            print("wrote \(options.outputDirectory)/sweep.json and sweep.csv (\(table.rows.count) points)")
        }
        for (cell, error) in sweep.skipped { printError("skipped \(cell)-shot: \(error)") }
        return sweep.skipped.isEmpty ? 0 : 1
    }

    /// One line per cell and FFN percentage: the metric at each heads percentage.
    static func summary(_ table: SweepTable) -> String {
        var lines: [String] = []
        var seen: [String] = []
        for r in table.rows where !seen.contains("\(r.task)/\(r.shots)/\(r.ffns_percent)") {
            seen.append("\(r.task)/\(r.shots)/\(r.ffns_percent)")
            let row = table.rows.filter { $0.task == r.task && $0.shots == r.shots && $0.ffns_percent == r.ffns_percent }
                .sorted { $0.heads_percent < $1.heads_percent }
            let cells = row.map { String(format: "%g%%: %.3f", $0.heads_percent, $0.value) }.joined(separator: "  ")
            lines.append(String(format: "%@ %d-shot, FFNs −%g%% (%@): ", r.task, r.shots, r.ffns_percent, r.metric) + cells)
        }
        return lines.joined(separator: "\n")
    }
}

/// `copa,piqa` or `all` → tasks, with a usage error naming the unknown one. A name that is not one of the
/// paper's 16 is a generic task (formats/tasks.md) when DATA/<name>/validation.jsonl exists.
func parseTasks(_ text: String?, data: String?) throws(UsageError) -> [EvalTask] {
    guard let text else { throw UsageError("missing --tasks") }
    var list: [EvalTask] = []
    for name in text.split(separator: ",").map(String.init) {
        if name == "all" { list += EvalTask.allCases; continue }
        guard let t = EvalTask.named(name, dataDirectory: data) else {
            throw UsageError("unknown task '\(name)': not one of \(EvalTask.allCases.map(\.rawValue).joined(separator: ", ")) or all, "
                             + "and no generic task file \(data ?? "DIR")/\(name)/validation.jsonl")
        }
        list.append(t)
    }
    return list
}

/// `0,1,5` → shots.
func parseShots(_ text: String) throws(UsageError) -> [Int] {
    let shots = text.split(separator: ",").map { Int($0) }
    guard !shots.isEmpty, shots.allSatisfy({ $0 != nil && $0! >= 0 && $0! <= 64 }) else { throw UsageError("--shots takes numbers like 0,1,5, got '\(text)'") }
    return shots.map { $0! }
}

/// `--tasks list`: every task, the splits it reads, and which of them DIR holds (with row counts); then the
/// generic tasks found in DIR.
func taskListing(data: String) -> String {
    func rows(_ path: String) -> String {
        guard let text = try? FileGuard.contents(atPath: path) else { return "missing" }
        return "\(text.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }) rows"
    }
    var lines = ["splits under \(data):", "task              eval split                        few-shot split"]
    for task in EvalTask.allCases {
        let eval = "\(task.evalSplit): " + rows("\(data)/\(task.rawValue)/\(task.evalSplit).jsonl")
        let shots = task.fewshotSplit.map { "\($0): " + rows("\(data)/\(task.rawValue)/\($0).jsonl") } ?? "(draws from its eval split)"
        lines.append(task.rawValue.padding(toLength: 18, withPad: " ", startingAt: 0) + eval.padding(toLength: 34, withPad: " ", startingAt: 0) + shots)
    }
    let known = Set(EvalTask.allCases.map(\.rawValue))
    let generic = ((try? FileManager.default.contentsOfDirectory(atPath: data)) ?? []).sorted()
        .filter { !known.contains($0) && FileManager.default.fileExists(atPath: "\(data)/\($0)/validation.jsonl") }
    for name in generic {
        lines.append(name.padding(toLength: 18, withPad: " ", startingAt: 0) + ("validation: " + rows("\(data)/\(name)/validation.jsonl")).padding(toLength: 34, withPad: " ", startingAt: 0)
                     + "train: " + rows("\(data)/\(name)/train.jsonl") + "  (generic)")
    }
    return lines.joined(separator: "\n")
}
