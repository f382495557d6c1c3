/// The option groups several commands share, declared once, and the parsers of the value kinds they take.
import Foundation
import Evaluation
import Files
import Jobs
import Runtime

public enum Groups {
    /// `-o PLACEHOLDER` (also `--output`).
    public static func output(_ placeholder: String, _ help: String) -> Option {
        Option("-o", aliases: ["--output"], value: placeholder, help)
    }

    public static let tasks = Option(
        "--tasks", aliases: ["--task"], value: "LIST",
        "tasks: the paper's names, all, or generic tasks in DIR (DIR/NAME/validation.jsonl)")
    public static func shots(default value: String = "0") -> Option {
        Option("--shots", value: "LIST", default: value, "numbers of in-context examples, e.g. 0,1,5")
    }
    public static let data = Option("--data", value: "DIR", "task data: DIR/<task>/<split>.jsonl (HF datasets rows)")
    public static let limit = Option("--limit", value: "N", "the first N docs of each cell's shuffled order (the harness's limit)")

    public static let threads = Option("--threads", value: "N", defaultText: "all cores", "threads")
    public static let precision = Option(
        "--precision", value: "fp32|bf16", default: "fp32",
        "fp32 is exact against HF; bf16 rounds GEMM inputs to bf16 and accumulates in fp32 (recorded in every output)")
    public static let memoryBudget = Option(
        "--memory-budget", value: "B", "activation bytes in flight (e.g. 2G); saved layer inputs beyond it spill to $TMPDIR")
    public static let batchTokens = Option("--batch-tokens", value: "N", default: "16384", "tokens per scoring batch (one forward); parts split whole batches")

    /// Threads, precision and the memory budget: how a command that runs the model computes.
    public static let compute = OptionGroup("Compute", [threads, precision, memoryBudget])

    /// One part of a job on several machines, and the merge of the parts.
    public static func parts(_ what: String) -> OptionGroup {
        OptionGroup(
            "On several machines",
            [
                Option("--shard", value: "i/N", "compute part i of N (\(what)) into the output's shards/ directory"),
                Option("--merge-shards", value: "N", "join the N parts into the output, exactly as one run writes it"),
            ])
    }
}

/// `copa,piqa` or `all` → tasks, with a usage error naming the unknown one. A name that is not one of the
/// paper's 16 is a generic task (formats/tasks.md) when DATA/<name>/validation.jsonl exists.
public func parseTasks(_ text: String?, data: String?) throws(UsageError) -> [EvalTask] {
    guard let text else { throw UsageError("missing --tasks") }
    var list: [EvalTask] = []
    for name in text.split(separator: ",").map(String.init) {
        if name == "all" { list += EvalTask.allCases; continue }
        guard let t = EvalTask.named(name, dataDirectory: data) else {
            throw UsageError(
                "unknown task '\(name)': not one of \(EvalTask.allCases.map(\.rawValue).joined(separator: ", ")) or all, "
                    + "and no generic task file \(data ?? "DIR")/\(name)/validation.jsonl")
        }
        list.append(t)
    }
    guard !list.isEmpty else { throw UsageError("--tasks names no task") }
    return list
}

/// `0,1,5` → shots (each 0…64).
public func parseShots(_ text: String) throws(UsageError) -> [Int] {
    let shots = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0) }
    guard !shots.isEmpty, shots.allSatisfy({ $0 != nil && $0! >= 0 && $0! <= 64 }) else {
        throw UsageError("--shots takes numbers from 0 to 64 like 0,1,5, got '\(text)'")
    }
    return shots.map { $0! }
}

/// Parses `123`, `64K`, `512M`, `8G` (powers of 1024), up to 1 PiB.
public func parseBytes(_ text: String?, _ name: String) throws(UsageError) -> Int? {
    guard let text else { return nil }
    let units: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
    var digits = text.uppercased()
    if digits.hasSuffix("B") { digits.removeLast() }
    var scale = 1
    if let last = digits.last, let u = units[last] { scale = u; digits.removeLast() }
    guard let value = Double(digits), value > 0, value * Double(scale) <= Double(1 << 50) else {
        throw UsageError("\(name) takes a size like 512M or 8G (at most 1P), got '\(text)'")
    }
    return Int(value * Double(scale))
}

/// A list of percentages ("0,10,50").
public func parsePercentages(_ text: String?, _ name: String) throws(UsageError) -> [Double]? {
    guard let text else { return nil }
    let values = text.split(separator: ",", omittingEmptySubsequences: false).map { Double($0) }
    guard !values.isEmpty, values.count <= 1000, values.allSatisfy({ $0 != nil && (0...100).contains($0!) }) else {
        throw UsageError("\(name) takes up to 1000 percentages like 0,10,50, got '\(text)'")
    }
    return values.map { $0! }
}
