import Foundation
import Runtime
import Tokenizer

struct GenerateCommand: Command {
    static let spec = CommandSpec(
        name: "generate", summary: "greedy text generation with a KV cache, to check a converted model talks sense",
        synopsis: ["MODEL.hrz PROMPT [--max-tokens N] [--bos|--no-bos] [--threads N] [--precision fp32|bf16]"],
        positionals: [Positional("MODEL.hrz", ""), Positional("PROMPT", "")],
        groups: [
            OptionGroup(
                "Options",
                [
                    Option("--max-tokens", value: "N", default: "32", "new tokens"),
                    Option("--bos", "prepend id 2 (the default, as HF's OPT tokenizer does)"),
                    Option("--no-bos", "do not"),
                    Groups.threads, Groups.precision,
                ])
        ],
        discussion: """
            Tokenizes PROMPT with the model's embedded tokenizer, prepends OPT's BOS (</s>, id 2) as HF's OPT
            tokenizer does, and generates greedily (argmax) with a KV cache, printing text as it comes. Stops
            after N tokens or at </s>.
            """)

    var model: String
    var prompt: String
    var maxTokens: Int
    var bos: Bool
    var threads: Int
    var precision = Precision.fp32

    init(_ args: ParsedArguments) throws(UsageError) {
        maxTokens = try args.int("--max-tokens", in: 1...100_000)!
        bos = try args.bos(default: true)
        threads = try args.threads()
        precision = try args.precision()
        model = try args.positional(required: 0)
        prompt = try args.positional(required: 1)
    }

    var inputs: [String] { [model] }

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
