import Foundation
import Testing
@testable import Checkpoints
@testable import Evaluation
@testable import Runtime
import Tokenizer
@testable import HRZFormat
@testable import Analysis
@testable import Pruning
@testable import Study
@testable import Jobs
import TestSupport

/// `headroom study` end to end on the tiny real-vocabulary fixture with real COPA rows: every step's output,
/// the report, and resuming after a kill loses nothing and recomputes nothing that was finished.
@Suite(.serialized) struct StudyTests {
    static let root = Repository.root

    static func options() throws -> StudyOptions {
        let model = testScratch() + "headroom-study-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).hrz"
        var convert = ConvertOptions()
        convert.tokenizerDirectory = root.appendingPathComponent("../shared/data/tokenizer/opt").standardized.path
        _ = try Converter.convert(root.appendingPathComponent("Tests/EvaluationTests/Fixtures/tiny-real-vocab").path, to: model, options: convert)
        var o = StudyOptions(model: model, tasks: ["copa", "rte"], shots: [0, 1], data: root.appendingPathComponent("../shared/data/tasks").standardized.path)
        o.limit = 4
        o.importanceExamples = 3
        o.headsGrid = [0, 50]
        o.ffnsGrid = [0, 50]
        o.combinedFFNs = [0, 50]
        o.inductionSequences = 2
        return o
    }

    static func modified(_ path: String) -> Date { (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date) ?? .distantPast }

    @Test func runsEveryStepAndResumesAfterAKill() throws {
        let o = try Self.options()
        let dir = testScratch() + "headroom-study-out-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        let report = try Study(options: o, directory: dir).run()
        let html = try String(contentsOfFile: report, encoding: .utf8)
        for id in [
            "baseline", "heads-aggregate", "ffns-by-task", "sweep-heads-mean", "sweep-ffns-mean", "combined-1shot", "spearman-tasks-0shot",
            "spearman-shots", "prefix-matching", "copying", "overlap",
        ] {
            #expect(html.contains("<figure id=\"\(id)\">"), "figure \(id)")
            #expect(FileManager.default.fileExists(atPath: "\(dir)/figures/\(id).csv"), "figures/\(id).csv")
        }
        #expect(!html.contains("Not available yet"))
        // The pruned model: floor(0.7 · 8) = 5 heads by the aggregate ranking, floor(0.2 · 2) = 0 FFNs.
        let comparison = try JSONDecoder().decode(Comparison.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/pruned/comparison.json")))
        #expect(comparison.original.heads == 8 && comparison.pruned.heads == 3 && comparison.pruned.ffns == 2)
        #expect(try HRZReader(path: dir + "/pruned/model.hrz").metadata.provenance.lineage.count == 1)
        let combined = try JSONDecoder().decode(SweepTable.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/sweeps/combined/sweep.json")))
        #expect(combined.rows.count == 2 * 4 && combined.rows.allSatisfy { $0.shots == 1 && $0.ranking == "aggregate" })

        // A kill in the middle of step 5 of a later run: one importance file and half a sweep table are gone.
        let importance = dir + "/importance/heads-rte-1shot.json", sweep = dir + "/sweeps/heads/sweep.json"
        let savedImportance = try Data(contentsOf: URL(fileURLWithPath: importance))
        let table = try JSONDecoder().decode(SweepTable.self, from: Data(contentsOf: URL(fileURLWithPath: sweep)))
        var cut = table
        cut.rows = Array(table.rows.prefix(3))
        try JSONEncoder().encode(cut).write(to: URL(fileURLWithPath: sweep))
        try FileManager.default.removeItem(atPath: importance)
        let untouched = [
            "baseline/results.json", "importance/heads-copa-0shot.json", "importance/ffns-rte-1shot.json", "induction/copying.json",
            "pruned/model.hrz",
        ].map { dir + "/" + $0 }
        let before = untouched.map(Self.modified)
        _ = try Study(options: o, directory: dir).run()
        #expect(untouched.map(Self.modified) == before, "finished outputs were recomputed")
        // Recomputed in a fresh process state: equal up to fp32 rounding (scratch buffers and BLAS paths differ), so within 1e-5 relative.
        let recomputed = try JSONDecoder().decode(ScoresFile.self, from: Data(contentsOf: URL(fileURLWithPath: importance)))
        let saved = try JSONDecoder().decode(ScoresFile.self, from: savedImportance)
        #expect(recomputed.examples == saved.examples && recomputed.task == "rte" && recomputed.shots == 1)
        for (a, b) in zip(recomputed.scores.flatMap { $0 }, saved.scores.flatMap { $0 }) { #expect(abs(a - b) <= 1e-5 * abs(b)) }
        let resumed = try JSONDecoder().decode(SweepTable.self, from: Data(contentsOf: URL(fileURLWithPath: sweep)))
        #expect(resumed.rows == table.rows)

        // A rerun with other inputs recomputes exactly what depends on them, and says so: a smaller --limit
        // (evaluation cells, oracle scores, sweeps) and another --prune (the pruned model and its evaluation).
        // Gradient importance and induction depend on neither and are kept.
        var changed = o
        changed.limit = 3
        changed.pruneHeads = 50
        var lines: [String] = []
        let study = try Study(options: changed, directory: dir)
        study.log = { lines.append($0) }
        _ = try study.run()
        #expect(lines.contains { $0.contains("copa/0-shot: inputs changed (limit: 4 → 3); recomputing") }, "\(lines)")
        #expect(lines.contains { $0.contains("pruning again") }, "\(lines)")
        let baseline = try ResultsFile.load(dir + "/baseline/results.json")
        #expect(baseline.cells.values.allSatisfy { $0.docs == 3 && $0.inputs?["limit"] == "3" })
        let again = try JSONDecoder().decode(Comparison.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/pruned/comparison.json")))
        #expect(again.pruned.heads == 4 && again.plan.heads.count == 4)
        #expect(try HRZReader(path: dir + "/pruned/model.hrz").metadata.layers.reduce(0) { $0 + $1.heads.count } == 4)
        #expect(
            try ResultsFile.load(dir + "/pruned/eval/results.json").cells.values.allSatisfy { $0.docs == 3 && $0.inputs?["model"] == again.inputs?["pruned"] })
        let ffns = try ScoresFile.load(dir + "/importance/ffns-copa-0shot.json")
        #expect(ffns.inputs?["limit"] == "3" && ffns.examples == 3)
        #expect(Self.modified(dir + "/importance/heads-copa-0shot.json") == before[1])
        let sweepRows = try JSONDecoder().decode(SweepTable.self, from: Data(contentsOf: URL(fileURLWithPath: sweep))).rows
        #expect(sweepRows.count == table.rows.count && sweepRows.allSatisfy { $0.docs == 3 })
    }

    @Test func refusesAnotherModelsDirectory() throws {
        let o = try Self.options()
        let dir = testScratch() + "headroom-study-other-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try
            #"{"model_sha256": "0000", "options": {"model": "x", "tasks": [], "shots": [], "data": "d", "importanceExamples": 1, "headsGrid": [], "ffnsGrid": [], "combinedFFNs": [], "pruneHeads": 0, "pruneFFNs": 0, "inductionSequences": 1, "inductionSeed": 0}}"#
            .write(toFile: dir + "/study.json", atomically: true, encoding: .utf8)
        #expect(throws: StudyError.self) { _ = try Study(options: o, directory: dir).run() }
    }
}

/// The embedded demo model really learns in context (the README's first command depends on it).
struct DemoModelTests {
    @Test func mapTasksNeedTheExamplesAndInductionHeadsExist() throws {
        let model = try #require(Demo.model), data = try #require(Demo.data)
        #expect(Demo.tasks == ["demo_copy", "demo_map_a", "demo_map_b"])
        var options = EvalOptions(
            tasks: [.generic("demo_map_a"), .generic("demo_map_b")], shots: [0, 5], dataDirectory: data,
            outputDirectory: testScratch() + "headroom-demo-\(getpid())")
        options.limit = 60
        let results = try EvalJob(model: model, options: options).run()
        for task in ["demo_map_a", "demo_map_b"] {
            let zero = results.cells["\(task)/0"]!.metrics["acc"]!, five = results.cells["\(task)/5"]!.metrics["acc"]!
            #expect(five >= zero + 0.3, "\(task): \(zero) at 0 shots, \(five) at 5")
        }
        let opt = try OPTModel(path: model)
        let sequences = InductionSequences.random(count: 4, seed: 0, tokenizer: try Tokenizer.load(model))
        let scores = try PrefixMatching(opt).scores(sequences)
        #expect(scores.flatMap { $0 }.filter { $0 >= 0.3 }.count >= 2, "prefix matching \(scores)")
    }
}
