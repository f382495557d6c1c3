/// `headroom study -o DIR --status`: every unit done, running, pending, failed or cancelled (a unit it needs
/// failed), from the unit records in DIR and, where the study was submitted to Slurm, the cluster's state.
import Foundation
import Jobs

public struct UnitStatus: Sendable {
    public enum State: String, Sendable, CaseIterable { case done, running, pending, failed, cancelled }
    public var unit: UnitID
    public var what: String
    public var state: State
    /// Its Slurm log, where it was submitted.
    public var log: String?
    /// What it said when it failed.
    public var error: String?
}

extension Study {
    public func status() throws -> [(stage: StudyPlan.Stage, units: [UnitStatus])] {
        let plan = self.plan()
        let jobs = try SlurmJobs.read(directory)
        let states = Slurm.states(jobs.submissions.map(\.job))
        return plan.stages.map { stage in
            (
                stage,
                stage.units.map { u in
                    let unit = UnitID(stage: stage.name, id: u.id)
                    var status = UnitStatus(unit: unit, what: u.what, state: .pending, log: jobs.log(unit), error: failure(unit))
                    if isDone(unit, plan: plan) {
                        status.state = .done
                        status.error = nil
                        return status
                    }
                    let slurm = jobs.latest(unit).flatMap { s in states[s.job]?[unit.id - s.offset] }
                    switch slurm {
                    case "RUNNING"?, "COMPLETING"?, "CONFIGURING"?: status.state = .running
                    case "PENDING"?, "REQUEUED"?, "SUSPENDED"?: status.state = .pending
                    case "CANCELLED"?: status.state = status.error == nil ? .cancelled : .failed
                    case "FAILED"?, "TIMEOUT"?, "OUT_OF_MEMORY"?, "NODE_FAIL"?, "BOOT_FAIL"?, "DEADLINE"?, "PREEMPTED"?: status.state = .failed
                    default: status.state = status.error == nil ? .pending : .failed
                    }
                    if status.state == .failed && status.error == nil { status.error = "Slurm: \(slurm ?? "failed")" }
                    return status
                }
            )
        }
    }

    /// The status as a table, then each failed unit with its log and error.
    public static func statusText(_ status: [(stage: StudyPlan.Stage, units: [UnitStatus])]) -> String {
        var lines = [
            "stage".padding(toLength: 14, withPad: " ", startingAt: 0) + "units".leftPad(6)
                + UnitStatus.State.allCases.map { $0.rawValue.leftPad(10) }.joined()
        ]
        for (stage, units) in status {
            lines.append(
                stage.name.padding(toLength: 14, withPad: " ", startingAt: 0) + "\(units.count)".leftPad(6)
                    + UnitStatus.State.allCases.map { s in "\(units.filter { $0.state == s }.count)".leftPad(10) }.joined())
        }
        let failed = status.flatMap(\.units).filter { $0.state == .failed }
        for u in failed {
            lines.append("failed: \(u.unit) (\(u.what))" + (u.log.map { "; log: \($0)" } ?? ""))
            if let error = u.error { lines.append("  " + (error.split(separator: "\n").first.map(String.init) ?? error)) }
        }
        let cancelled = status.flatMap(\.units).filter { $0.state == .cancelled }
        if !cancelled.isEmpty { lines.append("cancelled (a unit they need failed): " + cancelled.map(\.unit.description).joined(separator: ", ")) }
        return lines.joined(separator: "\n")
    }
}
