import Foundation
import Testing
import TestSupport
@testable import Evaluation

/// The pinned harness's own choices, from ../shared/data/harness_sample: which doc sits at each position
/// after `Random(42).shuffle`, and which few-shot rows each doc draws. Both depend only on the eval split's
/// length and the few-shot population's length, so every task is checked, even where rows are missing here.
struct HarnessDrawTests {
    static let shared = URL(fileURLWithPath: Repository.data)

    struct Sample: Decodable {
        var task: String
        var num_fewshot: Int
        var position: Int
        var eval_split: String
        var doc_index: Int
        var fewshot_population_len: Int?
        var fewshot_sampled_indices: [Int]
    }

    static let files: [String] = {
        let dir = shared.appendingPathComponent("harness_sample").path
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".jsonl") }.sorted()
    }()

    /// Rows in the eval split: the file's line count, or HF's recorded size where the split is not here.
    static func evalLength(_ task: String, _ split: String) throws -> Int {
        let path = shared.appendingPathComponent("tasks/\(task)/\(split).jsonl").path
        if task == "record" && split == "validation" && !FileManager.default.fileExists(atPath: path) { return 10_000 }
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return data.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
    }

    @Test func sampleFilesArePresent() { #expect(Self.files.count == 48) }

    @Test(arguments: files)
    func positionsAndDrawsMatchTheHarness(_ file: String) throws {
        let text = try String(contentsOf: Self.shared.appendingPathComponent("harness_sample/\(file)"), encoding: .utf8)
        let samples = try text.split(separator: "\n").map { try JSONDecoder().decode(Sample.self, from: Data($0.utf8)) }
        let first = try #require(samples.first)
        var rnd = PythonRandom(seed: 42)
        var order = Array(0..<(try Self.evalLength(first.task, first.eval_split)))
        rnd.shuffle(&order)
        // LAMBADA has no training docs: the harness samples k + 1 from the eval docs and drops the current one.
        let draw = first.task == "lambada_openai" ? first.num_fewshot + 1 : first.num_fewshot
        for (position, sample) in samples.enumerated() {
            #expect(sample.position == position)
            #expect(order[position] == sample.doc_index, "\(file) position \(position)")
            if sample.num_fewshot > 0, let population = sample.fewshot_population_len {
                #expect(rnd.sample(population, draw) == sample.fewshot_sampled_indices, "\(file) position \(position)")
            }
        }
    }
}
