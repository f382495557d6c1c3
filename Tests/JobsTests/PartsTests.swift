import Foundation
import Testing
@testable import Evaluation
@testable import Files
@testable import Jobs
import TestSupport

/// The part scheme on a toy cell whose items are their own squares: any split equals one run, a killed part
/// resumes, and a merge refuses part files that are not exactly what the cell's parts should hold.
struct PartsTests {
    final class Squares: PartedCell {
        typealias Result = [Double]
        let directory: String
        var items: Int
        var record = InputRecord(["what": "squares"])
        var ran: [Int] = []
        var finishedWith: [[Double]]?
        var failAt: Int?
        init(_ directory: String, items: Int = 10) {
            self.directory = directory
            self.items = items
        }
        var label: String { "squares" }
        var partDirectory: String { directory }
        var stem: String { "squares" }
        func status() throws -> OutputStatus { .of(finishedWith == nil ? nil : .some(record), against: record) }
        func prepare() throws -> Int { items }
        func run(item: Int, context: JobContext) throws -> [Double] {
            if item == failAt { throw JobError("killed at \(item)") }
            ran.append(item)
            return [Double(item), Double(item * item)]
        }
        func check(_ result: [Double], item: Int) -> String? { result.count == 2 && result[0] == Double(item) ? nil : "not item \(item)'s square" }
        func finish(_ results: [[Double]], context: JobContext) throws { finishedWith = results }
        func skip(_ reason: TaskError, context: JobContext) {}
    }

    var context: JobContext {
        var c = JobContext()
        c.checkpointSeconds = 0
        return c
    }

    @Test func anySplitEqualsOneRunAndAKilledPartResumes() throws {
        let dir = testScratch() + "parts-\(UInt32.random(in: 0...UInt32.max))"
        var whole = Squares(dir + "/whole")
        try whole.runWhole(context: context)
        let expected = try #require(whole.finishedWith)
        for n in [1, 3, 10, 13] {
            var merged = Squares(dir + "/\(n)")
            for i in 0..<n {
                var part = Squares(dir + "/\(n)")
                try part.runPart(Part(index: i, count: n), context: context)
                #expect(part.ran == Part(index: i, count: n).items(of: 10))
            }
            try merged.merge(n, context: context)
            #expect(merged.finishedWith == expected, "\(n) parts")
        }
        // Killed at item 7 of part 1/2 (items 1, 3, 5, 7, 9): 1, 3, 5 are saved and not run again.
        var killed = Squares(dir + "/kill")
        killed.failAt = 7
        #expect(throws: JobError.self) { try killed.runPart(Part(index: 1, count: 2), context: context) }
        var resumed = Squares(dir + "/kill")
        try resumed.runPart(Part(index: 1, count: 2), context: context)
        #expect(resumed.ran == [7, 9])
        // Other inputs: the saved items are not used.
        var changed = Squares(dir + "/kill")
        changed.record["what"] = "other"
        try changed.runPart(Part(index: 1, count: 2), context: context)
        #expect(changed.ran == [1, 3, 5, 7, 9])
    }

    /// Every way a part file can lie, each refused by a merge that names the file and the field.
    @Test func aMergeRefusesPartsThatAreNotTheirs() throws {
        let dir = testScratch() + "parts-bad-\(UInt32.random(in: 0...UInt32.max))"
        func fresh(_ name: String) throws -> String {
            let d = dir + "/" + name
            for i in 0..<2 {
                var p = Squares(d)
                try p.runPart(Part(index: i, count: 2), context: context)
            }
            return d
        }
        func edit(_ d: String, part: Int, _ change: (inout [String: Any]) -> Void) throws {
            let path = "\(d)/shards/squares-\(part)of2.json"
            var object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
            change(&object)
            try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path))
        }
        func refusal(_ d: String) -> String? {
            var m = Squares(d)
            do { try m.merge(2, context: context); return nil } catch { return "\(error)" }
        }
        let cases: [(String, (inout [String: Any]) -> Void, [String])] = [
            (
                "gap",
                {
                    $0["done"] = [0, 2, 4, 6]; $0["results"] = [[0, 0], [2, 4], [4, 16], [6, 36]]
                }, ["squares-0of2.json", "field 'done'", "lacks item 8"]
            ),
            (
                "foreign",
                {
                    $0["done"] = [0, 1, 2, 4, 6, 8]; $0["results"] = [[0, 0], [1, 1], [2, 4], [4, 16], [6, 36], [8, 64]]
                },
                ["field 'done'", "holds item 1 that shard 0/2 does not own"]
            ),
            ("wrong part", { $0["part"] = [1, 2] }, ["field 'part'", "is [1, 2], but the file is part [0, 2]"]),
            ("stale", { $0["inputs"] = ["what": "cubes"] }, ["field 'inputs'", "computed from other inputs (what: cubes → squares)"]),
            ("incomplete", { $0["complete"] = false }, ["field 'complete'", "has not finished"]),
            ("items", { $0["items"] = 11 }, ["field 'items'", "is 11"]),
            ("shape", { $0["results"] = [[0, 0], [2, 4], [4, 16], [6, 36], [9, 64]] }, ["field 'results'", "item 8: not item 8's square"]),
            ("format", { $0["format"] = "other/1" }, ["field 'format'"]),
            ("not json", { _ in }, ["not a part file"]),
        ]
        for (name, change, words) in cases {
            let d = try fresh(name.replacingOccurrences(of: " ", with: "-"))
            if name == "not json" {
                try Data("{\"part\": [0, 2]".utf8).write(to: URL(fileURLWithPath: "\(d)/shards/squares-0of2.json"))
            } else {
                try edit(d, part: 0, change)
            }
            let e = refusal(d)
            #expect(e != nil && words.allSatisfy { e!.contains($0) }, "\(name): \(e ?? "merged")")
        }
        // A missing part is named with what to run.
        let d = try fresh("missing")
        try FileManager.default.removeItem(atPath: "\(d)/shards/squares-1of2.json")
        #expect(refusal(d)?.contains("shard 1/2 of squares is missing") == true)
    }

    @Test func partsParseStrictly() {
        #expect(Part("1/2") == Part(index: 1, count: 2))
        for bad in ["1/2/", "2/2", "-1/2", "1/0", "a/2", "1 /2", "1/200001", "١/٢"] { #expect(Part(bad) == nil, "\(bad)") }
        #expect(Part(index: 2, count: 5).items(of: 13) == [2, 7, 12] && Part(index: 5, count: 8).items(of: 3) == [])
    }
}
