import Foundation
import HRZFormat
import Runtime
import Files

struct SynthCommand: Command {
    static let name = "synth"
    static let summary = "write a random-weight OPT with real shapes (opt-125m … opt-66b) for benchmarks"
    static let usage = """
    Usage: headroom synth --preset PRESET -o MODEL.hrz [--layers N] [--seed S] [--dtype f16|bf16|f32] [--level N] [--threads N] [--tokenizer DIR]

    Writes a model with the shapes of a released OPT and random weights (N(0, 0.02²), OPT's init scale)
    straight into HRZ, chunk by chunk, with bounded memory. Deterministic for a given seed.

    Options:
      --preset P      \(Preset.allCases.map(\.rawValue).joined(separator: ", "))
      -o FILE         output (required)
      --layers N      keep only N decoder layers (default: the preset's)
      --seed S        random seed (default 0)
      --dtype D       f16 (default, as released OPT checkpoints), bf16 or f32
      --level N       zstd level (default 1)
      --threads N     compression threads (default: all cores)
      --tokenizer DIR embed vocab.json and merges.txt from DIR
    """

    var preset: Preset
    var output: String
    var options = SynthOptions()
    var tokenizerDirectory: String?

    init(_ args: inout Arguments) throws(UsageError) {
        guard let p = try args.option("--preset") else { throw UsageError("missing --preset") }
        guard let preset = Preset(rawValue: p) else {
            throw UsageError("--preset takes one of \(Preset.allCases.map(\.rawValue).joined(separator: ", ")), got '\(p)'")
        }
        self.preset = preset
        guard let o = try args.option("-o") else { throw UsageError("missing -o MODEL.hrz") }
        output = o
        if let layers = try args.option("--layers") {
            let most = preset.config.numHiddenLayers
            guard let n = Int(layers), (1...most).contains(n) else {
                throw UsageError("--layers keeps 1 to \(most) of \(preset.rawValue)'s layers, got '\(layers)'")
            }
            options.layers = n
        }
        options.seed = UInt64(try args.option("--seed", default: 0, in: 0...Int.max))
        let dtype = try args.option("--dtype") ?? "f16"
        guard let d = DType(rawValue: dtype) else { throw UsageError("--dtype takes f16, bf16 or f32, got '\(dtype)'") }
        options.dtype = d
        options.level = try args.option("--level", default: 1, in: 1...19)
        options.threads = try args.option("--threads", default: ProcessInfo.processInfo.activeProcessorCount, in: 1...1024)
        tokenizerDirectory = try args.option("--tokenizer")
    }

    var inputs: [String] { [tokenizerDirectory].compactMap { $0 } }
    var outputs: [FileGuard.Output] { [.file(output)] }

    func run() throws -> Int32 {
        var options = self.options
        if let dir = tokenizerDirectory {
            let read = { (name: String) throws -> String in
                let path = (dir as NSString).appendingPathComponent(name)
                guard let text = try FileGuard.contents(atPath: path).flatMap({ String(data: $0, encoding: .utf8) }) else {
                    throw HRZError(.io("cannot read"), file: path)
                }
                return text
            }
            options.tokenizer = EmbeddedTokenizer(vocab: try read("vocab.json"), merges: try read("merges.txt"))
        }
        let bar = ProgressBar("synth")
        let started = Date()
        try Synthesizer.write(config: preset.config, to: output, options: options) { done, total in
            bar.update(phase: preset.rawValue, done: done, total: total)
        }
        bar.finish()
        let size = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
        print("wrote \(output) (\(formatBytes(size))): \(preset.rawValue) shapes, \(options.layers ?? preset.config.numHiddenLayers) layers, "
              + "\(options.dtype.rawValue), seed \(options.seed), " + String(format: "%.1f s", Date().timeIntervalSince(started)))
        return 0
    }
}
