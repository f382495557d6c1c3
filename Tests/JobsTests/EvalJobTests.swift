import Foundation
import Testing
@testable import Checkpoints
@testable import Evaluation
@testable import HRZFormat
@testable import Jobs
@testable import Runtime
import TestSupport

/// `headroom eval`'s engine end to end on the tiny real-vocabulary fixture with the real task data.
struct EvalJobTests {
    static func model() throws -> String {
        let out = try convertFixture(Repository.tinyRealVocab, tokenizer: true)
        Threads.set(2)
        return out
    }

    static func requests(_ dir: String, _ cell: String) throws -> [[String: Any]] {
        let text = try String(contentsOfFile: "\(dir)/requests/\(cell).jsonl", encoding: .utf8)
        return text.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    }

    @Test func contextsMatchTheHarnessAndARunResumes() throws {
        let model = try Self.model()
        let out = testScratch() + "headroom-eval-out-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var options = EvalOptions(
            tasks: [.copa, .wsc], shots: [0, 1], dataDirectory: Repository.tasks,
            outputDirectory: out)
        options.limit = 3
        let first = try EvalJob(model: model, options: options).run()
        #expect(first.cells.keys.sorted() == ["copa/0", "copa/1", "wsc/0", "wsc/1"])
        #expect(first.cells["copa/1"]?.docs == 3 && first.cells["copa/1"]?.requests == 6)
        // Each doc's requests carry the harness's exact context, at the harness's positions.
        for (task, k) in [("copa", 1), ("wsc", 1), ("copa", 0)] {
            let samples = try String(contentsOf: URL(fileURLWithPath: Repository.data + "/harness_sample/\(task)_\(k)shot.jsonl"), encoding: .utf8)
                .split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
            let rows = try Self.requests(out, "\(task)-\(k)shot")
            for sample in samples {
                let position = sample["position"] as! Int
                let mine = rows.filter { $0["position"] as? Int == position }
                #expect(mine.first?["doc"] as? Int == sample["doc_index"] as? Int)
                #expect(mine.map { $0["context"] as! String } == (sample["requests"] as! [[String: Any]]).map { ($0["args"] as! [String])[0] })
            }
        }
        // A run killed after some cells: drop one cell, rerun; finished cells are not recomputed.
        let copa0 = "\(out)/requests/copa-0shot.jsonl"
        let before = try FileManager.default.attributesOfItem(atPath: copa0)[.modificationDate] as! Date
        var partial = first
        partial.cells.removeValue(forKey: "wsc/1")
        try JSONEncoder().encode(partial).write(to: URL(fileURLWithPath: "\(out)/results.json"))
        try FileManager.default.removeItem(atPath: "\(out)/requests/wsc-1shot.jsonl")
        Thread.sleep(forTimeInterval: 0.01)
        let resumed = try EvalJob(model: model, options: options).run()
        #expect(try FileManager.default.attributesOfItem(atPath: copa0)[.modificationDate] as! Date == before)
        #expect(resumed.cells["wsc/1"]?.metrics == first.cells["wsc/1"]?.metrics)
        #expect(FileManager.default.fileExists(atPath: "\(out)/requests/wsc-1shot.jsonl"))
    }

    @Test func missingFewshotSplitIsNamedAndZeroShotRuns() throws {
        let model = try Self.model()
        let out = testScratch() + "headroom-eval-piqa-\(getpid())"
        var options = EvalOptions(
            tasks: [.piqa], shots: [0], dataDirectory: Repository.tasks,
            outputDirectory: out)
        options.limit = 2
        #expect(try EvalJob(model: model, options: options).run().cells["piqa/0"]?.docs == 2)
        options.shots = [1]
        let evaluator = try EvalJob(model: model, options: options)
        #expect(try evaluator.run().cells["piqa/1"] == nil)
        let skipped = try #require(evaluator.skips.entries.first)
        #expect(skipped.cell == "piqa/1" && skipped.error.file.hasSuffix("piqa/train.jsonl") && skipped.error.message.contains("0-shot still works"))
    }
}

/// Generic JSONL tasks (formats/tasks.md) follow the harness's protocol: COPA rewritten as a generic task
/// (context, choices, gold) gives byte for byte the harness's COPA requests at 0, 1 and 5 shots.
struct GenericTaskJobTests {
    static func writeGenericCopa(_ dir: String) throws {
        let copa = Repository.tasks + "/copa"
        try FileManager.default.createDirectory(atPath: dir + "/generic_copa", withIntermediateDirectories: true)
        for split in ["train", "validation"] {
            let file = try JSONLFile(path: "\(copa)/\(split).jsonl")
            var lines: [String] = []
            for i in 0..<file.count {
                let doc = try EvalTask.copa.doc(try file.row(i))
                let row: [String: Any] = ["context": doc.text, "choices": doc.requests(context: "").map(\.continuation), "gold": doc.gold!]
                lines.append(String(decoding: try JSONSerialization.data(withJSONObject: row, options: [.sortedKeys]), as: UTF8.self))
            }
            try (lines.joined(separator: "\n") + "\n").write(toFile: "\(dir)/generic_copa/\(split).jsonl", atomically: true, encoding: .utf8)
        }
    }

    @Test func genericCopaEqualsTheHarnessCopa() throws {
        let data = testScratch() + "headroom-generic-\(getpid())"
        try Self.writeGenericCopa(data)
        #expect(EvalTask.named("generic_copa", dataDirectory: data) == .generic("generic_copa"))
        #expect(EvalTask.named("generic_copa", dataDirectory: "/nonexistent") == nil && EvalTask.named("copa", dataDirectory: nil) == .copa)
        let model = try EvalJobTests.model()
        let out = testScratch() + "headroom-generic-out-\(getpid())"
        var options = EvalOptions(tasks: [.generic("generic_copa")], shots: [0, 1, 5], dataDirectory: data, outputDirectory: out)
        options.limit = 3
        let results = try EvalJob(model: model, options: options).run()
        for k in [0, 1, 5] {
            let samples = try String(contentsOf: URL(fileURLWithPath: Repository.data + "/harness_sample/copa_\(k)shot.jsonl"), encoding: .utf8)
                .split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
            let rows = try EvalJobTests.requests(out, "generic_copa-\(k)shot")
            for sample in samples {
                let mine = rows.filter { $0["position"] as? Int == sample["position"] as? Int }
                let expected = (sample["requests"] as! [[String: Any]]).map { $0["args"] as! [String] }
                #expect(
                    mine.map { [$0["context"] as! String, $0["continuation"] as! String] } == expected, "generic_copa \(k)-shot position \(sample["position"]!)"
                )
            }
            // acc: the highest log-likelihood choice against gold, as COPA's.
            #expect(results.cells["generic_copa/\(k)"]?.metrics.keys.sorted() == ["acc"])
        }
    }

}
