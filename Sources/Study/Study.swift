/// `headroom study`: the paper's pipeline end to end, as a plan of units (StudyPlan.swift) that one machine
/// runs in order and a cluster runs as job arrays (Slurm.swift). Each unit writes its outputs atomically
/// under the study directory and a record of what they were computed from; a unit whose record still holds
/// is done. Evaluations and sweeps also resume inside a unit (per cell, per grid point). The report is
/// rendered from the directory alone.
import Analysis
import Benchmarks
import Jobs
import Evaluation
import Foundation
import HRZFormat
import Pruning
import Runtime
import Tokenizer
import Files

public struct StudyOptions: Codable, Sendable {
    public var model: String
    public var tasks: [String]
    public var shots: [Int]
    public var data: String
    /// Eval docs per cell (the first N of the harness's shuffled order); nil: all.
    public var limit: Int?
    /// Examples for gradient importance per task and shots (the paper: 2500).
    public var importanceExamples = 2500
    public var memoryBudget: Int?
    public var headsGrid: [Double] = stride(from: 0.0, through: 90, by: 10).map { $0 }
    public var ffnsGrid: [Double] = stride(from: 0.0, through: 90, by: 10).map { $0 }
    public var combinedFFNs: [Double] = stride(from: 0.0, through: 50, by: 10).map { $0 }
    /// The physically pruned model: percentages of the aggregate rankings.
    public var pruneHeads: Double = 70
    public var pruneFFNs: Double = 20
    public var inductionSequences = 20
    public var inductionSeed = 0
    /// A label for the report ("demo" for the embedded model).
    public var label: String?
    /// The arithmetic of every unit's model (nil in manifests written before bf16 existed: fp32).
    public var precision: Precision?
    public var arithmetic: Precision { precision ?? .fp32 }

    /// The most parts one cell or sweep may be split into (`--shards`).
    public static let maxShards = 4096

    public init(model: String, tasks: [String], shots: [Int], data: String) {
        self.model = model
        self.tasks = tasks
        self.shots = shots
        self.data = data
    }
}

/// What study.json holds: the options, the model they were run on and how finely the plan is split.
/// `--unit` and `--status` read everything else from it, so a cluster's array tasks carry only DIR and a unit.
public struct StudyManifest: Codable, Sendable {
    public var model_sha256: String
    public var options: StudyOptions
    public var shards: Int?

    /// The manifest in `directory`; nil when there is none.
    public static func read(directory: String) throws -> StudyManifest? {
        let path = (directory as NSString).appendingPathComponent("study.json")
        guard let data = try FileGuard.contents(atPath: path) else { return nil }
        do { return try JSONDecoder().decode(StudyManifest.self, from: data) } catch {
            throw StudyError(file: path, "not a study manifest: \(error)")
        }
    }
}

public final class Study {
    public let options: StudyOptions
    public let directory: String
    /// How finely cells, importance and sweeps are split into units (1: one unit per cell or sweep).
    public let shards: Int
    let tasks: [EvalTask]
    /// Messages for the user (steps started, kept, skipped).
    public var log: (String) -> Void = { _ in }
    /// Progress within the current unit: (what, done, total).
    public var progress: (String, Int, Int) -> Void = { _, _, _ in }
    /// Cells or steps that could not run (missing data), with the reason.
    public internal(set) var skipped: [String] = []
    /// The model's content id, read once.
    lazy var modelID: String = (try? HRZReader(path: options.model).contentID) ?? "unreadable"

    public init(options: StudyOptions, directory: String, shards: Int = 1) throws {
        self.options = options
        self.directory = directory
        self.shards = max(1, shards)
        tasks = try options.tasks.map { name in
            guard let t = EvalTask.named(name, dataDirectory: options.data) else {
                throw StudyError("unknown task '\(name)' (no \(options.data)/\(name)/validation.jsonl)")
            }
            return t
        }
    }

    /// The study recorded in `directory` (for `--unit`, `--status` and `--slurm` without options).
    public static func resume(directory: String) throws -> Study {
        guard let manifest = try StudyManifest.read(directory: directory) else {
            throw StudyError(
                file: (directory as NSString).appendingPathComponent("study.json"),
                "no study here yet; start it with `\(StudyCommands.line(StudyCommands.start(directory)))` (with --plan, --slurm or to run it)")
        }
        return try Study(options: manifest.options, directory: directory, shards: manifest.shards ?? 1)
    }

    func path(_ relative: String) -> String { (directory as NSString).appendingPathComponent(relative) }
    func exists(_ relative: String) -> Bool { FileManager.default.fileExists(atPath: path(relative)) }

    /// Runs every unit of the plan that is not done, in dependency order, and returns the report's path.
    public func run() throws -> String {
        try writeManifest()
        let plan = self.plan()
        for (n, stage) in plan.stages.enumerated() {
            log("[\(n + 1)/\(plan.stages.count)] \(stage.title)")
            for unit in stage.units { try runUnit(UnitID(stage: stage.name, id: unit.id), plan: plan, quiet: true) }
        }
        return path("report.html")
    }

    /// study.json records the options; a rerun must use the same model (other options may change, and the
    /// units they feed are recomputed).
    public func writeManifest() throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let sha = try HRZReader(path: options.model).contentID
        if let old = try StudyManifest.read(directory: directory), old.model_sha256 != sha {
            throw StudyError(file: path("study.json"), "this directory holds a study of another model; use another -o")
        }
        try JSONFiles.write(StudyManifest(model_sha256: sha, options: options, shards: shards), to: path("study.json"))
    }

    // MARK: Units: done or not, and running one

    func recordPath(_ unit: UnitID) -> String { path("units/\(unit.stage)/\(unit.id).json") }
    func failurePath(_ unit: UnitID) -> String { path("units/\(unit.stage)/\(unit.id).failed.json") }

    func record(_ unit: UnitID) -> UnitRecord? {
        guard let data = try? FileGuard.contents(atPath: recordPath(unit)) else { return nil }
        return try? JSONDecoder().decode(UnitRecord.self, from: data)
    }

    public func failure(_ unit: UnitID) -> String? {
        guard let data = try? FileGuard.contents(atPath: failurePath(unit)) else { return nil }
        return (try? JSONDecoder().decode(UnitFailure.self, from: data))?.error
    }

    /// What every unit's stamp starts from: the options, the shards, the model, the tool and the task data.
    lazy var studyDigest: String = {
        var facts = ["model": modelID, "shards": String(shards), "tool": Headroom.version, "options": InputRecord.digest(options)]
        for task in tasks {
            let dir = "\(options.data)/\(task.rawValue)"
            for file in ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted() where file.hasSuffix(".jsonl") {
                facts["data \(task.rawValue)/\(file)"] = InputRecord.fileIdentity("\(dir)/\(file)") ?? "missing"
            }
        }
        return InputRecord.digest(facts)
    }()

    /// The stamp `unit` gets when it runs now: the study's digest and the outputs of every unit of the
    /// stages it comes after, as they are. nil when one of those is not done.
    func stamp(_ unit: UnitID, plan: StudyPlan) -> String? {
        var facts = ["study": studyDigest, "unit": unit.description]
        for name in plan.stage(unit.stage)?.after ?? [] {
            for u in plan.stage(name)?.units ?? [] {
                guard let r = record(UnitID(stage: name, id: u.id)) else { return nil }
                facts["\(name):\(u.id)"] = InputRecord.digest(r.outputs)
            }
        }
        return InputRecord.digest(facts)
    }

    /// Done: its record holds this stamp and every file it wrote is as it left it.
    public func isDone(_ unit: UnitID, plan: StudyPlan) -> Bool { isDone(unit, stamp: stamp(unit, plan: plan)) }

    /// Done against an already computed stamp (nil: an upstream unit is not done, so neither is this one).
    func isDone(_ unit: UnitID, stamp: String?) -> Bool {
        guard let stamp, let r = record(unit), r.stamp == stamp else { return false }
        return r.outputs.allSatisfy { fileStamp(path($0.key)) == $0.value }
    }

    /// The units of `plan` not done, by stage. A unit after a stage with unfinished units is not done either:
    /// it will run again once they have, and then keeps what it can.
    public func pending(_ plan: StudyPlan) -> [String: [Int]] {
        var result: [String: [Int]] = [:]
        for stage in plan.stages {
            let blocked = stage.after.contains { !(result[$0] ?? []).isEmpty }
            let ids = stage.units.map(\.id).filter { blocked || !isDone(UnitID(stage: stage.name, id: $0), plan: plan) }
            if !ids.isEmpty { result[stage.name] = ids }
        }
        return result
    }

    /// Runs one unit (unless it is done) and records it; a unit whose upstream stages are not done is refused,
    /// naming the first unit it waits for. A failure leaves DIR/units/STAGE/ID.failed.json for `--status`.
    public func runUnit(_ unit: UnitID, plan: StudyPlan? = nil, quiet: Bool = false) throws {
        let plan = plan ?? self.plan()
        guard let stage = plan.stage(unit.stage) else {
            throw StudyError(
                file: path("study.json"), "no stage '\(unit.stage)' in this study's plan (its stages: \(plan.stages.map(\.name).joined(separator: ", ")))")
        }
        guard let planned = stage.units.first(where: { $0.id == unit.id }) else {
            throw StudyError(file: path("study.json"), "stage '\(unit.stage)' has units 0…\(stage.units.count - 1), not \(unit.id)")
        }
        for name in stage.after {
            for u in plan.stage(name)?.units ?? [] where !isDone(UnitID(stage: name, id: u.id), plan: plan) {
                throw StudyError(file: recordPath(UnitID(stage: name, id: u.id)), "unit \(unit) needs \(name):\(u.id) done first")
            }
        }
        let stamp = self.stamp(unit, plan: plan)!
        if isDone(unit, stamp: stamp) {
            if let r = record(unit) { skipped += r.skipped }
            if !quiet { log("  \(unit) (\(planned.what)): done, kept") }
            return
        }
        log("  \(unit): \(planned.what)")
        let started = Date(), skippedBefore = skipped.count
        do {
            try execute(unit)
        } catch {
            let failure = UnitFailure(unit: unit.description, error: "\(error)", host: FileGuard.hostTag, finished: timestamp())
            try? JSONFiles.write(failure, to: failurePath(unit))
            throw error
        }
        var outputs: [String: String] = [:]
        for file in planned.outputs { if let s = fileStamp(path(file)) { outputs[file] = s } }
        let r = UnitRecord(
            unit: unit.description, stamp: stamp, outputs: outputs, skipped: Array(skipped[skippedBefore...]), host: FileGuard.hostTag,
            seconds: Date().timeIntervalSince(started), finished: timestamp())
        try JSONFiles.write(r, to: recordPath(unit))
        try? FileManager.default.removeItem(atPath: failurePath(unit))
    }
}
