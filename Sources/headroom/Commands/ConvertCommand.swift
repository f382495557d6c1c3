import Checkpoints
import Foundation
import HRZFormat
import Files

struct ConvertCommand: Command {
    static let name = "convert"
    static let summary = "convert an HF OPT checkpoint (safetensors or .bin, sharded or not) to .hrz"
    static let usage = """
    Usage: headroom convert HF_DIR|HUB_ID -o MODEL.hrz [--dtype keep|f16|bf16|f32] [--level N] [--threads N] [--tokenizer DIR]

    Reads config.json and the weights in HF_DIR (model.safetensors, model.safetensors.index.json,
    pytorch_model.bin or pytorch_model.bin.index.json) and writes one zstd-chunked .hrz file.
    HUB_ID (facebook/opt-1.3b, or facebook/opt-1.3b@REVISION) is looked up in the local Hugging Face
    cache ($HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub), following refs/main; nothing is
    downloaded. A snapshot directory of that cache also works as HF_DIR.
    Tensors are streamed one chunk at a time: memory stays bounded whatever the model size.
    The output appears only when complete (written to MODEL.hrz.partial-HOST-PID, then renamed).

    Options:
      -o, --output FILE   the .hrz to write (required)
      --dtype D           keep (default: each tensor's source dtype), f16, bf16 or f32
      --level N           zstd level, 1-19 (default 3)
      --threads N         compression threads (default: all cores)
      --tokenizer DIR     take vocab.json and merges.txt from DIR (default: HF_DIR, if present there)
    """

    var input: String
    var output: String
    var options = ConvertOptions()

    init(_ args: inout Arguments) throws(UsageError) {
        let short = try args.option("-o"), long = try args.option("--output")
        guard let output = short ?? long else { throw UsageError("missing -o MODEL.hrz") }
        self.output = output
        options.dtype = try args.choice("--dtype", default: DTypeChoice.keep)
        options.level = try args.option("--level", default: 3, in: 1...19)
        options.threads = try args.option("--threads", default: ProcessInfo.processInfo.activeProcessorCount, in: 1...1024)
        options.tokenizerDirectory = try args.option("--tokenizer")
        input = try args.positional("HF_DIR")
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
        print("wrote \(output) (\(formatBytes(report.fileBytes))): \(report.tensors) tensors from \(report.layout.rawValue), "
              + "\(formatBytes(report.rawBytes)) of weights stored in \(formatBytes(report.storedBytes)) "
              + String(format: "(%.3f×) in %.1f s", Double(report.rawBytes) / Double(max(1, report.storedBytes)), seconds))
        if !report.tokenizerEmbedded {
            print("note: no vocab.json/merges.txt in \(input); pass --tokenizer DIR to embed them (needed by tokenize/eval)")
        }
        return 0
    }
}
