/// `headroom synth`: random-weight OPT models with the real shapes, written straight into HRZ chunk by chunk
/// (bounded memory). Real weights cannot be downloaded here, so speed and scale measurements use these.
import Foundation
import HRZFormat
import Basics
import OPTSchema

/// HF hub configs of the released OPT models (`facebook/opt-*`, config.json).
public enum Preset: String, CaseIterable, Sendable {
    case opt125m = "opt-125m", opt350m = "opt-350m", opt1_3b = "opt-1.3b", opt2_7b = "opt-2.7b"
    case opt6_7b = "opt-6.7b", opt13b = "opt-13b", opt30b = "opt-30b", opt66b = "opt-66b"

    public var config: OPTConfig {
        func c(_ C: Int, _ L: Int, _ H: Int, _ F: Int) -> OPTConfig {
            OPTConfig(hiddenSize: C, numHiddenLayers: L, numAttentionHeads: H, ffnDim: F)
        }
        switch self {
        case .opt125m: return c(768, 12, 12, 3072)
        case .opt350m:
            var config = c(1024, 24, 16, 4096)
            config.wordEmbedProjDim = 512
            config.doLayerNormBefore = false
            return config
        case .opt1_3b: return c(2048, 24, 32, 8192)
        case .opt2_7b: return c(2560, 32, 32, 10240)
        case .opt6_7b: return c(4096, 32, 32, 16384)
        case .opt13b: return c(5120, 40, 40, 20480)
        case .opt30b: return c(7168, 48, 56, 28672)
        case .opt66b: return c(9216, 64, 72, 36864)
        }
    }
}

public struct SynthOptions: Sendable {
    public var layers: Int?
    public var seed: UInt64 = 0
    public var dtype: DType = .f16
    public var level = 1
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    public var tokenizer: EmbeddedTokenizer?
    public init() {}
}

public enum Synthesizer {
    /// 65,536 quantiles of N(0, 1), at (i + 0.5) / 65536: indexing it with 16 random bits samples a normal
    /// at 16-bit resolution in well under a nanosecond.
    static let normalTable: [Float] = (0..<65536).map { Float(normalQuantile((Double($0) + 0.5) / 65536)) }

    /// Writes a model of `config`'s shapes to `path`. Weights ~ N(0, 0.02²) (OPT's init std); layer norm
    /// weights ~ 1 + N(0, 0.02²); biases ~ N(0, 0.02²). Deterministic for a given seed.
    public static func write(
        config base: OPTConfig, to path: String, options: SynthOptions = SynthOptions(),
        progress: ((Int, Int) -> Void)? = nil
    ) throws {
        var config = base
        if let layers = options.layers { config.numHiddenLayers = layers }
        let plans = Metadata.fullLayers(config)
        let tensors = ModelSchema.tensors(config: config, layers: plans)
        let total = tensors.reduce(0) { $0 + $1.shape.reduce(1, *) } * options.dtype.size
        let writer = try HRZWriter(path: path, level: options.level, threads: options.threads)
        var completed = false
        defer { if !completed { writer.abandon() } }
        var done = 0
        writer.onProgress = { bytes in
            done += bytes; progress?(done, total)
        }
        let dtype = options.dtype
        for (index, t) in tensors.enumerated() {
            let isNorm = t.name.contains("layer_norm"), isBias = t.name.hasSuffix(".bias")
            let offset: Float = isNorm && !isBias ? 1 : 0
            let seed = options.seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(index) << 32
            try writer.add(name: t.name, dtype: dtype, shape: t.shape, layer: t.layer) { range, destination in
                var rng = SplitMix64(seed: seed ^ UInt64(range.lowerBound))
                fill(destination, count: range.count, dtype: dtype, offset: offset, rng: &rng)
            }
        }
        let metadata = Metadata(
            config: config, layers: plans, tokenizer: options.tokenizer,
            provenance: Provenance(converter: "headroom 0.1.0 synth seed \(options.seed)", sources: [], dtype: "synthetic"))
        try writer.finish(metadata: metadata)
        completed = true
    }

    static func fill(_ destination: UnsafeMutableRawPointer, count: Int, dtype: DType, offset: Float, rng: inout SplitMix64) {
        normalTable.withUnsafeBufferPointer { table in
            var i = 0
            while i < count {
                var bits = rng.next()
                for _ in 0..<4 where i < count {
                    let v = offset + 0.02 * table[Int(bits & 0xffff)]
                    bits >>= 16
                    switch dtype {
                    case .f32: destination.storeBytes(of: v, toByteOffset: 4 * i, as: Float.self)
                    case .f16: destination.storeBytes(of: Half.f32ToF16(v), toByteOffset: 2 * i, as: UInt16.self)
                    case .bf16: destination.storeBytes(of: Half.f32ToBF16(v), toByteOffset: 2 * i, as: UInt16.self)
                    }
                    i += 1
                }
            }
        }
    }
}

/// Φ⁻¹(p) by Acklam's rational approximation (relative error < 1.2e-9), for 0 < p < 1.
func normalQuantile(_ p: Double) -> Double {
    let a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00]
    let b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01]
    let c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00]
    let d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
    let low = 0.02425
    if p < low {
        let q = (-2 * log(p)).squareRoot()
        return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
    }
    if p > 1 - low { return -normalQuantile(1 - p) }
    let q = p - 0.5, r = q * q
    return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
}
