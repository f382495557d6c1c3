import Foundation
import Testing
import TestSupport

/// Issue 24's classes 3–10 on the cluster path, through the executable: every hostile case ends with exit 1
/// or 2, a message naming the file (or option) and the field, no partial output, and the inputs untouched.
@Suite(.serialized) struct ClusterPathTests {
    /// A study small enough to run several times in a test.
    static let tiny = ["--tasks", "demo_copy", "--shots", "0", "--limit", "4", "--importance-examples", "3", "--induction-sequences", "2",
                       "--heads-grid", "0,50", "--ffns-grid", "0,50", "--combined-ffns", "0", "--threads", "1"]

    static func study(_ dir: String, _ extra: [String] = []) throws -> CLI.Output {
        try Hostile.run(["study", Hostile.demo, "--data", Hostile.demoTasks, "-o", dir] + tiny + extra, seconds: 600)
    }

    // MARK: 3. Counts with limits

    @Test func countsOutOfRangeAreRefusedWhereTheyEnter() throws {
        let dir = Hostile.folder("counts")
        for (args, named) in [(["--shards", "0"], "--shards"), (["--shards", "-3"], "--shards"), (["--shards", "99999999999"], "--shards"),
                              (["--plan", "--machines", "0"], "--machines"), (["--plan", "--machines", "1,99999999"], "--machines"),
                              (["--slurm", "--array-limit", "0"], "--array-limit"), (["--importance-examples", "0"], "--importance-examples"),
                              (["--induction-sequences", "1000000"], "--induction-sequences"), (["--limit", "-1"], "--limit"),
                              (["--heads-grid", Array(repeating: "5", count: 2000).joined(separator: ",")], "--heads-grid"),
                              (["--memory-budget", "9999999999T"], "--memory-budget"), (["--shots", "0,65"], "--shots")] {
            let r = try Hostile.run(["study", Hostile.demo, "--data", Hostile.demoTasks, "--tasks", "demo_copy", "-o", dir + "/s"] + args)
            Hostile.expectClean(r, status: 2, naming: [named], "\(args)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/s/study.json"))
        // The same fields in study.json are checked when it is read, naming the file and the field.
        let good = try Self.study(dir + "/t")
        #expect(good.status == 0, "\(good.stderr)")
        let manifest = dir + "/t/study.json"
        let original = try String(contentsOfFile: manifest, encoding: .utf8)
        for (edit, field) in [({ (o: inout [String: Any]) in o["shards"] = 0 }, "shards"), ({ o in o["shards"] = 1 << 40 }, "shards"),
                              ({ o in var x = o["options"] as! [String: Any]; x["tasks"] = [String](); o["options"] = x }, "options.tasks"),
                              ({ o in var x = o["options"] as! [String: Any]; x["importanceExamples"] = 1 << 50; o["options"] = x }, "options.importanceExamples"),
                              ({ o in var x = o["options"] as! [String: Any]; x["headsGrid"] = [-5]; o["options"] = x }, "options.headsGrid"),
                              ({ o in var x = o["options"] as! [String: Any]; x["limit"] = 0; o["options"] = x }, "options.limit")] {
            var object = try JSONSerialization.jsonObject(with: Data(original.utf8)) as! [String: Any]
            edit(&object)
            try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: manifest))
            for command in [["--status"], ["--unit", "induction:0"]] {
                let r = try Hostile.run(["study", "-o", dir + "/t"] + command)
                Hostile.expectClean(r, naming: [manifest, "field '\(field)'"], "\(field) \(command)")
            }
        }
    }

    // MARK: 4. A unit checks the model and the data it was started with

    @Test func aUnitRefusesAnotherModelAndMissingInputs() throws {
        let dir = Hostile.folder("unitmodel")
        let model = dir + "/m.hrz"
        try FileManager.default.copyItem(atPath: Hostile.demo, toPath: model)
        #expect(try Hostile.run(["study", model, "--data", Hostile.demoTasks, "-o", dir + "/s"] + Self.tiny).status == 0)
        try FileManager.default.removeItem(atPath: dir + "/s/units/induction/0.json")
        // Replaced by another model at the same path.
        try FileManager.default.removeItem(atPath: model)
        #expect(try Hostile.run(["synth", "--preset", "opt-125m", "--layers", "1", "-o", model, "--tokenizer", Repository.tokenizer]).status == 0)
        let replaced = try Hostile.run(["study", "-o", dir + "/s", "--unit", "induction:0"])
        Hostile.expectClean(replaced, naming: [dir + "/s/study.json", "field 'model_sha256'", "not the one this study was started with"])
        // Missing: refused, and not recorded done.
        try FileManager.default.removeItem(atPath: model)
        let missing = try Hostile.run(["study", "-o", dir + "/s", "--unit", "induction:0"])
        Hostile.expectClean(missing, naming: [model])
        #expect(!FileManager.default.fileExists(atPath: dir + "/s/units/induction/0.json"))
        // The data edited after the study started.
        try FileManager.default.copyItem(atPath: Hostile.demo, toPath: model)
        let data = dir + "/data"
        try FileManager.default.copyItem(atPath: Hostile.demoTasks, toPath: data)
        #expect(try Hostile.run(["study", model, "--data", data, "-o", dir + "/d"] + Self.tiny).status == 0)
        try FileManager.default.removeItem(atPath: dir + "/d/units/eval/0.json")
        try "{\"context\": \"x\", \"choices\": [\" a\", \" b\"], \"gold\": 0}\n".write(toFile: data + "/demo_copy/validation.jsonl", atomically: true, encoding: .utf8)
        Hostile.expectClean(try Hostile.run(["study", "-o", dir + "/d", "--unit", "eval:0"]), naming: [dir + "/d/study.json", "field 'data_sha256'"])
    }

    // MARK: 5. Merges check every shard

    @Test func mergesRefuseShardsOfTheWrongShapeOrOwnership() throws {
        let dir = Hostile.folder("merges")
        let heads = ["importance", "heads", Hostile.demo, "--task", "demo_map_a", "--shots", "1", "--data", Hostile.demoTasks, "--limit", "60",
                     "-o", dir + "/h.json"]
        for i in 0..<2 { #expect(try Hostile.run(heads + ["--shard", "\(i)/2"]).status == 0) }
        let part = dir + "/shards/h-0of2.json"
        var object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: part))) as! [String: Any]
        var results = object["results"] as! [[String: Any]]
        results[0]["sums"] = [[1.0]]
        object["results"] = results
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: part))
        Hostile.expectClean(try Hostile.run(heads + ["--merge-shards", "2"]), naming: [part, "field 'results'", "the model is 4 × 4"])
        #expect(!FileManager.default.fileExists(atPath: dir + "/h.json"))
        // An eval shard that scores another shard's batch.
        let eval = ["eval", Hostile.demo, "--tasks", "demo_copy", "--data", Hostile.demoTasks, "--limit", "20", "--batch-tokens", "200", "-o", dir + "/e"]
        for i in 0..<2 { #expect(try Hostile.run(eval + ["--shard", "\(i)/2"]).status == 0) }
        let a = dir + "/e/shards/demo_copy-0shot-0of2.json", b = dir + "/e/shards/demo_copy-0shot-1of2.json"
        var first = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: a))) as! [String: Any]
        let second = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: b))) as! [String: Any]
        var firstResults = first["results"] as! [Any]
        firstResults[0] = (second["results"] as! [Any])[0]
        first["results"] = firstResults
        try JSONSerialization.data(withJSONObject: first).write(to: URL(fileURLWithPath: a))
        Hostile.expectClean(try Hostile.run(eval + ["--merge-shards", "2"]), naming: [a, "field 'results'", "item 0:"])
        #expect(!FileManager.default.fileExists(atPath: dir + "/e/results.json"))
    }

    // MARK: 6, 7, 8. Study state, concurrent runners, repaired outputs

    @Test func stateFilesAreValidatedAndConcurrentRunnersShareOneStudy() throws {
        for runners in [2, 3, 2] {
            let dir = Hostile.folder("concurrent-\(runners)-\(UInt32.random(in: 0...UInt32.max))")
            let processes = try (0..<runners).map { _ -> (Process, Hostile.ReadAll) in
                let p = Process()
                p.executableURL = URL(fileURLWithPath: CLI.binary)
                p.arguments = ["study", Hostile.demo, "--data", Hostile.demoTasks, "-o", dir + "/s"] + Self.tiny
                let out = Pipe()
                p.standardOutput = out
                p.standardError = out
                try p.run()
                return (p, Hostile.ReadAll(out))
            }
            for (p, out) in processes {
                p.waitUntilExit()
                let text = out.text()
                #expect(p.terminationStatus == 0 && text.contains("study finished"), "\(runners) runners: \(text.suffix(600))")
            }
            let status = try Hostile.run(["study", "-o", dir + "/s", "--status"])
            let lines = status.stdout.split(separator: "\n").dropFirst().filter { !$0.hasPrefix("failed") && !$0.hasPrefix("cancelled") }
            for line in lines {
                let f = line.split(separator: " ", omittingEmptySubsequences: true)
                #expect(f.count >= 3 && f[1] == f[2], "not every unit is done: \(line)")
            }
            // Each unit ran once: one record each, and the report exists.
            #expect(FileManager.default.fileExists(atPath: dir + "/s/report.html"))
        }
        // A unit record whose output list was emptied is not done: the unit runs again.
        let dir = Hostile.folder("state")
        #expect(try Self.study(dir + "/s").status == 0)
        let record = dir + "/s/units/ranks/0.json"
        var object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: record))) as! [String: Any]
        object["outputs"] = [String: String]()
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: record))
        let again = try Self.study(dir + "/s")
        #expect(again.status == 0 && again.stdout.contains("ranks:0"), "\(again.stdout)")
        // A cached calibration with an impossible throughput is measured again.
        let plan = try Self.study(dir + "/p", ["--plan"])
        #expect(plan.status == 0)
        let calibration = dir + "/p/calibration.json"
        var c = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: calibration))) as! [String: Any]
        c["forwardGflops"] = -1
        try JSONSerialization.data(withJSONObject: c).write(to: URL(fileURLWithPath: calibration))
        let replanned = try Self.study(dir + "/p", ["--plan"])
        #expect(replanned.status == 0 && replanned.stderr.contains("calibrating again"), "\(replanned.stderr)")
        let fixed = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: calibration))) as! [String: Any]
        #expect((fixed["forwardGflops"] as? Double ?? 0) > 0)
    }

    @Test func lmEvalOutputsAreRepairedOnRerun() throws {
        let dir = Hostile.folder("lmeval-repair")
        let args = ["eval", Hostile.demo, "--tasks", "demo_copy", "--data", Hostile.demoTasks, "--limit", "4", "-o", dir + "/out"]
        try FileManager.default.createDirectory(atPath: dir + "/out/lm-eval/results-0shot.json", withIntermediateDirectories: true)
        let blocked = try Hostile.run(args)
        Hostile.expectClean(blocked, naming: ["results-0shot.json"])
        try FileManager.default.removeItem(atPath: dir + "/out/lm-eval/results-0shot.json")
        let again = try Hostile.run(args)
        #expect(again.status == 0 && again.stderr.contains("already done, kept"), "\(again.stderr)")
        let file = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/out/lm-eval/results-0shot.json"))) as! [String: Any]
        #expect((file["results"] as! [String: Any]).keys.contains("demo_copy"))
    }

    // MARK: 9, 10. Messages and leftovers

    @Test func messagesNameWhatIsWrongAndNothingIsLeftBehind() throws {
        let dir = Hostile.folder("messages")
        try "x".write(toFile: dir + "/file", atomically: true, encoding: .utf8)
        Hostile.expectClean(try Hostile.run(["study", "-o", dir + "/file", "--status"]), naming: [dir + "/file", "is a file, not a study directory"])
        let sbatch = try Hostile.run(["study", Hostile.demo, "--tasks", "demo_copy", "--data", Hostile.demoTasks, "-o", dir + "/s", "--sbatch", "--partition=cpu"])
        Hostile.expectClean(sbatch, status: 2, naming: ["--sbatch, --array-limit and --wait go with --slurm"])
        #expect(!sbatch.stderr.contains("unknown option"))
        // A continuation longer than the model's positions names the requests file and its line.
        let long = Array(repeating: "5", count: 600).joined(separator: ",")
        try "{\"context\": [2], \"continuation\": [5]}\n{\"context\": [2], \"continuation\": [\(long)]}\n".write(toFile: dir + "/req.jsonl", atomically: true, encoding: .utf8)
        Hostile.expectClean(try Hostile.run(["importance", "heads", Hostile.demo, "--requests", dir + "/req.jsonl", "-o", dir + "/q.json"]),
                            naming: [dir + "/req.jsonl:2", "gold continuation alone has 600 tokens"])
        // A model whose BOS lies outside its vocabulary is refused when it opens, by file and field.
        let hf = dir + "/hf"
        try FileManager.default.copyItem(atPath: Repository.checkpoints + "/safetensors-f32", toPath: hf)
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: hf + "/config.json"))) as! [String: Any]
        config["bos_token_id"] = 99_999_999
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: hf + "/config.json"))
        Hostile.expectClean(try Hostile.run(["convert", hf, "-o", dir + "/bos.hrz"]), naming: [hf + "/config.json", "bos_token_id"])
        // Lenient parsing: a trailing slash in a shard, invalid UTF-8 on the command line.
        Hostile.expectClean(try Hostile.run(["eval", Hostile.demo, "--tasks", "demo_copy", "--data", Hostile.demoTasks, "-o", dir + "/e", "--shard", "1/2/"]),
                            status: 2, naming: ["--shard takes i/N"])
        let bad = try Self.runRaw(["tokenize", Hostile.demo, "caf\u{FF}"])
        #expect(bad.status == 2 && bad.stderr.contains("argument 3 is not valid UTF-8"), "\(bad)")
        // --slurm without a Slurm client: refused clearly, and no study.json left behind.
        var environment = ProcessInfo.processInfo.environment
        environment["PATH"] = "/nonexistent"
        environment["SLURM_CONF"] = nil
        let slurm = try Hostile.run(["study", Hostile.demo, "--tasks", "demo_copy", "--data", Hostile.demoTasks, "-o", dir + "/noslurm", "--slurm"],
                                    environment: environment)
        Hostile.expectClean(slurm, naming: ["scontrol"])
        #expect(!FileManager.default.fileExists(atPath: dir + "/noslurm/study.json"))
    }

    /// Runs headroom with one argument holding the byte 0xFF where `\u{FF}` stands (Swift strings cannot hold it).
    static func runRaw(_ args: [String]) throws -> CLI.Output {
        let script = Hostile.folder("raw") + "/run.sh"
        let quoted = args.map { "'" + $0.replacingOccurrences(of: "\u{FF}", with: "'$'\\xff''") + "'" }.joined(separator: " ")
        try "#!/bin/bash\nexec '\(CLI.binary)' \(quoted)\n".write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: script)
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let o = readToEnd(out.fileHandleForReading), e = readToEnd(err.fileHandleForReading)
        process.waitUntilExit()
        return CLI.Output(status: process.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }
}
