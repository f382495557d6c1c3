import Foundation
import Testing
@testable import Evaluation

/// Contexts and requests byte-identical to what the pinned harness built (../shared/data/harness_sample),
/// from the raw HF rows in ../shared/data/tasks.
struct HarnessPromptTests {
    struct Sample: Decodable {
        struct Req: Decodable { var type: String; var args: [String?]; var index: Int? }
        struct Continuation: Decodable { var type: String; var continuation: String; var index: Int? }
        var task: String
        var num_fewshot: Int
        var eval_split: String
        var doc_index: Int
        var fewshot_population: String?
        var fewshot_sampled_indices: [Int]
        var status: String
        var context: String?
        var requests: [Req]?
        var request_continuations_only: [Continuation]?
    }

    final class Files: @unchecked Sendable {
        static let shared = Files()
        private var files: [String: JSONLFile] = [:]
        private let lock = NSLock()
        func get(_ task: String, _ split: String) throws -> JSONLFile {
            lock.lock(); defer { lock.unlock() }
            let key = "\(task)/\(split)"
            if let f = files[key] { return f }
            // WinoGrande's train split is here only as its first 10234 rows (train.prefix10234.jsonl): enough
            // for the draws that fall inside it, which the sample marks exact.
            let dir = HarnessDrawTests.shared.appendingPathComponent("tasks/\(task)").path
            var path = "\(dir)/\(split).jsonl"
            // BoolQ's is a 64-row subset whose rows carry their HF position in `idx` (see trainRow).
            if !FileManager.default.fileExists(atPath: path),
                let partial = (try? FileManager.default.contentsOfDirectory(atPath: dir))?
                    .first(where: { $0.hasPrefix("\(split).prefix") || $0.hasPrefix("\(split).subset") })
            {
                path = "\(dir)/\(partial)"
            }
            let f = try JSONLFile(path: path)
            files[key] = f
            return f
        }
    }

    /// Row `index` of the few-shot population as the harness lists it: the train rows (WSC: label == 1 only).
    static func trainRow(_ task: EvalTask, _ index: Int) throws -> Row {
        let file = try Files.shared.get(task.rawValue, "train")
        if file.path.contains(".subset") {
            for i in 0..<file.count where try file.row(i).int("idx") == index { return try file.row(i) }
            throw TaskError(file: file.path, line: nil, "no row with idx \(index)")
        }
        let rows = try (0..<file.count).filter { try task.eligibleForFewshot(try file.row($0)) }
        return try file.row(rows[index])
    }

    @Test(arguments: HarnessDrawTests.files)
    func contextsAndRequestsAreByteIdentical(_ name: String) throws {
        let text = try String(contentsOf: HarnessDrawTests.shared.appendingPathComponent("harness_sample/\(name)"), encoding: .utf8)
        var checked = 0
        for line in text.split(separator: "\n") {
            let sample = try JSONDecoder().decode(Sample.self, from: Data(line.utf8))
            let task = try #require(EvalTask(rawValue: sample.task))
            #expect(task.evalSplit == sample.eval_split)
            if sample.status == "eval_doc_unavailable" { continue }
            let doc = try task.doc(try Files.shared.get(task.rawValue, task.evalSplit).row(sample.doc_index))
            if sample.status == "fewshot_unavailable" {
                // The few-shot rows are not here, but the continuations do not depend on them.
                #expect(
                    doc.requests(context: "").map(\.continuation) == sample.request_continuations_only?.map(\.continuation),
                    "\(name) doc \(sample.doc_index)")
                checked += 1
                continue
            }
            var examples: [TaskDoc] = []
            if sample.num_fewshot > 0 {
                if task.fewshotSplit == nil {
                    // LAMBADA: k + 1 eval docs drawn, the current one dropped, the first k kept.
                    let eval = try Files.shared.get(task.rawValue, task.evalSplit)
                    examples = try sample.fewshot_sampled_indices.filter { $0 != sample.doc_index }.prefix(sample.num_fewshot)
                        .map { try task.doc(try eval.row($0)) }
                } else {
                    examples = try sample.fewshot_sampled_indices.map { try task.doc(try Self.trainRow(task, $0)) }
                }
            }
            let context = fewshotContext(doc, examples: examples)
            #expect(context == sample.context, "\(name) doc \(sample.doc_index): context differs")
            let expected = (sample.requests ?? []).map { Request(context: $0.args[0] ?? "", continuation: $0.args[1] ?? "") }
            #expect(doc.requests(context: context) == expected, "\(name) doc \(sample.doc_index): requests differ")
            checked += 1
        }
        #expect(checked > 0 || name.hasPrefix("record"))
    }
}
