/// The examples gradient head importance is computed on, as the paper's code builds them
/// (llm-interpret `head_importance` / `get_dataloader` / `doc_to_cont`).
import Evaluation
import Foundation
import Runtime
import Files

public enum ImportanceData {
    /// Tasks whose gold continuation drops the choice's leading space in the paper's code (`doc_to_cont`).
    static let choiceWithoutSpace: Set<EvalTask> = [.arcEasy, .arcChallenge, .openbookqa, .hellaswag, .piqa, .mathqa]

    /// (context, gold continuation) for the first `limit` docs of the train split (LAMBADA: its eval split),
    /// in HF order, each with `shots` examples drawn by `sample` from the few-shot population of the
    /// module-level `random` stream seeded 1234, as the paper's code draws them.
    ///
    /// Two fidelity notes (docs: "Where Headroom differs from the paper's code"):
    /// - The paper's loader visits these docs through torch's unseeded RandomSampler, so which draw goes with
    ///   which doc cannot be reproduced; here docs take the draws in dataset order. The scores are a sum over
    ///   docs, which order does not change.
    /// - HF's OPT decoder (transformers 4.20) calls `random.uniform(0, 1)` once per decoder layer on every
    ///   forward, even in eval mode (its LayerDrop check), from the same module-level stream. So between two
    ///   examples' draws the stream advances by `layers` calls to `random()`: pass the model's
    ///   `num_hidden_layers`. A model pruned by Headroom keeps every layer (heads and FFNs go, layers stay),
    ///   so it advances by the same count as its parent; pass 0 to get draws without the emulation.
    public static func requests(
        task: EvalTask, shots: Int, dataDirectory: String, limit: Int = 2500,
        targetSpace: Bool = false, layers: Int
    ) throws -> [Request] {
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
            var examples: [TaskDoc] = []
            if shots > 0 {
                examples = try drawFewshot(
                    &rnd, task: task, k: shots, population: population.count, file: path,
                    what: task == .wsc ? "rows with label 1" : "rows"
                )
                .map { try task.doc(try file.row(population[$0])) }
            }
            for _ in 0..<layers { _ = rnd.random() }  // the forward's LayerDrop draws, one per decoder layer
            var continuation = doc.target
            if choiceWithoutSpace.contains(task) && !targetSpace && continuation.hasPrefix(" ") { continuation.removeFirst() }
            if choiceWithoutSpace.contains(task) && targetSpace && !continuation.hasPrefix(" ") { continuation = " " + continuation }
            return Request(context: fewshotContext(doc, examples: examples), continuation: continuation)
        }
    }

    /// "FILE:LINE" of each of `requests(…)`'s docs.
    static func sources(task: EvalTask, dataDirectory: String, limit: Int) throws -> [String] {
        let split = task == .lambadaOpenAI ? task.evalSplit : "train"
        let path = "\(dataDirectory)/\(task.rawValue)/\(split).jsonl"
        let file = try JSONLFile(path: path)
        return try (0..<file.count).filter { try task.eligibleForFewshot(try file.row($0)) }.prefix(limit).map { "\(path):\(try file.row($0).line)" }
    }

    /// `requests(…)` tokenized as the harness does (`scorer.tokens`) and fitted to the model's positions
    /// (`fit`), ready for `headImportance`. The draws advance by the scorer's model's layer count.
    public static func tokenized(
        task: EvalTask, shots: Int, dataDirectory: String, limit: Int = 2500, targetSpace: Bool = false,
        scorer: Scorer
    ) throws -> (requests: [ImportanceRequest], truncated: Int) {
        let requests = try requests(
            task: task, shots: shots, dataDirectory: dataDirectory, limit: limit, targetSpace: targetSpace,
            layers: scorer.model.config.numHiddenLayers
        )
        let places = try sources(task: task, dataDirectory: dataDirectory, limit: limit)
        let tokenized = try zip(requests, places).map { r, place in
            let t = try scorer.tokens(r)
            return ImportanceRequest(context: t.context, continuation: t.continuation, source: place)
        }
        return try fit(tokenized, positions: scorer.model.config.maxPositionEmbeddings)
    }

    /// Left-truncates each context so context + continuation fits in `positions` tokens, keeping the
    /// continuation whole (the harness truncates evaluation requests the same way; the paper's importance code
    /// has no truncation and fails on such examples). Returns how many were truncated; a continuation that
    /// alone does not fit with one context token is an error.
    public static func fit(_ requests: [ImportanceRequest], positions: Int) throws -> (requests: [ImportanceRequest], truncated: Int) {
        var truncated = 0
        let fitted = try requests.enumerated().map { (i, r) in
            guard r.context.count + r.continuation.count > positions else { return r }
            guard r.continuation.count < positions else {
                throw RuntimeError(place: r.source ?? "importance example \(i)",
                                   "the gold continuation alone has \(r.continuation.count) tokens; the model has \(positions) positions")
            }
            truncated += 1
            return ImportanceRequest(context: Array(r.context.suffix(positions - r.continuation.count)), continuation: r.continuation, source: r.source)
        }
        return (fitted, truncated)
    }

    /// Token-level requests from a JSONL file of {"context": [ids], "continuation": [ids]} lines; every id
    /// must lie in 0..<vocabSize. Errors name the file and line.
    public static func tokenRequests(_ path: String, vocabSize: Int = Int.max) throws -> [ImportanceRequest] {
        let file = try JSONLFile(path: path)
        return try (0..<file.count).map { i in
            let row = try file.row(i)
            guard let context = row.fields["context"] as? [Int], let continuation = row.fields["continuation"] as? [Int],
                !context.isEmpty, !continuation.isEmpty
            else {
                throw TaskError(file: path, line: row.line, "expected {\"context\": [ids], \"continuation\": [ids]}, both non-empty")
            }
            if let bad = (context + continuation).first(where: { $0 < 0 || $0 >= vocabSize }) {
                throw TaskError(file: path, line: row.line, "token id \(bad) is outside the vocabulary (0..<\(vocabSize))")
            }
            return ImportanceRequest(context: context, continuation: continuation, source: "\(path):\(row.line)")
        }
    }
}
