import Foundation
import Testing
@testable import Checkpoints
@testable import Evaluation
@testable import HRZFormat
@testable import Runtime
import TestSupport
import OPTSchema

/// `headroom eval`'s engine end to end on the tiny real-vocabulary fixture with the real task data.
struct EvaluatorTests {
    static func model() throws -> String {
        let out = testScratch() + "headroom-evaluator-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).hrz"
        var options = ConvertOptions()
        options.tokenizerDirectory = HarnessDrawTests.shared.appendingPathComponent("tokenizer/opt").path
        _ = try Converter.convert(ScorerTests.fixture, to: out, options: options)
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
        var options = EvalOptions(tasks: [.copa, .wsc], shots: [0, 1], dataDirectory: HarnessDrawTests.shared.appendingPathComponent("tasks").path,
                                  outputDirectory: out)
        options.limit = 3
        let first = try Evaluator(modelPath: model, options: options).run()
        #expect(first.cells.keys.sorted() == ["copa/0", "copa/1", "wsc/0", "wsc/1"])
        #expect(first.cells["copa/1"]?.docs == 3 && first.cells["copa/1"]?.requests == 6)
        // Each doc's requests carry the harness's exact context, at the harness's positions.
        for (task, k) in [("copa", 1), ("wsc", 1), ("copa", 0)] {
            let samples = try String(contentsOf: HarnessDrawTests.shared.appendingPathComponent("harness_sample/\(task)_\(k)shot.jsonl"), encoding: .utf8)
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
        let resumed = try Evaluator(modelPath: model, options: options).run()
        #expect(try FileManager.default.attributesOfItem(atPath: copa0)[.modificationDate] as! Date == before)
        #expect(resumed.cells["wsc/1"]?.metrics == first.cells["wsc/1"]?.metrics)
        #expect(FileManager.default.fileExists(atPath: "\(out)/requests/wsc-1shot.jsonl"))
    }

    @Test func missingFewshotSplitIsNamedAndZeroShotRuns() throws {
        let model = try Self.model()
        let out = testScratch() + "headroom-eval-piqa-\(getpid())"
        var options = EvalOptions(tasks: [.piqa], shots: [0], dataDirectory: HarnessDrawTests.shared.appendingPathComponent("tasks").path,
                                  outputDirectory: out)
        options.limit = 2
        #expect(try Evaluator(modelPath: model, options: options).run().cells["piqa/0"]?.docs == 2)
        options.shots = [1]
        let evaluator = try Evaluator(modelPath: model, options: options)
        #expect(try evaluator.run().cells["piqa/1"] == nil)
        let skipped = try #require(evaluator.skipped.first)
        #expect(skipped.cell == "piqa/1" && skipped.error.file.hasSuffix("piqa/train.jsonl") && skipped.error.message.contains("0-shot still works"))
    }
}

/// Metrics on tiny hand-computed cases.
struct MetricTests {
    func row(_ fields: [String: Any]) -> Row { Row(fields: fields, file: "test.jsonl", line: 1) }
    func scores(_ lls: [Double], greedy: [Bool]? = nil) -> [Score] {
        lls.enumerated().map { Score(loglikelihood: $0.element, isGreedy: greedy?[$0.offset] ?? false) }
    }

    @Test func multipleChoiceAccAndLengthNormalizedAcc() throws {
        // Choices " a" (1 char) and " bbbb" (4 chars); gold 1. ll: -1.0 vs -2.0 → acc picks 0 (wrong);
        // normalized: -1.0 vs -0.5 → picks 1 (right).
        let r = row(["question": "Q", "choices": ["text": ["a", "bbbb"], "label": ["A", "B"]], "answerKey": "B"])
        let doc = try EvalTask.arcEasy.doc(r)
        let o = try EvalTask.arcEasy.outcome(doc, row: r, scores: scores([-1, -2]))
        #expect(o.values == ["acc": 0, "acc_norm": 1])
    }

    @Test func yesNoTasks() throws {
        let boolq = row(["passage": "P", "question": "q", "label": 1])
        #expect(try EvalTask.boolq.outcome(try EvalTask.boolq.doc(boolq), row: boolq, scores: scores([-1, -2])).values["acc"] == 1)
        let rte = row(["sentence1": "a", "sentence2": "b", "label": 1])  // not_entailment: right when ll(" False") > ll(" True")
        #expect(try EvalTask.rte.outcome(try EvalTask.rte.doc(rte), row: rte, scores: scores([-3, -2])).values["acc"] == 1)
    }

    @Test func multircAccAllNeedsEveryAnswer() {
        let outcomes = [DocOutcome(values: [:], group: "0/0", prediction: 1), DocOutcome(values: [:], group: "0/0", prediction: 0),
                        DocOutcome(values: [:], group: "0/1", prediction: 1)]
        #expect(EvalTask.multirc.aggregate(outcomes)["acc"] == 0.5)
    }

    @Test func recordSquadMetrics() throws {
        #expect(squadNormalize("The  Eiffel Tower!") == "eiffel tower")
        #expect(tokenF1("eiffel tower paris", "The Eiffel Tower") == 0.8)
        let r = row(["passage": "A\n@highlight\nB", "query": "@placeholder is tall", "entities": ["Eiffel Tower", "Paris"],
                     "answers": ["The Eiffel Tower"]])
        let o = try EvalTask.record.outcome(try EvalTask.record.doc(r), row: r, scores: scores([-1, -5]))
        #expect(o.values == ["em": 1, "f1": 1])
    }

    @Test func cbMacroF1AndLambadaPerplexity() {
        // sklearn: f1_score([0, 1, 2, 2], [0, 2, 2, 2], average="macro") = (1 + 0 + 0.8) / 3
        let pairs = [(0, 0), (2, 1), (2, 2), (2, 2)].map { (prediction: $0.0, gold: $0.1) }
        #expect(abs(macroF1(pairs, classes: 3) - 0.6) < 1e-12)
        let lambada = [DocOutcome(values: ["acc": 1, "ppl": -1]), DocOutcome(values: ["acc": 0, "ppl": -3])]
        let m = EvalTask.lambadaOpenAI.aggregate(lambada)
        #expect(m["acc"] == 0.5 && abs(m["ppl"]! - Foundation.exp(2)) < 1e-12)
    }
}

/// formats/masks.md files → the runtime's ModelMask, with errors naming the file and entry.
struct MaskFileTests {
    let config = OPTConfig(hiddenSize: 16, numHiddenLayers: 2, numAttentionHeads: 4, ffnDim: 32)

    func write(_ text: String) throws -> String {
        let path = testScratch() + "headroom-mask-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).json"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func readsHeadsAndFFNs() throws {
        let heads = try MaskFile.heads(try write(#"{"heads": [[0, 3], [1, 0], [1, 0]]}"#), config: config)
        #expect(heads == [[true, true, true, false], [false, true, true, true]])
        #expect(try MaskFile.ffns(try write(#"{"ffns": [1]}"#), config: config) == [true, false])
    }

    @Test func badEntriesAreNamed() throws {
        let path = try write(#"{"heads": [[0, 1], [2, 0]]}"#)
        do {
            _ = try MaskFile.heads(path, config: config)
            Issue.record("layer 2 of a 2-layer model must be an error")
        } catch let e as TaskError {
            #expect(e.file == path && e.message.hasPrefix("heads[1] = [2, 0] is not a [layer, head]"))
        }
        #expect(throws: TaskError.self) { try MaskFile.ffns(try write(#"{"heads": []}"#), config: config) }
    }
}

/// Generic JSONL tasks (formats/tasks.md) follow the harness's protocol: COPA rewritten as a generic task
/// (context, choices, gold) gives byte for byte the harness's COPA requests at 0, 1 and 5 shots.
struct GenericTaskTests {
    static func writeGenericCopa(_ dir: String) throws {
        let copa = HarnessDrawTests.shared.appendingPathComponent("tasks/copa").path
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
        let model = try EvaluatorTests.model()
        let out = testScratch() + "headroom-generic-out-\(getpid())"
        var options = EvalOptions(tasks: [.generic("generic_copa")], shots: [0, 1, 5], dataDirectory: data, outputDirectory: out)
        options.limit = 3
        let results = try Evaluator(modelPath: model, options: options).run()
        for k in [0, 1, 5] {
            let samples = try String(contentsOf: HarnessDrawTests.shared.appendingPathComponent("harness_sample/copa_\(k)shot.jsonl"), encoding: .utf8)
                .split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
            let rows = try EvaluatorTests.requests(out, "generic_copa-\(k)shot")
            for sample in samples {
                let mine = rows.filter { $0["position"] as? Int == sample["position"] as? Int }
                let expected = (sample["requests"] as! [[String: Any]]).map { $0["args"] as! [String] }
                #expect(mine.map { [$0["context"] as! String, $0["continuation"] as! String] } == expected, "generic_copa \(k)-shot position \(sample["position"]!)")
            }
            // acc: the highest log-likelihood choice against gold, as COPA's.
            #expect(results.cells["generic_copa/\(k)"]?.metrics.keys.sorted() == ["acc"])
        }
    }

    @Test func badRowsNameTheFileAndLine() throws {
        let data = testScratch() + "headroom-generic-bad-\(getpid())"
        try FileManager.default.createDirectory(atPath: data + "/mine", withIntermediateDirectories: true)
        try "{\"context\": \"a\", \"choices\": [\" b\", \" c\"], \"gold\": 1}\n{\"context\": \"a\", \"choices\": [\" b\"], \"gold\": 3}\n"
            .write(toFile: data + "/mine/validation.jsonl", atomically: true, encoding: .utf8)
        let file = try JSONLFile(path: data + "/mine/validation.jsonl")
        #expect(try EvalTask.generic("mine").doc(try file.row(0)).gold == 1)
        #expect { _ = try EvalTask.generic("mine").doc(try file.row(1)) } throws: { "\($0)".contains("validation.jsonl:2") && "\($0)".contains("gold 3 is not an index into 1 choices") }
    }
}
