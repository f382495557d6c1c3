/// `headroom bench prune`: what pruning buys. Prunes a synthetic model with real shapes at a grid of
/// heads% × FFNs% (by a seeded random ranking: sizes and speed do not depend on which heads go), then
/// measures each file's size, scoring throughput and peak RSS (the kernel's high-water mark, reset before
/// each model), all as ratios against the unpruned model measured in the same run.
import Analysis
import Foundation
import HRZFormat
import Pruning
import Runtime
import Basics

public struct PruneBenchRow: Codable, Sendable {
    public var headsPercent: Double
    public var ffnsPercent: Double
    public var fileBytes: Int
    public var layerParameters: Int
    public var forwardFLOPs: Double
    public var tokensPerS: Double
    public var peakRssBytes: Int

    enum CodingKeys: String, CodingKey {
        case headsPercent = "heads_percent", ffnsPercent = "ffns_percent", fileBytes = "file_bytes"
        case layerParameters = "layer_parameters", forwardFLOPs = "forward_flops", tokensPerS = "tokens_per_s"
        case peakRssBytes = "peak_rss_bytes"
    }
}

public struct PruneBenchOptions: Sendable {
    public var forward = ForwardBenchOptions()
    public var heads: [Double] = [0, 30, 50, 70]
    public var ffns: [Double] = [0, 20]
    public init() {}
}

public enum PruneBenchmark {
    public static func run(_ o: PruneBenchOptions, log: (String) -> Void) throws -> [PruneBenchRow] {
        let source = try ForwardBenchmark.synthesize(o.forward, log: log)
        let c = try HRZReader(path: source).config  // unmapped again before anything is measured
        var rng = SplitMix64(seed: 7)
        let headScores = ScoresFile(scores: (0..<c.numHiddenLayers).map { _ in (0..<c.numAttentionHeads).map { _ in Double(rng.next() >> 11) } })
        let ffnScores = ScoresFile(scores: (0..<c.numHiddenLayers).map { _ in [Double(rng.next() >> 11)] })
        var rows: [PruneBenchRow] = []
        for f in o.ffns {
            for h in o.heads {
                let plan = PrunePlan.select(heads: ("random", headScores, h), ffns: ("random", ffnScores, f))
                var path = source
                if !plan.heads.isEmpty || !plan.ffns.isEmpty {
                    path = "\(o.forward.cacheDirectory)/\((source as NSString).lastPathComponent)-pruned-h\(Int(h))-f\(Int(f)).hrz"
                    if (try? HRZReader(path: path)) == nil {
                        log("bench prune: writing \(path)")
                        _ = try Pruner.prune(source, plan: plan, to: path, level: 1, threads: o.forward.threads)
                    }
                }
                let model = try OPTModel(path: path, precision: o.forward.precision)
                let layerParameters = model.reader.layerParameters
                let flops = ForwardBenchmark.forwardFLOPs(model, sequences: o.forward.sequences, tokens: o.forward.tokens, lastOnly: o.forward.lastOnly)
                log(String(format: "bench prune: heads −%g%%, FFNs −%g%%: measuring", h, f))
                let measured = try measure(path, o)
                rows.append(
                    PruneBenchRow(
                        headsPercent: h, ffnsPercent: f, fileBytes: model.reader.file.bytes.count,
                        layerParameters: layerParameters, forwardFLOPs: flops,
                        tokensPerS: measured.tokensPerS, peakRssBytes: measured.peakRssBytes))
            }
        }
        // The baseline again at the end: its mean with the first run absorbs drift on a noisy machine.
        if let first = rows.first(where: { $0.headsPercent == 0 && $0.ffnsPercent == 0 }) {
            log("bench prune: the unpruned model again")
            let again = try measure(source, o)
            let i = rows.firstIndex { $0.headsPercent == 0 && $0.ffnsPercent == 0 }!
            rows[i].tokensPerS = (first.tokensPerS + again.tokensPerS) / 2
            rows[i].peakRssBytes = max(first.peakRssBytes, again.peakRssBytes)
        }
        return rows
    }

    /// One model's forward benchmark in this process. Its peak RSS is the kernel's high-water mark, reset
    /// first (/proc/self/clear_refs), so a model's figure does not include the one measured before it.
    static func measure(_ model: String, _ o: PruneBenchOptions) throws -> ForwardBenchResult {
        var forward = o.forward
        forward.model = model
        resetPeakRSS()
        return try ForwardBenchmark.run(forward) { _ in }
    }

    public static func table(_ rows: [PruneBenchRow], _ o: PruneBenchOptions) -> String {
        guard let base = rows.first(where: { $0.headsPercent == 0 && $0.ffnsPercent == 0 }) else { return "" }
        let mode = o.forward.resident.map { $0 ? "resident" : "streamed" } ?? "resident or streamed by size"
        var out = String(
            format: "%@, %d × %d tokens (%@ logits), %d threads, layers %@; ratios against the unpruned model\n",
            o.forward.preset.rawValue, o.forward.sequences, o.forward.tokens, o.forward.lastOnly ? "last" : "all", o.forward.threads, mode)
        out += "heads  ffns  decoder params  file size  peak RSS  FLOPs   tokens/s          speedup / FLOP cut\n"
        for r in rows {
            let flopCut = base.forwardFLOPs / r.forwardFLOPs, speedup = r.tokensPerS / base.tokensPerS
            out += String(
                format: "%4g%%  %3g%%  %6.3f          %6.3f     %6.3f    %6.3f  %7.1f (%5.2f×)  %5.2f / %5.2f = %3.0f%%\n",
                r.headsPercent, r.ffnsPercent, Double(r.layerParameters) / Double(base.layerParameters),
                Double(r.fileBytes) / Double(base.fileBytes), Double(r.peakRssBytes) / Double(base.peakRssBytes),
                r.forwardFLOPs / base.forwardFLOPs, r.tokensPerS, speedup, speedup, flopCut, 100 * speedup / flopCut)
        }
        return out
    }
}
