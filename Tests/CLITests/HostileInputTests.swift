import Foundation
import Testing
@testable import HRZFormat
import TestSupport
import Basics
@testable import Files

/// Regression tests of issue 13's classes of hostile input, through the `headroom` executable as a user runs
/// it: every case ends with exit 1 or 2 (never a signal or a hang), a message naming the file and the
/// field, line or offset, no partial output left behind, and the inputs untouched.
enum Hostile {
    static let demo = CLI.root.appendingPathComponent("Sources/Study/Demo/demo.hrz").path
    static let demoTasks = CLI.root.appendingPathComponent("Sources/Study/Demo/tasks").path
    static let realTasks = CLI.root.appendingPathComponent("../shared/data/tasks").standardized.path

    /// A fresh folder for one case.
    static func folder(_ name: String) -> String {
        let dir = CLI.temporary("hostile-\(name)")
        try? FileManager.default.removeItem(atPath: dir)
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Runs headroom with a time limit; a hang is a test failure, not a stuck suite.
    static func run(_ args: [String], seconds: Double = 120, environment: [String: String]? = nil) throws -> CLI.Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = args
        if let environment { process.environment = environment }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let deadline = Date().addingTimeInterval(seconds)
        let o = ReadAll(out), e = ReadAll(err)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            // SIGKILL: a test runner may start children with SIGTERM blocked, and a hang must fail, not stall.
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            Issue.record("headroom \(args.joined(separator: " ")) hung for \(seconds) s")
        }
        process.waitUntilExit()
        return CLI.Output(status: process.terminationStatus, stdout: o.text(), stderr: e.text())
    }

    /// Drains a pipe on a background thread, so a chatty child never blocks on a full pipe.
    final class ReadAll: @unchecked Sendable {
        private var data = Data()
        private let done = DispatchSemaphore(value: 0)
        init(_ pipe: Pipe) {
            DispatchQueue.global().async {
                self.data = readToEnd(pipe.fileHandleForReading)
                self.done.signal()
            }
        }
        func text() -> String { done.wait(); return String(decoding: data, as: UTF8.self) }
    }

    /// Checks the common contract: exit 1 (or 2 for usage), no termination by signal, stderr names `names`.
    static func expectClean(
        _ r: CLI.Output, status: Int32 = 1, naming names: [String], _ comment: Comment? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(r.status == status, "exit \(r.status): \(r.stderr)", sourceLocation: sourceLocation)
        for name in names { #expect(r.stderr.contains(name), "stderr does not name '\(name)': \(r.stderr)", sourceLocation: sourceLocation) }
    }

    /// Files under `dir` whose names say they are partial outputs.
    static func partials(_ dir: String) -> [String] {
        (FileManager.default.enumerator(atPath: dir)?.allObjects as? [String] ?? []).filter { $0.contains(".partial-") }
    }

    /// Copies a task's split into `dir/<task>/<split>.jsonl`, replacing rows by `edit` (row index → new row or nil to keep).
    static func taskCopy(
        _ task: String, splits: [String], from source: String = realTasks, into dir: String, rows: Int? = nil,
        edit: (String, Int, inout [String: Any]) -> Void = { _, _, _ in }
    ) throws {
        try FileManager.default.createDirectory(atPath: "\(dir)/\(task)", withIntermediateDirectories: true)
        for split in splits {
            let text = try String(contentsOfFile: "\(source)/\(task)/\(split).jsonl", encoding: .utf8)
            var lines = text.split(separator: "\n").map(String.init)
            if let rows { lines = Array(lines.prefix(rows)) }
            for i in lines.indices {
                var object = try JSONSerialization.jsonObject(with: Data(lines[i].utf8)) as! [String: Any]
                edit(split, i, &object)
                lines[i] = String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
            }
            try (lines.joined(separator: "\n") + "\n").write(toFile: "\(dir)/\(task)/\(split).jsonl", atomically: true, encoding: .utf8)
        }
    }

    /// Rewrites an `.hrz`'s JSON index through `edit` and fixes the header's lengths and checksums, as a
    /// careful attacker would: the file passes every checksum and says something inconsistent.
    static func rewriteIndex(_ source: String, to target: String, _ edit: (inout [String: Any]) -> Void) throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: source)))
        func u64(_ at: Int) -> Int { (0..<8).reduce(0) { $0 | Int(bytes[at + $1]) << (8 * $1) } }
        func put(_ value: UInt64, _ at: Int) { for i in 0..<8 { bytes[at + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) } }
        let indexOffset = u64(16)
        var index = try JSONSerialization.jsonObject(with: Data(bytes[indexOffset...])) as! [String: Any]
        edit(&index)
        let json = [UInt8](try JSONSerialization.data(withJSONObject: index, options: [.sortedKeys]))
        bytes = Array(bytes[..<indexOffset]) + json
        put(UInt64(json.count), 24)
        put(UInt64(bytes.count), 32)
        put(XXH64.hash(json), 40)
        put(XXH64.hash(Array(bytes[0..<56])), 56)
        try Data(bytes).write(to: URL(fileURLWithPath: target))
    }

    static func sha(_ path: String) -> String { (try? SHA256.hex([UInt8](Data(contentsOf: URL(fileURLWithPath: path))))) ?? "missing" }
}

@Suite(.serialized) struct HostileInputTests {
    // MARK: 1. Task rows with out-of-range values

    @Test(arguments: [
        ("copa", "label", 2 as Any, "field 'label' is 2, outside 0...1"),
        ("piqa", "label", 5 as Any, "field 'label' is 5, outside 0...1"),
        ("rte", "label", 7 as Any, "field 'label' is 7, outside 0...1"),
        ("boolq", "label", -1 as Any, "field 'label' is -1, outside 0...1"),
        ("wsc", "span2_index", -3 as Any, "field 'span2_index' is -3"),
        ("record", "entities", [String]() as Any, "field 'entities' is an empty list"),
    ])
    func badRowValuesAreNamedErrors(_ task: String, _ field: String, _ value: Any, _ message: String) throws {
        let dir = Hostile.folder("row-\(task)")
        if task == "record" {
            // The shared data has only a 64-row train subset of ReCoRD: serve it as the validation split.
            try FileManager.default.createDirectory(atPath: dir + "/src/record", withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: Hostile.realTasks + "/record/train.subset64.jsonl", toPath: dir + "/src/record/validation.jsonl")
        }
        let source = task == "record" ? dir + "/src" : Hostile.realTasks
        let splits = FileManager.default.fileExists(atPath: "\(source)/\(task)/train.jsonl") ? ["validation", "train"] : ["validation"]
        // HF row 3 of the validation split: every doc is prepared before any is scored.
        try Hostile.taskCopy(task, splits: splits, from: source, into: dir + "/data", rows: 12) { split, i, row in
            if split == "validation" && i == 3 { row[field] = value }
        }
        let r = try Hostile.run(["eval", Hostile.demo, "--tasks", task, "--data", dir + "/data", "-o", dir + "/out"])
        Hostile.expectClean(r, naming: ["\(task)/validation.jsonl:4", message])
        #expect(Hostile.partials(dir).isEmpty)
    }

    // MARK: 2. More few-shot examples than the population has

    @Test func fewshotLargerThanPopulationIsAnError() throws {
        let dir = Hostile.folder("population")
        try Hostile.taskCopy("copa", splits: ["validation"], into: dir + "/data", rows: 10)
        try Hostile.taskCopy("copa", splits: ["train"], into: dir + "/data", rows: 3)
        let r = try Hostile.run(["eval", Hostile.demo, "--tasks", "copa", "--shots", "5", "--data", dir + "/data", "-o", dir + "/out"])
        Hostile.expectClean(r, naming: ["copa/train.jsonl", "task copa: 5 few-shot examples asked for, but the population has only 3 rows"])
        // WSC: only label-1 rows are eligible.
        try Hostile.taskCopy("wsc", splits: ["validation"], into: dir + "/data", rows: 10)
        try Hostile.taskCopy("wsc", splits: ["train"], into: dir + "/data", rows: 40) { _, i, row in row["label"] = i < 2 ? 1 : 0 }
        let w = try Hostile.run(["eval", Hostile.demo, "--tasks", "wsc", "--shots", "5", "--data", dir + "/data", "-o", dir + "/out2"])
        Hostile.expectClean(w, naming: ["wsc/train.jsonl", "only 2 rows with label 1"])
        // LAMBADA draws k + 1 from its own split.
        try Hostile.taskCopy("lambada_openai", splits: ["validation"], into: dir + "/data", rows: 4)
        let l = try Hostile.run(["eval", Hostile.demo, "--tasks", "lambada_openai", "--shots", "5", "--data", dir + "/data", "-o", dir + "/out3"])
        Hostile.expectClean(l, naming: ["lambada_openai/validation.jsonl", "6 few-shot examples asked for", "only 4 rows"])
    }

    // MARK: 4. A config inconsistent with the tensors

    @Test func configInconsistentWithTensorsFailsBeforeAllocating() throws {
        let dir = Hostile.folder("config")
        for (key, value) in [
            ("word_embed_proj_dim", 1 << 40), ("num_attention_heads", 1 << 30), ("max_position_embeddings", 1 << 19),
            ("vocab_size", 1 << 19),
        ] {
            let bad = dir + "/\(key).hrz"
            try Hostile.rewriteIndex(Hostile.demo, to: bad) { index in
                var metadata = index["metadata"] as! [String: Any]
                var config = metadata["config"] as! [String: Any]
                config[key] = value
                metadata["config"] = config
                index["metadata"] = metadata
            }
            for command in [
                ["logits", bad, "--tokens", "2,5", "-o", dir + "/o.npy"],
                ["eval", bad, "--tasks", "demo_copy", "--data", Hostile.demoTasks, "--limit", "2", "-o", dir + "/out"],
            ] {
                let r = try Hostile.run(command, seconds: 60)
                Hostile.expectClean(r, naming: [bad], "\(key) in \(command[0])")
            }
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/o.npy") && Hostile.partials(dir).isEmpty)
    }

    // MARK: 5. Scores files of one study that disagree in shape

    @Test func reportNamesScoresOfDifferentShapes() throws {
        let dir = Hostile.folder("report")
        try FileManager.default.createDirectory(atPath: dir + "/importance", withIntermediateDirectories: true)
        try
            #"{"model_sha256": "00", "options": {"model": "m.hrz", "tasks": ["copa", "rte"], "shots": [0], "data": "d", "importanceExamples": 1, "headsGrid": [0], "ffnsGrid": [0], "combinedFFNs": [0], "pruneHeads": 0, "pruneFFNs": 0, "inductionSequences": 1, "inductionSeed": 0}}"#
            .write(toFile: dir + "/study.json", atomically: true, encoding: .utf8)
        func scores(_ task: String, _ matrix: String) -> String {
            #"{"kind":"heads","method":"gradient","task":"\#(task)","shots":0,"model_sha256":"00","examples":1,"scores":\#(matrix)}"#
        }
        try scores("copa", "[[1,2],[3,4]]").write(toFile: dir + "/importance/heads-copa-0shot.json", atomically: true, encoding: .utf8)
        try scores("rte", "[[1,2,3],[4,5,6],[7,8,9]]").write(toFile: dir + "/importance/heads-rte-0shot.json", atomically: true, encoding: .utf8)
        let r = try Hostile.run(["report", dir])
        Hostile.expectClean(r, naming: ["heads-rte-0shot.json", "heads-copa-0shot.json", "[3, 3]"])
        #expect(!FileManager.default.fileExists(atPath: dir + "/report.html"))
    }

    // MARK: 6. The model truncated while mapped

    @Test func modelTruncatedWhileInUseIsNamed() throws {
        let dir = Hostile.folder("sigbus")
        let model = dir + "/m.hrz"
        let synth = try Hostile.run(["synth", "--preset", "opt-125m", "--layers", "4", "-o", model])
        #expect(synth.status == 0)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = ["logits", model, "--tokens", "2,5,6,7", "-o", dir + "/o.npy"]
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let errors = Hostile.ReadAll(err)
        // Stop it as soon as the model is mapped (after its re-exec), cut the file, let it go on.
        var mapped = false
        for _ in 0..<20_000 where process.isRunning {
            if let maps = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/maps", encoding: .utf8), maps.contains(model) {
                kill(process.processIdentifier, SIGSTOP)
                mapped = true
                break
            }
            usleep(200)
        }
        #expect(mapped, "the model was never seen mapped")
        #expect(truncate(model, 4096) == 0)
        kill(process.processIdentifier, SIGCONT)
        process.waitUntilExit()
        let stderr = errors.text()
        #expect(process.terminationReason == .exit && process.terminationStatus == 1, "\(process.terminationReason) \(process.terminationStatus): \(stderr)")
        #expect(stderr.contains(model) && stderr.contains("changed while in use"), "\(stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/o.npy") && Hostile.partials(dir).isEmpty)
    }

    // MARK: 7. FIFOs and other non-regular files

    @Test func fifoInputsAreRefusedNotOpened() throws {
        let dir = Hostile.folder("fifo")
        let fifo = dir + "/f.hrz"
        #expect(mkfifo(fifo, 0o644) == 0)
        let r = try Hostile.run(["logits", fifo, "--tokens", "2", "-o", dir + "/o.npy"], seconds: 20)
        Hostile.expectClean(r, naming: [fifo, "is a FIFO, not a regular file"])
        let i = try Hostile.run(["inspect", fifo], seconds: 20)
        Hostile.expectClean(i, naming: [fifo, "FIFO"])
        // A checkpoint directory whose weights file is a FIFO.
        let hf = dir + "/hf"
        try FileManager.default.createDirectory(atPath: hf, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: CLI.fixtures + "/safetensors-f32/config.json", toPath: hf + "/config.json")
        #expect(mkfifo(hf + "/model.safetensors", 0o644) == 0)
        let c = try Hostile.run(["convert", hf, "-o", dir + "/c.hrz"], seconds: 20)
        Hostile.expectClean(c, naming: [hf + "/model.safetensors", "FIFO"])
        // A mask file that is a FIFO.
        let m = try Hostile.run(
            ["eval", Hostile.demo, "--tasks", "demo_copy", "--data", Hostile.demoTasks, "--mask-heads", fifo, "-o", dir + "/out"], seconds: 20)
        Hostile.expectClean(m, naming: [fifo, "FIFO"])
    }

    // MARK: 8. Outputs that are inputs or devices

    @Test func outputOverAnInputOrADeviceIsRefused() throws {
        let dir = Hostile.folder("output")
        let model = dir + "/m.hrz"
        try FileManager.default.copyItem(atPath: Hostile.demo, toPath: model)
        let before = Hostile.sha(model)
        let same = try Hostile.run(["logits", model, "--tokens", "2,5", "-o", model])
        Hostile.expectClean(same, naming: [model, "is the input"])
        // Through another spelling: a symlink to the model, and ./-relative paths.
        try FileManager.default.createSymbolicLink(atPath: dir + "/link.hrz", withDestinationPath: model)
        let linked = try Hostile.run(["logits", dir + "/link.hrz", "--tokens", "2,5", "-o", dir + "/./m.hrz"])
        Hostile.expectClean(linked, naming: ["is the input"])
        let device = try Hostile.run(["logits", model, "--tokens", "2,5", "-o", "/dev/null"])
        Hostile.expectClean(device, naming: ["/dev/null", "character device"])
        let scores = try Hostile.run(["importance", "heads", model, "--task", "demo_copy", "--data", Hostile.demoTasks, "--limit", "2", "-o", model])
        Hostile.expectClean(scores, naming: [model, "is the input"])
        let prune = try Hostile.run(["prune", model, "--remove-ffns", "0", "-o", model])
        Hostile.expectClean(prune, naming: [model, "is the input"])
        #expect(Hostile.sha(model) == before)
        // Converting into the checkpoint's own folder works, twice; its config and weights are never outputs.
        let hf = dir + "/hf"
        try FileManager.default.copyItem(atPath: CLI.fixtures + "/safetensors-f32", toPath: hf)
        #expect(try Hostile.run(["convert", hf, "-o", hf + "/model.hrz"]).status == 0)
        #expect(try Hostile.run(["convert", hf, "-o", hf + "/model.hrz"]).status == 0)
        for input in ["config.json", "model.safetensors"] {
            let before = Hostile.sha(hf + "/" + input)
            Hostile.expectClean(try Hostile.run(["convert", hf, "-o", hf + "/" + input]), naming: [hf + "/" + input, "is the input"])
            #expect(Hostile.sha(hf + "/" + input) == before)
        }
        #expect(Hostile.partials(dir).isEmpty)
    }

    // MARK: 9, 10, 12. Resuming: changed inputs, concurrent writers, derived files

    @Test func changedInputsAreRecomputedAndSaidSo() throws {
        let dir = Hostile.folder("inputs")
        let mask = dir + "/mask.json"
        try #"{"heads": [[0, 1]]}"#.write(toFile: mask, atomically: true, encoding: .utf8)
        let args = ["eval", Hostile.demo, "--tasks", "demo_copy", "--data", Hostile.demoTasks, "--mask-heads", mask, "-o", dir + "/out"]
        #expect(try Hostile.run(args + ["--limit", "5"]).status == 0)
        let kept = try Hostile.run(args + ["--limit", "5"])
        #expect(kept.status == 0 && kept.stderr.contains("demo_copy/0-shot: already done, kept"))
        let limit = try Hostile.run(args + ["--limit", "7"])
        #expect(limit.status == 0 && limit.stderr.contains("demo_copy/0-shot: inputs changed (limit: 5 → 7); recomputing"), "\(limit.stderr)")
        // Same path, other contents: the mask's contents are what is recorded.
        try #"{"heads": [[0, 2]]}"#.write(toFile: mask, atomically: true, encoding: .utf8)
        let edited = try Hostile.run(args + ["--limit", "7"])
        #expect(edited.status == 0 && edited.stderr.contains("inputs changed (mask:"), "\(edited.stderr)")
        let results = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/out/results.json"))) as! [String: Any]
        let cell = (results["cells"] as! [String: Any])["demo_copy/0"] as! [String: Any]
        #expect(cell["docs"] as? Int == 7 && (cell["inputs"] as? [String: String])?["limit"] == "7")
    }

    @Test func concurrentWritersKeepEachOthersCells() throws {
        let dir = Hostile.folder("concurrent")
        func start(_ task: String) throws -> Process {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: CLI.binary)
            p.arguments = [
                "eval", Hostile.demo, "--tasks", task, "--shots", "0,1", "--data", Hostile.demoTasks, "--limit", "30", "--threads", "1", "-o", dir + "/out",
            ]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            return p
        }
        let a = try start("demo_copy"), b = try start("demo_map_a")
        a.waitUntilExit(); b.waitUntilExit()
        #expect(a.terminationStatus == 0 && b.terminationStatus == 0)
        let results = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/out/results.json"))) as! [String: Any]
        #expect(Set((results["cells"] as! [String: Any]).keys) == ["demo_copy/0", "demo_copy/1", "demo_map_a/0", "demo_map_a/1"])
    }

    @Test func sweepCSVIsRepairedFromTheJSON() throws {
        let dir = Hostile.folder("sweepcsv")
        let scores =
            #"{"kind":"heads","method":"x","task":"demo_copy","shots":0,"model_sha256":"x","examples":1,"scores":[[1,2,3,4],[5,6,7,8],[9,10,11,12],[13,14,15,16]]}"#
        try scores.write(toFile: dir + "/h.json", atomically: true, encoding: .utf8)
        let args = [
            "sweep", Hostile.demo, "--tasks", "demo_copy", "--data", Hostile.demoTasks, "--limit", "4", "--heads", dir + "/h.json",
            "--grid", "heads=0:50:25", "-o", dir + "/out",
        ]
        #expect(try Hostile.run(args).status == 0)
        let csv = try String(contentsOfFile: dir + "/out/sweep.csv", encoding: .utf8)
        // A kill between the two writes: the CSV lags the JSON. A rerun (nothing left to compute) repairs it.
        try (csv.split(separator: "\n").prefix(2).joined(separator: "\n") + "\n").write(toFile: dir + "/out/sweep.csv", atomically: true, encoding: .utf8)
        let again = try Hostile.run(args)
        #expect(again.status == 0 && again.stderr.contains("already done"))
        #expect(try String(contentsOfFile: dir + "/out/sweep.csv", encoding: .utf8) == csv)
    }

    // MARK: 17. Contexts longer than the model's positions

    @Test func importanceLeftTruncatesLongContexts() throws {
        let dir = Hostile.folder("truncate")
        // The demo model has 512 positions; ten RTE examples make contexts longer than that.
        let r = try Hostile.run([
            "importance", "heads", Hostile.demo, "--task", "rte", "--shots", "10", "--limit", "2", "--data", Hostile.realTasks,
            "-o", dir + "/s.json",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("2 contexts left-truncated to fit 512 positions"), "\(r.stdout)")
        let file = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/s.json"))) as! [String: Any]
        #expect(file["truncated"] as? Int == 2 && file["examples"] as? Int == 2)
    }

    // MARK: 11. Partial files of killed runs

    @Test func killedRunLeavesNoPartialAndStalePartialsGo() throws {
        let dir = Hostile.folder("partial")
        // A stale partial of a process that no longer exists (pid 2^22 + 1 is above Linux's pid_max default).
        let stale = dir + "/s.hrz.partial-\(FileGuard.hostTag)-4194305"
        try Data(count: 1000).write(to: URL(fileURLWithPath: stale))
        // Another machine's partial on a shared file system: its PID means nothing here, so it stays.
        let foreign = dir + "/s.hrz.partial-other-node.example-4194305"
        try Data(count: 10).write(to: URL(fileURLWithPath: foreign))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = ["synth", "--preset", "opt-125m", "--layers", "12", "--level", "19", "-o", dir + "/s.hrz", "--threads", "1"]
        process.standardError = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        var sawPartial = false
        for _ in 0..<3000 where process.isRunning {
            if Hostile.partials(dir).contains(where: { !$0.hasSuffix("-4194305") }) { sawPartial = true; break }
            usleep(2000)
        }
        #expect(sawPartial)
        #expect(!FileManager.default.fileExists(atPath: stale), "the stale partial of a dead process is removed when a run starts")
        #expect(FileManager.default.fileExists(atPath: foreign), "another host's partial is not judged by this host's PIDs")
        try FileManager.default.removeItem(atPath: foreign)
        kill(process.processIdentifier, SIGINT)  // as Ctrl-C
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal)
        #expect(Hostile.partials(dir).isEmpty, "\(Hostile.partials(dir))")
        #expect(!FileManager.default.fileExists(atPath: dir + "/s.hrz"))
    }

    // MARK: 15. Prune checks what it copies

    @Test func pruneNamesAnUndecodableChunkWithAValidChecksum() throws {
        let dir = Hostile.folder("prune")
        let model = dir + "/m.hrz"
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Hostile.demo)))
        // A zstd plane of a layer-3 tensor that prune copies as stored: its frame magic zeroed, the chunk's
        // checksum recomputed, so only decoding can tell.
        let offset = (0..<8).reduce(0) { $0 | Int(bytes[16 + $1]) << (8 * $1) }
        let index = try JSONSerialization.jsonObject(with: Data(bytes[offset...])) as! [String: Any]
        let tensors = index["tensors"] as! [[String: Any]]
        let target = tensors.first { ($0["name"] as! String) == "layers.3.fc1.weight" }!
        let chunk = (target["chunks"] as! [[String: Any]])[0]
        let planes = chunk["planes"] as! [[String: Any]]
        let zstd = try #require(planes.firstIndex { ($0["codec"] as! String) == "zstd" })
        let start = (chunk["offset"] as! Int) + planes[..<zstd].reduce(0) { $0 + ($1["length"] as! Int) }
        for i in 0..<4 { bytes[start + i] = 0 }
        let stored = Array(bytes[(chunk["offset"] as! Int)..<((chunk["offset"] as! Int) + planes.reduce(0) { $0 + ($1["length"] as! Int) })])
        let hex = String(XXH64.hash(stored), radix: 16)
        try Data(bytes).write(to: URL(fileURLWithPath: dir + "/raw.hrz"))
        try Hostile.rewriteIndex(dir + "/raw.hrz", to: model) { index in
            var tensors = index["tensors"] as! [[String: Any]]
            let t = tensors.firstIndex { ($0["name"] as! String) == "layers.3.fc1.weight" }!
            var chunks = tensors[t]["chunks"] as! [[String: Any]]
            chunks[0]["xxh64"] = String(repeating: "0", count: 16 - hex.count) + hex
            tensors[t]["chunks"] = chunks
            index["tensors"] = tensors
        }
        let r = try Hostile.run(["prune", model, "--remove-heads", "0:1", "-o", dir + "/p.hrz"])
        Hostile.expectClean(r, naming: [model, "tensor 'layers.3.fc1.weight'", "chunk 0"])
        #expect(!FileManager.default.fileExists(atPath: dir + "/p.hrz") && Hostile.partials(dir).isEmpty)
    }

    // MARK: 16. Invalid UTF-8 and ragged scores

    @Test func invalidUTF8AndRaggedScoresNameTheOffset() throws {
        let dir = Hostile.folder("utf8")
        try Data("\"fine\"\n\"caf\u{e9} ok\"\n".utf8 + [0x22, 0x61, 0xC3, 0x28, 0x22, 0x0A]).write(to: URL(fileURLWithPath: dir + "/in.txt"))
        let t = try Hostile.run(["tokenize", Hostile.demo, "--input", dir + "/in.txt"])
        Hostile.expectClean(t, naming: [dir + "/in.txt:3", "invalid UTF-8 at byte 20"])
        let ragged = #"{"kind":"heads","method":"gradient","model_sha256":"x","examples":1,"scores":[[1,2],[3]]}"#
        try ragged.write(toFile: dir + "/r.json", atomically: true, encoding: .utf8)
        let r = try Hostile.run(["rank", dir + "/r.json", "-o", dir + "/ranks"])
        Hostile.expectClean(r, naming: [dir + "/r.json", "ragged: row 1 has 1 entries, row 0 has 2"])
        #expect(!FileManager.default.fileExists(atPath: dir + "/ranks/ranking-r.csv"))
        let slash = #"{"kind":"heads","method":"gradient","task":"a/b","shots":0,"model_sha256":"x","examples":1,"scores":[[1,2],[3,4]]}"#
        try slash.write(toFile: dir + "/s.json", atomically: true, encoding: .utf8)
        let s = try Hostile.run(["rank", dir + "/s.json", "-o", dir + "/ranks2"])
        Hostile.expectClean(s, naming: [dir + "/s.json", "field 'task'"])
        #expect((try? FileManager.default.contentsOfDirectory(atPath: dir + "/ranks2"))?.isEmpty ?? true)
    }

    // MARK: 19. Bad outputs are found before the work

    @Test func missingOutputDirectoryFailsBeforeTheWork() throws {
        let dir = Hostile.folder("early")
        let started = Date()
        let r = try Hostile.run(["importance", "heads", Hostile.demo, "--task", "demo_copy", "--data", Hostile.demoTasks, "-o", dir + "/nope/s.json"])
        Hostile.expectClean(r, naming: [dir + "/nope/s.json", "does not exist"])
        #expect(Date().timeIntervalSince(started) < 10, "the check comes before the 200 examples")
    }

    // MARK: 20. Sequence and request files name their lines

    @Test func sequenceAndRequestFilesNameTheLine() throws {
        let dir = Hostile.folder("lines")
        try "[5, 6, 7]\n\n[9, 99999999]\n".write(toFile: dir + "/seq.jsonl", atomically: true, encoding: .utf8)
        let p = try Hostile.run(["induction", "prefix-matching", Hostile.demo, "--sequences", dir + "/seq.jsonl", "-o", dir + "/p.json"])
        Hostile.expectClean(p, naming: [dir + "/seq.jsonl:3", "token id 99999999 is outside the vocabulary"])
        try "[5, 6, 5]\n".write(toFile: dir + "/dup.jsonl", atomically: true, encoding: .utf8)
        let d = try Hostile.run(["induction", "prefix-matching", Hostile.demo, "--sequences", dir + "/dup.jsonl", "-o", dir + "/p.json"])
        Hostile.expectClean(d, naming: [dir + "/dup.jsonl:1", "distinct"])
        try "{\"context\": [2, 5], \"continuation\": [7]}\n\n{\"context\": [2, -4], \"continuation\": [7]}\n".write(
            toFile: dir + "/req.jsonl", atomically: true, encoding: .utf8)
        let q = try Hostile.run(["importance", "heads", Hostile.demo, "--requests", dir + "/req.jsonl", "-o", dir + "/q.json"])
        Hostile.expectClean(q, naming: [dir + "/req.jsonl:3", "token id -4"])
        try "[2, 5]\n[7, 50272]\n".write(toFile: dir + "/ids.jsonl", atomically: true, encoding: .utf8)
        let t = try Hostile.run(["tokenize", Hostile.demo, "--decode", "--input", dir + "/ids.jsonl"])
        Hostile.expectClean(t, naming: [dir + "/ids.jsonl:2", "id 50272 is outside the vocabulary"])
        // A name from the file system with a terminal escape in it is printed escaped.
        let escape = dir + "/data/bad\u{1B}[31mred"
        try FileManager.default.createDirectory(atPath: escape, withIntermediateDirectories: true)
        try "{\"context\": \"a\", \"choices\": [\" b\"], \"gold\": 4}\n".write(toFile: escape + "/validation.jsonl", atomically: true, encoding: .utf8)
        let e = try Hostile.run(["eval", Hostile.demo, "--tasks", "bad\u{1B}[31mred", "--data", dir + "/data", "-o", dir + "/out"])
        Hostile.expectClean(e, naming: ["bad\\u{1b}[31mred/validation.jsonl:1"])
        #expect(!e.stderr.contains("\u{1B}"))
        // Strings from files are printed with control characters escaped.
        let generic = dir + "/data/gen"
        try FileManager.default.createDirectory(atPath: generic, withIntermediateDirectories: true)
        try "{\"context\": \"a\", \"choices\": [\" b\", \"\"], \"gold\": 0}\n".write(toFile: generic + "/validation.jsonl", atomically: true, encoding: .utf8)
        let g = try Hostile.run(["eval", Hostile.demo, "--tasks", "gen", "--data", dir + "/data", "-o", dir + "/out"])
        Hostile.expectClean(g, naming: [generic + "/validation.jsonl:1", "empty choice"])
    }
}
