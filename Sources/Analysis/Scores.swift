/// Scores files (formats/scores.md): what the importance and induction commands write and `rank` reads.
import Foundation
import HRZFormat

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

    public init(kind: String, method: String, task: String?, shots: Int?, model_sha256: String, examples: Int,
                scores: [[Double]], notes: String? = nil) {
        self.kind = kind
        self.method = method
        self.task = task
        self.shots = shots
        self.model_sha256 = model_sha256
        self.examples = examples
        self.scores = scores
        self.notes = notes
    }

    public func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write([UInt8](try encoder.encode(self)), to: path)
    }
}
