import Benchmarks
import Evaluation
import Foundation
import Runtime

struct BenchCommand: Command {
    static let name = "bench"
    static let summary = "benchmarks: format (compression, decode), forward (tokens/s), backward, eval (wall time), prune (what it buys), gemm (fp32 and bf16 GFLOP/s), fidelity (what bf16 costs)"
    static let usage = """
    Usage: headroom bench format [--elements N] [--model MODEL.hrz ...] [--json]
           headroom bench forward [--preset P | --model MODEL.hrz] [--layers N] [--sequences 8] [--tokens 256]
                                  [--last-only] [--threads N] [--runs 3] [--memory-budget B] [--stream|--resident]
                                  [--compare-cached] [--schedule overlap|inline] [--cache-dir DIR] [--json]
                                  [--precision fp32|bf16]

           headroom bench backward MODEL.hrz [--sequences 4] [--tokens 256] [--runs 3] [--threads N] [--precision P] [--json]
           headroom bench eval MODEL.hrz --data DIR [--tasks copa,arc_easy] [--shots 5] [--limit 100] [-o DIR]
                               [--precision fp32|bf16] [--json]
           headroom bench gemm [--shapes MxNxK,...] [--threads N] [--runs 5] [--json]
           headroom bench fidelity MODEL.hrz --data DIR --tasks T1,T2 [--shots 0,1,5] [--limit N]
                                   [--importance-examples 32] [--threads N] [--json]
           headroom bench prune [--preset P] [--heads 0,30,50,70] [--ffns 0,20] [--sequences 4] [--tokens 256]
                                [--last-only] [--runs 3] [--threads N] [--cache-dir DIR] [--resident|--auto] [--precision P] [--json]

    prune: prunes the preset's synthetic model at every heads% × FFNs% point (a seeded random ranking;
    size and speed do not depend on which heads go) into --cache-dir, then measures each model's forward
    in a fresh `headroom bench forward` process (peak RSS is per process). Reports decoder parameters,
    file size, peak RSS, FLOPs and tokens/s as ratios against the unpruned model of the same run, and how
    much of the FLOP reduction the speedup realizes. Every model streams its layers (as the unpruned
    opt-1.3b does by default); --resident keeps them all decoded, --auto lets each model decide by size.

    backward: gradient head importance (forward + backward, recomputing each layer) against the forward
    alone, on the same random sequences (the last quarter of each is the continuation), in one process.
    The forward alone computes what the loss needs (logits at the positions that predict the
    continuation); the ratio against a last-position-only forward is printed too. Each of --runs runs
    times the forwards and then forward + backward back to back; the ratio is the median of the runs'
    ratios. HEADROOM_PROFILE=1 prints the sections of the last forward + backward.

    eval: times a fresh `headroom eval` (model load included) into -o DIR (default $TMPDIR/headroom-bench-eval,
    emptied first). The harness-style HF peer scores the very request files it wrote:
    python3 Tools/bench_peers.py eval --requests DIR/requests/*.jsonl --preset opt-125m

    forward: times the forward pass over SEQUENCES × TOKENS random tokens on a synthetic model with the
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

    fidelity: bf16 against fp32 on the same prompts, per task × shots: |Δ log-likelihood| per request (max,
    median), docs whose prediction flips, the headline metric in both, and the Spearman ρ of gradient head
    importance on --importance-examples examples (0 skips it).

    gemm: best-of-runs GFLOP/s of cblas_sgemm and of the bf16 GEMM (weights packed once, activations
    rounded and packed inside each call, as the runtime does) at squares and opt-1.3b's projection shapes
    at 2048 tokens, each as a share of its precision's arithmetic limit (measured first, where the CPU has
    the instruction). Peer: python3 Tools/bench_peers.py gemm (torch bf16 matmul at the same shapes).

    format: compares plain zstd with byte-plane split zstd at levels 1, 3 and 9 on fp16 tensors
    drawn from N(0, 0.02) (the init and typical scale of trained OPT weights) and on the 16-bit
    tensors of any .hrz given with --model. Reports the lossless size ratio and single-core decode
    speed (checksum included) in GB/s of decoded bytes.

    Options:
      --elements N   synthetic fp16 elements (default 33554432 = 64 MB)
      --model FILE   also measure this model's 16-bit tensors (repeatable)
      --json         print JSON rows instead of the table
    """

    var suite: String
    var elements = 1 << 25
    var models: [String] = []
    var json: Bool
    var forward = ForwardBenchOptions()
    var evalModel = ""
    var evalOptions = EvalOptions(tasks: [], shots: [], dataDirectory: "", outputDirectory: "")
    var prune = PruneBenchOptions()
    var gemmShapes = GEMMBenchmark.defaultShapes
    var importanceExamples = 32

    init(_ args: inout Arguments) throws(UsageError) {
        json = args.flag("--json")
        suite = try args.positional("SUITE (format, forward, backward, eval or prune)")
        switch suite {
        case "format":
            elements = try args.option("--elements", default: 1 << 25, in: 1024...(1 << 32))
            while let m = try args.option("--model") { models.append(m) }
        case "forward":
            if let p = try args.option("--preset") {
                guard let preset = Preset(rawValue: p) else {
                    throw UsageError("--preset takes one of \(Preset.allCases.map(\.rawValue).joined(separator: ", ")), got '\(p)'")
                }
                forward.preset = preset
            }
            forward.model = try args.option("--model")
            if let l = try args.option("--layers") {
                guard let n = Int(l), n >= 1 else { throw UsageError("--layers takes a positive whole number, got '\(l)'") }
                forward.layers = n
            }
            forward.sequences = try args.option("--sequences", default: 8, in: 1...100_000)
            forward.tokens = try args.option("--tokens", default: 256, in: 1...2048)
            forward.lastOnly = args.flag("--last-only")
            forward.threads = try args.option("--threads", default: ProcessInfo.processInfo.activeProcessorCount, in: 1...1024)
            forward.runs = try args.option("--runs", default: 3, in: 1...100)
            forward.memoryBudget = try parseBytes(try args.option("--memory-budget"), "--memory-budget")
            if args.flag("--stream") { forward.resident = false }
            if args.flag("--resident") { forward.resident = true }
            if let dir = try args.option("--cache-dir") { forward.cacheDirectory = dir }
            forward.compareCached = args.flag("--compare-cached")
            forward.precision = try args.precision()
            if let schedule = try args.option("--schedule") {
                guard let s = LayerStream.Schedule(rawValue: schedule) else { throw UsageError("--schedule takes overlap or inline, got '\(schedule)'") }
                forward.schedule = s
            }
        case "prune":
            if let p = try args.option("--preset") {
                guard let preset = Preset(rawValue: p) else {
                    throw UsageError("--preset takes one of \(Preset.allCases.map(\.rawValue).joined(separator: ", ")), got '\(p)'")
                }
                prune.forward.preset = preset
            }
            func percents(_ name: String, _ fallback: [Double]) throws(UsageError) -> [Double] {
                guard let text = try args.option(name) else { return fallback }
                let values = text.split(separator: ",").map { Double($0) }
                guard values.allSatisfy({ $0 != nil && (0...100).contains($0!) }) else { throw UsageError("\(name) takes percentages like 0,30,50, got '\(text)'") }
                return values.map { $0! }
            }
            prune.heads = try percents("--heads", prune.heads)
            prune.ffns = try percents("--ffns", prune.ffns)
            if !prune.heads.contains(0) { prune.heads.insert(0, at: 0) }
            if !prune.ffns.contains(0) { prune.ffns.insert(0, at: 0) }
            prune.forward.sequences = try args.option("--sequences", default: 4, in: 1...100_000)
            prune.forward.tokens = try args.option("--tokens", default: 256, in: 1...2048)
            prune.forward.lastOnly = args.flag("--last-only")
            prune.forward.runs = try args.option("--runs", default: 3, in: 1...100)
            prune.forward.threads = try args.option("--threads", default: ProcessInfo.processInfo.activeProcessorCount, in: 1...1024)
            if let dir = try args.option("--cache-dir") { prune.forward.cacheDirectory = dir }
            prune.forward.resident = args.flag("--resident") ? true : args.flag("--auto") ? nil : false
            prune.forward.precision = try args.precision()
        case "backward":
            forward.sequences = try args.option("--sequences", default: 4, in: 1...10_000)
            forward.tokens = try args.option("--tokens", default: 256, in: 4...2048)
            forward.threads = try args.option("--threads", default: ProcessInfo.processInfo.activeProcessorCount, in: 1...1024)
            forward.runs = try args.option("--runs", default: 3, in: 1...100)
            forward.precision = try args.precision()
            evalModel = try args.positional("MODEL.hrz")
        case "eval":
            let tasks = (try args.tasks() ?? "copa,arc_easy").split(separator: ",").map(String.init)
            guard tasks.allSatisfy({ EvalTask(rawValue: $0) != nil }) else { throw UsageError("--tasks takes task names, got '\(tasks)'") }
            guard let data = try args.option("--data") else { throw UsageError("missing --data DIR") }
            let shots = try args.option("--shots", default: 5, in: 0...64)
            let out = try args.option("-o") ?? NSTemporaryDirectory() + "headroom-bench-eval"
            evalOptions = EvalOptions(tasks: tasks.map { EvalTask(rawValue: $0)! }, shots: [shots], dataDirectory: data, outputDirectory: out)
            evalOptions.limit = try args.option("--limit", default: 100, in: 1...1_000_000)
            evalOptions.precision = try args.precision()
            forward.threads = try args.option("--threads", default: ProcessInfo.processInfo.activeProcessorCount, in: 1...1024)
            evalModel = try args.positional("MODEL.hrz")
        case "fidelity":
            let tasks = (try args.tasks() ?? "").split(separator: ",").map(String.init)
            guard !tasks.isEmpty else { throw UsageError("missing --tasks T1,T2") }
            guard let data = try args.option("--data") else { throw UsageError("missing --data DIR") }
            evalOptions = EvalOptions(tasks: [], shots: try parseShots(try args.option("--shots") ?? "0,1,5"), dataDirectory: data, outputDirectory: "")
            guard let resolved = Optional(tasks.compactMap { EvalTask.named($0, dataDirectory: data) }), resolved.count == tasks.count else {
                throw UsageError("--tasks takes task names, got '\(tasks.joined(separator: ","))'")
            }
            evalOptions.tasks = resolved
            evalOptions.limit = try args.positive("--limit")
            importanceExamples = try args.option("--importance-examples", default: 32, in: 0...100_000)
            forward.threads = try args.option("--threads", default: ProcessInfo.processInfo.activeProcessorCount, in: 1...1024)
            evalModel = try args.positional("MODEL.hrz")
        case "gemm":
            forward.threads = try args.option("--threads", default: ProcessInfo.processInfo.activeProcessorCount, in: 1...1024)
            forward.runs = try args.option("--runs", default: 5, in: 1...100)
            if let text = try args.option("--shapes") {
                gemmShapes = try text.split(separator: ",").map { item throws(UsageError) in
                    let d = item.split(separator: "x").compactMap { Int($0) }
                    guard d.count == 3, d.allSatisfy({ $0 >= 1 && $0 <= 65536 }) else { throw UsageError("--shapes takes MxNxK,… like 2048x2048x2048, got '\(item)'") }
                    return GEMMShape(m: d[0], n: d[1], k: d[2])
                }
            }
        default:
            let suites = ["format", "forward", "backward", "eval", "prune", "gemm", "fidelity"]
            throw UsageError("unknown benchmark '\(suite)'" + (Arguments.nearest(suite, in: suites).map { "; did you mean '\($0)'?" } ?? "")
                             + " (available: \(suites.joined(separator: ", ")))")
        }
    }

    func run() throws -> Int32 {
        if suite == "prune" {
            let rows = try PruneBenchmark.run(prune) { printError($0) }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(json ? String(decoding: try encoder.encode(rows), as: UTF8.self) : PruneBenchmark.table(rows, prune))
            return 0
        }
        if suite == "fidelity" {
            Threads.set(forward.threads)
            let rows = try FidelityBenchmark.run(model: evalModel, dataDirectory: evalOptions.dataDirectory, tasks: evalOptions.tasks,
                                                 shots: evalOptions.shots, limit: evalOptions.limit, importanceExamples: importanceExamples) { printError($0) }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(json ? String(decoding: try encoder.encode(rows), as: UTF8.self) : FidelityBenchmark.table(rows))
            return 0
        }
        if suite == "gemm" {
            printError("bench gemm: OpenBLAS \(BLAS.coreName) kernels\(getenv("OPENBLAS_CORETYPE") != nil ? " (forced by OPENBLAS_CORETYPE)" : ""), bf16 kernel \(BF16Kernel.current.rawValue), \(forward.threads) threads")
            let fp32Limit = GEMMBenchmark.instructionLimit(.fp32, threads: forward.threads)
            let bf16Limit = GEMMBenchmark.instructionLimit(.bf16, threads: forward.threads)
            func describe(_ limit: Double?, _ what: String) -> String { limit.map { String(format: "%.1f GFLOP/s", $0) } ?? "not measurable (no \(what))" }
            printError("bench gemm: arithmetic limits from registers: fp32 \(describe(fp32Limit, "AVX-512")), bf16 \(describe(bf16Limit, "avx512_bf16"))")
            func share(_ gflops: Double, _ limit: Double?) -> String { limit.map { String(format: " (%3.0f%%)", 100 * gflops / $0) } ?? "" }
            var rows: [GEMMBenchRow] = []
            for shape in gemmShapes {
                var row = GEMMBenchmark.measure(shape, threads: forward.threads, rounds: forward.runs)
                row.fp32LimitGflops = fp32Limit
                row.bf16LimitGflops = bf16Limit
                rows.append(row)
                if !json {
                    print(String(format: "%@  fp32 %7.1f GFLOP/s%@   bf16 %7.1f GFLOP/s%@  (%.2f×)", shape.description.padding(toLength: 18, withPad: " ", startingAt: 0),
                                 row.fp32Gflops, share(row.fp32Gflops, fp32Limit), row.bf16Gflops, share(row.bf16Gflops, bf16Limit), row.bf16Gflops / row.fp32Gflops))
                }
            }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                print(String(decoding: try encoder.encode(rows), as: UTF8.self))
            }
            return 0
        }
        if suite == "backward" {
            let r = try BackwardBenchmark.run(model: evalModel, sequences: forward.sequences, tokens: forward.tokens, threads: forward.threads,
                                              runs: forward.runs, precision: forward.precision) { printError($0) }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(json ? String(decoding: try encoder.encode(r), as: UTF8.self)
                       : String(format: "%@, %d × %d tokens, median of %d runs: forward with the loss's logits %.3f s (last position only: %.3f s), forward + backward (head importance) %.3f s: %.2f× the forward (%.2f× the last-position forward)",
                                r.model, r.sequences, r.tokens, r.runs, r.forwardSeconds, r.forwardLastSeconds, r.backwardSeconds, r.ratio, r.ratioLast))
            if Profile.enabled { print("sections of forward + backward:\n" + Profile.report()) }
            return 0
        }
        if suite == "eval" {
            Threads.set(forward.threads)
            let r = try EvalBenchmark.run(model: evalModel, options: evalOptions)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(json ? String(decoding: try encoder.encode(r), as: UTF8.self)
                       : String(format: "%d requests (%@) in %.2f s, %.1f requests/s; request files in %@/requests",
                                r.requests, r.cells.joined(separator: ", "), r.seconds, r.requestsPerS, r.outputDirectory))
            return 0
        }
        if suite == "forward" {
            let result = try ForwardBenchmark.run(forward) { printError($0) }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                print(String(decoding: try encoder.encode(result), as: UTF8.self))
            } else {
                print(ForwardBenchmark.table(result))
            }
            if Profile.enabled { print("sections of the timed runs:\n" + Profile.report()) }
            return 0
        }
        let rows = try FormatBenchmark.run(syntheticElements: elements, models: models) { printError($0) }
        print(json ? FormatBenchmark.json(rows) : FormatBenchmark.table(rows))
        return 0
    }
}
