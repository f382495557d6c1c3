/// Every `headroom …` command line the study writes for people to read or run (report captions, stage
/// scripts, messages), built here and nowhere else, as argument words. CLITests parses every one of them with
/// the real command-line declarations (`StudyCommands.all`), so renaming an option cannot break them silently.
import Foundation

public enum StudyCommands {
    /// `headroom study -o DIR --unit STAGE:ID` (the stage scripts put a shell expression in place of ID).
    public static func unit(_ directory: String, _ unit: String) -> [String] { ["study", "-o", directory, "--unit", unit] }
    public static func status(_ directory: String) -> [String] { ["study", "-o", directory, "--status"] }
    public static func report(_ directory: String) -> [String] { ["report", directory] }
    /// Starting a study of `model` into `directory` (the options are the user's own).
    public static func start(_ directory: String, model: String = "MODEL.hrz", tasks: [String] = ["TASK"], data: String = "DATA") -> [String] {
        ["study", model, "--tasks", tasks.joined(separator: ","), "--data", data, "-o", directory]
    }

    public static func eval(_ o: StudyOptions, out: String) -> [String] {
        ["eval", o.model, "--tasks", o.tasks.joined(separator: ","), "--shots", shots(o.shots), "--data", o.data, "-o", out]
            + (o.limit.map { ["--limit", String($0)] } ?? []) + precision(o)
    }

    public static func headImportance(_ o: StudyOptions, task: String, shots k: Int) -> [String] {
        [
            "importance", "heads", o.model, "--task", task, "--shots", String(k), "--data", o.data, "--limit", String(o.importanceExamples),
            "-o", StudyLayout.scores("heads", task, k),
        ] + precision(o)
    }

    public static func oracle(_ o: StudyOptions, task: String, shots k: Int) -> [String] {
        ["importance", "ffns", o.model, "--task", task, "--shots", String(k), "--data", o.data, "-o", StudyLayout.scores("ffns", task, k)]
            + (o.limit.map { ["--limit", String($0)] } ?? []) + precision(o)
    }

    public static func rank(_ inputs: [String], aggregate: Bool, out: String) -> [String] {
        ["rank"] + inputs + (aggregate ? ["--aggregate"] : []) + ["-o", out]
    }

    /// One sweep over `tasks` with the scores files given, the grid `grid` and, optionally, one ranking for all.
    public static func sweep(
        _ o: StudyOptions, tasks: [String], shots: [Int], heads: [String], ffns: [String], grid: String,
        rankingFrom: String? = nil, out: String
    ) -> [String] {
        var words = ["sweep", o.model, "--tasks", tasks.joined(separator: ","), "--shots", Self.shots(shots), "--data", o.data]
        if !heads.isEmpty { words += ["--heads", heads.joined(separator: ",")] }
        if !ffns.isEmpty { words += ["--ffns", ffns.joined(separator: ",")] }
        words += ["--grid", grid]
        if let rankingFrom { words += ["--ranking-from", rankingFrom] }
        if let limit = o.limit { words += ["--limit", String(limit)] }
        return words + ["-o", out] + precision(o)
    }

    public static func induction(_ o: StudyOptions, kind: String) -> [String] {
        ["induction", kind, o.model, "--count", String(o.inductionSequences), "--seed", String(o.inductionSeed), "-o", StudyLayout.induction(kind)]
            + precision(o)
    }

    public static func prune(_ o: StudyOptions, ffns: Bool) -> [String] {
        ["prune", o.model, "--heads", StudyLayout.aggregate("heads"), "--heads-percent", number(o.pruneHeads)]
            + (ffns ? ["--ffns", StudyLayout.aggregate("ffns"), "--ffns-percent", number(o.pruneFFNs)] : []) + ["-o", StudyLayout.prunedModel]
    }

    /// Every command the study can write for these options, as argument words.
    public static func all(_ o: StudyOptions, directory: String) -> [[String]] {
        let task = o.tasks.first ?? "copa", k = o.shots.first ?? 0
        let heads = o.tasks.flatMap { t in o.shots.map { StudyLayout.scores("heads", t, $0) } }
        let ffns = o.tasks.flatMap { t in o.shots.map { StudyLayout.scores("ffns", t, $0) } }
        return [
            unit(directory, "heads:0"), status(directory), report(directory), start(directory),
            eval(o, out: StudyLayout.baseline), headImportance(o, task: task, shots: k), oracle(o, task: task, shots: k),
            rank(heads, aggregate: true, out: StudyLayout.ranks("heads")),
            rank([StudyLayout.induction("prefix-matching"), StudyLayout.aggregate("heads")], aggregate: false, out: "ranks/induction"),
            sweep(o, tasks: [task], shots: o.shots, heads: heads, ffns: [], grid: "heads=\(grid(o.headsGrid))", out: StudyLayout.sweep("heads")),
            sweep(o, tasks: o.tasks, shots: o.shots, heads: [], ffns: ffns, grid: "ffns=\(grid(o.ffnsGrid))", out: StudyLayout.sweep("ffns")),
            sweep(
                o, tasks: o.tasks, shots: [o.shots.max() ?? 0], heads: heads, ffns: ffns, grid: "heads=\(grid(o.headsGrid)),ffns=\(grid(o.combinedFFNs))",
                rankingFrom: "aggregate", out: StudyLayout.sweep("combined")),
            induction(o, kind: "prefix-matching"), induction(o, kind: "copying"), prune(o, ffns: true),
        ]
    }

    /// The words as one shell command line, quoted where needed.
    public static func line(_ words: [String]) -> String {
        (["headroom"] + words).map { w in
            w.allSatisfy({ $0.isLetter || $0.isNumber || "-_=:,./@%+".contains($0) }) && !w.isEmpty
                ? w : "'" + w.replacingOccurrences(of: "'", with: "'\\''") + "'"
        }.joined(separator: " ")
    }

    static func shots(_ s: [Int]) -> String { s.map(String.init).joined(separator: ",") }
    static func number(_ x: Double) -> String { x == x.rounded() ? String(Int(x)) : String(x) }
    static func grid(_ values: [Double]) -> String { values.map(number).joined(separator: ",") }
    static func precision(_ o: StudyOptions) -> [String] { o.arithmetic == .bf16 ? ["--precision", "bf16"] : [] }
}
