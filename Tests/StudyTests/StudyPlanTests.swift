import Foundation
import Testing
@testable import Analysis
@testable import Evaluation
@testable import Study
import HRZFormat
import TestSupport
import Files
import Runtime

/// The plan, its costs' scheduling and the Slurm text handling, without a cluster.
struct StudyPlanTests {
    static func demoStudy(shards: Int) throws -> Study {
        var o = StudyOptions(model: try #require(Demo.model), tasks: ["demo_copy", "demo_map_a"], shots: [0, 1, 5], data: try #require(Demo.data))
        o.headsGrid = [0, 50]
        return try Study(options: o, directory: testScratch() + "plan-\(shards)", shards: shards)
    }

    @Test func stagesComeAfterWhatTheyNeedAndUnitsAreAddressable() throws {
        let one = try Self.demoStudy(shards: 1).plan(), three = try Self.demoStudy(shards: 3).plan()
        #expect(one.stages.map(\.name) == ["eval", "heads", "ffns", "ranks", "sweeps", "induction", "prune", "pruned-eval", "compare", "report"])
        #expect(
            three.stages.map(\.name) == [
                "eval", "eval-merge", "heads", "heads-merge", "ffns", "ffns-merge", "ranks", "sweeps", "sweeps-merge",
                "induction", "prune", "pruned-eval", "pruned-merge", "compare", "report",
            ])
        for plan in [one, three] {
            var seen = Set<String>()
            for stage in plan.stages {
                #expect(stage.after.allSatisfy(seen.contains), "\(stage.name) comes after a stage not yet listed")
                #expect(stage.units.map(\.id) == Array(0..<stage.units.count))
                seen.insert(stage.name)
            }
        }
        // 6 cells × 3 shards, cell-major; every unit writes files of its own.
        let heads = try #require(three.stage("heads"))
        #expect(heads.units.count == 18 && heads.units[4].what == "demo_copy 1-shot (shard 1/3)")
        #expect(heads.units[4].outputs == ["importance/shards/heads-demo_copy-1shot-1of3.json"])
        let outputs = three.stages.flatMap { $0.units.flatMap(\.outputs) }.filter { !$0.hasSuffix("results.json") && !$0.hasPrefix("sweeps/") }
        #expect(Set(outputs).count == outputs.count, "two units write one file")
        #expect(three.upstream("report").isSuperset(of: ["eval", "heads", "ffns-merge", "sweeps", "induction", "prune", "compare"]))
        #expect(UnitID("heads:17") == UnitID(stage: "heads", id: 17) && UnitID("heads") == nil && UnitID("heads:-1") == nil && UnitID(":3") == nil)
    }

    @Test func wallTimeSchedulesUnitsAfterTheirStages() {
        func unit(_ id: Int, _ seconds: Double) -> StudyPlan.Unit {
            StudyPlan.Unit(id: id, what: "", outputs: [], cost: StudyPlan.Cost(tokens: 0, flops: 0, seconds: seconds))
        }
        let plan = StudyPlan(
            shards: 2,
            stages: [
                StudyPlan.Stage(name: "a", title: "", after: [], units: [unit(0, 4), unit(1, 4), unit(2, 2)]),
                StudyPlan.Stage(name: "b", title: "", after: [], units: [unit(0, 6)]),
                StudyPlan.Stage(name: "c", title: "", after: ["a"], units: [unit(0, 1)]),
            ])
        #expect(plan.wallSeconds(machines: 1) == 17)
        // Two machines: a's 4 + 4 start at 0; then a's 2 on one (4…6) and b's 6 on the other (4…10); c after a at 6…7.
        #expect(plan.wallSeconds(machines: 2) == 10)
        #expect(plan.criticalPathSeconds == 6)
    }

    @Test func slurmArraysAndWords() throws {
        #expect(Slurm.ranges([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8")
        #expect(Slurm.indices("[1,4-6%2]") == [1, 4, 5, 6] && Slurm.indices("3") == [3] && Slurm.indices("0-2") == [0, 1, 2])
        #expect(
            try SbatchOptions.words(#"-p cpu --time=2:00:00 --comment "two words" -A 'it''s'"#)
                == ["-p", "cpu", "--time=2:00:00", "--comment", "two words", "-A", "its"])
        #expect(throws: (any Error).self) { try SbatchOptions.words("--comment \"open") }
    }

    @Test func aUnitWaitsForItsStagesAndAChangedOptionMakesUnitsStale() throws {
        let study = try Self.demoStudy(shards: 1)
        try study.writeManifest()
        let plan = study.plan()
        #expect(study.pending(plan).keys.count == plan.stages.count)
        #expect(throws: (any Error).self) { try study.runUnit(UnitID(stage: "ranks", id: 0)) }
        do {
            try study.runUnit(UnitID(stage: "ranks", id: 0))
        } catch {
            #expect("\(error)".contains("unit ranks:0 needs heads:0 done first"))
        }
        try study.runUnit(UnitID(stage: "induction", id: 0))
        #expect(study.isDone(UnitID(stage: "induction", id: 0), plan: plan))
        #expect(study.pending(plan)["induction"] == [1])
        // Another seed changes the study's digest: the unit is no longer done.
        var other = study.options
        other.inductionSeed = 1
        let changed = try Study(options: other, directory: study.directory)
        #expect(!changed.isDone(UnitID(stage: "induction", id: 0), plan: changed.plan()))
        // So does another precision; the unit's scores file records the one it ran in.
        var bf16 = study.options
        bf16.precision = .bf16
        #expect(!(try Study(options: bf16, directory: study.directory)).isDone(UnitID(stage: "induction", id: 0), plan: plan))
        #expect(try ScoresFile.load(study.directory + "/induction/prefix-matching.json").precision == "fp32")
        // An edited output is not done either.
        try Data("{}".utf8).write(to: URL(fileURLWithPath: study.directory + "/induction/prefix-matching.json"))
        #expect(!study.isDone(UnitID(stage: "induction", id: 0), plan: plan))
    }
}
