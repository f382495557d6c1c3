/// The study on a Slurm cluster: each stage with units left to do becomes one job array (split where the
/// cluster's MaxArraySize asks), submitted with `--dependency=afterok:` on the arrays of the stages it comes
/// after and `--kill-on-invalid-dep=yes`, so a failed unit cancels what waits for it instead of leaving it
/// pending forever. Each array task runs `headroom study -o DIR --unit STAGE:ID`. Slurm is driven through its
/// commands (sbatch, squeue, scontrol), never linked; DIR must be on a file system every node shares.
import Foundation
import Jobs
import HRZFormat
import Pruning
import Files
import Analysis

public struct SlurmOptions: Sendable {
    /// The user's own sbatch options (partition, account, time, CPUs, memory), checked (`SbatchOptions`).
    public var sbatch = SbatchOptions()
    /// At most this many tasks of one array at once (`--array=…%K`).
    public var arrayLimit: Int?
    /// The headroom executable the array tasks run (this one by default; it must exist on every node).
    public var executable: String
    public init(executable: String) { self.executable = executable }
}

/// DIR/slurm/jobs.json: every submission, oldest first.
public struct SlurmJobs: Codable, Sendable {
    public struct Submission: Codable, Sendable {
        public var stage: String
        public var job: String
        /// Unit ids; array index = unit id − offset.
        public var units: [Int]
        public var offset: Int
        public var logPattern: String
        public var command: [String]
        public var submitted: String
    }

    public var submissions: [Submission] = []

    static func path(_ directory: String) -> String { (directory as NSString).appendingPathComponent("slurm/jobs.json") }

    static func read(_ directory: String) throws -> SlurmJobs {
        guard let data = try FileGuard.contents(atPath: path(directory)) else { return SlurmJobs() }
        do { return try JSONDecoder().decode(SlurmJobs.self, from: data) } catch {
            throw PruneError(file: path(directory), "not a jobs file: \(error)")
        }
    }

    /// The newest submission that holds `unit`.
    func latest(_ unit: UnitID) -> Submission? { submissions.last { $0.stage == unit.stage && $0.units.contains(unit.id) } }

    func log(_ unit: UnitID) -> String? {
        latest(unit).map { $0.logPattern.replacingOccurrences(of: "%a", with: String(unit.id - $0.offset)) }
    }
}

public enum SlurmError: Error, CustomStringConvertible {
    case command(String, String)
    public var description: String {
        switch self {
        case .command(let what, let why): return "\(what): \(why)"
        }
    }
}

public enum Slurm {
    /// Runs a Slurm client command; its stdout, or an error with its stderr.
    static func run(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        do { try process.run() } catch { throw SlurmError.command(arguments[0], "cannot start it (\(error)); is Slurm's client installed and SLURM_CONF set?") }
        let output = out.fileHandleForReading.readDataToEndOfFile(), errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let text = String(decoding: errors, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if process.terminationStatus == 127 { throw SlurmError.command(arguments[0], "not found; is Slurm's client installed (sbatch, squeue, scontrol)?") }
            throw SlurmError.command(arguments.joined(separator: " "), text.isEmpty ? "exit \(process.terminationStatus)" : text)
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// The cluster's MaxArraySize (`scontrol show config`): array indices must stay below it.
    public static func maxArraySize() throws -> Int {
        let config = try run(["scontrol", "show", "config"])
        for line in config.split(separator: "\n") where line.hasPrefix("MaxArraySize") {
            if let value = line.split(separator: "=").last.flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) }) { return value }
        }
        return 1001  // Slurm's default
    }

    /// "0-3,5,7-8" for sorted ids.
    static func ranges(_ ids: [Int]) -> String {
        var parts: [String] = [], i = 0
        while i < ids.count {
            var j = i
            while j + 1 < ids.count && ids[j + 1] == ids[j] + 1 { j += 1 }
            parts.append(i == j ? "\(ids[i])" : "\(ids[i])-\(ids[j])")
            i = j + 1
        }
        return parts.joined(separator: ",")
    }

    /// Parses squeue's array index field ("3", "0-7", "[1,4-6%2]") into indices.
    static func indices(_ field: String) -> [Int] {
        var text = field.trimmingCharacters(in: CharacterSet(charactersIn: "[] "))
        if let percent = text.firstIndex(of: "%") { text = String(text[..<percent]) }
        return text.split(separator: ",").flatMap { part -> [Int] in
            let ends = part.split(separator: "-").compactMap { Int($0) }
            if ends.count == 2, ends[0] <= ends[1] { return Array(ends[0]...ends[1]) }
            return ends.count == 1 ? ends : []
        }
    }

    /// The state of every array task of `jobs` that slurmctld still knows: [job: [index: STATE]].
    static func states(_ jobs: [String]) -> [String: [Int: String]] {
        guard !jobs.isEmpty else { return [:] }
        var result: [String: [Int: String]] = [:]
        // One query per job: squeue refuses the whole list when one id has been purged.
        for job in Set(jobs) {
            guard let text = try? run(["squeue", "--states=all", "-h", "-j", job, "-o", "%F %K %T"]) else { continue }
            for line in text.split(separator: "\n") {
                let f = line.split(separator: " ")
                guard f.count == 3 else { continue }
                for i in indices(String(f[1])) { result[String(f[0]), default: [:]][i] = String(f[2]) }
            }
        }
        return result
    }

    static let active: Set<String> = ["PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING", "SIGNALING", "STAGE_OUT"]
}

extension Study {
    var slurmDirectory: String { path("slurm") }

    /// One readable script per stage; the array index (plus an offset where MaxArraySize splits a stage) is the unit id.
    func slurmScript(_ stage: StudyPlan.Stage, options: SlurmOptions) -> String {
        func quoted(_ s: String) -> String {
            !s.isEmpty && s.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_=:,./@%+".contains($0)) })
                ? s
                : "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
        }
        let absolute = (directory as NSString).standardizingPath.hasPrefix("/") ? directory : FileManager.default.currentDirectoryPath + "/" + directory
        var lines = [
            "#!/bin/bash",
            "# headroom study, stage '\(stage.name)': \(stage.title), \(stage.units.count) unit\(stage.units.count == 1 ? "" : "s").",
            "# Each array task runs one unit; `\(StudyCommands.line(StudyCommands.status(directory)))` shows them all.",
            "#SBATCH --job-name=headroom-\(stage.name)",
            "#SBATCH --kill-on-invalid-dep=yes",
        ]
        lines += options.sbatch.scriptLines
        lines += [
            "set -eu",
            "exec \(quoted(options.executable)) "
                + StudyCommands.unit((absolute as NSString).standardizingPath, "UNIT").map {
                    $0 == "UNIT" ? "\"\(stage.name):$((SLURM_ARRAY_TASK_ID + ${HEADROOM_UNIT_OFFSET:-0}))\"" : quoted($0)
                }.joined(separator: " "),
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    /// Writes the scripts and submits every stage with units left to do, each after the arrays of the stages
    /// it needs. Returns the new submissions (none when the study is done).
    public func submitToSlurm(_ options: SlurmOptions) throws -> [SlurmJobs.Submission] {
        var jobs = try SlurmJobs.read(directory)
        // Submitting again while earlier arrays still run would run units twice.
        let states = Slurm.states(jobs.submissions.map(\.job))
        if let running = jobs.submissions.first(where: { s in (states[s.job] ?? [:]).values.contains { Slurm.active.contains($0) } }) {
            throw PruneError(
                file: SlurmJobs.path(directory),
                "job \(running.job) (stage \(running.stage)) is still pending or running; wait for it (--status) or scancel it first")
        }
        // Slurm's client first: without it nothing is written (no study.json left behind).
        let maxArray = try Slurm.maxArraySize()
        try writeManifest()
        let plan = self.plan()
        let pending = self.pending(plan)
        guard !pending.isEmpty else { return [] }
        try FileManager.default.createDirectory(atPath: slurmDirectory + "/logs", withIntermediateDirectories: true)
        var submitted: [String: [String]] = [:], round: [SlurmJobs.Submission] = []
        for stage in plan.stages {
            guard let ids = pending[stage.name] else { continue }
            let script = "\(slurmDirectory)/\(stage.name).sh"
            try AtomicFile.write(Array(slurmScript(stage, options: options).utf8), to: script)
            chmod(script, 0o755)
            let after = stage.after.flatMap { submitted[$0] ?? [] }
            // Array indices must stay below MaxArraySize: a larger stage becomes several arrays with offsets.
            for (chunk, group) in Dictionary(grouping: ids, by: { $0 / maxArray }).sorted(by: { $0.key < $1.key }) {
                let offset = chunk * maxArray
                let indices = group.map { $0 - offset }
                let logPattern = "\(slurmDirectory)/logs/\(stage.name)-\(offset > 0 ? "\(offset)+" : "")%a.out"
                var command = [
                    "sbatch", "--parsable", "--array=\(Slurm.ranges(indices))\(options.arrayLimit.map { "%\($0)" } ?? "")",
                    "--output=\(logPattern)", "--export=ALL,HEADROOM_UNIT_OFFSET=\(offset)",
                ]
                if !after.isEmpty { command.append("--dependency=afterok:\(after.joined(separator: ":"))") }
                command.append(script)
                let job = try Slurm.run(command).split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
                guard !job.isEmpty, job.allSatisfy(\.isNumber) else { throw SlurmError.command("sbatch", "printed no job id") }
                submitted[stage.name, default: []].append(job)
                let s = SlurmJobs.Submission(
                    stage: stage.name, job: job, units: group, offset: offset,
                    logPattern: logPattern, command: command, submitted: timestamp())
                round.append(s)
                jobs.submissions.append(s)
                // Recorded as each array is accepted, so a failure halfway leaves what was submitted on record.
                try JSONFiles.write(jobs, to: SlurmJobs.path(directory))
                log(
                    "submitted \(stage.name): job \(job), \(group.count) unit\(group.count == 1 ? "" : "s")\(after.isEmpty ? "" : ", after \(after.joined(separator: ", "))")"
                )
            }
        }
        return round
    }

    /// Blocks until no submitted array task is pending or running, polling every `interval` seconds.
    public func waitForSlurm(interval: Double = 2, tick: (String) -> Void = { _ in }) throws {
        let jobs = try SlurmJobs.read(directory).submissions.map(\.job)
        while true {
            let states = Slurm.states(jobs)
            let running = states.values.flatMap(\.values).filter { Slurm.active.contains($0) }.count
            if running == 0 { return }
            tick("\(running) array task\(running == 1 ? "" : "s") pending or running")
            Thread.sleep(forTimeInterval: interval)
        }
    }
}
