import Foundation
import HRZFormat
import Runtime
import Tokenizer
import Files

struct LogitsCommand: Command {
    static let spec = CommandSpec(
        name: "logits", summary: "run the model on token ids (or text) and write float32 logits [T, V] as .npy",
        synopsis: [
            "MODEL.hrz (--tokens ID,ID,... | --text TEXT [--bos|--no-bos]) -o OUT.npy [--threads N] [--memory-budget BYTES]",
            "MODEL.hrz … [--precision fp32|bf16]",
        ],
        positionals: [Positional("MODEL.hrz", "")],
        groups: [
            OptionGroup(
                "Options",
                [
                    Option("--tokens", value: "IDS", "comma-separated token ids"),
                    Option("--text", value: "TEXT", "text to tokenize with the model's embedded tokenizer instead"),
                    Option("--bos", "with --text: prepend id 2 as HF's OPT tokenizer does"),
                    Option("--no-bos", "with --text: do not (the default)"),
                    Groups.output("OUT.npy", "output .npy (required; written atomically)"),
                ]), Groups.compute,
        ],
        discussion: """
            Runs the exact fp32 forward pass and writes the logits at every position, float32 [T, vocab_size],
            in NumPy .npy format (np.load reads it).
            """)

    var model: String
    var tokens: [Int]?
    var text: String?
    var bos: Bool
    var output: String
    var threads: Int
    var precision = Precision.fp32
    var budget: Int?

    init(_ args: ParsedArguments) throws(UsageError) {
        bos = try args.bos(default: false)
        if let t = args.string("--tokens") {
            let parts = t.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !parts.isEmpty, parts.allSatisfy({ $0 != nil }) else { throw UsageError("--tokens takes comma-separated integers, got '\(t)'") }
            tokens = parts.map { $0! }
        }
        text = args.string("--text")
        guard (tokens == nil) != (text == nil) else { throw UsageError("give exactly one of --tokens and --text") }
        output = try args.required("-o")
        threads = try args.threads()
        precision = try args.precision()
        budget = try args.memoryBudget()
        model = try args.positional(required: 0)
    }

    var inputs: [String] { [model] }
    var outputs: [FileGuard.Output] { [.file(output)] }

    func run() throws -> Int32 {
        Threads.set(threads)
        let ids = try tokens ?? Tokenizer.load(model).encode(text ?? "", bos: bos)
        let opt = try OPTModel(path: model, precision: precision)
        let out = try opt.forward([SequenceInput(tokens: ids, logits: .all)], options: ForwardOptions(memoryBudget: budget))
        try NPY.write(out[0].values, shape: [ids.count, opt.config.vocabSize], to: output)
        print("wrote \(output): float32 [\(ids.count), \(opt.config.vocabSize)]" + (precision == .bf16 ? ", computed with bf16 GEMMs" : ""))
        return 0
    }
}
