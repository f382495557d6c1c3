/// The job layer: every artefact the tool makes (an evaluation, gradient head importance, oracle importance,
/// induction scores, a rank report, a sweep, a pruned model, a comparison) is one type here. Each holds its
/// spec (its inputs as values), computes the record of what its outputs depend on in one place, knows its
/// output paths, its shard rule and exact merge (`Parts.swift`), and has one `run`. The CLI parses into a
/// spec and runs it; the study builds the same spec for each unit and runs the same job.
import Foundation
import Evaluation
import Files

/// What a job tells its caller as it works, and how often a part saves its progress.
public struct JobContext: @unchecked Sendable {
    /// One line for the user ("copa/5: already done, kept").
    public var log: (String) -> Void = { _ in }
    /// (what, done, total) within the current cell or step.
    public var progress: (String, Int, Int) -> Void = { _, _, _ in }
    /// A part rewrites its part file after an item when this many seconds have passed since the last save
    /// (default 600: a killed unit loses at most ~10 minutes of work). `HEADROOM_CHECKPOINT_SECONDS` overrides it.
    public var checkpointSeconds: Double = ProcessInfo.processInfo.environment["HEADROOM_CHECKPOINT_SECONDS"].flatMap(Double.init) ?? 600

    public init(log: @escaping (String) -> Void = { _ in }, progress: @escaping (String, Int, Int) -> Void = { _, _, _ in }) {
        self.log = log
        self.progress = progress
    }
}

/// A job's error: the file (or option) and field, and what is wrong.
public struct JobError: Error, CustomStringConvertible {
    public var file: String?
    public var field: String?
    public var message: String
    public init(file: String? = nil, field: String? = nil, _ message: String) {
        self.file = file
        self.field = field
        self.message = message
    }
    public var description: String {
        [file, field.map { "field '\($0)'" }].compactMap { $0 }.map { $0 + ": " }.joined() + message
    }
}

/// The cells of a job over tasks × shots, each prepared or skipped for missing data: the one loop over cells.
public struct Cells: Sendable {
    public var tasks: [EvalTask]
    public var shots: [Int]
    public init(tasks: [EvalTask], shots: [Int]) {
        self.tasks = tasks
        self.shots = shots
    }
    /// Task-major, as results.json and the report list them.
    public var all: [(task: EvalTask, shots: Int)] { tasks.flatMap { t in shots.map { (t, $0) } } }
    /// The "task/k" key of a cell.
    public static func key(_ task: EvalTask, _ k: Int) -> String { "\(task.rawValue)/\(k)" }
    /// The "task-kshot" file stem of a cell.
    public static func stem(_ task: EvalTask, _ k: Int) -> String { "\(task.rawValue)-\(k)shot" }
}

/// Cells skipped because their data is missing, with the reason (the other cells still run).
public final class Skips: @unchecked Sendable {
    public private(set) var entries: [(cell: String, error: TaskError)] = []
    private let lock = NSLock()
    public init() {}
    public func add(_ cell: String, _ error: TaskError) {
        lock.lock()
        entries.append((cell, error))
        lock.unlock()
    }
    public var isEmpty: Bool { entries.isEmpty }
}
