/// `headroom bench SUITE`: one subcommand per benchmark, each with its own options and help.
import Analysis
import Benchmarks
import Evaluation
import Foundation
import Jobs
import Runtime
import Files

enum BenchCommands: CommandGroup {
    static let name = "bench"
    static let summary =
        "benchmarks: format (compression, decode), forward (tokens/s), backward, eval (wall time), prune (what it buys), gemm (fp32 and bf16 GFLOP/s), fidelity (what bf16 costs)"
    static let noun = "benchmark"
    static let discussion =
        "Each benchmark quotes its figures against the machine's measured limits; Tools/bench_peers.py measures the peers (HF transformers, CTranslate2, torch) on the same shapes."
    static let subcommands: [any Command.Type] = [
        BenchFormat.self, BenchForward.self, BenchBackward.self, BenchEval.self, BenchGEMM.self,
        BenchFidelity.self, BenchPrune.self,
    ]
    static let json = Option("--json", "print JSON instead of the table")
    static let runs = { (n: Int) in Option("--runs", value: "N", default: String(n), "timed runs") }
    /// The preset a synthetic-model benchmark uses: the library's default, so the help states what runs.
    static let presetOption = Option(
        "--preset", value: "P", default: ForwardBenchOptions().preset.rawValue, Preset.allCases.map(\.rawValue).joined(separator: ", "))

    /// Prints `value` as one line of sorted-key JSON.
    static func printJSON<T: Encodable>(_ value: T) throws { print(String(decoding: try JSONFiles.compact(value), as: UTF8.self)) }
}

struct BenchFormat: Command {
    static let spec = CommandSpec(
        name: "bench format", summary: "compression ratio and decode speed of plain vs byte-plane zstd",
        synopsis: ["[--elements N] [--model MODEL.hrz ...] [--json]"],
        groups: [
            OptionGroup(
                "Options",
                [
                    Option("--elements", value: "N", default: "33554432", "synthetic fp16 elements (64 MB)"),
                    Option("--model", value: "FILE", repeatable: true, "also measure this model's 16-bit tensors (repeatable)"),
                    BenchCommands.json,
                ])
        ],
        discussion: """
            compares plain zstd with byte-plane split zstd at levels 1, 3 and 9 on fp16 tensors
            drawn from N(0, 0.02) (the init and typical scale of trained OPT weights) and on the 16-bit
            tensors of any .hrz given with --model. Reports the lossless size ratio and single-core decode
            speed (checksum included) in GB/s of decoded bytes.
            """)
    var elements: Int
    var models: [String]
    var json: Bool
    init(_ args: ParsedArguments) throws(UsageError) {
        elements = try args.int("--elements", in: 1024...(1 << 32))!
        models = args.list("--model")
        json = args.flag("--json")
    }
    var inputs: [String] { models }
    func run() throws -> Int32 {
        let rows = try FormatBenchmark.run(syntheticElements: elements, models: models) { printError($0) }
        print(json ? FormatBenchmark.json(rows) : FormatBenchmark.table(rows))
        return 0
    }
}

struct BenchForward: Command {
    static let spec = CommandSpec(
        name: "bench forward", summary: "scoring throughput of a forward pass, against the GEMM peak and the arithmetic limit",
        synopsis: [
            "[--preset P | --model MODEL.hrz] [--layers N] [--sequences 8] [--tokens 256] [--last-only] [--threads N] [--runs 3] [--mask heads=P,ffns=Q]",
            "… [--memory-budget B] [--stream|--resident] [--compare-cached] [--schedule overlap|inline] [--cache-dir DIR] [--json] [--precision fp32|bf16]",
        ],
        groups: [
            OptionGroup(
                "Model",
                [
                    BenchCommands.presetOption,
                    Option("--model", value: "FILE", "a model instead of a synthetic preset"),
                    Option("--layers", value: "N", "keep only N layers of the preset"),
                    Option("--cache-dir", value: "DIR", defaultText: "$TMPDIR/headroom-bench", "where presets are synthesized"),
                ]),
            OptionGroup(
                "Workload",
                [
                    Option("--sequences", value: "N", default: "8", "sequences per forward"),
                    Option("--tokens", value: "N", default: "256", "tokens per sequence"),
                    Option("--last-only", "logits at the last position only (default: at every position)"),
                    BenchCommands.runs(3),
                    Option("--mask", value: "SPEC", "also time the forward with heads=P,ffns=Q percent masked (a seeded random choice), alternating with the unmasked runs"),
                ]),
            OptionGroup(
                "Streaming",
                [
                    Option("--stream", "stream layers from disk (default: by size)"),
                    Option("--resident", "keep every layer decoded"),
                    Option("--compare-cached", "re-run every layer right after it with its weights decoded: streamed vs cached time per layer"),
                    Option(
                        "--schedule", value: "S", defaultText: "inline up to 4 threads, overlap above",
                        "overlap (one background decoder) or inline (all cores, just before use)"),
                ]),
            OptionGroup("Compute", Groups.compute.options + [BenchCommands.json]),
        ],
        discussion: """
            times the forward pass over SEQUENCES × TOKENS random tokens on a synthetic model with the
            preset's real shapes (synthesized into --cache-dir on first use, default $TMPDIR/headroom-bench), after
            one warm-up run. Reports the GEMM kernels that ran, tokens/s, GFLOP/s, the fraction of the GEMM peak of
            the chosen precision measured in the same process (cblas_sgemm, or the bf16 kernel at 2048³) and of
            its arithmetic limit (multiply-adds from registers on every thread: AVX-512 FMA or vdpbf16ps), per-layer
            time and peak RSS. HEADROOM_PROFILE=1 adds the timed runs' sections. --json prints one object with
            tokens_per_s, gflops, limit_gflops and peak_rss_bytes among its keys. --compare-cached re-runs every layer right after it, with its weights
            already decoded and nothing decoding behind it, and reports streamed vs cached time per layer (the
            cost of streaming, measured on the same layers in the same moment); the re-runs count in the
            whole-forward time, so take throughput from a run without it. --schedule picks how streamed layers
            are decoded: overlap (one background thread) or inline (all cores, just before use); default inline
            up to 4 threads, overlap above.
            Compare with the HF peer: python3 Tools/bench_peers.py forward …
            """)
    var options = ForwardBenchOptions()
    var json: Bool
    init(_ args: ParsedArguments) throws(UsageError) {
        if args.given("--preset") { options.preset = try args.choice("--preset", as: Preset.self)! }
        options.model = args.string("--model")
        options.layers = try args.int("--layers", in: 1...1000)
        options.sequences = try args.int("--sequences", in: 1...100_000)!
        options.tokens = try args.int("--tokens", in: 1...2048)!
        options.lastOnly = args.flag("--last-only")
        options.threads = try args.threads()
        options.runs = try args.int("--runs", in: 1...100)!
        options.memoryBudget = try args.memoryBudget()
        if args.flag("--stream") && args.flag("--resident") { throw UsageError("give --stream or --resident, not both") }
        if args.flag("--stream") { options.resident = false }
        if args.flag("--resident") { options.resident = true }
        if let dir = args.string("--cache-dir") { options.cacheDirectory = dir }
        options.compareCached = args.flag("--compare-cached")
        options.precision = try args.precision()
        options.schedule = try args.choice("--schedule", as: LayerStream.Schedule.self)
        if let spec = args.string("--mask") {
            for part in spec.split(separator: ",") {
                let kv = part.split(separator: "=")
                guard kv.count == 2, let p = Double(kv[1]), (0...100).contains(p), kv[0] == "heads" || kv[0] == "ffns" else {
                    throw UsageError("--mask takes heads=P,ffns=Q with percentages, got '\(spec)'")
                }
                if kv[0] == "heads" { options.maskHeadsPercent = p } else { options.maskFFNsPercent = p }
            }
        }
        json = args.flag("--json")
    }
    var inputs: [String] { [options.model].compactMap { $0 } }
    func run() throws -> Int32 {
        let result = try ForwardBenchmark.run(options) { printError($0) }
        if json { try BenchCommands.printJSON(result) } else { print(ForwardBenchmark.table(result)) }
        if Profile.enabled { print("sections of the timed runs:\n" + Profile.report()) }
        return 0
    }
}

struct BenchBackward: Command {
    static let spec = CommandSpec(
        name: "bench backward", summary: "gradient head importance (forward + backward) against the forward alone",
        synopsis: ["MODEL.hrz [--sequences 4] [--tokens 256] [--runs 3] [--threads N] [--precision P] [--json]"],
        positionals: [Positional("MODEL.hrz", "")],
        groups: [
            OptionGroup(
                "Options",
                [
                    Option("--sequences", value: "N", default: "4", "random sequences"),
                    Option("--tokens", value: "N", default: "256", "tokens each (the last quarter is the continuation)"),
                    BenchCommands.runs(3), Groups.threads, Groups.precision, BenchCommands.json,
                ])
        ],
        discussion: """
            gradient head importance (forward + backward, recomputing each layer) against the forward
            alone, on the same random sequences (the last quarter of each is the continuation), in one process.
            The forward alone computes what the loss needs (logits at the positions that predict the
            continuation); the ratio against a last-position-only forward is printed too. Each of --runs runs
            times the forwards and then forward + backward back to back; the ratio is the median of the runs'
            ratios. HEADROOM_PROFILE=1 prints the sections of the last forward + backward.
            """)
    var model: String
    var sequences: Int, tokens: Int, runs: Int, threads: Int
    var precision: Precision
    var json: Bool
    init(_ args: ParsedArguments) throws(UsageError) {
        sequences = try args.int("--sequences", in: 1...10_000)!
        tokens = try args.int("--tokens", in: 4...2048)!
        runs = try args.int("--runs", in: 1...100)!
        threads = try args.threads()
        precision = try args.precision()
        json = args.flag("--json")
        model = try args.positional(required: 0)
    }
    var inputs: [String] { [model] }
    func run() throws -> Int32 {
        let r = try BackwardBenchmark.run(model: model, sequences: sequences, tokens: tokens, threads: threads, runs: runs, precision: precision) {
            printError($0)
        }
        if json {
            try BenchCommands.printJSON(r)
        } else {
            print(
                String(
                    format:
                        "%@, %d × %d tokens, median of %d runs: forward with the loss's logits %.3f s (last position only: %.3f s), forward + backward (head importance) %.3f s: %.2f× the forward (%.2f× the last-position forward)",
                    r.model, r.sequences, r.tokens, r.runs, r.forwardSeconds, r.forwardLastSeconds, r.backwardSeconds, r.ratio, r.ratioLast))
        }
        if Profile.enabled { print("sections of forward + backward:\n" + Profile.report()) }
        return 0
    }
}

struct BenchEval: Command {
    static let spec = CommandSpec(
        name: "bench eval", summary: "wall time of a fresh evaluation, against a harness-style HF loop",
        synopsis: ["MODEL.hrz --data DIR [--tasks copa,arc_easy] [--shots 5] [--limit 100] [-o DIR] [--precision fp32|bf16] [--json]"],
        positionals: [Positional("MODEL.hrz", "")],
        groups: [
            OptionGroup(
                "Options",
                [
                    Option("--tasks", aliases: ["--task"], value: "LIST", default: "copa,arc_easy", "tasks"), Groups.data,
                    Option("--shots", value: "K", default: "5", "shots"),
                    Option("--limit", value: "N", default: "100", "docs per cell"),
                    Groups.output("DIR", "where the evaluation writes (emptied first)"),
                    Groups.threads, Groups.precision, BenchCommands.json,
                ])
        ],
        discussion: """
            times a fresh `headroom eval` (model load included) into -o DIR (default $TMPDIR/headroom-bench-eval,
            emptied first). The harness-style HF peer scores the very request files it wrote:
            python3 Tools/bench_peers.py eval --requests DIR/requests/*.jsonl --preset opt-125m
            """)
    var model: String
    var options: EvalOptions
    var threads: Int
    var json: Bool
    init(_ args: ParsedArguments) throws(UsageError) {
        let data = try args.required("--data")
        let tasks = try parseTasks(args.string("--tasks"), data: data)
        let out = args.string("-o") ?? NSTemporaryDirectory() + "headroom-bench-eval"
        options = EvalOptions(tasks: tasks, shots: [try args.int("--shots", in: 0...64)!], dataDirectory: data, outputDirectory: out)
        options.limit = try args.int("--limit", in: 1...1_000_000)!
        options.precision = try args.precision()
        threads = try args.threads()
        json = args.flag("--json")
        model = try args.positional(required: 0)
    }
    var inputs: [String] { [model, options.dataDirectory] }
    func run() throws -> Int32 {
        Threads.set(threads)
        let r = try EvalBenchmark.run(model: model, options: options) { try EvalJob(model: model, options: options).run() }
        if json {
            try BenchCommands.printJSON(r)
        } else {
            print(
                String(
                    format: "%d requests (%@) in %.2f s, %.1f requests/s; request files in %@/requests",
                    r.requests, r.cells.joined(separator: ", "), r.seconds, r.requestsPerS, r.outputDirectory))
        }
        return 0
    }
}

struct BenchGEMM: Command {
    static let spec = CommandSpec(
        name: "bench gemm", summary: "fp32 and bf16 GEMM GFLOP/s at squares and opt-1.3b's shapes, as shares of the arithmetic limit",
        synopsis: ["[--shapes MxNxK,...] [--threads N] [--runs 5] [--json]"],
        groups: [
            OptionGroup(
                "Options",
                [
                    Option("--shapes", value: "LIST", defaultText: "squares and opt-1.3b's projections at 2048 tokens", "MxNxK,… like 2048x2048x2048"),
                    Groups.threads, BenchCommands.runs(5), BenchCommands.json,
                ])
        ],
        discussion: """
            best-of-runs GFLOP/s of cblas_sgemm and of the bf16 GEMM (weights packed once, activations
            rounded and packed inside each call, as the runtime does) at squares and opt-1.3b's projection shapes
            at 2048 tokens, each as a share of its precision's arithmetic limit (measured first, where the CPU has
            the instruction). Peer: python3 Tools/bench_peers.py gemm (torch bf16 matmul at the same shapes).
            """)
    var shapes = GEMMBenchmark.defaultShapes
    var threads: Int, runs: Int
    var json: Bool
    init(_ args: ParsedArguments) throws(UsageError) {
        threads = try args.threads()
        runs = try args.int("--runs", in: 1...100)!
        json = args.flag("--json")
        if let text = args.string("--shapes") {
            shapes = try text.split(separator: ",").map { item throws(UsageError) in
                let d = item.split(separator: "x").compactMap { Int($0) }
                guard d.count == 3, d.allSatisfy({ $0 >= 1 && $0 <= 65536 }) else {
                    throw UsageError("--shapes takes MxNxK,… like 2048x2048x2048, got '\(item)'")
                }
                return GEMMShape(m: d[0], n: d[1], k: d[2])
            }
        }
    }
    func run() throws -> Int32 {
        printError(
            "bench gemm: OpenBLAS \(BLAS.coreName) kernels\(getenv("OPENBLAS_CORETYPE") != nil ? " (forced by OPENBLAS_CORETYPE)" : ""), bf16 kernel \(BF16Kernel.current.rawValue), \(threads) threads"
        )
        let fp32Limit = GEMMBenchmark.instructionLimit(.fp32, threads: threads)
        let bf16Limit = GEMMBenchmark.instructionLimit(.bf16, threads: threads)
        func describe(_ limit: Double?, _ what: String) -> String { limit.map { String(format: "%.1f GFLOP/s", $0) } ?? "not measurable (no \(what))" }
        printError("bench gemm: arithmetic limits from registers: fp32 \(describe(fp32Limit, "AVX-512")), bf16 \(describe(bf16Limit, "avx512_bf16"))")
        func share(_ gflops: Double, _ limit: Double?) -> String { limit.map { String(format: " (%3.0f%%)", 100 * gflops / $0) } ?? "" }
        var rows: [GEMMBenchRow] = []
        for shape in shapes {
            var row = GEMMBenchmark.measure(shape, threads: threads, rounds: runs)
            row.fp32LimitGflops = fp32Limit
            row.bf16LimitGflops = bf16Limit
            rows.append(row)
            if !json {
                print(
                    String(
                        format: "%@  fp32 %7.1f GFLOP/s%@   bf16 %7.1f GFLOP/s%@  (%.2f×)",
                        shape.description.padding(toLength: 18, withPad: " ", startingAt: 0),
                        row.fp32Gflops, share(row.fp32Gflops, fp32Limit), row.bf16Gflops, share(row.bf16Gflops, bf16Limit), row.bf16Gflops / row.fp32Gflops))
            }
        }
        if json { try BenchCommands.printJSON(rows) }
        return 0
    }
}

struct BenchFidelity: Command {
    static let spec = CommandSpec(
        name: "bench fidelity", summary: "what bf16 costs against fp32: log-likelihoods, flipped docs, metrics, importance",
        synopsis: ["MODEL.hrz --data DIR --tasks T1,T2 [--shots 0,1,5] [--limit N] [--importance-examples 32] [--threads N] [--json]"],
        positionals: [Positional("MODEL.hrz", "")],
        groups: [
            OptionGroup(
                "Options",
                [
                    Groups.tasks, Groups.data, Groups.shots(default: "0,1,5"), Groups.limit,
                    Option("--importance-examples", value: "N", default: "32", "examples for the head importance correlation (0 skips it)"),
                    Groups.threads, BenchCommands.json,
                ])
        ],
        discussion: """
            bf16 against fp32 on the same prompts, per task × shots: |Δ log-likelihood| per request (max,
            median), docs whose prediction flips, the headline metric in both, and the Spearman ρ of gradient head
            importance on --importance-examples examples (0 skips it).
            """)
    var model: String
    var options: EvalOptions
    var importanceExamples: Int
    var threads: Int
    var json: Bool
    init(_ args: ParsedArguments) throws(UsageError) {
        let data = try args.required("--data")
        options = EvalOptions(
            tasks: try parseTasks(args.string("--tasks"), data: data), shots: try parseShots(args.string("--shots")!), dataDirectory: data, outputDirectory: "")
        options.limit = try args.int("--limit", in: 1...100_000_000)
        importanceExamples = try args.int("--importance-examples", in: 0...100_000)!
        threads = try args.threads()
        json = args.flag("--json")
        model = try args.positional(required: 0)
    }
    var inputs: [String] { [model, options.dataDirectory] }
    func run() throws -> Int32 {
        Threads.set(threads)
        let rows = try FidelityBenchmark.run(
            model: model, dataDirectory: options.dataDirectory, tasks: options.tasks,
            shots: options.shots, limit: options.limit, importanceExamples: importanceExamples
        ) { printError($0) }
        if json { try BenchCommands.printJSON(rows) } else { print(FidelityBenchmark.table(rows)) }
        return 0
    }
}

struct BenchPrune: Command {
    static let spec = CommandSpec(
        name: "bench prune", summary: "what pruning buys: size, memory and speed of models pruned at a grid of points",
        synopsis: [
            "[--preset P] [--heads 0,30,50,70] [--ffns 0,20] [--sequences 4] [--tokens 256] [--last-only] [--runs 3] [--threads N]",
            "… [--cache-dir DIR] [--resident|--auto] [--precision P] [--json]",
        ],
        groups: [
            OptionGroup(
                "Options",
                [
                    BenchCommands.presetOption,
                    Option("--heads", value: "LIST", default: "0,30,50,70", "head percentages"),
                    Option("--ffns", value: "LIST", default: "0,20", "FFN percentages"),
                    Option("--sequences", value: "N", default: "4", "sequences per forward"),
                    Option("--tokens", value: "N", default: "256", "tokens per sequence"),
                    Option("--last-only", "logits at the last position only"),
                    BenchCommands.runs(3), Groups.threads,
                    Option("--cache-dir", value: "DIR", defaultText: "$TMPDIR/headroom-bench", "where the pruned models go"),
                    Option("--resident", "keep every layer decoded (default: stream)"),
                    Option("--auto", "let each model decide by size"),
                    Groups.precision, BenchCommands.json,
                ])
        ],
        discussion: """
            prunes the preset's synthetic model at every heads% × FFNs% point (a seeded random ranking;
            size and speed do not depend on which heads go) into --cache-dir, then measures each model's forward
            in a fresh `headroom bench forward` process (peak RSS is per process). Reports decoder parameters,
            file size, peak RSS, FLOPs and tokens/s as ratios against the unpruned model of the same run, and how
            much of the FLOP reduction the speedup realizes. Every model streams its layers (as the unpruned
            opt-1.3b does by default); --resident keeps them all decoded, --auto lets each model decide by size.
            """)
    var options = PruneBenchOptions()
    var json: Bool
    init(_ args: ParsedArguments) throws(UsageError) {
        options.forward.preset = try args.choice("--preset", as: Preset.self)!
        options.heads = try parsePercentages(args.string("--heads"), "--heads")!
        options.ffns = try parsePercentages(args.string("--ffns"), "--ffns")!
        if !options.heads.contains(0) { options.heads.insert(0, at: 0) }
        if !options.ffns.contains(0) { options.ffns.insert(0, at: 0) }
        options.forward.sequences = try args.int("--sequences", in: 1...100_000)!
        options.forward.tokens = try args.int("--tokens", in: 1...2048)!
        options.forward.lastOnly = args.flag("--last-only")
        options.forward.runs = try args.int("--runs", in: 1...100)!
        options.forward.threads = try args.threads()
        if let dir = args.string("--cache-dir") { options.forward.cacheDirectory = dir }
        if args.flag("--resident") && args.flag("--auto") { throw UsageError("give --resident or --auto, not both") }
        options.forward.resident = args.flag("--resident") ? true : args.flag("--auto") ? nil : false
        options.forward.precision = try args.precision()
        json = args.flag("--json")
    }
    func run() throws -> Int32 {
        let rows = try PruneBenchmark.run(options) { printError($0) }
        if json { try BenchCommands.printJSON(rows) } else { print(PruneBenchmark.table(rows, options)) }
        return 0
    }
}
