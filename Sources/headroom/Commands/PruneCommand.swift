import Foundation
import HRZFormat
import Pruning
import OPTSchema
import Files
import Analysis

struct PruneCommand: Command {
    static let name = "prune"
    static let summary = "physically remove heads and FFNs: writes a smaller .hrz that runs natively"
    static let usage = """
    Usage: headroom prune MODEL.hrz -o OUT.hrz
                          [--heads SCORES --heads-percent P | --remove-heads l:h,l:h,...]
                          [--ffns SCORES --ffns-percent P | --remove-ffns l,l,...]
                          [--plan PLAN.json] [--plan-out PLAN.json] [--dry-run] [--level N] [--threads N]

    Selection: the P% lowest-scoring heads are removed, ranked globally across all layers, with
    count = floor(P · layers · heads / 100) of the ORIGINAL model (the paper's code); ties go to the lower
    (layer, head). FFNs are chosen the same way over the layers. Explicit lists and --plan add to that
    (the union is removed). Indices are always original ones, also when MODEL is already pruned: entries
    already gone are no-ops, so pruning A then B equals pruning A ∪ B.

    Removal: a head loses its q/k/v rows and biases and its out_proj input columns; out_proj's bias stays,
    so a layer with no heads left keeps only that bias. A removed FFN loses fc1 and fc2, and its layer
    norm on pre-LN models (post-LN models keep the norm after the block). OUT records the surviving
    original head indices per layer, the FFN flags, the parent's sha256 and the plan; `headroom inspect`
    shows them. Unchanged tensors are copied without recompression; memory stays at a few chunks.

    The plan (formats/prune-plan.md) is also a mask file: `headroom eval MODEL.hrz --mask-heads PLAN
    --mask-ffns PLAN` evaluates the same removal on the original model without rewriting it.

    Options:
      -o FILE            the pruned .hrz (required unless --dry-run)
      --heads FILE       a heads scores file (headroom importance heads / rank --aggregate)
      --heads-percent P  percent of all heads to remove (0-100)
      --remove-heads L   explicit [layer:head] list, e.g. 0:3,11:7
      --ffns FILE        an FFN scores file (headroom importance ffns)
      --ffns-percent P   percent of the layers' FFNs to remove (0-100)
      --remove-ffns L    explicit layer list, e.g. 5,23
      --plan FILE        an explicit plan
      --plan-out FILE    also write the plan used
      --dry-run          print the plan and the sizes it would give; write no model
      --level N          zstd level for rewritten tensors (default 3)
      --threads N        compression threads (default: all cores)
    """

    var model: String
    var output: String?
    var heads: (String, Double)?
    var ffns: (String, Double)?
    var removeHeads: [[Int]] = []
    var removeFFNs: [Int] = []
    var plan: String?
    var planOut: String?
    var dryRun: Bool
    var level: Int
    var threads: Int

    init(_ args: inout Arguments) throws(UsageError) {
        func percent(_ name: String) throws(UsageError) -> Double? {
            guard let text = try args.option(name) else { return nil }
            guard let p = Double(text), p >= 0, p <= 100 else { throw UsageError("\(name) takes a percentage from 0 to 100, got '\(text)'") }
            return p
        }
        output = try args.option("-o")
        if let file = try args.option("--heads") {
            guard let p = try percent("--heads-percent") else { throw UsageError("--heads needs --heads-percent P") }
            heads = (file, p)
        } else if try percent("--heads-percent") != nil { throw UsageError("--heads-percent needs --heads SCORES") }
        if let file = try args.option("--ffns") {
            guard let p = try percent("--ffns-percent") else { throw UsageError("--ffns needs --ffns-percent P") }
            ffns = (file, p)
        } else if try percent("--ffns-percent") != nil { throw UsageError("--ffns-percent needs --ffns SCORES") }
        if let text = try args.option("--remove-heads") {
            for item in text.split(separator: ",") {
                let parts = item.split(separator: ":").map { Int($0) }
                guard parts.count == 2, let l = parts[0], let h = parts[1] else { throw UsageError("--remove-heads takes layer:head pairs like 0:3,11:7, got '\(item)'") }
                removeHeads.append([l, h])
            }
        }
        if let text = try args.option("--remove-ffns") {
            for item in text.split(separator: ",") {
                guard let l = Int(item) else { throw UsageError("--remove-ffns takes layer numbers like 5,23, got '\(item)'") }
                removeFFNs.append(l)
            }
        }
        plan = try args.option("--plan")
        planOut = try args.option("--plan-out")
        dryRun = args.flag("--dry-run")
        level = try args.option("--level", default: 3, in: 1...19)
        threads = try args.option("--threads", default: ProcessInfo.processInfo.activeProcessorCount, in: 1...1024)
        model = try args.positional("MODEL.hrz")
        if output == nil && !dryRun { throw UsageError("missing -o OUT.hrz") }
        if heads == nil && ffns == nil && removeHeads.isEmpty && removeFFNs.isEmpty && plan == nil {
            throw UsageError("nothing to remove: give --heads/--heads-percent, --ffns/--ffns-percent, --remove-heads, --remove-ffns or --plan")
        }
    }

    var inputs: [String] { [model] + [plan, heads?.0, ffns?.0].compactMap { $0 } }
    var outputs: [FileGuard.Output] { (dryRun ? [] : [output].compactMap { $0 }.map { .file($0) }) + [planOut].compactMap { $0 }.map { .file($0) } }

    func run() throws -> Int32 {
        let reader = try HRZReader(path: model)
        let config = reader.config
        var chosen = PrunePlan.select(
            heads: try heads.map { ($0.0, try PrunePlan.scores($0.0, kind: "heads", config: config), $0.1) },
            ffns: try ffns.map { ($0.0, try PrunePlan.scores($0.0, kind: "ffns", config: config), $0.1) })
        let selection = chosen.selection
        chosen = chosen.union(PrunePlan(heads: removeHeads, ffns: removeFFNs))
        if let plan { chosen = chosen.union(try PrunePlan.load(plan, config: config)) }
        chosen.selection = selection
        try chosen.validate(config: config, file: "the command line")
        if let planOut { try chosen.write(to: planOut) }

        let before = reader.metadata.layers, after = chosen.apply(to: before)
        let count = { (plans: [LayerPlan]) in plans.reduce(0) { $0 + $1.heads.count } }
        print("plan: remove \(chosen.heads.count) heads and \(chosen.ffns.count) FFNs (original indices): "
              + "heads \(count(before)) → \(count(after)), FFNs \(before.filter(\.ffn).count) → \(after.filter(\.ffn).count)")
        if dryRun {
            print(String(decoding: try chosen.json(), as: UTF8.self))
            return 0
        }
        let bar = ProgressBar("prune")
        let r = try Pruner.prune(model, plan: chosen, to: output!, level: level, threads: threads) { done, total in
            bar.update(phase: "tensors", done: done, total: total)
        }
        bar.finish()
        print(String(format: "wrote %@ (%@, %.1f%% of %@): decoder parameters %@ → %@ (%.1f%% removed)",
                     output!, formatBytes(r.fileBytesAfter), 100 * Double(r.fileBytesAfter) / Double(r.fileBytesBefore),
                     formatBytes(r.fileBytesBefore), formatCount(r.layerParametersBefore), formatCount(r.layerParametersAfter),
                     100 * (1 - Double(r.layerParametersAfter) / Double(r.layerParametersBefore))))
        if let planOut { print("plan written to \(planOut); evaluate the masked original with --mask-heads \(planOut) --mask-ffns \(planOut)") }
        return 0
    }
}

func formatCount(_ n: Int) -> String {
    n >= 1_000_000_000 ? String(format: "%.2fB", Double(n) / 1e9) : n >= 1_000_000 ? String(format: "%.2fM", Double(n) / 1e6)
        : n >= 1000 ? String(format: "%.1fK", Double(n) / 1e3) : "\(n)"
}
