import Foundation
import HRZFormat
import Runtime
import Study
import Files

struct StudyCommand: Command {
    static let spec = CommandSpec(
        name: "study", summary: "the paper end to end: eval, importance, rankings, sweeps, induction, a pruned model, report.html",
        synopsis: [
            "[MODEL.hrz --tasks T1,T2 --data DIR] [--shots 0,1,5] [-o DIR] [--limit N]",
            "… [--importance-examples N] [--prune heads=70,ffns=20] [--induction-sequences N] [--precision fp32|bf16]",
            "… [--shards N] [--plan | --slurm [--sbatch \"ARGS\"] [--array-limit K] [--wait]]",
            "-o DIR --unit STAGE:ID        headroom study -o DIR --status",
        ],
        positionals: [Positional("MODEL.hrz", optional: true, "the model (none: the embedded demo)")],
        groups: [
            OptionGroup(
                "The study",
                [
                    Groups.tasks, Option("--data", value: "DIR", "task data (required with MODEL)"), Groups.shots(default: "0,1,5"),
                    Option("-o", aliases: ["--output"], value: "DIR", default: "headroom-study", "study directory"),
                    Option("--limit", value: "N", defaultText: "all; the demo uses 100", "eval docs per cell"),
                    Option("--importance-examples", value: "N", defaultText: "2500", "training docs for gradient importance (the paper's; the demo uses 200)"),
                    Option("--prune", value: "SPEC", defaultText: "heads=70,ffns=20", "the pruned model's point (the demo: ffns=25, one of 4)"),
                    Option("--induction-sequences", value: "N", defaultText: "20", "random sequences for the induction scores"),
                    Option("--heads-grid", value: "LIST", defaultText: "0,10,…,90", "head sweep percentages"),
                    Option("--ffns-grid", value: "LIST", defaultText: "0,10,…,90", "FFN sweep percentages"),
                    Option("--combined-ffns", value: "LIST", defaultText: "0,10,…,50", "FFN percentages of the combined grid"),
                ]),
            OptionGroup(
                "Compute",
                [
                    Option("--threads", value: "N", defaultText: "all cores; in a Slurm job, SLURM_CPUS_PER_TASK", "threads"),
                    Option(
                        "--precision", value: "fp32|bf16", default: "fp32",
                        "fp32 (exact) or bf16 for every unit; recorded in study.json, in every result and scores file and in the report, and part of every unit's stamp"
                    ),
                    Groups.memoryBudget,
                    Option("--shards", value: "N", default: "1", "split each cell, importance cell and sweep into N units"),
                ]),
            OptionGroup(
                "Planning and clusters",
                [
                    Option(
                        "--plan",
                        "write DIR/plan.json and print units, tokens, FLOPs, core-hours and the wall time on N machines, from a throughput measured here for the model's shape (cached in DIR/calibration.json); runs nothing else"
                    ),
                    Option(
                        "--shape", value: "PRESET", "with --plan: cost the plan for another shape (opt-125m … opt-66b); MODEL then only provides the tokenizer"),
                    Option("--machines", value: "LIST", default: "1,8,64", "with --plan: machine counts for the wall time"),
                    Option(
                        "--slurm",
                        "submit every stage with units left as a Slurm job array (scripts in DIR/slurm/, job ids in DIR/slurm/jobs.json), each after the stages it needs; again: submits only what is not done"
                    ),
                    Option(
                        "--sbatch", value: "\"ARGS\"",
                        "your sbatch options for every array (partition, account, time, CPUs, memory); checked, one #SBATCH line each"),
                    Option("--array-limit", value: "K", "at most K tasks of one array at once"),
                    Option("--wait", "with --slurm: block until the arrays end; exit 1 if a unit failed"),
                    Option("--unit", value: "STAGE:ID", "run one unit of the study in DIR (what each array task runs; any launcher works)"),
                    Option("--status", "done / running / pending / failed / cancelled units per stage, and the log of each failed unit"),
                ]),
        ],
        discussion: """
            Runs the pipeline of Bansal et al. (2023) as a plan of units, each resumable (a rerun skips what is done
            and recomputes what its inputs changed under):
              eval          baseline evaluation                      (DIR/baseline/results.json)
              heads         gradient head importance per task × shots (DIR/importance/heads-<task>-<k>shot.json)
              ffns          oracle FFN importance per task × shots    (DIR/importance/ffns-<task>-<k>shot.json)
              ranks         rankings, aggregates, Spearman matrices   (DIR/ranks/{heads,ffns}/)
              sweeps        iterative head and FFN sweeps (0-90%) and the combined grid (heads 0-90% × FFNs 0-50%,
                            aggregate ranking, at the largest shots)  (DIR/sweeps/{heads,ffns,combined}/sweep.csv)
              induction     prefix matching and copying scores       (DIR/induction/)
              prune         one physically pruned model (default 70% heads + 20% FFNs by the aggregate rankings)
              pruned-eval   its evaluation; compare: size, speed, accuracy against the original (DIR/pruned/)
              report        DIR/report.html: one self-contained page of figures, numbers in DIR/figures/*.csv
            With --shards N, cells, importance and sweeps are split N ways and merge stages join them exactly.

            With no MODEL, runs the embedded demo: a 4-layer OPT trained to learn in context (Tools/train_demo.py)
            on its tasks (demo_copy, demo_map_a, demo_map_b), into ./headroom-study.
            Re-render the report from a study directory with `headroom report DIR`.
            """)

    enum Mode { case run, plan, slurm, unit(UnitID), status }

    var options: StudyOptions
    var output: String
    var threads: Int
    var shards: Int
    var mode = Mode.run
    var shape: Preset?
    var machines = [1, 8, 64]
    var slurm = SlurmOptions(executable: StudyCommand.executable)
    var wait = false

    /// This executable's absolute path (what the array tasks run).
    static var executable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// Threads of one unit: Slurm's allocation where there is one, else --threads or every core.
    static func threads(_ asked: Int?) -> Int {
        let env = ProcessInfo.processInfo.environment
        if let n = env["SLURM_CPUS_PER_TASK"].flatMap({ Int($0) }), n > 0, n <= 4096 { return n }
        if env["SLURM_JOB_ID"] != nil, let text = env["SLURM_JOB_CPUS_PER_NODE"],
            let n = Int(text.prefix { $0.isNumber }), n > 0, n <= 4096
        {
            return n
        }
        return asked ?? ProcessInfo.processInfo.activeProcessorCount
    }

    init(_ args: ParsedArguments) throws(UsageError) {
        output = args.string("-o")!
        threads = Self.threads(try args.int("--threads", in: 1...1024))
        shards = try args.int("--shards", in: 1...StudyOptions.maxShards)!
        let unit = args.string("--unit"), status = args.flag("--status")
        let plan = args.flag("--plan"), submit = args.flag("--slurm")
        shape = try args.choice("--shape", as: Preset.self)
        if let text = args.string("--machines") {
            let list = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0) }
            guard !list.isEmpty, list.count <= 100, list.allSatisfy({ (1...1_000_000).contains($0 ?? 0) }) else {
                throw UsageError("--machines takes up to 100 counts from 1 to 1000000 like 1,8,64, got '\(text)'")
            }
            machines = list.map { $0! }
        }
        if let text = args.string("--sbatch") {
            do { slurm.sbatch = try SbatchOptions(parsing: text) } catch { throw UsageError("\(error)") }
        }
        slurm.arrayLimit = try args.int("--array-limit", in: 1...1_000_000)
        wait = args.flag("--wait")
        let modes = [unit != nil, status, plan, submit].filter { $0 }.count
        guard modes <= 1 else { throw UsageError("give one of --plan, --slurm, --unit and --status") }
        if shape != nil && !plan { throw UsageError("--shape goes with --plan") }
        if (wait || args.given("--sbatch") || slurm.arrayLimit != nil) && !submit { throw UsageError("--sbatch, --array-limit and --wait go with --slurm") }
        if let unit {
            guard let id = UnitID(unit) else { throw UsageError("--unit takes STAGE:ID (e.g. heads:3), got '\(unit)'") }
            mode = .unit(id)
        } else if status {
            mode = .status
        } else if plan {
            mode = .plan
        } else if submit {
            mode = .slurm
        }
        if unit != nil || status {
            // The study's options come from DIR/study.json.
            let others = args.spec.options.filter { !["-o", "--unit", "--status", "--threads"].contains($0.name) && args.given($0.name) }
            guard others.isEmpty, args.positionals.isEmpty else { throw UsageError("--unit and --status take only -o DIR (the options are in DIR/study.json)") }
            options = StudyOptions(model: "", tasks: [], shots: [], data: "")
            return
        }
        let taskList = args.string("--tasks"), data = args.string("--data")
        let shots = try parseShots(args.string("--shots")!)
        let limit = try args.int("--limit", in: 1...100_000_000)
        let importance = try args.int("--importance-examples", in: 1...10_000_000), induction = try args.int("--induction-sequences", in: 1...100_000)
        let grids = (
            heads: try parsePercentages(args.string("--heads-grid"), "--heads-grid"),
            ffns: try parsePercentages(args.string("--ffns-grid"), "--ffns-grid"),
            combined: try parsePercentages(args.string("--combined-ffns"), "--combined-ffns")
        )
        let memoryBudget = try args.memoryBudget()
        let precision = try args.precision()
        if let model = try args.positional(0) {
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
        if let g = grids.heads { options.headsGrid = g }
        if let g = grids.ffns { options.ffnsGrid = g }
        if let g = grids.combined { options.combinedFFNs = g }
        if let spec = args.string("--prune") {
            for part in spec.split(separator: ",") {
                let kv = part.split(separator: "=")
                guard kv.count == 2, let p = Double(kv[1]), (0...100).contains(p), kv[0] == "heads" || kv[0] == "ffns" else {
                    throw UsageError("--prune takes heads=P,ffns=P with percentages, got '\(spec)'")
                }
                if kv[0] == "heads" { options.pruneHeads = p } else { options.pruneFFNs = p }
            }
        }
        options.memoryBudget = memoryBudget
        options.precision = precision == .fp32 ? nil : precision
    }

    var inputs: [String] {
        switch mode {
        case .unit, .status: return []
        default: return [options.model, options.data]
        }
    }
    var outputs: [FileGuard.Output] {
        if case .status = mode { return [] }  // reads only
        return [.directory(output)]
    }

    func run() throws -> Int32 {
        Threads.set(threads)
        switch mode {
        case .unit(let unit):
            let study = try Study.resume(directory: output)
            study.log = { print($0) }
            let bar = ProgressBar(unit.description)
            study.progress = { what, done, total in bar.update(phase: what, done: done, total: total, unit: .count) }
            print("\(unit) on \(threads) thread\(threads == 1 ? "" : "s")")
            try study.runUnit(unit)
            bar.finish()
            for s in study.skipped { printError("skipped: \(s)") }
            return 0
        case .status:
            let study = try Study.resume(directory: output)
            print(Study.statusText(try study.status()))
            return 0
        case .plan:
            let study = try Study(options: options, directory: output, shards: shards)
            study.log = { printError($0) }
            let bar = ProgressBar("plan")
            study.progress = { what, done, total in bar.update(phase: what, done: done, total: total, unit: .count) }
            let (plan, calibration) = try study.costedPlan(config: shape?.config, threads: threads)
            bar.finish()
            struct PlanFile: Encodable { var plan: StudyPlan; var calibration: Calibration; var machines: [String: Double] }
            var walls: [String: Double] = [:]
            for m in machines { walls[String(m)] = plan.wallSeconds(machines: m) }
            let file = (output as NSString).appendingPathComponent(StudyLayout.plan)
            try JSONFiles.write(PlanFile(plan: plan, calibration: calibration, machines: walls), to: file)
            print(plan.table(calibration: calibration, machines: machines))
            print("wrote \(file)")
            return 0
        case .slurm:
            let study = try Study(options: options, directory: output, shards: shards)
            study.log = { print($0) }
            let round = try study.submitToSlurm(slurm)
            if round.isEmpty {
                print("nothing to submit: every unit is done; report: \((output as NSString).appendingPathComponent("report.html"))")
                return 0
            }
            print("watch with: headroom study -o \(output) --status   (logs in \(output)/slurm/logs/)")
            guard wait else { return 0 }
            try study.waitForSlurm { line in printError("waiting: " + line) }
            let status = try study.status()
            print(Study.statusText(status))
            let units = status.flatMap(\.units)
            return units.allSatisfy { $0.state == .done } ? 0 : 1
        case .run:
            break
        }
        let study = try Study(options: options, directory: output, shards: shards)
        let bar = ProgressBar("study")
        // The overall position, "[5/8]", before each stage's own bar.
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
    static let spec = CommandSpec(
        name: "demo", summary: "the same as `headroom study` with no model: the embedded demo, end to end",
        synopsis: ["[-o DIR] [--threads N]"],
        groups: [
            OptionGroup(
                "Options",
                [
                    Option("-o", aliases: ["--output"], value: "DIR", default: "headroom-study", "study directory"),
                    Groups.threads,
                ])
        ],
        discussion: "Runs `headroom study` on the embedded demo model and tasks (see `headroom study --help`).")
    var study: StudyCommand
    init(_ args: ParsedArguments) throws(UsageError) {
        var argv = ["-o", args.string("-o")!]
        if let t = args.string("--threads") { argv += ["--threads", t] }
        study = try StudyCommand(try ParsedArguments(argv, spec: StudyCommand.spec))
    }
    var outputs: [FileGuard.Output] { study.outputs }
    func run() throws -> Int32 { try study.run() }
}

struct ReportCommand: Command {
    static let spec = CommandSpec(
        name: "report", summary: "re-render DIR/report.html from an existing study directory",
        synopsis: ["DIR"],
        positionals: [Positional("DIR", "a study directory")],
        discussion: """
            Reads what `headroom study` wrote in DIR (study.json, baseline/, importance/, sweeps/, induction/,
            pruned/) and writes DIR/report.html and DIR/figures/*.csv. Missing steps are marked in the report.
            """)
    var directory: String
    init(_ args: ParsedArguments) throws(UsageError) { directory = try args.positional(required: 0) }
    func run() throws -> Int32 {
        let path = try StudyReport.render(directory: directory)
        print("wrote \(path)")
        return 0
    }
}
