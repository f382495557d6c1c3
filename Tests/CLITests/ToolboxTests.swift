import Foundation
import Testing
import TestSupport

/// Issue 17: outputs people's own tools read, and inputs they already have.
@Suite(.serialized) struct ToolboxTests {
    static func json(_ path: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
    }

    @Test func evalWritesLMEvalResultsAndSampleLogs() throws {
        let dir = Hostile.folder("lmeval")
        let r = try Hostile.run([
            "eval", Hostile.demo, "--tasks", "demo_copy,demo_map_a", "--shots", "0,1", "--data", Hostile.demoTasks,
            "--limit", "12", "-o", dir + "/out",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        // The field paths scripts written for lm-eval read: results[task][metric], results[task][metric_stderr],
        // versions[task], config.num_fewshot, config.limit.
        for k in [0, 1] {
            let file = try Self.json(dir + "/out/lm-eval/results-\(k)shot.json")
            let results = file["results"] as! [String: [String: Double]]
            let config = file["config"] as! [String: Any]
            #expect(Set(results.keys) == ["demo_copy", "demo_map_a"])
            #expect(config["num_fewshot"] as? Int == k && config["limit"] as? Int == 12 && config["precision"] as? String == "fp32")
            #expect((file["versions"] as! [String: Int])["demo_copy"] == 0)
            let own = (try Self.json(dir + "/out/results.json")["cells"] as! [String: [String: Any]])["demo_map_a/\(k)"]!
            let acc = (own["metrics"] as! [String: Double])["acc"]!
            #expect(results["demo_map_a"]!["acc"] == acc)
            // mean_stderr of 0/1 outcomes: sqrt(p(1-p)/(n-1)).
            let expected = (acc * (1 - acc) * 12 / 11 / 12).squareRoot()
            #expect(abs(results["demo_map_a"]!["acc_stderr"]! - expected) < 1e-12)
            // One sample line per doc with its requests, gold and prediction, agreeing with acc.
            let lines = try String(contentsOfFile: dir + "/out/samples/demo_map_a-\(k)shot.jsonl", encoding: .utf8).split(separator: "\n")
            let samples = try lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
            #expect(samples.count == 12)
            #expect(samples.allSatisfy { ($0["requests"] as! [[String: Any]]).allSatisfy { $0["loglikelihood"] is Double && $0["is_greedy"] is Bool } })
            #expect(samples.allSatisfy { ($0["correct"] as? Bool) == (($0["prediction"] as? Int) == ($0["gold"] as? Int)) })
            #expect(abs(Double(samples.filter { $0["correct"] as? Bool == true }.count) / 12 - acc) < 1e-12)
        }
    }

    @Test func compareWarnsAndComparesSharedCellsOnly() throws {
        let dir = Hostile.folder("compare")
        let base = ["eval", Hostile.demo, "--data", Hostile.demoTasks]
        #expect(try Hostile.run(base + ["--tasks", "demo_copy,demo_map_a", "--limit", "8", "-o", dir + "/a"]).status == 0)
        #expect(try Hostile.run(base + ["--tasks", "demo_copy", "--limit", "6", "-o", dir + "/b"]).status == 0)
        let r = try Hostile.run(["compare", dir + "/a/results.json", dir + "/b/results.json", "--json"])
        #expect(r.status == 0)
        #expect(r.stderr.contains("warning: cells not in every file, left out: demo_map_a/0"))
        #expect(r.stderr.contains("demo_copy/0-shot: different numbers of docs (8, 6)") && r.stderr.contains("different limit (8, 6)"))
        let out = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        #expect(out["shared_cells"] as? [String] == ["demo_copy/0"])
        let a = try Self.json(dir + "/a/results.json")["cells"] as! [String: [String: Any]]
        let accA = (a["demo_copy/0"]!["metrics"] as! [String: Double])["acc"]!
        #expect((out["mean"] as! [Double])[0] == accA, "the mean covers the shared cell only")
    }

    @Test func listsTasksReadsStdinAndImportsNPY() throws {
        let list = try Hostile.run(["eval", "--tasks", "list", "--data", Hostile.realTasks])
        #expect(list.status == 0)
        #expect(list.stdout.contains("copa              validation: 100 rows") && list.stdout.contains("record            validation: missing"))
        let generic = try Hostile.run(["eval", "--tasks", "list", "--data", Hostile.demoTasks])
        #expect(generic.stdout.contains("demo_copy") && generic.stdout.contains("(generic)"))

        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = ["tokenize", Hostile.demo, "--input", "-"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(Data("\"hello world\"\n".utf8))
        try input.fileHandleForWriting.close()
        let text = String(decoding: readToEnd(output.fileHandleForReading), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0 && text == "[42891,232]\n")

        // A float64 [layers, heads] tensor as np.save writes it: rank reads it like a scores file.
        let dir = Hostile.folder("npy")
        var header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xff), UInt8(header.utf8.count >> 8)] + Array(header.utf8)
        for v in [0.5, 0.1, 0.9, 0.3, 0.7, 0.2] { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 } }
        try Data(bytes).write(to: URL(fileURLWithPath: dir + "/paper.npy"))
        let rank = try Hostile.run(["rank", dir + "/paper.npy", "-o", dir + "/ranks"])
        #expect(rank.status == 0, "\(rank.stderr)")
        let csv = try String(contentsOfFile: dir + "/ranks/ranking-paper.csv", encoding: .utf8)
        #expect(csv.hasPrefix("rank,layer,head,score\n1,0,1,0.1\n2,1,2,0.2\n"), "\(csv)")
    }
}

/// `eval --shard i/N` then `--merge-shards N` equals one unsharded run: metrics identical, per-request
/// log-likelihoods bit-identical (each shard runs the unsharded run's own batches), same files.
@Suite(.serialized) struct ShardTests {
    @Test func shardedEvaluationMergesToTheUnshardedResult() throws {
        let dir = Hostile.folder("shards")
        // Small batches, so each cell has many and every shard gets some.
        let base = [
            "eval", Hostile.demo, "--tasks", "demo_copy,demo_map_a", "--shots", "0,5", "--data", Hostile.demoTasks, "--limit", "25",
            "--batch-tokens", "300",
        ]
        #expect(try Hostile.run(base + ["-o", dir + "/whole"]).status == 0)
        for i in 0..<3 { #expect(try Hostile.run(base + ["-o", dir + "/split", "--shard", "\(i)/3"]).status == 0) }
        for i in 0..<3 {
            let file = try ToolboxTests.json(dir + "/split/shards/demo_map_a-5shot-\(i)of3.json")
            #expect((file["done"] as! [Int]).count > 0, "shard \(i) scored nothing")
        }
        // Merging before every shard exists names the missing one.
        let early = try Hostile.run(base + ["-o", dir + "/partial", "--merge-shards", "2"])
        Hostile.expectClean(early, naming: ["shard 0/2 of demo_copy/0-shot is missing"])
        let merged = try Hostile.run(base + ["-o", dir + "/split", "--merge-shards", "3"])
        #expect(merged.status == 0, "\(merged.stderr)")
        let whole = try ToolboxTests.json(dir + "/whole/results.json")["cells"] as! [String: [String: Any]]
        let split = try ToolboxTests.json(dir + "/split/results.json")["cells"] as! [String: [String: Any]]
        #expect(Set(whole.keys) == Set(split.keys) && whole.count == 4)
        for (key, cell) in whole {
            #expect(cell["metrics"] as! [String: Double] == split[key]!["metrics"] as! [String: Double], "\(key)")
            #expect(cell["docs"] as? Int == split[key]!["docs"] as? Int)
        }
        for name in ["demo_copy-0shot", "demo_map_a-5shot"] {
            func lines(_ d: String) throws -> [[String: Any]] {
                try String(contentsOfFile: "\(dir)/\(d)/requests/\(name).jsonl", encoding: .utf8).split(separator: "\n")
                    .map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
            }
            let a = try lines("whole"), b = try lines("split")
            #expect(a.count == b.count)
            for (x, y) in zip(a, b) {
                #expect(x["context"] as? String == y["context"] as? String && x["position"] as? Int == y["position"] as? Int)
                #expect(x["loglikelihood"] as! Double == y["loglikelihood"] as! Double, "shards run the same batches: bit-identical")
            }
        }
    }

    @Test func shardedImportanceMergesWithin1e9() throws {
        let dir = Hostile.folder("impshards")
        let base = ["importance", "heads", Hostile.demo, "--task", "demo_map_a", "--shots", "1", "--data", Hostile.demoTasks, "--limit", "10"]
        #expect(try Hostile.run(base + ["-o", dir + "/whole.json"]).status == 0)
        for i in 0..<3 { #expect(try Hostile.run(base + ["-o", dir + "/split.json", "--shard", "\(i)/3"]).status == 0) }
        let merged = try Hostile.run(base + ["-o", dir + "/split.json", "--merge-shards", "3"])
        #expect(merged.status == 0, "\(merged.stderr)")
        let a = (try ToolboxTests.json(dir + "/whole.json")["scores"] as! [[Double]]).flatMap { $0 }
        let b = (try ToolboxTests.json(dir + "/split.json")["scores"] as! [[Double]]).flatMap { $0 }
        #expect(a.count == b.count && a.count == 16)
        for (x, y) in zip(a, b) { #expect(abs(x - y) <= 1e-9 * abs(x), "\(x) vs \(y)") }
        // Shards of other examples are refused by name.
        let other = try Hostile.run([
            "importance", "heads", Hostile.demo, "--task", "demo_map_a", "--shots", "1", "--data", Hostile.demoTasks,
            "--limit", "9", "-o", dir + "/split.json", "--merge-shards", "3",
        ])
        Hostile.expectClean(other, naming: [dir + "/shards/split-0of3.json", "computed from other inputs (examples:"])
    }

    @Test func shardedSweepMergesToTheUnshardedTable() throws {
        let dir = Hostile.folder("sweepshards")
        let scores =
            #"{"kind":"heads","method":"x","task":"demo_copy","shots":0,"model_sha256":"x","examples":1,"scores":[[1,2,3,4],[5,6,7,8],[9,10,11,12],[13,14,15,16]]}"#
        try scores.write(toFile: dir + "/h.json", atomically: true, encoding: .utf8)
        let base = [
            "sweep", Hostile.demo, "--tasks", "demo_copy,demo_map_a", "--shots", "0,1", "--data", Hostile.demoTasks, "--limit", "6",
            "--heads", dir + "/h.json", "--grid", "heads=0:75:25",
        ]
        #expect(try Hostile.run(base + ["-o", dir + "/whole"]).status == 0)
        for i in 0..<3 { #expect(try Hostile.run(base + ["-o", dir + "/split", "--shard", "\(i)/3"]).status == 0) }
        let merged = try Hostile.run(base + ["-o", dir + "/split", "--merge-shards", "3"])
        #expect(merged.status == 0, "\(merged.stderr)")
        let whole = try String(contentsOfFile: dir + "/whole/sweep.csv", encoding: .utf8)
        #expect(try String(contentsOfFile: dir + "/split/sweep.csv", encoding: .utf8) == whole, "the merged table equals the unsharded one")
        #expect(whole.split(separator: "\n").count == 1 + 4 * 4)
        try FileManager.default.removeItem(atPath: dir + "/split/shards/demo_copy-0shot-h25-f0-1of3.json")
        Hostile.expectClean(
            try Hostile.run(base + ["-o", dir + "/split", "--merge-shards", "3"]), naming: ["demo_copy-0shot-h25-f0-1of3.json", "shard 1/3 of"])
    }
}
