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
import Basics

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

    /// Every count and list in its documented range (docs/robustness.md); the error names `file` (study.json,
    /// or the command line) and the field. The command line checks the same ranges as it parses.
    public func validate(file: String) throws {
        func fail(_ field: String, _ why: String) -> StudyError { StudyError(file: file, field: field, why) }
        guard !model.isEmpty else { throw fail("options.model", "is empty") }
        guard !data.isEmpty else { throw fail("options.data", "is empty") }
        guard !tasks.isEmpty, tasks.count <= 1000 else { throw fail("options.tasks", "must list 1 to 1000 tasks, lists \(tasks.count)") }
        if let bad = tasks.first(where: { $0.isEmpty || $0.hasPrefix(".") || $0.contains("/") || $0.unicodeScalars.contains { $0.value < 0x20 } }) {
            throw fail("options.tasks", "'\(escapingControlCharacters(bad))' is not a task name")
        }
        guard !shots.isEmpty, shots.count <= 65, shots.allSatisfy({ (0...64).contains($0) }) else {
            throw fail("options.shots", "must list 1 to 65 numbers from 0 to 64, got \(shots.prefix(10))")
        }
        if let limit, !(1...100_000_000).contains(limit) { throw fail("options.limit", "must lie in 1…100000000, got \(limit)") }
        guard (1...10_000_000).contains(importanceExamples) else { throw fail("options.importanceExamples", "must lie in 1…10000000, got \(importanceExamples)") }
        if let memoryBudget, !(1...(1 << 50)).contains(memoryBudget) { throw fail("options.memoryBudget", "must lie in 1 B…1 PiB, got \(memoryBudget)") }
        for (name, grid) in [("headsGrid", headsGrid), ("ffnsGrid", ffnsGrid), ("combinedFFNs", combinedFFNs)] {
            guard !grid.isEmpty, grid.count <= 1000, grid.allSatisfy({ $0.isFinite && (0...100).contains($0) }) else {
                throw fail("options.\(name)", "must list 1 to 1000 percentages from 0 to 100")
            }
        }
        for (name, p) in [("pruneHeads", pruneHeads), ("pruneFFNs", pruneFFNs)] where !(p.isFinite && (0...100).contains(p)) {
            throw fail("options.\(name)", "must be a percentage from 0 to 100, got \(p)")
        }
        guard (1...100_000).contains(inductionSequences) else { throw fail("options.inductionSequences", "must lie in 1…100000, got \(inductionSequences)") }
        guard (0...Int(Int32.max)).contains(inductionSeed) else { throw fail("options.inductionSeed", "must lie in 0…\(Int32.max), got \(inductionSeed)") }
    }
}

/// What study.json holds: the options, the model they were run on and how finely the plan is split.
/// `--unit` and `--status` read everything else from it, so a cluster's array tasks carry only DIR and a unit.
public struct StudyManifest: Codable, Sendable {
    public var model_sha256: String
    /// The digest of every task data file the study reads (their contents), when it was written.
    public var data_sha256: String?
    public var options: StudyOptions
    public var shards: Int?

    /// The manifest in `directory`, checked (every field in range); nil when there is none.
    public static func read(directory: String) throws -> StudyManifest? {
        let path = (directory as NSString).appendingPathComponent(StudyLayout.manifest)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw StudyError(file: directory, "is a file, not a study directory")
        }
        guard let manifest = try JSONFiles.read(StudyManifest.self, from: path, what: "a study manifest") else { return nil }
        guard manifest.model_sha256.count == 64, manifest.model_sha256.allSatisfy(\.isHexDigit) else {
            throw StudyError(file: path, field: "model_sha256", "is not a content id (64 hexadecimal digits)")
        }
        if let shards = manifest.shards, !(1...StudyOptions.maxShards).contains(shards) {
            throw StudyError(file: path, field: "shards", "must lie in 1…\(StudyOptions.maxShards), got \(shards)")
        }
        try manifest.options.validate(file: path)
        return manifest
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
        try options.validate(file: "the command line")
        guard (1...StudyOptions.maxShards).contains(shards) else {
            throw StudyError(field: "--shards", "takes 1 to \(StudyOptions.maxShards), got \(shards)")
        }
        self.options = options
        self.directory = directory
        self.shards = shards
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
    /// Several runners on one directory share the work: each unit is claimed (`DIR/units/STAGE/ID.lock`)
    /// by whoever runs it; a runner takes the free units of a stage first and then waits for those others
    /// hold, so no unit runs twice and no runner starts a stage before the one it needs has finished.
    /// Returns only when every unit is done (or names those that are not).
    public func run() throws -> String {
        try writeManifest()
        let plan = self.plan()
        for (n, stage) in plan.stages.enumerated() {
            log("[\(n + 1)/\(plan.stages.count)] \(stage.title)")
            var waiting = stage.units.map { UnitID(stage: stage.name, id: $0.id) }
            while !waiting.isEmpty {
                var held: [UnitID] = []
                for unit in waiting {
                    let lock = try claim(unit)
                    if try lock.tryLock() { try runClaimed(unit, plan: plan, quiet: true) } else { held.append(unit) }
                }
                // Units another runner holds: wait for each, then it is done (or failed, and this runner retries it).
                if let first = held.first {
                    let lock = try claim(first)
                    try lock.lock()
                    try runClaimed(first, plan: plan, quiet: true)
                    held.removeFirst()
                }
                waiting = held
            }
        }
        let left = pending(plan)
        guard left.isEmpty else {
            let units = left.flatMap { stage, ids in ids.map { "\(stage):\($0)" } }.sorted()
            throw StudyError(file: path(StudyLayout.units), "\(units.count) unit\(units.count == 1 ? " is" : "s are") not done: \(units.prefix(8).joined(separator: ", "))")
        }
        return path(StudyLayout.report)
    }

    /// The lock file of a unit (created with its directory).
    func claim(_ unit: UnitID) throws -> FileLock {
        let lockPath = path("\(StudyLayout.units)/\(unit.stage)/\(unit.id).lock")
        try FileManager.default.createDirectory(atPath: (lockPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        return try FileLock(lockPath)
    }

    /// study.json records the options; a rerun must use the same model (other options may change, and the
    /// units they feed are recomputed).
    public func writeManifest() throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let sha = try HRZReader(path: options.model).contentID
        if let old = try StudyManifest.read(directory: directory), old.model_sha256 != sha {
            throw StudyError(file: path("study.json"), "this directory holds a study of another model; use another -o")
        }
        try JSONFiles.write(StudyManifest(model_sha256: sha, data_sha256: dataDigest, options: options, shards: shards), to: path("study.json"))
    }

    /// The digest of every task data file the study reads (contents, not paths or times).
    lazy var dataDigest: String = {
        var facts: [String: String] = [:]
        for task in tasks {
            let dir = "\(options.data)/\(task.rawValue)"
            for file in ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted() where file.hasSuffix(".jsonl") {
                facts["\(task.rawValue)/\(file)"] = InputRecord.fileIdentity("\(dir)/\(file)") ?? "missing"
            }
        }
        return InputRecord.digest(facts)
    }()

    /// A unit computes only with the model and the data the study was started with (study.json records their
    /// content ids): a model file replaced or a data file edited since is refused, naming what changed.
    func checkInputs() throws {
        guard let manifest = try StudyManifest.read(directory: directory) else { return }
        let model = try HRZReader(path: options.model).contentID
        guard model == manifest.model_sha256 else {
            throw StudyError(file: path(StudyLayout.manifest), field: "model_sha256",
                             "the model at \(options.model) is not the one this study was started with (content id \(model.prefix(16))…, recorded \(manifest.model_sha256.prefix(16))…); restore it, or start another study")
        }
        if let data = manifest.data_sha256, data != dataDigest {
            throw StudyError(file: path(StudyLayout.manifest), field: "data_sha256",
                             "the task data under \(options.data) changed since this study was started; restore it, or start the study again (headroom study … -o DIR) to recompute what depends on it")
        }
    }

    // MARK: Units: done or not, and running one

    func recordPath(_ unit: UnitID) -> String { path("units/\(unit.stage)/\(unit.id).json") }
    func failurePath(_ unit: UnitID) -> String { path("units/\(unit.stage)/\(unit.id).failed.json") }

    /// A unit's record, or nil when there is none or it is not a record of this unit (then it is not done).
    func record(_ unit: UnitID) -> UnitRecord? {
        guard let data = try? FileGuard.contents(atPath: recordPath(unit)), let r = try? JSONDecoder().decode(UnitRecord.self, from: data),
              r.unit == unit.description, r.seconds.isFinite, r.seconds >= 0 else { return nil }
        return r
    }

    public func failure(_ unit: UnitID) -> String? {
        guard let data = try? FileGuard.contents(atPath: failurePath(unit)) else { return nil }
        return (try? JSONDecoder().decode(UnitFailure.self, from: data))?.error
    }

    /// What every unit's stamp starts from: the options, the shards, the model, the tool and the task data.
    lazy var studyDigest: String = {
        let facts = ["model": modelID, "shards": String(shards), "tool": Headroom.version, "options": InputRecord.digest(options), "data": dataDigest]
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
    public func isDone(_ unit: UnitID, plan: StudyPlan) -> Bool {
        isDone(unit, stamp: stamp(unit, plan: plan), outputs: plan.stage(unit.stage)?.units.first { $0.id == unit.id }?.outputs ?? [])
    }

    /// Done against an already computed stamp (nil: an upstream unit is not done, so neither is this one).
    func isDone(_ unit: UnitID, stamp: String?, outputs planned: [String]) -> Bool {
        guard let stamp, let r = record(unit), r.stamp == stamp else { return false }
        // Every file it wrote is as it left it, and no file it writes exists unrecorded (a record whose list
        // was emptied or cut vouches for nothing).
        if planned.contains(where: { !$0.contains("*") && r.outputs[$0] == nil && FileManager.default.fileExists(atPath: path($0)) }) { return false }
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
        let lock = try claim(unit)
        try lock.lock()
        try runClaimed(unit, plan: plan ?? self.plan(), quiet: quiet)
    }

    /// `runUnit` with the unit's lock held.
    func runClaimed(_ unit: UnitID, plan: StudyPlan, quiet: Bool) throws {
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
        if isDone(unit, stamp: stamp, outputs: planned.outputs) {
            if let r = record(unit) { skipped += r.skipped }
            if !quiet { log("  \(unit) (\(planned.what)): done, kept") }
            return
        }
        try checkInputs()
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
