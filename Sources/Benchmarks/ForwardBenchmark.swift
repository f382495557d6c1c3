/// `headroom bench forward`: scoring throughput of the forward pass on a synthetic model with real shapes,
/// as tokens/s, GFLOP/s, the fraction of the measured `cblas_sgemm` peak, and peak RSS.
import Foundation
import HRZFormat
import Runtime
import Basics
import OPTSchema

public struct ForwardBenchOptions: Sendable {
    public var preset: Preset = .opt1_3b
    public var model: String?
    public var layers: Int?
    public var sequences = 8
    public var tokens = 256
    public var lastOnly = false
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    public var runs = 3
    public var memoryBudget: Int?
    /// nil: decide by size; true: keep decoded layers; false: stream every pass.
    public var resident: Bool?
    public var cacheDirectory = NSTemporaryDirectory() + "headroom-bench"
    /// Re-run every layer with its weights already decoded and report streamed vs cached per-layer time.
    public var compareCached = false
    /// nil: `LayerStream.Schedule.automatic`.
    public var schedule: LayerStream.Schedule?
    public var precision = Precision.fp32
    /// Also time the forward with this share (0…100) of the heads and of the FFNs masked (a seeded random
    /// choice; which ones does not change the cost), alternating with the unmasked runs.
    public var maskHeadsPercent: Double?
    public var maskFFNsPercent: Double?
    public init() {}
}

/// The masked forward against the unmasked one, timed in alternation.
public struct MaskedForwardFigures: Codable, Sendable {
    public var headsPercent: Double
    public var ffnsPercent: Double
    public var tokensPerS: Double
    public var secondsRuns: [Double]
    /// Masked over unmasked median time.
    public var timeRatio: Double
    /// The masked forward's useful FLOPs over the unmasked one's.
    public var flopRatio: Double
    enum CodingKeys: String, CodingKey {
        case headsPercent = "heads_percent", ffnsPercent = "ffns_percent", tokensPerS = "tokens_per_s", secondsRuns = "seconds_runs"
        case timeRatio = "time_ratio", flopRatio = "flop_ratio"
    }
}

public struct ForwardBenchResult: Codable, Sendable {
    public var model: String
    public var sequences: Int
    public var tokensPerSequence: Int
    public var logits: String
    public var threads: Int
    public var resident: Bool
    public var schedule: String
    public var tokensPerS: Double
    public var gflops: Double
    public var sgemmPeakGflops: Double
    public var peakUtilization: Double
    public var peakRssBytes: Int
    public var secondsMedian: Double
    public var secondsRuns: [Double]
    public var layerSecondsMedian: Double
    public var decodeWaitSeconds: Double
    public var passes: Int
    /// fp32 or bf16, the GEMM kernels that ran (OpenBLAS's kernel set; the bf16 path), and the peak of that
    /// precision's GEMM measured in the same process (`peakUtilization` is a fraction of it).
    public var precision: String
    public var kernels: String
    public var gemmPeakGflops: Double
    /// The precision's arithmetic limit on these threads (`GEMMBenchmark.instructionLimit`); nil where the CPU
    /// lacks the instruction it measures.
    public var limitGflops: Double?
    /// With --compare-cached: median per-layer time of the same layers re-run with weights decoded.
    public var cachedLayerSecondsMedian: Double?
    /// Median over layers of streamed / cached time of the same layer.
    public var streamedOverCached: Double?
    /// With a mask: the masked forward's figures.
    public var masked: MaskedForwardFigures?

    enum CodingKeys: String, CodingKey {
        case model, sequences, logits, threads, resident, schedule, gflops, passes, precision, kernels
        case gemmPeakGflops = "gemm_peak_gflops", limitGflops = "limit_gflops"
        case tokensPerSequence = "tokens_per_sequence", tokensPerS = "tokens_per_s", sgemmPeakGflops = "sgemm_peak_gflops"
        case peakUtilization = "peak_utilization", peakRssBytes = "peak_rss_bytes", secondsMedian = "seconds_median"
        case secondsRuns = "seconds_runs", layerSecondsMedian = "layer_seconds_median", decodeWaitSeconds = "decode_wait_seconds"
        case cachedLayerSecondsMedian = "cached_layer_seconds_median", streamedOverCached = "streamed_over_cached", masked
    }
}

public enum ForwardBenchmark {
    public static func run(_ o: ForwardBenchOptions, log: (String) -> Void) throws -> ForwardBenchResult {
        Threads.set(o.threads)
        let path = try o.model ?? synthesize(o, log: log)
        let square = GEMMShape(m: 2048, n: 2048, k: 2048)
        let sgemmPeak = GEMMBenchmark.gflops(square, .fp32, threads: o.threads)
        let openblas = "OpenBLAS \(BLAS.coreName)" + (getenv("OPENBLAS_CORETYPE") != nil ? " (forced by OPENBLAS_CORETYPE)" : "")
        log(String(format: "bench forward: cblas_sgemm peak %.1f GFLOP/s on %d threads (%@ kernels)", sgemmPeak, o.threads, openblas))
        var peak = sgemmPeak, kernels = openblas
        if o.precision == .bf16 {
            peak = GEMMBenchmark.gflops(square, .bf16, threads: o.threads)
            kernels = "bf16 \(BF16Kernel.current.rawValue); \(openblas)"
            log(String(format: "bench forward: bf16 GEMM peak %.1f GFLOP/s at 2048³ (%@ kernel)", peak, BF16Kernel.current.rawValue))
        }
        let limit = GEMMBenchmark.instructionLimit(o.precision, threads: o.threads)
        if let limit {
            log(
                String(
                    format: "bench forward: arithmetic limit %.1f GFLOP/s (%@ from registers on %d threads)", limit,
                    o.precision == .bf16 ? "vdpbf16ps" : "AVX-512 FMA", o.threads))
        }
        let model = try OPTModel(path: path, resident: o.resident, schedule: o.schedule, precision: o.precision)
        var rng = SystemRandomNumberGenerator()
        let V = min(model.config.vocabSize, 50265)
        let batch = (0..<o.sequences).map { _ in
            SequenceInput(tokens: (0..<o.tokens).map { _ in Int.random(in: 3..<V, using: &rng) }, logits: o.lastOnly ? .last : .all)
        }
        var options = ForwardOptions(memoryBudget: o.memoryBudget)
        let cached = CachedLayerTimer()
        if o.compareCached { options.observers = [cached] }
        log("bench forward: warm-up run")
        var stats = ForwardStats()
        let output = LogitsBuffer()  // reused, as a scoring loop would
        _ = try model.forward(batch, options: options, into: output, stats: &stats)
        Profile.reset()  // with HEADROOM_PROFILE=1 the command prints the timed runs' sections only
        var seconds: [Double] = []
        var layerTimes: [Double] = []
        var cachedTimes: [Double] = []
        var wait = 0.0
        // The masked forward, when asked: its own warm-up, then one run after each unmasked run.
        var maskedOptions = options
        var maskedSeconds: [Double] = []
        let mask = (o.maskHeadsPercent != nil || o.maskFFNsPercent != nil) ? Self.randomMask(model.config, heads: o.maskHeadsPercent ?? 0, ffns: o.maskFFNsPercent ?? 0) : nil
        if let mask {
            maskedOptions.mask = mask
            _ = try model.forward(batch, options: maskedOptions, into: output)
        }
        for r in 0..<o.runs {
            cached.seconds = []
            let start = DispatchTime.now().uptimeNanoseconds
            let waitBefore = model.stream.waitSeconds
            _ = try model.forward(batch, options: options, into: output, stats: &stats)
            seconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            layerTimes += stats.layerSeconds
            cachedTimes += cached.seconds
            wait += model.stream.waitSeconds - waitBefore
            log(String(format: "bench forward: run %d: %.3f s", r + 1, seconds.last!))
            if mask != nil {
                let start = DispatchTime.now().uptimeNanoseconds
                _ = try model.forward(batch, options: maskedOptions, into: output)
                maskedSeconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                log(String(format: "bench forward: masked run %d: %.3f s", r + 1, maskedSeconds.last!))
            }
        }
        let median = seconds.sorted()[seconds.count / 2]
        let flops = forwardFLOPs(model, sequences: o.sequences, tokens: o.tokens, lastOnly: o.lastOnly)
        let gflops = flops / median / 1e9
        var masked: MaskedForwardFigures?
        if let mask {
            let m = maskedSeconds.sorted()[maskedSeconds.count / 2]
            masked = MaskedForwardFigures(headsPercent: o.maskHeadsPercent ?? 0, ffnsPercent: o.maskFFNsPercent ?? 0,
                                          tokensPerS: Double(o.sequences * o.tokens) / m, secondsRuns: maskedSeconds, timeRatio: m / median,
                                          flopRatio: forwardFLOPs(model, sequences: o.sequences, tokens: o.tokens, lastOnly: o.lastOnly, mask: mask) / flops)
        }
        return ForwardBenchResult(
            model: (path as NSString).lastPathComponent, sequences: o.sequences, tokensPerSequence: o.tokens,
            logits: o.lastOnly ? "last" : "all", threads: o.threads, resident: model.stream.resident,
            schedule: model.stream.schedule.rawValue,
            tokensPerS: Double(o.sequences * o.tokens) / median, gflops: gflops, sgemmPeakGflops: sgemmPeak,
            peakUtilization: gflops / peak, peakRssBytes: peakRSS(), secondsMedian: median, secondsRuns: seconds,
            layerSecondsMedian: layerTimes.sorted()[layerTimes.count / 2], decodeWaitSeconds: wait / Double(o.runs),
            passes: stats.passes, precision: o.precision.rawValue, kernels: kernels, gemmPeakGflops: peak, limitGflops: limit,
            cachedLayerSecondsMedian: cachedTimes.isEmpty ? nil : cachedTimes.sorted()[cachedTimes.count / 2],
            streamedOverCached: cachedTimes.isEmpty ? nil : zip(layerTimes, cachedTimes).map { $0 / $1 }.sorted()[cachedTimes.count / 2], masked: masked)
    }

    /// The model file for the options, synthesized into the cache directory unless it is already there.
    static func synthesize(_ o: ForwardBenchOptions, log: (String) -> Void) throws -> String {
        try FileManager.default.createDirectory(atPath: o.cacheDirectory, withIntermediateDirectories: true)
        let layers = o.layers ?? o.preset.config.numHiddenLayers
        let path = "\(o.cacheDirectory)/\(o.preset.rawValue)-L\(layers)-seed0-f16.hrz"
        if (try? HRZReader(path: path)) != nil {
            log("bench forward: reusing \(path)")
            return path
        }
        log("bench forward: synthesizing \(path)")
        var s = SynthOptions()
        s.layers = layers
        s.threads = o.threads
        try Synthesizer.write(config: o.preset.config, to: path, options: s)
        return path
    }

    /// `heads`% of all heads and `ffns`% of the FFNs masked, chosen by a seeded shuffle.
    public static func randomMask(_ c: OPTConfig, heads: Double, ffns: Double) -> ModelMask {
        var rng = SplitMix64(seed: 11)
        let L = c.numHiddenLayers, H = c.numAttentionHeads
        var order = Array(0..<(L * H))
        order.shuffle(using: &rng)
        var h = Array(repeating: Array(repeating: true, count: H), count: L)
        for i in order.prefix(Int(heads * Double(L * H) / 100)) { h[i / H][i % H] = false }
        var layers = Array(0..<L)
        layers.shuffle(using: &rng)
        var f = Array(repeating: true, count: L)
        for l in layers.prefix(Int(ffns * Double(L) / 100)) { f[l] = false }
        return ModelMask(heads: h, ffns: f)
    }

    /// Useful FLOPs of one forward: the GEMMs (2 per multiply-add), causal attention, and the LM head rows;
    /// masked heads and FFNs do no work.
    public static func forwardFLOPs(_ model: OPTModel, sequences: Int, tokens: Int, lastOnly: Bool, mask: ModelMask = ModelMask()) -> Double {
        let c = model.config
        let C = Double(c.hiddenSize), E = Double(c.wordEmbedProjDim), F = Double(c.ffnDim), D = Double(c.headDim)
        let T = Double(sequences * tokens), n = Double(tokens)
        var total = 0.0
        for (l, plan) in model.plans.enumerated() {
            let kept = plan.heads.filter { mask.heads?[l][$0] ?? true }.count
            let HD = Double(kept) * D
            total += 2 * T * (3 * C * HD + HD * C)
            total += 2 * 2 * Double(sequences) * (n * (n + 1) / 2) * HD
            if plan.ffn && (mask.ffns?[l] ?? true) { total += 2 * T * 2 * C * F }
        }
        if c.hasProjections { total += 2 * T * E * C }
        let rows = lastOnly ? Double(sequences) : T
        total += 2 * rows * E * Double(c.vocabSize) + (c.hasProjections ? 2 * rows * C * E : 0)
        return total
    }

    public static func table(_ r: ForwardBenchResult) -> String {
        var cached = ""
        if let c = r.cachedLayerSecondsMedian, let ratio = r.streamedOverCached {
            cached = String(format: "\n  same layers cached %.4f s median; streamed / cached per layer %.3f (median)", c, ratio)
        }
        let limit = r.limitGflops.map { String(format: "; %.0f%% of the arithmetic limit, %.1f", 100 * r.gflops / $0, $0) } ?? ""
        return String(
            format: """
                model %@, %d × %d tokens, logits at %@ positions, %d threads, %@ (%@ decode), %@
                  kernels            %@
                  tokens/s           %.1f
                  GFLOP/s            %.1f  (%.0f%% of the measured %@ GEMM peak, %.1f%@ GFLOP/s)
                  time per forward   %.3f s median of %d runs
                  time per layer     %.4f s median; waiting for layer decode %.3f s per forward
                  peak RSS           %@
                """, r.model, r.sequences, r.tokensPerSequence, r.logits, r.threads, r.resident ? "layers resident" : "layers streamed", r.schedule,
            r.precision, r.kernels, r.tokensPerS, r.gflops, 100 * r.peakUtilization, r.precision, r.gemmPeakGflops, limit, r.secondsMedian, r.secondsRuns.count,
            r.layerSecondsMedian, r.decodeWaitSeconds, formatBytes(r.peakRssBytes)) + cached
            + (r.masked.map {
                String(format: "\n  masked             %.0f%% of heads, %.0f%% of FFNs: %.1f tokens/s; time %.3f× the unmasked forward for %.3f× its FLOPs",
                       $0.headsPercent, $0.ffnsPercent, $0.tokensPerS, $0.timeRatio, $0.flopRatio)
            } ?? "")
    }
}

/// Peak resident set size of this process. C: `getrusage(RUSAGE_SELF)` (ru_maxrss is KiB on Linux).
/// Peak resident memory of this process since it started or since `resetPeakRSS()`: VmHWM from
/// /proc/self/status where there is one, else getrusage's maximum.
public func peakRSS() -> Int {
    if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
        let kB = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
    {
        return kB * 1024
    }
    var usage = rusage()
    getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
    return Int(usage.ru_maxrss) * 1024
}

/// Resets the kernel's peak-RSS mark to the current RSS (Linux: "5" to /proc/self/clear_refs).
public func resetPeakRSS() {
    let fd = open("/proc/self/clear_refs", O_WRONLY)
    guard fd >= 0 else { return }
    _ = write(fd, "5", 1)
    close(fd)
}

func formatBytes(_ n: Int) -> String {
    String(format: "%.2f GB", Double(n) / 1e9)
}

/// With `--compare-cached`: after each layer, waits for the background decode to finish and runs the same
/// layer again on a copy of its input with its weights already decoded. Paired with the walk's own time of
/// that layer, it measures what streaming costs on exactly the same layer in the same moment.
final class CachedLayerTimer: ForwardObserver {
    private var input: [Float] = []
    var seconds: [Double] = []

    func wants(_ point: TapPoint, layer: Int) -> Bool { point == .layerInput }

    func observe(_ tap: Tap) throws { input = Array(UnsafeBufferPointer(start: tap.values, count: tap.count)) }

    func layerFinished(_ layer: Int, seconds _: Double, replay: LayerReplay) throws {
        replay.drain()
        let started = DispatchTime.now().uptimeNanoseconds
        try input.withUnsafeMutableBufferPointer { try replay.run(on: $0.baseAddress!) }
        seconds.append(Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
    }
}
