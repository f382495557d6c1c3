import Foundation
import Testing
@testable import Analysis
@testable import Evaluation
import Runtime
import TestSupport

/// The examples head importance runs on: train docs, Random(1234) few-shot draws, the leading-space rule.
struct ImportanceDataTests {
    static let tasks = ImportanceTests.root.appendingPathComponent("../shared/data/tasks").standardized.path

    @Test func multipleChoiceGoldHasNoLeadingSpaceUnlessAsked() throws {
        let plain = try ImportanceData.requests(task: .arcEasy, shots: 0, dataDirectory: Self.tasks, limit: 3, layers: 0)
        let spaced = try ImportanceData.requests(task: .arcEasy, shots: 0, dataDirectory: Self.tasks, limit: 3, targetSpace: true, layers: 0)
        #expect(plain.count == 3 && plain.allSatisfy { !$0.continuation.hasPrefix(" ") })
        #expect(zip(plain, spaced).allSatisfy { " " + $0.continuation == $1.continuation && $0.context == $1.context })
        #expect(plain[0].context.hasPrefix("Question: ") && plain[0].context.hasSuffix("\nAnswer:"))
        // Non-multiple-choice tasks keep doc_to_target as is.
        let copa = try ImportanceData.requests(task: .copa, shots: 0, dataDirectory: Self.tasks, limit: 2, layers: 0)
        #expect(copa.allSatisfy { $0.continuation.hasPrefix(" ") })
    }

    @Test func fewShotContextsAreDeterministic() throws {
        let a = try ImportanceData.requests(task: .copa, shots: 5, dataDirectory: Self.tasks, limit: 4, layers: 0)
        let b = try ImportanceData.requests(task: .copa, shots: 5, dataDirectory: Self.tasks, limit: 4, layers: 0)
        #expect(a == b)
        #expect(a.allSatisfy { $0.context.components(separatedBy: "\n\n").count == 6 })
    }

    /// The paper's code draws few-shot examples from the module-level `random` stream, and HF's OPT forward
    /// consumes one `random()` per decoder layer (LayerDrop) between two draws. The fixture replays that in
    /// Python (Tools/make_fewshot_draw_reference.py); dropping the emulation fails this test for every case
    /// past the first example.
    @Test func fewShotDrawsFollowThePapersStreamIncludingLayerDrop() throws {
        struct Fixture: Decodable {
            struct Case: Decodable { var task: String; var shots: Int; var layers: Int; var requests: [[String: String]] }
            var cases: [Case]
        }
        let url = Bundle.module.resourceURL!.appendingPathComponent("Fixtures/fewshot-draws/draws.json")
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
        // BoolQ's full train split is not in the shared data: its 64-row FewGLUE subset stands in, as in the script.
        let data = testScratch() + "headroom-draws-\(getpid())"
        try FileManager.default.createDirectory(atPath: data + "/boolq", withIntermediateDirectories: true)
        try? FileManager.default.copyItem(atPath: Self.tasks + "/boolq/train.subset64.jsonl", toPath: data + "/boolq/train.jsonl")
        for c in fixture.cases {
            let task = try #require(EvalTask(rawValue: c.task))
            let directory = c.task == "boolq" ? data : Self.tasks
            let mine = try ImportanceData.requests(task: task, shots: c.shots, dataDirectory: directory, limit: c.requests.count, layers: c.layers)
            #expect(mine.map(\.context) == c.requests.map { $0["context"]! }, "\(c.task) \(c.shots)-shot, \(c.layers) layers")
            #expect(mine.map(\.continuation) == c.requests.map { $0["continuation"]! })
        }
        // Without the emulation the second example's draw already differs.
        let copa = fixture.cases.first { $0.task == "copa" && $0.shots == 5 }!
        let plain = try ImportanceData.requests(task: .copa, shots: 5, dataDirectory: Self.tasks, limit: 2, layers: 0)
        #expect(plain[1].context != copa.requests[1]["context"])
    }

    @Test func longContextsAreLeftTruncatedToFit() throws {
        let requests = [ImportanceRequest(context: Array(0..<10), continuation: [20, 21]), ImportanceRequest(context: [1], continuation: [2])]
        let (fitted, truncated) = try ImportanceData.fit(requests, positions: 8)
        #expect(truncated == 1 && fitted[0] == ImportanceRequest(context: Array(4..<10), continuation: [20, 21]) && fitted[1] == requests[1])
        #expect(throws: (any Error).self) { _ = try ImportanceData.fit([ImportanceRequest(context: [1], continuation: Array(0..<8))], positions: 8) }
    }

    @Test func badRequestLinesAreNamed() throws {
        let path = testScratch() + "headroom-imp-\(getpid()).jsonl"
        try "{\"context\": [2, 5], \"continuation\": [7]}\n{\"context\": [], \"continuation\": [1]}\n".write(toFile: path, atomically: true, encoding: .utf8)
        do {
            _ = try ImportanceData.tokenRequests(path)
            Issue.record("an empty context must be an error")
        } catch let e as TaskError {
            #expect(e.file == path && e.line == 2)
        }
    }
}
