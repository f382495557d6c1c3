import Analysis
import Foundation
import HRZFormat
import Files

struct RankCommand: Command {
    static let name = "rank"
    static let summary = "rankings, aggregate, Spearman across tasks and shots, top-k% overlap of scores files"
    static let usage = """
    Usage: headroom rank SCORES.json [SCORES.json ...] [--aggregate] -o DIR

    Writes to DIR, as CSV (and JSON where noted), ready to plot:
      ranking-<task>-<k>-shot.csv    every (layer, head) in ascending score order: what pruning removes first
      aggregate.json, ranking-aggregate.csv   with --aggregate: the plain mean of the raw matrices (as the paper)
      spearman.csv                   Spearman rank correlation between every pair of inputs (ties: average ranks)
      spearman-tasks-<k>shot.csv     across tasks at each shots value, when there are several
      spearman-shots-<task>.csv      across shots for each task, when there are several
      overlap.csv                    share of the top 10/20/30/50% (highest scores) two inputs have in common
      summary.json                   the labels and the Spearman matrix
    """

    var files: [String] = []
    var aggregate: Bool
    var output: String

    init(_ args: inout Arguments) throws(UsageError) {
        aggregate = args.flag("--aggregate")
        guard let o = try args.option("-o") else { throw UsageError("missing -o DIR") }
        output = o
        while let f = try? args.positional("SCORES.json") { files.append(f) }
        guard !files.isEmpty else { throw UsageError("give at least one scores file") }
    }

    var inputs: [String] { files }
    var outputs: [FileGuard.Output] { [.directory(output)] }

    func run() throws -> Int32 {
        let inputs = try files.map { path -> (path: String, scores: ScoresFile) in (path, try ScoresFile.load(path)) }
        let written = try RankReport.write(inputs, aggregate: aggregate, to: output)
        print("wrote \(written.count) files to \(output)")
        return 0
    }
}
