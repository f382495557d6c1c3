/// The study as a plan of units: stages in dependency order, each a list of units that can run at once (on
/// one machine one after another, on a cluster as one job array). A unit is named `STAGE:ID`; its id is
/// its index in the stage, so a Slurm array task runs `--unit STAGE:$SLURM_ARRAY_TASK_ID`.
import Foundation

public struct StudyPlan: Codable, Sendable {
    /// How finely evaluation cells, importance and sweeps are split.
    public var shards: Int
    /// In dependency order: every stage comes after the stages it names in `after`.
    public var stages: [Stage]

    public struct Stage: Codable, Sendable {
        public var name: String
        public var title: String
        public var after: [String]
        public var units: [Unit]
    }

    public struct Unit: Codable, Sendable {
        public var id: Int
        /// What it computes, in words ("copa 5-shot, examples 1, 4, 7, … (shard 1/3)").
        public var what: String
        /// Files it writes, relative to the study directory.
        public var outputs: [String]
        public var cost: Cost?
    }

    /// Estimated work of one unit: the tokens its forwards (and backwards) process, the FLOPs they take and
    /// the seconds that is at the calibrated throughput.
    public struct Cost: Codable, Sendable {
        public var tokens: Double
        public var flops: Double
        public var seconds: Double
    }

    public func stage(_ name: String) -> Stage? { stages.first { $0.name == name } }

    /// Every stage that must finish before `name` may start, directly or not.
    public func upstream(_ name: String) -> Set<String> {
        var seen = Set<String>(), work = stage(name)?.after ?? []
        while let next = work.popLast() {
            if seen.insert(next).inserted { work += stage(next)?.after ?? [] }
        }
        return seen
    }
}

/// A unit's address, `STAGE:ID`.
public struct UnitID: Hashable, Sendable, CustomStringConvertible {
    public var stage: String
    public var id: Int
    public init(stage: String, id: Int) {
        self.stage = stage
        self.id = id
    }

    /// Parses `STAGE:ID`; nil if malformed.
    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, let id = Int(parts[1]), id >= 0 else { return nil }
        stage = String(parts[0])
        self.id = id
    }

    public var description: String { "\(stage):\(id)" }
}

/// The record a finished unit leaves in DIR/units/STAGE/ID.json. It is done while its stamp matches what the
/// study would stamp it with now (the same options, model, data and tool, and upstream outputs as they are)
/// and every file it wrote is still as it left it.
struct UnitRecord: Codable {
    var unit: String
    var stamp: String
    /// Relative path → `fileStamp` when the unit finished.
    var outputs: [String: String]
    var skipped: [String]
    var host: String
    var seconds: Double
    var finished: String
}

/// The record a unit that threw leaves in DIR/units/STAGE/ID.failed.json (removed when it succeeds).
struct UnitFailure: Codable {
    var unit: String
    var error: String
    var host: String
    var finished: String
}

func timestamp() -> String { ISO8601DateFormatter().string(from: Date()) }
