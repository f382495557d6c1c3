import Analysis
import Evaluation
import Foundation
import HRZFormat
import Jobs
import Pruning
import Runtime
import Files

struct SweepCommand: Command {
    static let spec = CommandSpec(
        name: "sweep", summary: "pruning curves: score tasks with the lowest-ranked heads/FFNs masked over a grid of percentages",
        synopsis: [
            "MODEL.hrz --tasks copa,piqa|all --shots 0,1,5 --data DIR --heads SCORES[,SCORES…] -o OUTDIR",
            "MODEL.hrz … [--ffns SCORES[,SCORES…]] [--grid heads=0:90:10[,ffns=0:50:10]] [--ranking-from TASK|aggregate] [--limit N]",
            "MODEL.hrz … [--memory-budget B] [--threads N] [--precision fp32|bf16] [--shard i/N | --merge-shards N]",
        ],
        positionals: [Positional("MODEL.hrz", "")],
        groups: [
            OptionGroup("Tasks and data", [Groups.tasks, Groups.shots(), Groups.data, Groups.limit]),
            OptionGroup(
                "What to remove",
                [
                    Option("--heads", value: "FILES", repeatable: true, "heads scores files (comma-separated or repeated)"),
                    Option("--ffns", value: "FILES", repeatable: true, "FFN scores files"),
                    Option("--grid", value: "SPEC", default: "heads=0:90:10", "the points: heads=…[,ffns=…], each a start:end:step range or a list"),
                    Option("--ranking-from", value: "T", "rank every task by task T's scores, or by the aggregate"),
                ]),
            OptionGroup("Output", [Groups.output("OUTDIR", "the sweep directory")]),
            OptionGroup("Compute", Groups.compute.options + [Groups.batchTokens]),
            Groups.parts("scoring batches of every point of every cell"),
        ],
        discussion: """
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
            Each point is saved as it finishes (OUTDIR/points/); rerunning the same command after a kill resumes
            inside the point it stopped in.
            """)

    var model: String
    var options: SweepOptions
    var headFiles: [String]
    var ffnFiles: [String]
    var threads: Int
    var part: Part?
    var mergeShards: Int?

    init(_ args: ParsedArguments) throws(UsageError) {
        let data = try args.required("--data")
        let tasks = try parseTasks(args.string("--tasks"), data: data)
        let shots = try parseShots(args.string("--shots")!)
        options = SweepOptions(tasks: tasks, shots: shots, dataDirectory: data, outputDirectory: try args.required("-o"))
        headFiles = args.list("--heads")
        ffnFiles = args.list("--ffns")
        do { options.grid = try SweepGrid(parsing: args.string("--grid")!) } catch { throw UsageError("\(error)") }
        if options.grid.heads != [0] && headFiles.isEmpty { throw UsageError("the grid prunes heads: give --heads SCORES") }
        if options.grid.ffns != [0] && ffnFiles.isEmpty { throw UsageError("the grid prunes FFNs: give --ffns SCORES") }
        options.rankingFrom = args.string("--ranking-from")
        if let r = options.rankingFrom, r != "aggregate", EvalTask.named(r, dataDirectory: data) == nil {
            throw UsageError("--ranking-from takes a task name or aggregate, got '\(r)'")
        }
        options.limit = try args.int("--limit", in: 1...100_000_000)
        options.memoryBudget = try args.memoryBudget()
        options.batchTokens = try args.int("--batch-tokens", in: 1...10_000_000)
        options.precision = try args.precision()
        part = try args.part()
        mergeShards = try args.mergeShards()
        threads = try args.threads()
        model = try args.positional(required: 0)
    }

    var inputs: [String] { [model, options.dataDirectory] + headFiles + ffnFiles }
    var outputs: [FileGuard.Output] { [.directory(options.outputDirectory)] }

    func run() throws -> Int32 {
        Threads.set(threads)
        var options = self.options
        let config = try HRZReader(path: model).config
        options.heads = try headFiles.map { ($0, try PrunePlan.scores($0, kind: "heads", config: config)) }
        options.ffns = try ffnFiles.map { ($0, try PrunePlan.scores($0, kind: "ffns", config: config)) }
        let job = try SweepJob(model: model, options: options)
        let bar = ProgressBar("sweep")
        let context = JobContext(
            log: {
                bar.finish(); printError($0)
            }, progress: { what, done, total in bar.update(phase: what, done: done, total: total, unit: .count) })
        if let part {
            try job.run(part: part, context: context)
            bar.finish()
            print("wrote \(options.outputDirectory)/shards/*-\(part.index)of\(part.count).json; merge with --merge-shards \(part.count)")
        } else {
            let table = try mergeShards.map { try job.merge(parts: $0, context: context) } ?? job.run(context: context)
            bar.finish()
            print(Self.summary(table))
            print("wrote \(options.outputDirectory)/sweep.json and sweep.csv (\(table.rows.count) points)")
        }
        for (cell, error) in job.skips.entries { printError("skipped \(cell)-shot: \(error)") }
        return job.skips.isEmpty ? 0 : 1
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
