import Foundation
import HRZFormat
import Jobs
import Pruning
import OPTSchema
import Files
import Analysis

struct PruneCommand: Command {
    static let spec = CommandSpec(
        name: "prune", summary: "physically remove heads and FFNs: writes a smaller .hrz that runs natively",
        synopsis: [
            "MODEL.hrz -o OUT.hrz [--heads SCORES --heads-percent P | --remove-heads l:h,l:h,...]",
            "MODEL.hrz -o OUT.hrz [--ffns SCORES --ffns-percent P | --remove-ffns l,l,...] [--plan PLAN.json] [--plan-out PLAN.json]",
            "MODEL.hrz --dry-run … [--level N] [--threads N]",
        ],
        positionals: [Positional("MODEL.hrz", "")],
        groups: [
            OptionGroup(
                "What to remove",
                [
                    Option("--heads", value: "FILE", "a heads scores file (headroom importance heads / rank --aggregate)"),
                    Option("--heads-percent", value: "P", "percent of all heads to remove (0-100)"),
                    Option("--remove-heads", value: "L", "explicit [layer:head] list, e.g. 0:3,11:7"),
                    Option("--ffns", value: "FILE", "an FFN scores file (headroom importance ffns)"),
                    Option("--ffns-percent", value: "P", "percent of the layers' FFNs to remove (0-100)"),
                    Option("--remove-ffns", value: "L", "explicit layer list, e.g. 5,23"),
                    Option("--plan", value: "FILE", "an explicit plan"),
                ]),
            OptionGroup(
                "Output",
                [
                    Groups.output("OUT.hrz", "the pruned .hrz (required unless --dry-run)"),
                    Option("--plan-out", value: "FILE", "also write the plan used"),
                    Option("--dry-run", "print the plan and the sizes it would give; write no model"),
                    Option("--level", value: "N", default: "3", "zstd level for rewritten tensors"),
                    Option("--threads", value: "N", defaultText: "all cores", "compression threads"),
                ]),
        ],
        discussion: """
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
            """)

    var spec: PruneSpec

    init(_ args: ParsedArguments) throws(UsageError) {
        func percent(_ name: String) throws(UsageError) -> Double? {
            guard let text = args.string(name) else { return nil }
            guard let p = Double(text), p >= 0, p <= 100 else { throw UsageError("\(name) takes a percentage from 0 to 100, got '\(text)'") }
            return p
        }
        spec = PruneSpec(model: try args.positional(required: 0), output: args.string("-o"))
        if let file = args.string("--heads") {
            guard let p = try percent("--heads-percent") else { throw UsageError("--heads needs --heads-percent P") }
            spec.heads = (file, p)
        } else if try percent("--heads-percent") != nil {
            throw UsageError("--heads-percent needs --heads SCORES")
        }
        if let file = args.string("--ffns") {
            guard let p = try percent("--ffns-percent") else { throw UsageError("--ffns needs --ffns-percent P") }
            spec.ffns = (file, p)
        } else if try percent("--ffns-percent") != nil {
            throw UsageError("--ffns-percent needs --ffns SCORES")
        }
        if let text = args.string("--remove-heads") {
            for item in text.split(separator: ",") {
                let parts = item.split(separator: ":").map { Int($0) }
                guard parts.count == 2, let l = parts[0], let h = parts[1] else {
                    throw UsageError("--remove-heads takes layer:head pairs like 0:3,11:7, got '\(item)'")
                }
                spec.removeHeads.append([l, h])
            }
        }
        if let text = args.string("--remove-ffns") {
            for item in text.split(separator: ",") {
                guard let l = Int(item) else { throw UsageError("--remove-ffns takes layer numbers like 5,23, got '\(item)'") }
                spec.removeFFNs.append(l)
            }
        }
        spec.planFile = args.string("--plan")
        spec.planOutput = args.string("--plan-out")
        spec.dryRun = args.flag("--dry-run")
        spec.level = try args.int("--level", in: 1...19)!
        spec.threads = try args.threads()
        if spec.output == nil && !spec.dryRun { throw UsageError("missing -o OUT.hrz") }
        if spec.heads == nil && spec.ffns == nil && spec.removeHeads.isEmpty && spec.removeFFNs.isEmpty && spec.planFile == nil {
            throw UsageError("nothing to remove: give --heads/--heads-percent, --ffns/--ffns-percent, --remove-heads, --remove-ffns or --plan")
        }
    }

    var inputs: [String] { [spec.model] + [spec.planFile, spec.heads?.path, spec.ffns?.path].compactMap { $0 } }
    var outputs: [FileGuard.Output] {
        (spec.dryRun ? [] : [spec.output].compactMap { $0 }.map { .file($0) }) + [spec.planOutput].compactMap { $0 }.map { .file($0) }
    }

    func run() throws -> Int32 {
        let bar = ProgressBar("prune")
        let outcome = try PruneJob(spec).run(
            context: JobContext(
                log: {
                    bar.finish(); printError($0)
                },
                progress: { _, done, total in
                    bar.update(phase: "tensors", done: done, total: total)
                }))
        bar.finish()
        let count = { (plans: [LayerPlan]) in plans.reduce(0) { $0 + $1.heads.count } }
        let (chosen, before, after) = (outcome.plan, outcome.before, outcome.after)
        print(
            "plan: remove \(chosen.heads.count) heads and \(chosen.ffns.count) FFNs (original indices): "
                + "heads \(count(before)) → \(count(after)), FFNs \(before.filter(\.ffn).count) → \(after.filter(\.ffn).count)")
        if spec.dryRun {
            print(String(decoding: try chosen.json(), as: UTF8.self))
            return 0
        }
        if let r = outcome.report, let output = spec.output {
            print(
                String(
                    format: "wrote %@ (%@, %.1f%% of %@): decoder parameters %@ → %@ (%.1f%% removed)",
                    output, formatBytes(r.fileBytesAfter), 100 * Double(r.fileBytesAfter) / Double(r.fileBytesBefore),
                    formatBytes(r.fileBytesBefore), formatCount(r.layerParametersBefore), formatCount(r.layerParametersAfter),
                    100 * (1 - Double(r.layerParametersAfter) / Double(r.layerParametersBefore))))
        }
        if let planOut = spec.planOutput {
            print("plan written to \(planOut); evaluate the masked original with --mask-heads \(planOut) --mask-ffns \(planOut)")
        }
        return 0
    }
}

func formatCount(_ n: Int) -> String {
    n >= 1_000_000_000
        ? String(format: "%.2fB", Double(n) / 1e9)
        : n >= 1_000_000
            ? String(format: "%.2fM", Double(n) / 1e6)
            : n >= 1000 ? String(format: "%.1fK", Double(n) / 1e3) : "\(n)"
}
