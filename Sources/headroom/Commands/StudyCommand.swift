import Foundation
import HRZFormat
import Runtime
import Study

struct StudyCommand: Command {
    static let name = "study"
    static let summary = "the paper end to end: eval, importance, rankings, sweeps, induction, a pruned model, report.html"
    static let usage = """
    Usage: headroom study [MODEL.hrz --tasks T1,T2 --data DIR] [--shots 0,1,5] [-o DIR] [--limit N]
                          [--importance-examples N] [--prune heads=70,ffns=20] [--induction-sequences N]
                          [--memory-budget B] [--threads N]

    Runs the pipeline of Bansal et al. (2023), each step resumable (a rerun skips what is done):
      1. baseline evaluation                      (DIR/baseline/results.json)
      2. gradient head importance per task × shots (DIR/importance/heads-<task>-<k>shot.json)
      3. oracle FFN importance per task × shots    (DIR/importance/ffns-<task>-<k>shot.json)
      4. rankings, aggregates, Spearman matrices   (DIR/ranks/{heads,ffns}/)
      5. iterative head and FFN sweeps (0-90%) and the combined grid (heads 0-90% × FFNs 0-50%,
         aggregate ranking, at the largest shots)  (DIR/sweeps/{heads,ffns,combined}/sweep.csv)
      6. induction scores: prefix matching, copying (DIR/induction/)
      7. one physically pruned model (default 70% heads + 20% FFNs by the aggregate rankings),
         evaluated and timed against the original  (DIR/pruned/)
      8. DIR/report.html: one self-contained page of figures (inline SVG), numbers in DIR/figures/*.csv

    With no MODEL, runs the embedded demo: a 4-layer OPT trained to learn in context (Tools/train_demo.py)
    on its four generic tasks (demo_copy, demo_first, demo_last, demo_recall), into ./headroom-study.
    Re-render the report from a study directory with `headroom report DIR`.

    Options:
      --tasks LIST            tasks (the paper's names, or generic tasks in DIR; required with MODEL)
      --data DIR              task data (required with MODEL)
      --shots LIST            default 0,1,5
      -o DIR                  study directory (default ./headroom-study)
      --limit N               eval docs per cell (default: all; the demo uses 100)
      --importance-examples N training docs for gradient importance (default 2500, the paper's; demo 200)
      --prune SPEC            the pruned model's point (default heads=70,ffns=20; the demo: ffns=25, one of 4)
      --induction-sequences N random sequences for the induction scores (default 20)
      --memory-budget B       activation bytes in flight; saved layer inputs beyond it spill to $TMPDIR
      --threads N             threads (default: all cores)
    """

    var options: StudyOptions
    var output: String
    var threads: Int

    init(_ args: inout Arguments) throws(UsageError) {
        // Every option first: what is left is MODEL (an option's value must not be taken for it).
        output = try args.option("-o") ?? "headroom-study"
        let taskList = try args.option("--tasks"), data = try args.option("--data")
        let shots = try parseShots(try args.option("--shots") ?? "0,1,5")
        let limit = try args.positive("--limit")
        let importance = try args.positive("--importance-examples"), induction = try args.positive("--induction-sequences")
        let prune = try args.option("--prune")
        let memoryBudget = try parseBytes(try args.option("--memory-budget"), "--memory-budget")
        threads = try args.option("--threads", default: ProcessInfo.processInfo.activeProcessorCount, in: 1...1024)
        let model = args.isEmpty ? nil : try args.positional("MODEL.hrz")
        if let model {
            guard let data else { throw UsageError("missing --data DIR (needed with MODEL)") }
            guard taskList != nil else { throw UsageError("missing --tasks (needed with MODEL)") }
            let tasks = try parseTasks(taskList, data: data)
            options = StudyOptions(model: model, tasks: tasks.map(\.rawValue), shots: shots, data: data)
        } else {
            guard let demo = Demo.model, let demoData = Demo.data else {
                throw UsageError("the embedded demo model is missing from this build (Sources/Study/Demo); give MODEL.hrz --tasks --data")
            }
            var tasks = Demo.tasks
            if let taskList { tasks = try parseTasks(taskList, data: data ?? demoData).map(\.rawValue) }
            if data == nil, let other = tasks.first(where: { !Demo.tasks.contains($0) }) {
                throw UsageError("the demo has no data for task '\(other)' (its tasks: \(Demo.tasks.joined(separator: ", "))); give MODEL.hrz and --data DIR")
            }
            options = StudyOptions(model: demo, tasks: tasks, shots: shots, data: data ?? demoData)
            options.limit = 100
            options.importanceExamples = 200
            options.pruneFFNs = 25  // 4 layers: 20% would floor to no FFN at all
            options.inductionSequences = 8  // lengths 25…39, within what the demo model was trained on
            options.label = "embedded demo model (Tools/train_demo.py)"
        }
        if let limit { options.limit = limit }
        if let importance { options.importanceExamples = importance }
        if let induction { options.inductionSequences = induction }
        if let spec = prune {
            for part in spec.split(separator: ",") {
                let kv = part.split(separator: "=")
                guard kv.count == 2, let p = Double(kv[1]), (0...100).contains(p), kv[0] == "heads" || kv[0] == "ffns" else {
                    throw UsageError("--prune takes heads=P,ffns=P with percentages, got '\(spec)'")
                }
                if kv[0] == "heads" { options.pruneHeads = p } else { options.pruneFFNs = p }
            }
        }
        options.memoryBudget = memoryBudget
    }

    var inputs: [String] { [options.model, options.data] }
    var outputs: [FileGuard.Output] { [.directory(output)] }

    func run() throws -> Int32 {
        Runtime.setThreads(threads)
        let study = try Study(options: options, directory: output)
        let bar = ProgressBar("study")
        // The overall position, "[5/8]", before each step's own bar.
        var step = ""
        let started = Date()
        study.log = { line in
            bar.finish()
            print(line)
            if line.hasPrefix("["), let close = line.firstIndex(of: "]") { step = String(line[...close]) }
        }
        study.progress = { what, done, total in
            bar.update(phase: "\(step) \(what)", done: done, total: total, unit: .count)
        }
        let report = try study.run()
        bar.finish()
        for s in study.skipped { printError("skipped: \(s)") }
        let absolute = report.hasPrefix("/") ? report : FileManager.default.currentDirectoryPath + "/" + report
        print(String(format: "study finished in %.0f s; report: %@", Date().timeIntervalSince(started), (absolute as NSString).standardizingPath))
        return 0
    }
}

struct DemoCommand: Command {
    static let name = "demo"
    static let summary = "the same as `headroom study` with no model: the embedded demo, end to end"
    static let usage = """
    Usage: headroom demo [-o DIR] [--threads N]

    Runs `headroom study` on the embedded demo model and tasks (see `headroom study --help`).
    """
    var study: StudyCommand
    init(_ args: inout Arguments) throws(UsageError) { study = try StudyCommand(&args) }
    func run() throws -> Int32 { try study.run() }
}

struct ReportCommand: Command {
    static let name = "report"
    static let summary = "re-render DIR/report.html from an existing study directory"
    static let usage = """
    Usage: headroom report DIR

    Reads what `headroom study` wrote in DIR (study.json, baseline/, importance/, sweeps/, induction/,
    pruned/) and writes DIR/report.html and DIR/figures/*.csv. Missing steps are marked in the report.
    """
    var directory: String
    init(_ args: inout Arguments) throws(UsageError) { directory = try args.positional("DIR") }
    func run() throws -> Int32 {
        let path = try StudyReport.render(directory: directory)
        print("wrote \(path)")
        return 0
    }
}
