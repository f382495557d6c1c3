import Foundation
import Testing
@testable import Analysis
@testable import Evaluation
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
