/// The examples gradient head importance is computed on, as the paper's code builds them
/// (llm-interpret `head_importance` / `get_dataloader` / `doc_to_cont`).
import Evaluation
import Foundation
import Runtime

public enum ImportanceData {
    /// Tasks whose gold continuation drops the choice's leading space in the paper's code (`doc_to_cont`).
    static let choiceWithoutSpace: Set<Task> = [.arcEasy, .arcChallenge, .openbookqa, .hellaswag, .piqa, .mathqa]

    /// (context, gold continuation) for the first `limit` docs of the train split (LAMBADA: its eval split),
    /// in HF order, each with `shots` examples drawn by `random.Random(1234).sample` from the few-shot
    /// population. The paper's loader visits these docs through torch's unseeded RandomSampler, so its exact
    /// few-shot draws cannot be reproduced; the scores are a sum over docs, which order does not change.
    public static func requests(task: Task, shots: Int, dataDirectory: String, limit: Int = 2500,
                                targetSpace: Bool = false) throws -> [Request] {
        let split = task == .lambadaOpenAI ? task.evalSplit : "train"
        let path = "\(dataDirectory)/\(task.rawValue)/\(split).jsonl"
        guard FileManager.default.fileExists(atPath: path) else {
            throw TaskError(file: path, line: nil, "task \(task.rawValue): split '\(split)' is missing (importance uses the \(split) split)")
        }
        let file = try JSONLFile(path: path)
        let population = try (0..<file.count).filter { try task.eligibleForFewshot(try file.row($0)) }
        let docs = try population.prefix(limit).map { try task.doc(try file.row($0)) }
        var rnd = PythonRandom(seed: 1234)
        return try docs.map { doc in
            let examples = shots > 0 ? try rnd.sample(population.count, shots).map { try task.doc(try file.row(population[$0])) } : []
            var continuation = doc.target
            if choiceWithoutSpace.contains(task) && !targetSpace && continuation.hasPrefix(" ") { continuation.removeFirst() }
            if choiceWithoutSpace.contains(task) && targetSpace && !continuation.hasPrefix(" ") { continuation = " " + continuation }
            return Request(context: fewshotContext(doc, examples: examples), continuation: continuation)
        }
    }

    /// `requests(…)` tokenized as the harness does (`scorer.tokens`), ready for `headImportance`.
    public static func tokenized(task: Task, shots: Int, dataDirectory: String, limit: Int = 2500, targetSpace: Bool = false,
                                 scorer: Scorer) throws -> [ImportanceRequest] {
        try requests(task: task, shots: shots, dataDirectory: dataDirectory, limit: limit, targetSpace: targetSpace).map { r in
            let t = try scorer.tokens(r)
            return ImportanceRequest(context: t.context, continuation: t.continuation)
        }
    }

    /// Token-level requests from a JSONL file of {"context": [ids], "continuation": [ids]} lines.
    public static func tokenRequests(_ path: String) throws -> [ImportanceRequest] {
        let file = try JSONLFile(path: path)
        return try (0..<file.count).map { i in
            let row = try file.row(i)
            guard let context = row.fields["context"] as? [Int], let continuation = row.fields["continuation"] as? [Int],
                  !context.isEmpty, !continuation.isEmpty else {
                throw TaskError(file: path, line: i + 1, "expected {\"context\": [ids], \"continuation\": [ids]}, both non-empty")
            }
            return ImportanceRequest(context: context, continuation: continuation)
        }
    }
}
