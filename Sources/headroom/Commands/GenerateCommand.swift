import Foundation
import Runtime
import Tokenizer

struct GenerateCommand: Command {
    static let name = "generate"
    static let summary = "greedy text generation with a KV cache, to check a converted model talks sense"
    static let usage = """
    Usage: headroom generate MODEL.hrz PROMPT [--max-tokens N] [--bos|--no-bos] [--threads N] [--precision fp32|bf16]

    Tokenizes PROMPT with the model's embedded tokenizer, prepends OPT's BOS (</s>, id 2) as HF's OPT
    tokenizer does, and generates greedily (argmax) with a KV cache, printing text as it comes. Stops
    after N tokens or at </s>.

    Options:
      --max-tokens N   new tokens (default 32)
      --bos, --no-bos  prepend id 2 or not (default: prepend, as HF's OPT tokenizer does)
      --threads N      threads (default: all cores)
      --precision P    fp32 (default, exact) or bf16 (GEMM inputs rounded to bf16, fp32 accumulation)
    """

    var model: String
    var prompt: String
    var maxTokens: Int
    var bos: Bool
    var threads: Int
    var precision = Precision.fp32

    init(_ args: inout Arguments) throws(UsageError) {
        maxTokens = try args.option("--max-tokens", default: 32, in: 1...100_000)
        bos = try args.bos(default: true)
        threads = try args.option("--threads", default: ProcessInfo.processInfo.activeProcessorCount, in: 1...1024)
        precision = try args.precision()
        model = try args.positional("MODEL.hrz")
        prompt = try args.positional("PROMPT")
    }

    func run() throws -> Int32 {
        Threads.set(threads)
        let tokenizer = try Tokenizer.load(model)
        let opt = try OPTModel(path: model, resident: true, precision: precision)
        let ids = tokenizer.encode(prompt, bos: bos)
        FileHandle.standardOutput.write(Data(prompt.utf8))
        var generated: [Int] = []
        var printed = ""
        _ = try opt.generate(prompt: ids, maxTokens: maxTokens, stop: opt.config.eosTokenId) { token in
            generated.append(token)
            // Decode the whole continuation each time: a character can span several byte-level tokens.
            let text = (try? tokenizer.decode(generated.filter { $0 != opt.config.eosTokenId })) ?? ""
            if text.hasPrefix(printed), !text.hasSuffix("\u{FFFD}") {
                FileHandle.standardOutput.write(Data(text.dropFirst(printed.count).utf8))
                printed = text
            }
        }
        print("")
        return 0
    }
}
