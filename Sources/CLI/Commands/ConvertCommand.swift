import Checkpoints
import Foundation
import HRZFormat
import Files

struct ConvertCommand: Command {
    static let spec = CommandSpec(
        name: "convert", summary: "convert an HF OPT checkpoint (safetensors or .bin, sharded or not) to .hrz",
        synopsis: ["HF_DIR|HUB_ID -o MODEL.hrz [--dtype keep|f16|bf16|f32] [--level N] [--threads N] [--tokenizer DIR]"],
        positionals: [Positional("HF_DIR", "an HF model directory, or a hub id (owner/name[@revision]) in the local HF cache")],
        groups: [
            OptionGroup(
                "Options",
                [
                    Groups.output("MODEL.hrz", "the .hrz to write (required)"),
                    Option("--dtype", value: "D", default: "keep", "keep (each tensor's source dtype), f16, bf16 or f32"),
                    Option("--level", value: "N", default: "3", "zstd level, 1-19"),
                    Option("--threads", value: "N", defaultText: "all cores", "compression threads"),
                    Option("--tokenizer", value: "DIR", "take vocab.json and merges.txt from DIR (default: HF_DIR, if present there)"),
                ])
        ],
        discussion: """
            Reads config.json and the weights in HF_DIR (model.safetensors, model.safetensors.index.json,
            pytorch_model.bin or pytorch_model.bin.index.json) and writes one zstd-chunked .hrz file.
            HUB_ID (facebook/opt-1.3b, or facebook/opt-1.3b@REVISION with a branch, tag or 40-digit commit) is
            looked up in the local Hugging Face cache ($HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub),
            following refs/main; nothing is downloaded, and every file read through a snapshot must resolve
            into the repository's blobs/. A snapshot directory of that cache also works as HF_DIR.
            Tensors are streamed one chunk at a time: memory stays bounded whatever the model size.
            The output appears only when complete (written to MODEL.hrz.partial-HOST-PID, then renamed).
            """)

    var input: String
    var output: String
    var options = ConvertOptions()

    init(_ args: ParsedArguments) throws(UsageError) {
        output = try args.required("-o")
        options.dtype = try args.choice("--dtype", as: DTypeChoice.self)!
        options.level = try args.int("--level", in: 1...19)!
        options.threads = try args.threads()
        options.tokenizerDirectory = args.string("--tokenizer")
        input = try args.positional(required: 0)
    }

    /// HF_DIR as given, or the cache snapshot a hub id names.
    var directory: String { HFCache.looksLikeHubID(input) ? ((try? HFCache.resolve(input)) ?? input) : input }
    /// The directory and every checkpoint, config and tokenizer file in it: `-o HF_DIR/config.json` must be
    /// refused, while `-o HF_DIR/model.hrz` (converting into the checkpoint's folder, and again later) is fine.
    var inputs: [String] {
        let dirs = [directory].filter { FileManager.default.fileExists(atPath: $0) } + [options.tokenizerDirectory].compactMap { $0 }
        let read = Set(["config.json", "vocab.json", "merges.txt"])
        let files = dirs.flatMap { dir in
            ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [])
                .filter { read.contains($0) || $0.hasSuffix(".safetensors") || $0.hasSuffix(".bin") || $0.hasSuffix(".index.json") }
                .map { (dir as NSString).appendingPathComponent($0) }
        }
        return dirs + files
    }
    var outputs: [FileGuard.Output] { [.file(output)] }

    func run() throws -> Int32 {
        let bar = ProgressBar("convert")
        let started = Date()
        var source = input
        if HFCache.looksLikeHubID(input) {
            source = try HFCache.resolve(input)
            print("\(input): \(source)")
        }
        let report = try Converter.convert(source, to: output, options: options) { p in
            bar.update(phase: p.phase, done: p.done, total: p.total)
        }
        bar.finish()
        let seconds = Date().timeIntervalSince(started)
        print(
            "wrote \(output) (\(formatBytes(report.fileBytes))): \(report.tensors) tensors from \(report.layout.rawValue), "
                + "\(formatBytes(report.rawBytes)) of weights stored in \(formatBytes(report.storedBytes)) "
                + String(format: "(%.3f×) in %.1f s", Double(report.rawBytes) / Double(max(1, report.storedBytes)), seconds))
        if !report.tokenizerEmbedded {
            print("note: no vocab.json/merges.txt in \(input); pass --tokenizer DIR to embed them (needed by tokenize/eval)")
        }
        return 0
    }
}
