import Foundation
import Testing
@testable import Checkpoints
@testable import Evaluation
@testable import HRZFormat
@testable import Runtime
import TestSupport
import OPTSchema

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
        let outcomes = [
            DocOutcome(values: [:], group: "0/0", prediction: 1), DocOutcome(values: [:], group: "0/0", prediction: 0),
            DocOutcome(values: [:], group: "0/1", prediction: 1),
        ]
        #expect(EvalTask.multirc.aggregate(outcomes)["acc"] == 0.5)
    }

    @Test func recordSquadMetrics() throws {
        #expect(squadNormalize("The  Eiffel Tower!") == "eiffel tower")
        #expect(tokenF1("eiffel tower paris", "The Eiffel Tower") == 0.8)
        let r = row([
            "passage": "A\n@highlight\nB", "query": "@placeholder is tall", "entities": ["Eiffel Tower", "Paris"],
            "answers": ["The Eiffel Tower"],
        ])
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

/// Generic JSONL tasks (formats/tasks.md): bad rows are named by file and line. (The generic COPA that equals
/// the harness's COPA is JobsTests' `GenericTaskJobTests`.)
struct GenericTaskTests {
    @Test func badRowsNameTheFileAndLine() throws {
        let data = testScratch() + "headroom-generic-bad-\(getpid())"
        try FileManager.default.createDirectory(atPath: data + "/mine", withIntermediateDirectories: true)
        try "{\"context\": \"a\", \"choices\": [\" b\", \" c\"], \"gold\": 1}\n{\"context\": \"a\", \"choices\": [\" b\"], \"gold\": 3}\n"
            .write(toFile: data + "/mine/validation.jsonl", atomically: true, encoding: .utf8)
        let file = try JSONLFile(path: data + "/mine/validation.jsonl")
        #expect(try EvalTask.generic("mine").doc(try file.row(0)).gold == 1)
        #expect { _ = try EvalTask.generic("mine").doc(try file.row(1)) } throws: {
            "\($0)".contains("validation.jsonl:2") && "\($0)".contains("gold 3 is not an index into 1 choices")
        }
    }
}
