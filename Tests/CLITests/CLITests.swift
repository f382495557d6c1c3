import Foundation
import Testing
@testable import HRZFormat
import TestSupport

/// Golden tests of the `headroom` executable: help text, error text, exit codes.
struct CLI {
    static let root = Repository.root
    static let binary = root.appendingPathComponent(".build/debug/headroom").path
    static let fixtures = root.appendingPathComponent("Tests/CheckpointsTests/Fixtures").path
    static let tokenizer = root.appendingPathComponent("../shared/data/tokenizer/opt").standardized.path
    static let commands = [
        "convert", "inspect", "synth", "tokenize", "logits", "generate", "eval", "compare", "importance", "rank", "induction", "prune", "sweep", "study",
        "report", "demo", "bench",
    ]

    struct Output { var status: Int32; var stdout: String; var stderr: String }

    static func run(_ args: [String]) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = args
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let o = readToEnd(out.fileHandleForReading), e = readToEnd(err.fileHandleForReading)
        process.waitUntilExit()
        return Output(status: process.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    static func temporary(_ name: String) -> String {
        let dir = testScratch() + "headroom-cli-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir + "/" + name
    }
}

@Suite(.serialized) struct CLITests {
    @Test func topLevelHelpListsCommands() throws {
        let r = try CLI.run(["help"])
        #expect(r.status == 0)
        for command in CLI.commands { #expect(r.stdout.contains("  \(command) ")) }
    }

    @Test(arguments: CLI.commands)
    func everyCommandHasHelp(_ command: String) throws {
        let r = try CLI.run([command, "--help"])
        #expect(r.status == 0)
        #expect(r.stdout.hasPrefix("Usage: headroom \(command)"))
        #expect(try CLI.run(["help", command]).stdout == r.stdout)
    }

    @Test func usageErrorsExit2WithUsage() throws {
        let r = try CLI.run(["convert", "somewhere"])
        #expect(r.status == 2)
        #expect(r.stderr.hasPrefix("Error: missing -o MODEL.hrz\n\nUsage: headroom convert"))
        let bad = try CLI.run(["convert", "x", "-o", "y", "--dtype", "f64"])
        #expect(bad.stderr.hasPrefix("Error: --dtype takes one of keep, f16, bf16, f32, got 'f64'"))
        #expect(try CLI.run(["inspect", "a.hrz", "--frobnicate"]).stderr.hasPrefix("Error: unknown option '--frobnicate'"))
        #expect(try CLI.run(["nonsense"]).status == 2)
        let study = try CLI.run(["study", "--tasks", "copa"])
        #expect(study.status == 2 && study.stderr.hasPrefix("Error: the demo has no data for task 'copa' (its tasks: demo_copy, demo_map_a, demo_map_b)"))
        #expect(try CLI.run(["study", "model.hrz", "--tasks", "copa"]).stderr.hasPrefix("Error: missing --data DIR (needed with MODEL)"))
    }

    @Test func optionsInAnyOrderShortUsageErrorsAndSuggestions() throws {
        // Options before the subcommand word and the model: an option's value is never taken for a positional.
        let demo = CLI.root.appendingPathComponent("Sources/Study/Demo/demo.hrz").path, data = CLI.root.appendingPathComponent("Sources/Study/Demo/tasks").path
        let out = CLI.temporary("any-order.json")
        let r = try CLI.run(["importance", "-o", out, "--limit", "2", "heads", "--task", "demo_copy", "--data", data, demo])
        #expect(r.status == 0 && r.stdout.hasPrefix("wrote \(out)"), "\(r.stderr)")
        let i = try CLI.run(["induction", "--output", CLI.temporary("any-order-2.json"), "--count", "2", "copying", demo])
        #expect(i.status == 0, "\(i.stderr)")
        // A typo: the nearest option, a one-line synopsis and where the help is (not 50 lines of it).
        let typo = try CLI.run(["eval", demo, "--tasks", "demo_copy", "--data", data, "--outptu", "x"])
        #expect(typo.status == 2)
        #expect(
            typo.stderr
                == "Error: unknown option '--outptu'; did you mean '--output'?\n\nUsage: headroom eval MODEL.hrz --tasks copa,piqa|all --shots 0,1,5 --data DIR -o OUTDIR\nSee 'headroom eval --help'.\n"
        )
        // Reported even where the command's own checks fail first ("missing --data" after "--dat").
        #expect(try CLI.run(["eval", demo, "--tasks", "demo_copy", "--dat", data]).stderr.hasPrefix("Error: unknown option '--dat'; did you mean '--data'?"))
        #expect(try CLI.run(["bench", "--runs", "1", "formta"]).stderr.hasPrefix("Error: unknown benchmark 'formta'; did you mean 'format'?"))
        let command = try CLI.run(["evl"])
        #expect(command.status == 2 && command.stderr == "Error: unknown command 'evl'; did you mean 'eval'?\nSee 'headroom help'.\n")
        #expect(try CLI.run(["--version"]).stdout.hasPrefix("headroom "))
        // One spelling everywhere: --task and --tasks are the same option, --bos and --no-bos go both ways.
        let one = try CLI.run(["eval", demo, "--task", "demo_copy", "--data", data, "--limit", "2", "-o", CLI.temporary("task-alias")])
        #expect(one.status == 0 && one.stdout.contains("demo_copy/0-shot"), "\(one.stderr)")
        #expect(try CLI.run(["tokenize", demo, "Hello", "--no-bos"]).stdout == CLI.run(["tokenize", demo, "Hello"]).stdout)
        #expect(try CLI.run(["tokenize", demo, "Hello", "--bos", "--no-bos"]).stderr.hasPrefix("Error: give --bos or --no-bos, not both"))
        #expect(
            try CLI.run(["importance", "ffns", demo, "--heads", "--task", "demo_copy", "--data", data, "-o", "x"]).stderr
                .hasPrefix("Error: --heads names a scores file in prune and sweep; the oracle over single heads is importance ffns --single-heads"))
    }

    /// `--precision bf16` runs, is recorded in every output, and is part of a cell's inputs: a later fp32 run
    /// into the same directory recomputes the cell instead of keeping the bf16 result.
    @Test func precisionIsRecordedAndInvalidatesCells() throws {
        let demo = CLI.root.appendingPathComponent("Sources/Study/Demo/demo.hrz").path, data = CLI.root.appendingPathComponent("Sources/Study/Demo/tasks").path
        let dir = CLI.temporary("precision-eval")
        try? FileManager.default.removeItem(atPath: dir)
        let bf16 = try CLI.run(["eval", demo, "--tasks", "demo_copy", "--data", data, "--limit", "4", "--precision", "bf16", "-o", dir])
        #expect(bf16.status == 0, "\(bf16.stderr)")
        let results = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/results.json"))) as! [String: Any]
        #expect(results["precision"] as? String == "bf16")
        let cell = (results["cells"] as! [String: Any])["demo_copy/0"] as! [String: Any]
        #expect((cell["inputs"] as! [String: String])["precision"] == "bf16")
        let lmEval = try String(contentsOfFile: dir + "/lm-eval/results-0shot.json", encoding: .utf8)
        #expect(lmEval.contains("\"precision\" : \"bf16\"") || lmEval.contains("\"precision\":\"bf16\""))
        let fp32 = try CLI.run(["eval", demo, "--tasks", "demo_copy", "--data", data, "--limit", "4", "-o", dir])
        #expect(fp32.status == 0 && fp32.stderr.contains("inputs changed (precision"), "\(fp32.stderr)")
        let scores = CLI.temporary("precision-scores.json")
        let i = try CLI.run(["induction", "prefix-matching", demo, "--count", "2", "--precision", "bf16", "-o", scores])
        #expect(i.status == 0, "\(i.stderr)")
        #expect(try String(contentsOfFile: scores, encoding: .utf8).contains("bf16"))
        let bad = try CLI.run(["logits", demo, "--tokens", "2,5", "--precision", "fp16", "-o", CLI.temporary("x.npy")])
        #expect(bad.status == 2 && bad.stderr.hasPrefix("Error: --precision takes"), "\(bad.stderr)")
    }

    @Test func convertThenInspectAndVerify() throws {
        let out = CLI.temporary("cli.hrz")
        let c = try CLI.run(["convert", CLI.fixtures + "/post-ln-350m-style", "-o", out, "--threads", "2"])
        #expect(c.status == 0, "\(c.stderr)")
        #expect(c.stdout.hasPrefix("wrote \(out)"))
        let i = try CLI.run(["inspect", out, "--verify"])
        #expect(i.status == 0)
        #expect(i.stdout.contains("post-LN, final layer norm no"))
        #expect(i.stdout.contains("0      3/3 all                     yes"))
        #expect(i.stdout.contains("verify: OK: 36 chunks decoded"))
        let j = try CLI.run(["inspect", out, "--json"])
        let object = try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as! [String: Any]
        #expect((object["config"] as! [String: Any])["word_embed_proj_dim"] as? Int == 16)
        #expect((object["layers"] as! [[String: Any]]).count == 3)
    }

    @Test func verifyFailsOnAFlippedChunkByte() throws {
        let out = CLI.temporary("flip.hrz")
        #expect(try CLI.run(["convert", CLI.fixtures + "/safetensors-f32", "-o", out]).status == 0)
        let reader = try HRZReader(path: out)
        let chunk = try reader.tensor("layers.1.fc1.weight").chunks[0]
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: out)))
        bytes[chunk.offset + 3] ^= 0x80
        try Data(bytes).write(to: URL(fileURLWithPath: out))
        let r = try CLI.run(["inspect", out, "--verify"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("verify: \(out): tensor 'layers.1.fc1.weight', chunk 0, at byte \(chunk.offset): checksum mismatch"))
    }

    @Test func dataErrorsExit1WithTheFile() throws {
        let r = try CLI.run(["convert", CLI.fixtures + "/bad-pickle-global", "-o", CLI.temporary("evil.hrz")])
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("Error: \(CLI.fixtures)/bad-pickle-global/pytorch_model.bin: at byte "))
        #expect(r.stderr.contains("not an allowed global"))
        let missing = try CLI.run(["inspect", "/nonexistent.hrz"])
        #expect(missing.status == 1)
        #expect(missing.stderr.hasPrefix("Error: /nonexistent.hrz: cannot open: No such file or directory"))
    }
}

@Suite(.serialized) struct RuntimeCLITests {
    @Test func tokenizeTextAndFile() throws {
        let r = try CLI.run(["tokenize", CLI.tokenizer, "Hello world", "--bos"])
        #expect(r.status == 0 && r.stdout == "[2,31414,232]\n")
        let input = CLI.temporary("texts.jsonl")
        try "\"Hello world\"\n\"</s>\"\n".write(toFile: input, atomically: true, encoding: .utf8)
        #expect(try CLI.run(["tokenize", CLI.tokenizer, "--input", input]).stdout == "[31414,232]\n[49138,29,15698]\n")
        #expect(try CLI.run(["tokenize", CLI.tokenizer, "--decode", "[31414,232]"]).stdout == "\"Hello world\"\n")
        try "\"ok\"\nnot json\n".write(toFile: input, atomically: true, encoding: .utf8)
        let bad = try CLI.run(["tokenize", CLI.tokenizer, "--input", input])
        #expect(bad.status == 1 && bad.stderr.contains("texts.jsonl:2: expected one JSON string per line"))
    }

    /// synth → logits → generate, end to end through the executable, on a tiny synthetic model.
    @Test func synthLogitsGenerate() throws {
        let model = CLI.temporary("tiny-synth.hrz")
        let s = try CLI.run(["synth", "--preset", "opt-125m", "--layers", "1", "-o", model, "--tokenizer", CLI.tokenizer])
        #expect(s.status == 0, "\(s.stderr)")
        let npy = CLI.temporary("logits.npy")
        let l = try CLI.run(["logits", model, "--tokens", "2,31414,232", "-o", npy])
        #expect(l.stdout == "wrote \(npy): float32 [3, 50272]\n")
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: npy)))
        #expect(bytes.count == 128 + 3 * 50272 * 4)  // header padded to 64 bytes, then the floats
        let g = try CLI.run(["generate", model, "Hello", "--max-tokens", "3"])
        #expect(g.status == 0 && g.stdout.hasPrefix("Hello"))
        let oob = try CLI.run(["logits", model, "--tokens", "2,60000", "-o", npy])
        #expect(oob.status == 1 && oob.stderr.contains("token id 60000 is outside the vocabulary"))
    }
}

@Suite(.serialized) struct PruneCLITests {
    /// prune by explicit lists, inspect the result, and the errors a mistyped plan gives.
    @Test func pruneThenInspect() throws {
        let model = CLI.temporary("prune-src.hrz"), out = CLI.temporary("prune-out.hrz"), plan = CLI.temporary("plan.json")
        #expect(try CLI.run(["convert", CLI.fixtures + "/safetensors-f32", "-o", model]).status == 0)
        let r = try CLI.run(["prune", model, "--remove-heads", "0:1,1:0,1:1,1:2,1:3", "--remove-ffns", "1", "--plan-out", plan, "-o", out])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("plan: remove 5 heads and 1 FFNs (original indices): heads 8 → 3, FFNs 2 → 1\n"))
        #expect(r.stdout.contains("decoder parameters"))
        let i = try CLI.run(["inspect", out])
        #expect(i.stdout.contains("0      3/4 [0, 2, 3]"))
        #expect(i.stdout.contains("1      0/4 []                      no"))
        #expect(
            i.stdout.contains(
                "pruning step 1: parent sha256 \(try HRZReader(path: model).contentID)\n    plan {\"ffns\":[1],\"format\":\"headroom-prune-plan/1\""))
        let saved = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: plan))) as! [String: Any]
        #expect(saved["heads"] as? [[Int]] == [[0, 1], [1, 0], [1, 1], [1, 2], [1, 3]])

        let bad = try CLI.run(["prune", model, "--remove-heads", "0:9", "-o", CLI.temporary("never.hrz")])
        #expect(bad.status == 1 && bad.stderr.hasPrefix("Error: the command line: heads[0] = [0, 9] is not a [layer, head] of a 2×4 model"))
        #expect(!FileManager.default.fileExists(atPath: CLI.temporary("never.hrz")))
        #expect(try CLI.run(["prune", model, "-o", out]).stderr.hasPrefix("Error: nothing to remove"))
    }
}
