import Foundation
import Testing
import TestSupport
@testable import Analysis
@testable import Evaluation
@testable import Jobs
@testable import Runtime

/// The oracle split by docs (scoring batches), and by ablation groups too, gives the scores one run gives,
/// bit for bit: every split runs the same batches' forwards, and no shard repeats another's baseline.
struct OracleJobTests {
    @Test func docShardedAndGroupedOracleEqualsOneRun() throws {
        Threads.set(2)
        let model = try convertFixture(Repository.tinyRealVocab, tokenizer: true)
        let dir = testScratch() + "oracle-\(UInt32.random(in: 0...UInt32.max))"
        var context = JobContext()
        context.checkpointSeconds = 0
        func spec(_ name: String, groups: Int = 1) -> OracleSpec {
            var s = OracleSpec(model: model, kind: .ffns, task: .copa, shots: 1, data: Repository.tasks, output: "\(dir)/\(name).json")
            s.limit = 12
            s.batchTokens = 120
            s.ablationGroups = groups
            return s
        }
        var whole = try OracleJob(spec("whole"))
        try whole.runWhole(context: context)
        let reference = try ScoresFile.load(dir + "/whole.json")
        #expect(reference.scores.count == 2 && reference.examples == 12)
        for (name, groups, parts) in [("sharded", 1, 3), ("grouped", 2, 1), ("grouped-sharded", 2, 4)] {
            for i in 0..<parts {
                var job = try OracleJob(spec(name, groups: groups))
                if parts == 1 { try job.runWhole(context: context) } else { try job.runPart(Part(index: i, count: parts), context: context) }
            }
            if parts > 1 {
                var merge = try OracleJob(spec(name, groups: groups))
                try merge.merge(parts, context: context)
            }
            let got = try ScoresFile.load("\(dir)/\(name).json")
            #expect(got.scores == reference.scores, "\(name)")
            #expect(OracleJob.baseline(got) == OracleJob.baseline(reference))
        }
        // The grouped job's items: batches × groups.
        let grouped = try OracleJob(spec("count", groups: 2))
        let batches = try OracleJob(spec("count2")).prepare()
        #expect(try grouped.prepare() == 2 * batches && batches >= 3)
    }
}
