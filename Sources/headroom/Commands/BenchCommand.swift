import Benchmarks
import Foundation

struct BenchCommand: Command {
    static let name = "bench"
    static let summary = "benchmarks: `bench format` (compression ratio and decode speed)"
    static let usage = """
    Usage: headroom bench format [--elements N] [--model MODEL.hrz ...] [--json]

    format: compares plain zstd with byte-plane split zstd at levels 1, 3 and 9 on fp16 tensors
    drawn from N(0, 0.02) (the init and typical scale of trained OPT weights) and on the 16-bit
    tensors of any .hrz given with --model. Reports the lossless size ratio and single-core decode
    speed (checksum included) in GB/s of decoded bytes.

    Options:
      --elements N   synthetic fp16 elements (default 33554432 = 64 MB)
      --model FILE   also measure this model's 16-bit tensors (repeatable)
      --json         print JSON rows instead of the table
    """

    var suite: String
    var elements: Int
    var models: [String] = []
    var json: Bool

    init(_ args: inout Arguments) throws(UsageError) {
        json = args.flag("--json")
        elements = try args.option("--elements", default: 1 << 25, in: 1024...(1 << 32))
        while let m = try args.option("--model") { models.append(m) }
        suite = try args.positional("SUITE (format)")
        guard suite == "format" else { throw UsageError("unknown benchmark '\(suite)'; available: format") }
    }

    func run() throws -> Int32 {
        let rows = try FormatBenchmark.run(syntheticElements: elements, models: models) { printError($0) }
        print(json ? FormatBenchmark.json(rows) : FormatBenchmark.table(rows))
        return 0
    }
}
