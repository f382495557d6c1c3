import Foundation
import Testing
import TestSupport

/// The study as a plan of units: split three ways on one machine and as Slurm job arrays on a real one-node
/// cluster, it gives what one unsharded run gives (metrics identical, per-request log-likelihoods within
/// 1e-5, importance within 1e-9 relative: only the order of fp64 additions differs). Every run here uses one
/// thread, as the cluster's array tasks do, so fp32 rounding is the same everywhere.
///
/// The Slurm tests need `sbatch` and a cluster (`Tools/slurm/local-cluster.sh start`, which `.ci/run` does).
/// Without one they are skipped, unless HEADROOM_REQUIRE_SLURM=1 (CI sets it): then they fail.
@Suite(.serialized) struct ClusterTests {
    static let study = [
        "--tasks", "demo_copy,demo_map_a", "--shots", "0,1", "--limit", "12", "--importance-examples", "6", "--induction-sequences", "2",
        "--heads-grid", "0,50", "--ffns-grid", "0,50", "--combined-ffns", "0,50", "--threads", "1",
    ]

    /// The unsharded local run every other run is compared with (made once).
    nonisolated(unsafe) static var referenceDirectory: String?

    static func reference() throws -> String {
        if let dir = referenceDirectory { return dir }
        let dir = testScratch() + "cluster-reference"
        let r = try run(["study", "-o", dir] + study)
        #expect(r.status == 0, "\(r.stderr)")
        referenceDirectory = dir
        return dir
    }

    /// The environment with SLURM_CONF set where a local cluster runs.
    static var environment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        if let conf = slurmConf { environment["SLURM_CONF"] = conf }
        return environment
    }

    /// Runs headroom (killed, and the test failed, if it hangs).
    static func run(_ args: [String], seconds: Double = 600) throws -> CLI.Output {
        try Hostile.run(args, seconds: seconds, environment: environment)
    }

    /// A Slurm client command's exit status and output.
    static func runSlurm(_ args: [String]) -> (status: Int32, stdout: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = args
        process.environment = environment
        let out = Pipe()
        process.standardOutput = out
        process.standardError = Pipe()
        guard (try? process.run()) != nil else { return (127, "") }
        let text = String(decoding: readToEnd(out.fileHandleForReading), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }

    static let slurmConf: String? = {
        if let conf = ProcessInfo.processInfo.environment["SLURM_CONF"] { return conf }
        let local = "/tmp/headroom-slurm/slurm.conf"
        return FileManager.default.fileExists(atPath: local) ? local : nil
    }()

    /// Whether a cluster answers; when it does not and CI requires one, the test fails.
    static func slurmAvailable() -> Bool {
        let sinfo = runSlurm(["sinfo", "-h", "-o", "%T"])
        let up = sinfo.status == 0 && sinfo.stdout.split(separator: "\n").contains { ["idle", "mixed", "allocated"].contains($0) }
        if !up && ProcessInfo.processInfo.environment["HEADROOM_REQUIRE_SLURM"] == "1" {
            Issue.record("HEADROOM_REQUIRE_SLURM=1 but no Slurm cluster answers (sinfo); start one with Tools/slurm/local-cluster.sh start")
        }
        return up
    }

    static func json(_ path: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
    }

    /// Every result file of study `b` equals study `a`'s within the stated tolerances.
    static func expectSameResults(_ a: String, _ b: String) throws {
        for results in ["baseline/results.json", "pruned/eval/results.json"] {
            let x = try json("\(a)/\(results)")["cells"] as! [String: [String: Any]], y = try json("\(b)/\(results)")["cells"] as! [String: [String: Any]]
            #expect(Set(x.keys) == Set(y.keys) && x.count == 4, "\(results)")
            for (key, cell) in x {
                #expect(cell["metrics"] as? [String: Double] == y[key]?["metrics"] as? [String: Double], "\(results) \(key)")
                #expect((cell["docs"] as? Int) == (y[key]?["docs"] as? Int))
            }
        }
        for dir in ["baseline/requests", "pruned/eval/requests"] {
            for file in try FileManager.default.contentsOfDirectory(atPath: "\(a)/\(dir)") {
                let lines = { (root: String) in
                    try String(contentsOfFile: "\(root)/\(dir)/\(file)", encoding: .utf8).split(separator: "\n").map {
                        try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
                    }
                }
                let x = try lines(a), y = try lines(b)
                #expect(x.count == y.count && !x.isEmpty, "\(dir)/\(file)")
                for (r, s) in zip(x, y) {
                    #expect(r["context"] as! String == s["context"] as! String)
                    #expect(abs((r["loglikelihood"] as! Double) - (s["loglikelihood"] as! Double)) <= 1e-5, "\(dir)/\(file)")
                }
            }
        }
        var scoresFiles = ["induction/prefix-matching.json", "induction/copying.json"]
        for task in ["demo_copy", "demo_map_a"] {
            for k in [0, 1] { scoresFiles += ["importance/heads-\(task)-\(k)shot.json", "importance/ffns-\(task)-\(k)shot.json"] }
        }
        for file in scoresFiles {
            let x = (try json("\(a)/\(file)")["scores"] as! [[Double]]).flatMap { $0 }, y = (try json("\(b)/\(file)")["scores"] as! [[Double]]).flatMap { $0 }
            #expect(x.count == y.count && !x.isEmpty, "\(file)")
            for (u, v) in zip(x, y) { #expect(abs(u - v) <= 1e-9 * max(abs(u), 1e-30), "\(file): \(u) vs \(v)") }
        }
        for file in ["sweeps/heads/sweep.csv", "sweeps/ffns/sweep.csv", "sweeps/combined/sweep.csv", "pruned/plan.json"] {
            #expect(try String(contentsOfFile: "\(a)/\(file)", encoding: .utf8) == String(contentsOfFile: "\(b)/\(file)", encoding: .utf8), "\(file)")
        }
        let html = try String(contentsOfFile: "\(b)/report.html", encoding: .utf8)
        #expect(html.contains("<figure id=\"sweep-heads-mean\">") && !html.contains("Not available yet"))
    }

    @Test func shardedLocalStudyEqualsUnsharded() throws {
        let reference = try Self.reference()
        let dir = testScratch() + "cluster-local-3"
        let r = try Self.run(["study", "-o", dir, "--shards", "3"] + Self.study)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("[2/15] baseline evaluation: merge") && r.stdout.contains("heads:11: demo_map_a 1-shot (shard 2/3)"))
        try Self.expectSameResults(reference, dir)
        // Done units are kept: a rerun runs nothing.
        let again = try Self.run(["study", "-o", dir, "--shards", "3"] + Self.study)
        #expect(again.status == 0 && !again.stdout.contains("heads:0:"))
        let status = try Self.run(["study", "-o", dir, "--status"])
        #expect(status.status == 0 && status.stdout.contains("heads             12        12         0         0         0         0"), "\(status.stdout)")
        // A unit by hand: done already, so kept; a unit of no stage is a clear error.
        let unit = try Self.run(["study", "-o", dir, "--unit", "heads:4"])
        #expect(unit.status == 0 && unit.stdout.contains("heads:4 (demo_copy 1-shot (shard 1/3)): done, kept"), "\(unit.stdout)")
        let bad = try Self.run(["study", "-o", dir, "--unit", "hedas:4"])
        #expect(bad.status == 1 && bad.stderr.contains("no stage 'hedas'"))
    }

    @Test func slurmStudyEqualsLocal() throws {
        guard Self.slurmAvailable() else { return }
        let reference = try Self.reference()
        let dir = testScratch() + "cluster-slurm-3"
        let r = try Self.run(
            ["study", "-o", dir, "--shards", "3", "--slurm", "--wait", "--sbatch", "--cpus-per-task=1", "--array-limit", "2"]
                + Self.study.dropLast(2))
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("report             1         1"), "\(r.stdout)")
        // 12 head units on a cluster whose MaxArraySize is 8 (Tools/slurm/local-cluster.sh): two arrays,
        // the second with offset 8; both limited to 2 tasks at once.
        let max =
            Int(
                Self.runSlurm(["scontrol", "show", "config"]).stdout.split(separator: "\n")
                    .first { $0.hasPrefix("MaxArraySize") }?.split(separator: "=").last?.trimmingCharacters(in: .whitespaces) ?? "") ?? 1001
        let jobs = try Self.json(dir + "/slurm/jobs.json")["submissions"] as! [[String: Any]]
        let heads = jobs.filter { $0["stage"] as? String == "heads" }
        #expect(heads.map { ($0["units"] as! [Int]).count } == (max >= 12 ? [12] : [max, 12 - max]))
        for (i, h) in heads.enumerated() {
            let command = h["command"] as! [String]
            #expect(h["offset"] as? Int == i * max && command.contains("--export=ALL,HEADROOM_UNIT_OFFSET=\(i * max)"))
            #expect(command.contains { $0.hasPrefix("--array=0-") && $0.hasSuffix("%2") }, "\(command)")
        }
        if max < 12 { #expect(try String(contentsOfFile: dir + "/slurm/logs/heads-\(max)+3.out", encoding: .utf8).contains("heads:\(max + 3) on 1 thread")) }
        let script = try String(contentsOfFile: dir + "/slurm/ranks.sh", encoding: .utf8)
        #expect(
            script.contains("#SBATCH --kill-on-invalid-dep=yes") && script.contains("#SBATCH --cpus-per-task=1")
                && script.contains("--unit \"ranks:$((SLURM_ARRAY_TASK_ID + ${HEADROOM_UNIT_OFFSET:-0}))\""))
        let ranks = try #require(jobs.first { $0["stage"] as? String == "ranks" })
        #expect((ranks["command"] as! [String]).contains { $0.hasPrefix("--dependency=afterok:") })
        // Array tasks ran with one thread each (SLURM_CPUS_PER_TASK).
        #expect(try String(contentsOfFile: dir + "/slurm/logs/heads-0.out", encoding: .utf8).contains("heads:0 on 1 thread"))
        try Self.expectSameResults(reference, dir)
        // Nothing left: a second --slurm submits nothing.
        let again = try Self.run(["study", "-o", dir, "--shards", "3", "--slurm"] + Self.study.dropLast(2))
        #expect(again.status == 0 && again.stdout.contains("nothing to submit"), "\(again.stdout)")
    }

    @Test func aFailedUnitCancelsItsDependentsAndASecondSubmissionFinishes() throws {
        guard Self.slurmAvailable() else { return }
        let dir = testScratch() + "cluster-slurm-fail"
        let args = [
            "study", "-o", dir, "--shards", "2", "--tasks", "demo_copy", "--shots", "0", "--limit", "6", "--importance-examples", "4",
            "--induction-sequences", "2", "--heads-grid", "0,50", "--ffns-grid", "0,50", "--combined-ffns", "0,50", "--slurm", "--wait",
        ]
        // Evaluation shard 1 cannot write its output: a directory stands where its file goes.
        let blocker = dir + "/baseline/shards/demo_copy-0shot-1of2.json"
        try FileManager.default.createDirectory(atPath: blocker + "/x", withIntermediateDirectories: true)
        let r = try Self.run(args)
        #expect(r.status == 1, "\(r.stdout)\n\(r.stderr)")
        let status = try Self.run(["study", "-o", dir, "--status"])
        #expect(status.stdout.contains("failed: eval:1 (evaluate every cell (shard 1/2)); log: \(dir)/slurm/logs/eval-1.out"), "\(status.stdout)")
        #expect(status.stdout.contains("demo_copy-0shot-1of2.json"), "the error is shown: \(status.stdout)")
        // Its dependents were cancelled, not left pending; the stages that do not need it finished.
        #expect(status.stdout.contains("cancelled (a unit they need failed): eval-merge:0, compare:0, report:0"), "\(status.stdout)")
        #expect(status.stdout.contains("heads              2         2         0         0         0         0"), "\(status.stdout)")
        #expect(!status.stdout.split(separator: "\n").contains { $0.hasPrefix("eval-merge") && !$0.hasSuffix("1") })
        try FileManager.default.removeItem(atPath: blocker)
        let second = try Self.run(args)
        #expect(second.status == 0, "\(second.stdout)\n\(second.stderr)")
        #expect(second.stdout.contains("submitted eval: job") && !second.stdout.contains("submitted heads:"), "only what is not done: \(second.stdout)")
        #expect(FileManager.default.fileExists(atPath: dir + "/report.html"))
    }
}
