import Foundation
import HRZFormat
import Runtime
import Tokenizer
import Files

struct LogitsCommand: Command {
    static let name = "logits"
    static let summary = "run the model on token ids (or text) and write float32 logits [T, V] as .npy"
    static let usage = """
    Usage: headroom logits MODEL.hrz (--tokens ID,ID,... | --text TEXT [--bos|--no-bos]) -o OUT.npy [--threads N] [--memory-budget BYTES]
                                  [--precision fp32|bf16]

    Runs the exact fp32 forward pass and writes the logits at every position, float32 [T, vocab_size],
    in NumPy .npy format (np.load reads it). --text tokenizes with the model's embedded tokenizer.

    Options:
      --tokens IDS         comma-separated token ids
      --text TEXT          text to tokenize instead (--bos prepends id 2 as HF's OPT tokenizer does; default --no-bos)
      -o FILE              output .npy (required; written atomically)
      --threads N          threads (default: all cores)
      --precision P        fp32 (default, exact) or bf16 (GEMM inputs rounded to bf16, fp32 accumulation)
      --memory-budget B    activation bytes in flight (suffixes K, M, G); default: unbounded
    """

    var model: String
    var tokens: [Int]?
    var text: String?
    var bos: Bool
    var output: String
    var threads: Int
    var precision = Precision.fp32
    var budget: Int?

    init(_ args: inout Arguments) throws(UsageError) {
        bos = try args.bos(default: false)
        if let t = try args.option("--tokens") {
            let parts = t.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !parts.isEmpty, parts.allSatisfy({ $0 != nil }) else { throw UsageError("--tokens takes comma-separated integers, got '\(t)'") }
            tokens = parts.map { $0! }
        }
        text = try args.option("--text")
        guard (tokens == nil) != (text == nil) else { throw UsageError("give exactly one of --tokens and --text") }
        guard let o = try args.option("-o") else { throw UsageError("missing -o OUT.npy") }
        output = o
        threads = try args.option("--threads", default: ProcessInfo.processInfo.activeProcessorCount, in: 1...1024)
        precision = try args.precision()
        budget = try parseBytes(try args.option("--memory-budget"), "--memory-budget")
        model = try args.positional("MODEL.hrz")
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

/// Parses `123`, `64K`, `512M`, `8G` (powers of 1024).
func parseBytes(_ text: String?, _ name: String) throws(UsageError) -> Int? {
    guard let text else { return nil }
    let units: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
    var digits = text.uppercased()
    if digits.hasSuffix("B") { digits.removeLast() }
    var scale = 1
    if let last = digits.last, let u = units[last] { scale = u; digits.removeLast() }
    guard let value = Double(digits), value > 0 else { throw UsageError("\(name) takes a size like 512M or 8G, got '\(text)'") }
    return Int(value * Double(scale))
}
