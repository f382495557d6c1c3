/// Induction-head scores (`headroom induction`, the study's induction units): prefix matching or the paper's
/// copying probe over base sequences. Each sequence is an item holding its `[L][H]` terms; the scores are
/// their sum in sequence order over the count, as one run computes them.
import Foundation
import Analysis
import Evaluation
import Runtime
import Tokenizer
import Files

public enum InductionKind: String, Sendable, CaseIterable {
    case prefixMatching = "prefix-matching"
    case copying
}

/// Where the base sequences come from.
public enum InductionSource: Sendable {
    /// N random sequences of lengths 2s + 25 from the middle of the BPE ranks, seeded.
    case random(count: Int, seed: Int)
    /// One JSON array of ids per line.
    case file(String)
}

public struct InductionSpec: Sendable {
    public var model: String
    public var kind: InductionKind
    public var source: InductionSource
    public var output: String
    public var precision = Precision.fp32
    public init(model: String, kind: InductionKind, source: InductionSource, output: String) {
        self.model = model
        self.kind = kind
        self.source = source
        self.output = output
    }
}

public final class InductionJob: PartedCell {
    public typealias Result = [[Double]]
    public let spec: InductionSpec
    let model: OPTModel
    public private(set) var sequences: [[Int]] = []

    public init(_ spec: InductionSpec) throws {
        self.spec = spec
        model = try OPTModel(path: spec.model, precision: spec.precision)
    }

    public var label: String { spec.kind.rawValue }
    public var partDirectory: String { (spec.output as NSString).deletingLastPathComponent.isEmpty ? "." : (spec.output as NSString).deletingLastPathComponent }
    public var stem: String { ((spec.output as NSString).lastPathComponent as NSString).deletingPathExtension }

    public lazy var record: InputRecord = {
        var r = InputRecord.base(modelID: model.contentID, precision: spec.precision.rawValue)
        switch spec.source {
        case .random(let count, let seed): r["sequences"] = "\(count) random, seed \(seed)"
        case .file(let path): r["sequences"] = InputRecord.fileIdentity(path) ?? "missing"
        }
        r["kind"] = spec.kind.rawValue
        return r
    }()

    var method: String {
        spec.kind == .copying
            ? "share of relu(p - mean p) on the most-attended position (own value via out_proj and the LM head)"
            : "attention to the token after earlier occurrences, copies 2-4"
    }
    var notes: String {
        switch spec.source {
        case .random(_, let seed): return "random sequences, seed \(seed)"
        case .file(let path): return "sequences from \(path)"
        }
    }

    public func status() throws -> OutputStatus { .of((try? ScoresFile.load(spec.output)).map(\.inputs), against: record) }

    public func prepare() throws -> Int {
        switch spec.source {
        case .random(let count, let seed):
            sequences = InductionSequences.random(count: count, seed: UInt64(seed), tokenizer: try Tokenizer.load(spec.model))
        case .file(let path):
            sequences = try InductionSequences.read(
                path, kind: spec.kind.rawValue, vocabSize: model.config.vocabSize,
                positions: model.config.maxPositionEmbeddings)
        }
        return sequences.count
    }

    public func run(item: Int, context: JobContext) throws -> [[Double]] {
        switch spec.kind {
        case .prefixMatching: return try PrefixMatching(model).contribution(sequences[item], index: item)
        case .copying: return try CopyingScores(model).contribution(sequences[item], index: item)
        }
    }

    public func check(_ result: [[Double]], item: Int) -> String? {
        let L = model.config.numHiddenLayers, H = model.config.numAttentionHeads
        guard result.count == L, result.allSatisfy({ $0.count == H && $0.allSatisfy(\.isFinite) }) else {
            return "expected [\(L)][\(H)] finite scores"
        }
        return nil
    }

    public func finish(_ results: [[[Double]]], context: JobContext) throws {
        let total = results.dropFirst().reduce(results.first ?? InductionScores.zero(model)) { InductionScores.add($0, $1) }
        let scores = total.map { $0.map { $0 / Double(max(1, results.count)) } }
        try ScoresFile.made(
            kind: spec.kind.rawValue, method: method, modelID: model.contentID, precision: spec.precision,
            examples: results.count, scores: scores, notes: notes, record: record
        ).write(to: spec.output)
    }

    public func skip(_ reason: TaskError, context: JobContext) {}
}
