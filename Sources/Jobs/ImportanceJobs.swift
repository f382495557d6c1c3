/// Gradient head importance (`headroom importance heads`, the study's heads units) and oracle importance
/// (`headroom importance ffns`, the study's ffns units), one task × shots cell per job, writing one scores file.
/// Gradient importance's items are chunks of `HeadImportanceJob.chunk` examples, each kept as fp64 sums; the
/// scores are the chunks' sums added in chunk order and normalised, so any split gives the same bits. The
/// oracle's items are the cell's scoring batches, each holding the baseline's and every ablation's scores of
/// its requests (`OracleImportance.batch`); the metrics come from all of them (`OracleImportance.combine`).
import Foundation
import Analysis
import Evaluation
import Runtime
import Tokenizer
import Files

/// Where gradient importance's examples come from.
public enum ImportanceSource: Sendable {
    /// The first `limit` docs of the task's train split (LAMBADA: its eval split), with `shots` draws each.
    case task(EvalTask, shots: Int, data: String, limit: Int, targetSpace: Bool)
    /// {"context": [ids], "continuation": [ids]} lines, used as given.
    case requests(String)
}

public struct HeadImportanceSpec: Sendable {
    public var model: String
    public var source: ImportanceSource
    /// The scores file; parts go to DIR/shards/STEM-iofN.json beside it.
    public var output: String
    public var precision = Precision.fp32
    public var memoryBudget: Int?
    public init(model: String, source: ImportanceSource, output: String) {
        self.model = model
        self.source = source
        self.output = output
    }
}

public final class HeadImportanceJob: PartedCell {
    public typealias Result = ImportanceSums
    /// Examples per item: small enough that a part saves often, large enough that part files stay small.
    public static let chunk = 25
    public let spec: HeadImportanceSpec
    public let skips = Skips()
    let model: OPTModel
    public private(set) var requests: [ImportanceRequest] = []
    public private(set) var truncated = 0

    public init(_ spec: HeadImportanceSpec) throws {
        self.spec = spec
        model = try OPTModel(path: spec.model, precision: spec.precision)
    }

    public var label: String {
        switch spec.source {
        case .task(let t, let k, _, _, _): return "heads \(Cells.key(t, k))-shot"
        case .requests(let file): return "heads \((file as NSString).lastPathComponent)"
        }
    }
    public var partDirectory: String { (spec.output as NSString).deletingLastPathComponent.isEmpty ? "." : (spec.output as NSString).deletingLastPathComponent }
    public var stem: String { ((spec.output as NSString).lastPathComponent as NSString).deletingPathExtension }

    /// The model, its precision and tool, and the examples' source: the split file's identity, the doc count,
    /// the draw rule and the continuation's leading space (or the requests file's identity).
    public lazy var record: InputRecord = {
        var r = InputRecord.base(modelID: model.contentID, precision: spec.precision.rawValue)
        switch spec.source {
        case .task(let task, _, let data, let limit, let targetSpace):
            let split = task == .lambadaOpenAI ? task.evalSplit : "train"
            r["data \(split)"] = InputRecord.fileIdentity("\(data)/\(task.rawValue)/\(split).jsonl") ?? "missing"
            r["examples"] = String(limit)
            r["draws"] = "random.seed(1234), sample per example, num_hidden_layers random() calls after each"
            if targetSpace { r["target space"] = "yes" }
        case .requests(let file):
            r["requests"] = InputRecord.fileIdentity(file) ?? "missing"
        }
        r["chunk"] = String(Self.chunk)
        return r
    }()

    public func status() throws -> OutputStatus { .of((try? ScoresFile.load(spec.output)).map(\.inputs), against: record) }

    public func prepare() throws -> Int {
        switch spec.source {
        case .task(let task, let shots, let data, let limit, let targetSpace):
            let scorer = Scorer(model: model, tokenizer: try Tokenizer.load(spec.model))
            (requests, truncated) = try ImportanceData.tokenized(
                task: task, shots: shots, dataDirectory: data, limit: limit, targetSpace: targetSpace,
                scorer: scorer)
        case .requests(let file):
            (requests, truncated) = try ImportanceData.fit(
                try ImportanceData.tokenRequests(file, vocabSize: model.config.vocabSize),
                positions: model.config.maxPositionEmbeddings)
        }
        return (requests.count + Self.chunk - 1) / Self.chunk
    }

    public func run(item: Int, context: JobContext) throws -> ImportanceSums {
        let range = (item * Self.chunk)..<min(requests.count, (item + 1) * Self.chunk)
        return try HeadImportance(model).sums(Array(requests[range]), memoryBudget: spec.memoryBudget) { done, total in
            context.progress("\(self.label) examples", range.lowerBound + done, self.requests.count)
        }
    }

    public func check(_ result: ImportanceSums, item: Int) -> String? {
        let L = model.config.numHiddenLayers, H = model.config.numAttentionHeads
        let expected = min(Self.chunk, requests.count - item * Self.chunk)
        guard result.sums.count == L, result.sums.allSatisfy({ $0.count == H }) else {
            return "sums are \(result.sums.count) × \(result.sums.first?.count ?? 0), the model is \(L) × \(H)"
        }
        guard result.sums.allSatisfy({ $0.allSatisfy { $0.isFinite && $0 >= 0 } }) else { return "sums hold a negative or non-finite value" }
        guard result.examples == expected, result.tokensMinusOne >= 0, result.continuationTokens >= 0 else {
            return "holds \(result.examples) examples; the chunk has \(expected)"
        }
        return nil
    }

    public func finish(_ results: [ImportanceSums], context: JobContext) throws {
        let total = ImportanceSums.merged(results) ?? ImportanceSums(sums: [], tokensMinusOne: 0, continuationTokens: 0, examples: 0)
        var task: String?, shots: Int?, notes: String?
        if case .task(let t, let k, _, _, let targetSpace) = spec.source {
            (task, shots) = (t.rawValue, k)
            notes = targetSpace ? "gold continuation with its leading space" : nil
        }
        let scores = total.sums.isEmpty ? [] : total.normalized()
        try ScoresFile.made(
            kind: "heads", method: "gradient", task: task, shots: shots, modelID: model.contentID, precision: spec.precision,
            examples: total.examples, scores: scores, notes: notes, truncated: truncated, record: record
        ).write(to: spec.output)
        if truncated > 0 {
            context.log("\(label): \(truncated) of \(total.examples) contexts left-truncated to fit \(model.config.maxPositionEmbeddings) positions")
        }
    }

    public func skip(_ reason: TaskError, context: JobContext) { skips.add(label, reason) }
}

public struct OracleSpec: Sendable {
    public var model: String
    public var kind: OracleImportance.Kind
    public var task: EvalTask
    public var shots: Int
    public var data: String
    public var limit: Int?
    /// The scores file; parts go to DIR/shards/STEM-iofN.json beside it.
    public var output: String
    /// Replay each ablation from the baseline's recorded layer inputs (exact); false runs each from scratch.
    public var cached = true
    public var precision = Precision.fp32
    public var memoryBudget: Int?
    public var batchTokens: Int?
    /// Split each batch's ablations into this many groups (ablation a in group a mod G), each an item of its
    /// own that runs the batch's baseline again: only for cells with too few batches to meet a time limit.
    public var ablationGroups = 1
    public init(model: String, kind: OracleImportance.Kind, task: EvalTask, shots: Int, data: String, output: String) {
        self.model = model
        self.kind = kind
        self.task = task
        self.shots = shots
        self.data = data
        self.output = output
    }
}

/// Items are (batch, group) pairs, batch-major: item i is batch i / G with the ablations of group i mod G.
public final class OracleJob: PartedCell {
    public typealias Result = [[[Double]]]  // [baseline, the group's ablations…][request of the batch][loglikelihood, is_greedy]
    public let spec: OracleSpec
    public let skips = Skips()
    let evaluator: Evaluator
    var work: Evaluator.CellWork?
    var plan: ScoringPlan?
    var started = Date()

    public init(_ spec: OracleSpec) throws {
        self.spec = spec
        var o = EvalOptions(tasks: [spec.task], shots: [spec.shots], dataDirectory: spec.data, outputDirectory: NSTemporaryDirectory())
        o.limit = spec.limit
        o.memoryBudget = spec.memoryBudget
        o.batchTokens = spec.batchTokens
        o.precision = spec.precision
        evaluator = try Evaluator(modelPath: spec.model, options: o)
    }

    var ablations: [Int] { spec.kind.ablations(layers: evaluator.layerCount, heads: evaluator.headCount) }
    var groups: Int { max(1, min(spec.ablationGroups, ablations.count)) }
    /// The ablations of group g (every G-th, so groups of layers cost about the same to replay).
    func ablations(group g: Int) -> [Int] { ablations.enumerated().filter { $0.offset % groups == g }.map(\.element) }
    var method: String { spec.cached ? "oracle (cached layer inputs)" : "oracle (from scratch)" }

    public var label: String { "\(spec.kind.rawValue) oracle \(Cells.key(spec.task, spec.shots))-shot" }
    public var partDirectory: String { (spec.output as NSString).deletingLastPathComponent.isEmpty ? "." : (spec.output as NSString).deletingLastPathComponent }
    public var stem: String { ((spec.output as NSString).lastPathComponent as NSString).deletingPathExtension }

    /// The cell's evaluation record, the kind of ablation and the method.
    public lazy var record: InputRecord = {
        var r = evaluator.cellInputs(spec.task, shots: spec.shots)
        r["method"] = method
        r["ablations"] = spec.kind.rawValue
        if groups > 1 { r["ablation groups"] = String(groups) }  // the items, not the result, depend on it
        return r
    }()

    public func status() throws -> OutputStatus { .of((try? ScoresFile.load(spec.output)).map(\.inputs), against: record) }

    public func prepare() throws -> Int {
        started = Date()
        work = try evaluator.prepareCell(spec.task, shots: spec.shots)
        plan = try evaluator.scorer.plan(work!.requests)
        return plan!.batches.count * groups
    }

    public func run(item: Int, context: JobContext) throws -> [[[Double]]] {
        try OracleImportance.batch(spec.kind, evaluator: evaluator, plan: plan!, batch: item / groups, ablations: ablations(group: item % groups),
                                   cached: spec.cached)
            .map { $0.map { [$0.loglikelihood, $0.isGreedy ? 1 : 0] } }
    }

    public func check(_ result: [[[Double]]], item: Int) -> String? {
        guard let plan, plan.batches.indices.contains(item / groups) else { return nil }
        let n = plan.requests(inBatch: item / groups).count, expected = ablations(group: item % groups).count
        guard result.count == expected + 1 else {
            return "holds \(result.count) variants; the baseline and \(expected) ablations make \(expected + 1)"
        }
        guard result.allSatisfy({ $0.count == n && $0.allSatisfy { $0.count == 2 } }) else {
            return "expected [loglikelihood, is_greedy] for each of the batch's \(n) requests in every variant"
        }
        return nil
    }

    public func finish(_ results: [[[[Double]]]], context: JobContext) throws {
        guard let work, let plan else { return }
        // Each batch's groups back together: the baseline once (every group ran the same one), the ablations in order.
        var batches: [[[Score]]] = []
        for b in plan.batches.indices {
            let parts = (0..<groups).map { results[b * groups + $0].map { $0.map { Score(loglikelihood: $0[0], isGreedy: $0[1] == 1) } } }
            guard parts.allSatisfy({ $0[0] == parts[0][0] }) else {
                throw JobError(file: spec.output, "batch \(b): its ablation groups ran different baselines; the model or the runtime changed between them")
            }
            var variants = Array(repeating: [Score](), count: ablations.count + 1)
            variants[0] = parts[0][0]
            for g in 0..<groups { for (i, a) in ablations(group: g).enumerated() { variants[1 + ablations.firstIndex(of: a)!] = parts[g][1 + i] } }
            batches.append(variants)
        }
        let (baseline, ablated) = try OracleImportance.combine(batches, task: spec.task, evaluator: evaluator, work: work, plan: plan, ablations: ablations)
        let scores = ablated.map { baseline - $0 }
        let H = evaluator.headCount
        let matrix = spec.kind == .heads ? stride(from: 0, to: scores.count, by: H).map { Array(scores[$0..<($0 + H)]) } : scores.map { [$0] }
        let what = spec.kind == .heads ? "head h of layer l" : "layer l's FFN"
        try ScoresFile.made(
            kind: spec.kind.rawValue, method: method, task: spec.task.rawValue, shots: spec.shots, modelID: evaluator.modelID,
            precision: spec.precision, examples: work.docs, scores: matrix,
            notes: String(
                format: "baseline %.6f; scores = baseline − metric without %@; %.2f s", baseline, what,
                Date().timeIntervalSince(started)),
            record: record
        ).write(to: spec.output)
        context.log(String(format: "%@: baseline %.4f over %d docs", label, baseline, work.docs))
    }

    public func skip(_ reason: TaskError, context: JobContext) { skips.add(Cells.key(spec.task, spec.shots), reason) }

    /// The baseline metric recorded in a scores file's notes.
    public static func baseline(_ file: ScoresFile) -> Double? {
        guard let notes = file.notes, notes.hasPrefix("baseline ") else { return nil }
        return Double(notes.dropFirst(9).prefix { $0 != ";" })
    }
}
