import Foundation
import HRZFormat
import Runtime
import Files

struct SynthCommand: Command {
    static let spec = CommandSpec(
        name: "synth", summary: "write a random-weight OPT with real shapes (opt-125m … opt-66b) for benchmarks",
        synopsis: ["--preset PRESET -o MODEL.hrz [--layers N] [--seed S] [--dtype f16|bf16|f32] [--level N] [--threads N] [--tokenizer DIR]"],
        groups: [
            OptionGroup(
                "Options",
                [
                    Option("--preset", value: "P", Preset.allCases.map(\.rawValue).joined(separator: ", ")),
                    Groups.output("MODEL.hrz", "output (required)"),
                    Option("--layers", value: "N", defaultText: "the preset's", "keep only N decoder layers"),
                    Option("--seed", value: "S", default: "0", "random seed"),
                    Option("--dtype", value: "D", default: "f16", "f16 (as released OPT checkpoints), bf16 or f32"),
                    Option("--level", value: "N", default: "1", "zstd level"),
                    Option("--threads", value: "N", defaultText: "all cores", "compression threads"),
                    Option("--tokenizer", value: "DIR", "embed vocab.json and merges.txt from DIR"),
                ])
        ],
        discussion: """
            Writes a model with the shapes of a released OPT and random weights (N(0, 0.02²), OPT's init scale)
            straight into HRZ, chunk by chunk, with bounded memory. Deterministic for a given seed.
            """)

    var preset: Preset
    var output: String
    var options = SynthOptions()
    var tokenizerDirectory: String?

    init(_ args: ParsedArguments) throws(UsageError) {
        guard let preset = try args.choice("--preset", as: Preset.self) else { throw UsageError("missing --preset") }
        self.preset = preset
        output = try args.required("-o")
        let most = preset.config.numHiddenLayers
        if let layers = args.string("--layers") {
            guard let n = Int(layers), (1...most).contains(n) else {
                throw UsageError("--layers keeps 1 to \(most) of \(preset.rawValue)'s layers, got '\(layers)'")
            }
            options.layers = n
        }
        options.seed = UInt64(try args.int("--seed", in: 0...Int.max)!)
        let dtype = args.string("--dtype")!
        guard let d = DType(rawValue: dtype), [.f16, .bf16, .f32].contains(d) else { throw UsageError("--dtype takes f16, bf16 or f32, got '\(dtype)'") }
        options.dtype = d
        options.level = try args.int("--level", in: 1...19)!
        options.threads = try args.threads()
        tokenizerDirectory = args.string("--tokenizer")
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
        print(
            "wrote \(output) (\(formatBytes(size))): \(preset.rawValue) shapes, \(options.layers ?? preset.config.numHiddenLayers) layers, "
                + "\(options.dtype.rawValue), seed \(options.seed), " + String(format: "%.1f s", Date().timeIntervalSince(started)))
        return 0
    }
}
