/// Where everything of a study lives, relative to its directory: declared once, read by the units that write
/// the files, the report that reads them and the status that checks them.
public enum StudyLayout {
    public static let manifest = "study.json"
    public static let plan = "plan.json"
    public static let calibration = "calibration.json"
    public static let report = "report.html"
    public static let figures = "figures"
    public static let units = "units"
    public static let slurm = "slurm"

    /// The original model's evaluation (results.json, cells/, requests/, samples/, lm-eval/, shards/).
    public static let baseline = "baseline"
    public static let importance = "importance"
    /// Gradient (heads) or oracle (ffns) importance of one cell.
    public static func scores(_ kind: String, _ task: String, _ k: Int) -> String { "\(importance)/\(kind)-\(task)-\(k)shot.json" }
    /// Rankings, aggregates and correlations of one kind ("heads", "ffns").
    public static func ranks(_ kind: String) -> String { "ranks/\(kind)" }
    public static func aggregate(_ kind: String) -> String { "\(ranks(kind))/aggregate.json" }
    /// One sweep's directory ("heads", "ffns", "combined").
    public static func sweep(_ name: String) -> String { "sweeps/\(name)" }
    public static func sweepTable(_ name: String) -> String { "\(sweep(name))/sweep.json" }
    public static func induction(_ kind: String) -> String { "induction/\(kind).json" }
    public static let prunedModel = "pruned/model.hrz"
    public static let prunedPlan = "pruned/plan.json"
    public static let prunedEval = "pruned/eval"
    public static let comparison = "pruned/comparison.json"

    public static let sweepNames = ["heads", "ffns", "combined"]
    public static let inductionKinds = ["prefix-matching", "copying"]
}
