import Foundation
import Testing
@testable import Analysis
@testable import Checkpoints
@testable import Evaluation
@testable import HRZFormat
@testable import Jobs
@testable import Pruning
@testable import Runtime
import TestSupport

func temporary(_ name: String) -> String { testScratch() + "jobs-\(UInt32.random(in: 0...UInt32.max))-\(name)" }

/// Sweeps on the tiny real-vocabulary model with real COPA and RTE rows from ../shared.
@Suite(.serialized) struct SweepTests {
    static let data = Repository.tasks

    static func model() throws -> String { try convertFixture(Repository.tinyRealVocab, tokenizer: true) }

    /// A fixed scores matrix per task, as `importance` would write.
    static func scores(_ task: String, _ values: [[Double]], kind: String = "heads") -> (path: String, file: ScoresFile) {
        (task + ".json", ScoresFile(kind: kind, method: "test", task: task, shots: 1, model_sha256: "", examples: 1, scores: values))
    }

    static let copaHeads: [[Double]] = [[0.4, 0.1, 0.3, 0.8], [0.2, 0.9, 0.05, 0.6]]
    static let rteHeads: [[Double]] = [[0.9, 0.8, 0.7, 0.6], [0.5, 0.4, 0.3, 0.2]]

    /// Every point's value equals evaluating a model physically pruned by the same selection.
    @Test func pointsEqualPhysicallyPrunedModels() throws {
        Threads.set(2)
        let model = try Self.model()
        var options = SweepOptions(tasks: [.copa], shots: [1], dataDirectory: Self.data, outputDirectory: temporary("sweep"))
        options.limit = 12
        options.grid = try SweepGrid(parsing: "heads=0,50,ffns=0,50")
        options.heads = [Self.scores("copa", Self.copaHeads)]
        options.ffns = [Self.scores("copa", [[0.3], [0.1]], kind: "ffns")]
        let table = try SweepJob(model: model, options: options).run()
        #expect(table.rows.count == 4)
        for row in table.rows {
            let plan = PrunePlan.select(
                heads: ("copa.json", options.heads[0].file, row.heads_percent),
                ffns: ("ffns.json", options.ffns[0].file, row.ffns_percent))
            #expect(plan.heads.count == row.heads_removed && plan.ffns.count == row.ffns_removed)
            let pruned = temporary("point.hrz")
            _ = try Pruner.prune(model, plan: plan, to: pruned)
            var eval = EvalOptions(tasks: [.copa], shots: [1], dataDirectory: Self.data, outputDirectory: temporary("eval"))
            eval.limit = 12
            let results = try EvalJob(model: pruned, options: eval).run()
            #expect(results.cells["copa/1"]!.metrics["acc"] == row.value, "heads \(row.heads_percent)% ffns \(row.ffns_percent)%")
            #expect(row.delta == row.value - table.rows[0].value)
        }
        // 50% of 8 heads = the 4 lowest: (1,2) 0.05, (0,1) 0.1, (1,0) 0.2, (0,2) 0.3.
        #expect(PrunePlan.select(heads: ("", options.heads[0].file, 50), ffns: nil).heads == [[0, 1], [0, 2], [1, 0], [1, 2]])
        let csv = try String(contentsOfFile: options.outputDirectory + "/sweep.csv", encoding: .utf8)
        #expect(csv.hasPrefix(SweepTable.csvHeader + "\ncopa,1,0,0,0,0,copa,acc,"))
        #expect(csv.split(separator: "\n").count == 5)
    }

    /// A finished sweep is not recomputed: rerun against a data directory that does not exist, it only
    /// reads its table; a grid extended by one point evaluates only that point.
    @Test func resumesFromItsTable() throws {
        Threads.set(2)
        let model = try Self.model()
        var options = SweepOptions(tasks: [.copa], shots: [0], dataDirectory: Self.data, outputDirectory: temporary("resume"))
        options.limit = 8
        options.grid = try SweepGrid(parsing: "heads=0:50:25")
        options.heads = [Self.scores("copa", Self.copaHeads)]
        let first = try SweepJob(model: model, options: options).run()
        var again = options
        again.dataDirectory = "/nonexistent"
        #expect(try SweepJob(model: model, options: again).run().rows == first.rows)
        var more = options
        more.grid = try SweepGrid(parsing: "heads=0:75:25")
        var evaluated = 0
        let extended = try SweepJob(model: model, options: more).run(points: { _, _ in evaluated += 1 })
        #expect(evaluated == 1 && extended.rows.count == 4 && Array(extended.rows.prefix(3)) == first.rows)
    }

    @Test func crossTaskAndAggregateRankings() throws {
        let files = [Self.scores("copa", Self.copaHeads), Self.scores("rte", Self.rteHeads)]
        #expect(try PruneRankings.choose(files, task: "copa", shots: 1, from: nil, kind: "heads").scores == Self.copaHeads)
        let cross = try PruneRankings.choose(files, task: "copa", shots: 1, from: "rte", kind: "heads")
        #expect(cross.label == "rte" && cross.scores == Self.rteHeads)
        let aggregate = try PruneRankings.choose(files, task: "rte", shots: 1, from: "aggregate", kind: "heads")
        #expect(aggregate.scores[0][0] == 0.65 && aggregate.scores[1][2] == 0.175)
        #expect(throws: PruneError.self) { _ = try PruneRankings.choose(files, task: "wic", shots: 1, from: nil, kind: "heads") }
        #expect(try SweepGrid(parsing: "heads=0:90:10,ffns=0,20").points.count == 20)
        #expect(throws: PruneError.self) { _ = try SweepGrid(parsing: "heads=0:120:10") }
        #expect(throws: PruneError.self) { _ = try SweepGrid(parsing: "layers=0:50:10") }
    }
}
