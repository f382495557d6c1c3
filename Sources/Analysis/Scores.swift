/// Scores files (formats/scores.md): what the importance and induction commands write and `rank` reads.
import Foundation
import HRZFormat
import Runtime
import Basics
import Files

public struct ScoresFile: Codable, Sendable {
    /// "heads", "ffns", "prefix-matching" or "copying".
    public var kind: String
    public var method: String
    public var task: String?
    public var shots: Int?
    public var model_sha256: String
    public var examples: Int
    /// `[layers][heads]` by original head index (pruned heads score 0).
    public var scores: [[Double]]
    public var notes: String?
    /// Examples whose context was left-truncated to fit the model's positions (gradient importance); nil: none.
    public var truncated: Int?
    /// What the scores were computed from, where a study wrote them (a rerun recomputes them when it differs).
    public var inputs: InputRecord?
    /// "fp32" or "bf16": the arithmetic the model ran in (absent in older files: fp32).
    public var precision: String?

    public init(
        kind: String, method: String, task: String?, shots: Int?, model_sha256: String, examples: Int,
        scores: [[Double]], notes: String? = nil, truncated: Int? = nil, precision: String? = nil
    ) {
        self.precision = precision
        self.kind = kind
        self.method = method
        self.task = task
        self.shots = shots
        self.model_sha256 = model_sha256
        self.examples = examples
        self.scores = scores
        self.notes = notes
        self.truncated = truncated
    }

    /// Reads and checks a scores file: a non-empty rectangular matrix of finite numbers, and a task name that
    /// is a plain name (no `/`, no control characters), since rank and report build file names from it.
    public static func load(_ path: String) throws -> ScoresFile {
        if path.hasSuffix(".npy") { return try importNPY(path) }
        guard let data = try FileGuard.contents(atPath: path) else { throw AnalysisError(file: path, "cannot read (missing?)") }
        let file: ScoresFile
        do { file = try JSONDecoder().decode(ScoresFile.self, from: data) } catch {
            throw AnalysisError(file: path, "not a scores file (formats/scores.md): \(describe(error))")
        }
        try file.validate(path)
        return file
    }

    /// A bare importance tensor saved as `.npy` (e.g. the paper's head importance, `np.save(t.numpy())`):
    /// `[layers, heads]` → kind heads, `[layers]` or `[layers, 1]` → kind ffns. Row 0 is the bottom layer, as in
    /// the paper's tensors (its plots number layers from 1).
    static func importNPY(_ path: String) throws -> ScoresFile {
        let (shape, values) = try NPY.readNumbers(path)
        let rows: Int, columns: Int
        switch shape.count {
        case 1: (rows, columns) = (shape[0], 1)
        case 2: (rows, columns) = (shape[0], shape[1])
        default: throw AnalysisError(file: path, "an importance tensor must be [layers, heads] or [layers], got shape \(shape)")
        }
        let scores = (0..<rows).map { r in (0..<columns).map { values[r * columns + $0] } }
        let file = ScoresFile(
            kind: columns == 1 ? "ffns" : "heads", method: "imported from .npy", task: nil, shots: nil, model_sha256: "unknown",
            examples: 0, scores: scores, notes: "imported from \((path as NSString).lastPathComponent)")
        try file.validate(path)
        return file
    }

    /// The checks of `load`, for a value decoded elsewhere.
    public func validate(_ path: String) throws {
        let width = scores.first?.count ?? 0
        guard !scores.isEmpty, width > 0 else { throw AnalysisError(file: path, field: "scores", "is empty") }
        if let l = scores.firstIndex(where: { $0.count != width }) {
            throw AnalysisError(file: path, field: "scores", "is ragged: row \(l) has \(scores[l].count) entries, row 0 has \(width)")
        }
        if let l = scores.firstIndex(where: { $0.contains { !$0.isFinite } }) {
            throw AnalysisError(file: path, field: "scores", "row \(l) holds a value that is not a finite number")
        }
        if let task {
            guard !task.isEmpty, task != ".", task != "..", !task.contains("/"),
                !task.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F })
            else {
                throw AnalysisError(file: path, field: "task", "is \"\(escapingControlCharacters(task))\": not a plain task name")
            }
        }
        if let shots, !(0...64).contains(shots) { throw AnalysisError(file: path, field: "shots", "is \(shots); shots lie in 0…64") }
        if examples < 0 { throw AnalysisError(file: path, field: "examples", "is \(examples)") }
    }

    public func write(to path: String) throws { try JSONFiles.write(self, to: path) }

    /// The one way a scores file is made from a computation: the model it ran on (content id and precision),
    /// the cell (task and shots) where there is one, and the record of what it was computed from.
    public static func made(
        kind: String, method: String, task: String? = nil, shots: Int? = nil, modelID: String, precision: Precision,
        examples: Int, scores: [[Double]], notes: String? = nil, truncated: Int = 0, record: InputRecord?
    ) -> ScoresFile {
        var file = ScoresFile(
            kind: kind, method: method, task: task, shots: shots, model_sha256: modelID, examples: examples, scores: scores,
            notes: notes, truncated: truncated > 0 ? truncated : nil, precision: precision.rawValue)
        file.inputs = record
        return file
    }
}
