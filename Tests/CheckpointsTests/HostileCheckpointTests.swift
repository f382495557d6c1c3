import Foundation
import Testing
@testable import Checkpoints
@testable import HRZFormat

/// Issue 13's checkpoint classes: nesting bombs, safetensors the reference reader refuses, tokenizer files an
/// .hrz cannot hold, and HF cache snapshots made of symlinks.
struct HostileCheckpointTests {
    /// `depth` nested containers of one opcode pair, then STOP: about 2 bytes a level.
    func nested(_ depth: Int, open: [UInt8], close: [UInt8]) -> [UInt8] {
        [0x80, 0x02] + Array([[UInt8]](repeating: open, count: depth).joined()) + Array([[UInt8]](repeating: close, count: depth).joined()) + [
            UInt8(ascii: ".")
        ]
    }

    @Test(arguments: ["tuple", "list", "dict", "memo"])
    func deeplyNestedPickleIsRefusedWithoutRecursion(_ kind: String) throws {
        let depth = 60_000
        let bytes: [UInt8]
        switch kind {
        case "tuple": bytes = nested(depth, open: [UInt8(ascii: "(")], close: [UInt8(ascii: "t")])  // MARK … TUPLE
        case "list":
            bytes =
                [0x80, 0x02] + Array([[UInt8]](repeating: [UInt8(ascii: "]")], count: depth).joined())
                + Array([[UInt8]](repeating: [UInt8(ascii: "a")], count: depth - 1).joined()) + [UInt8(ascii: ".")]
        case "dict":
            bytes =
                [0x80, 0x02, UInt8(ascii: "}")] + Array([[UInt8]](repeating: [UInt8(ascii: "K"), 1, UInt8(ascii: "}")], count: depth - 1).joined())
                + Array([[UInt8]](repeating: [UInt8(ascii: "s")], count: depth - 1).joined()) + [UInt8(ascii: ".")]
        default:
            // Lists memoized, then nested into each other in reverse order through the memo: a depth no
            // single insertion shows. Refused because a nested list is never mutated again.
            var b: [UInt8] = [0x80, 0x02]
            for i in 0..<300 { b += [UInt8(ascii: "]"), UInt8(ascii: "r")] + withUnsafeBytes(of: UInt32(i).littleEndian, Array.init) }
            for i in stride(from: 298, through: 0, by: -1) {
                b += [UInt8(ascii: "j")] + withUnsafeBytes(of: UInt32(i + 1).littleEndian, Array.init)
                b += [UInt8(ascii: "j")] + withUnsafeBytes(of: UInt32(i).littleEndian, Array.init) + [UInt8(ascii: "a")]
            }
            bytes = b + [UInt8(ascii: "j")] + withUnsafeBytes(of: UInt32(0).littleEndian, Array.init) + [UInt8(ascii: ".")]
        }
        let error = bytes.withUnsafeBytes { b -> CheckpointError? in
            var u = Unpickler(data: b, file: "bomb.pkl")
            do throws(CheckpointError) { _ = try u.load(); return nil } catch { return error }
        }
        let e = try #require(error)
        guard case .malformed(let why) = e.kind else { Issue.record("\(e)"); return }
        #expect(why.contains("more than 100 deep") || why.contains("after nesting it"), "\(why)")
        #expect(e.file == "bomb.pkl" && e.offset != nil)
    }

    @Test func legitimateNestingStillParses() throws {
        // ((1, [2, {3: 4}]),) and a dict filled before it is nested: the shapes torch.save writes.
        let bytes: [UInt8] = [
            0x80, 0x02, UInt8(ascii: "K"), 1, UInt8(ascii: "]"), UInt8(ascii: "K"), 2, UInt8(ascii: "a"),
            UInt8(ascii: "}"), UInt8(ascii: "K"), 3, UInt8(ascii: "K"), 4, UInt8(ascii: "s"), UInt8(ascii: "a"),
            0x86, 0x85, UInt8(ascii: "."),
        ]
        let value = try bytes.withUnsafeBytes { b in
            var u = Unpickler(data: b, file: "ok.pkl")
            return try u.load()
        }
        guard case .tuple(let outer) = value, case .tuple(let inner)? = outer.first, case .list(let list) = inner[1] else {
            Issue.record("wrong structure: \(value)"); return
        }
        #expect(list.items.count == 2)
    }

    /// The safetensors fixture with its header replaced by `header` and its data by `data`.
    func safetensors(_ header: String, data: [UInt8]) throws -> String {
        let dir = try copyFixture("safetensors-f32")
        var json = [UInt8](header.utf8)
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var out = [UInt8]()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out += $0 }
        try Data(out + json + data).write(to: URL(fileURLWithPath: dir + "/model.safetensors"))
        return dir + "/model.safetensors"
    }

    @Test func safetensorsDuplicateKeysOverlapsAndTrailingBytesAreRefused() throws {
        let duplicate = try safetensors(
            #"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}"#,
            data: [UInt8](repeating: 0, count: 8))
        #expect { _ = try SafetensorsFile(path: duplicate) } throws: { "\($0)".contains("header names tensor 'a' twice") }
        let overlap = try safetensors(
            #"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}"#,
            data: [UInt8](repeating: 0, count: 8))
        #expect { _ = try SafetensorsFile(path: overlap) } throws: { "\($0)".contains("tensor 'b'") && "\($0)".contains("overlaps") }
        let gap = try safetensors(#"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}"#, data: [UInt8](repeating: 0, count: 8))
        #expect { _ = try SafetensorsFile(path: gap) } throws: { "\($0)".contains("4 bytes of data before it belong to no tensor") }
        let trailing = try safetensors(#"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"#, data: [UInt8](repeating: 0, count: 9))
        #expect { _ = try SafetensorsFile(path: trailing) } throws: { "\($0)".contains("5 trailing bytes") }
        // Duplicate keys spelled differently in JSON ("\u0061" is "a") are the same key.
        let escaped = try safetensors(
            #"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "\u0061": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"#,
            data: [UInt8](repeating: 0, count: 4))
        #expect { _ = try SafetensorsFile(path: escaped) } throws: { "\($0)".contains("twice") }
        // Every fixture the project converts still reads.
        for name in ["safetensors-f32", "safetensors-sharded-f16", "post-ln-350m-style"] {
            let dir = fixture(name)
            for file in try FileManager.default.contentsOfDirectory(atPath: dir) where file.hasSuffix(".safetensors") {
                _ = try SafetensorsFile(path: dir + "/" + file)
            }
        }
    }

    @Test func vocabTooLargeForTheIndexIsRefusedBeforeTheWork() throws {
        let dir = try copyFixture("safetensors-f32")
        // 270 MB of vocab.json: bigger than an index may be.
        var vocab = "{"
        vocab.reserveCapacity(270 << 20)
        let entry = String(repeating: "x", count: 1000)
        for i in 0..<(270 << 10) { vocab += (i == 0 ? "" : ",") + "\"\(entry)\(i)\": \(i)" }
        vocab += "}"
        try vocab.write(toFile: dir + "/vocab.json", atomically: false, encoding: .utf8)
        try "#version: 0.2\n".write(toFile: dir + "/merges.txt", atomically: false, encoding: .utf8)
        let e = try #require(convertError(dir))
        #expect(e.file.hasSuffix("vocab.json") && e.description.contains("an .hrz index holds at most"))
    }

    static let commitA = String(repeating: "a", count: 39) + "1", commitB = String(repeating: "b", count: 39) + "2"

    @Test func hubIDsResolveInTheLocalCache() throws {
        let hub = scratchDirectory("hubid") + "/hub"
        let repo = hub + "/models--facebook--opt-tiny"
        for commit in [Self.commitA, Self.commitB] {
            try FileManager.default.createDirectory(atPath: repo + "/snapshots/" + commit, withIntermediateDirectories: true)
        }
        try FileManager.default.createDirectory(atPath: repo + "/refs", withIntermediateDirectories: true)
        try Self.commitB.write(toFile: repo + "/refs/main", atomically: true, encoding: .utf8)
        let env = ["HF_HUB_CACHE": hub]
        #expect(try HFCache.resolve("facebook/opt-tiny", environment: env) == repo + "/snapshots/" + Self.commitB)
        #expect(try HFCache.resolve("facebook/opt-tiny@" + Self.commitA, environment: env) == repo + "/snapshots/" + Self.commitA)
        #expect(HFCache.hubDirectory(environment: ["HF_HOME": "/x"]) == "/x/hub")
        #expect(HFCache.looksLikeHubID("facebook/opt-1.3b") && !HFCache.looksLikeHubID("./facebook/opt") && !HFCache.looksLikeHubID("/abs/path"))
        #expect { _ = try HFCache.resolve("facebook/opt-66b", environment: env) } throws: { "\($0)".contains("huggingface-cli download facebook/opt-66b") }
        #expect { _ = try HFCache.resolve("facebook/opt-tiny@v9", environment: env) } throws: { "\($0)".contains("no snapshot") }
    }

    /// A hub cache whose refs, revisions and links try to lead the converter outside it (issue 24, class 2).
    @Test func hubIDsAndSnapshotsNeverLeaveTheCache() throws {
        let base = scratchDirectory("hub-escape")
        let hub = base + "/hub", repo = hub + "/models--facebook--opt-tiny", secret = base + "/secret.txt"
        try "TOP-SECRET-CONTENTS".write(toFile: secret, atomically: true, encoding: .utf8)
        let fm = FileManager.default
        try fm.createDirectory(atPath: repo + "/snapshots/" + Self.commitA, withIntermediateDirectories: true)
        try fm.createDirectory(atPath: repo + "/refs", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: repo + "/blobs", withIntermediateDirectories: true)
        let env = ["HF_HUB_CACHE": hub]
        func refusal(_ id: String) -> String? {
            do { _ = try HFCache.resolve(id, environment: env); return nil } catch { return "\(error)" }
        }
        // Revisions that are paths.
        for id in [
            "facebook/opt-tiny@../../../secret.txt", "facebook/opt-tiny@../refs/main", "facebook/opt-tiny@/etc/passwd", "facebook/opt-tiny@.hidden",
            "facebook/opt-tiny@", "facebook/opt-tiny@a/b",
        ] {
            let e = refusal(id)
            #expect(e?.contains("is not a branch or tag name") == true, "\(id): \(e ?? "accepted")")
        }
        // A ref whose contents are not a commit hash: refused, and its contents never printed.
        for contents in ["../../../secret.txt", "TOP-SECRET-CONTENTS", Self.commitA + "/../..", ""] {
            try contents.write(toFile: repo + "/refs/main", atomically: true, encoding: .utf8)
            let e = refusal("facebook/opt-tiny")
            #expect(e?.contains("does not hold a 40-digit commit hash") == true && e?.contains("SECRET") == false, "\(contents): \(e ?? "accepted")")
        }
        // A ref naming a missing commit is refused even though one snapshot exists.
        try Self.commitB.write(toFile: repo + "/refs/main", atomically: true, encoding: .utf8)
        #expect(refusal("facebook/opt-tiny")?.contains("names a commit with no snapshot") == true)
        // A ref linking to a file outside the cache is read as a file whose contents are not a hash.
        try fm.removeItem(atPath: repo + "/refs/main")
        try fm.createSymbolicLink(atPath: repo + "/refs/main", withDestinationPath: secret)
        #expect(refusal("facebook/opt-tiny").map { $0.contains("40-digit") && !$0.contains("SECRET") } == true)
        // A snapshot that is a link to a directory elsewhere.
        try fm.removeItem(atPath: repo + "/refs/main")
        try Self.commitB.write(toFile: repo + "/refs/main", atomically: true, encoding: .utf8)
        let elsewhere = base + "/elsewhere"
        try fm.createDirectory(atPath: elsewhere, withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: repo + "/snapshots/" + Self.commitB, withDestinationPath: elsewhere)
        #expect(refusal("facebook/opt-tiny")?.contains("names a commit with no snapshot") == true)
        #expect(convertError(repo + "/snapshots/" + Self.commitB)?.description.contains("not a link elsewhere") == true)
        // Files of a snapshot that link outside blobs/: the config, the weights, the tokenizer.
        let snapshot = repo + "/snapshots/" + Self.commitA
        for name in ["config.json", "model.safetensors"] {
            try fm.copyItem(atPath: fixture("safetensors-f32") + "/" + name, toPath: repo + "/blobs/" + name)
            try fm.createSymbolicLink(atPath: snapshot + "/" + name, withDestinationPath: "../../blobs/" + name)
        }
        for name in ["config.json", "model.safetensors", "vocab.json"] {
            let link = snapshot + "/" + name
            try? fm.removeItem(atPath: link)
            try fm.createSymbolicLink(atPath: link, withDestinationPath: secret)
            if name == "vocab.json" { try fm.createSymbolicLink(atPath: snapshot + "/merges.txt", withDestinationPath: "../../blobs/config.json") }
            let e = convertError(snapshot)
            #expect(
                e?.description.contains("resolves outside the cache's blobs/") == true && e?.file == link && e?.description.contains("SECRET") == false,
                "\(name): \(e?.description ?? "converted")")
            try fm.removeItem(atPath: link)
            if name != "vocab.json" { try fm.createSymbolicLink(atPath: link, withDestinationPath: "../../blobs/" + name) }
        }
        // A link to another repository's blob is outside this one's blobs/ too.
        let other = hub + "/models--facebook--opt-other/blobs"
        try fm.createDirectory(atPath: other, withIntermediateDirectories: true)
        try fm.copyItem(atPath: fixture("safetensors-f32") + "/config.json", toPath: other + "/config.json")
        try fm.removeItem(atPath: snapshot + "/config.json")
        try fm.createSymbolicLink(atPath: snapshot + "/config.json", withDestinationPath: "../../../models--facebook--opt-other/blobs/config.json")
        #expect(convertError(snapshot)?.description.contains("resolves outside") == true)
    }

    @Test func hfCacheSnapshotOfSymlinksConverts() throws {
        // models--facebook--opt-x/{blobs/<sha>, snapshots/<ref>/<name> -> ../../blobs/<sha>}, as huggingface_hub lays it out.
        let root = scratchDirectory("hub") + "/models--facebook--opt-tiny"
        let snapshot = root + "/snapshots/" + Self.commitA
        try FileManager.default.createDirectory(atPath: root + "/blobs", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: snapshot, withIntermediateDirectories: true)
        for name in ["config.json", "model.safetensors"] {
            let blob = "blob-" + name.replacingOccurrences(of: ".", with: "")
            try FileManager.default.copyItem(atPath: fixture("safetensors-f32") + "/" + name, toPath: root + "/blobs/" + blob)
            try FileManager.default.createSymbolicLink(atPath: snapshot + "/" + name, withDestinationPath: "../../blobs/" + blob)
        }
        let output = scratchDirectory("hub-out") + "/m.hrz"
        var fractions: [Double] = []
        let report = try Converter.convert(snapshot, to: output) { p in fractions.append(Double(p.done) / Double(max(1, p.total))) }
        #expect(report.tensors > 0)
        let reader = try HRZReader(path: output)
        let sizes = reader.metadata.provenance.sources.map(\.bytes)
        let real = try ["model.safetensors", "config.json"].map {
            try FileManager.default.attributesOfItem(atPath: root + "/blobs/blob-" + $0.replacingOccurrences(of: ".", with: ""))[.size] as! Int
        }
        #expect(Set(sizes) == Set(real), "sizes are the targets', not the links'")
        #expect(fractions.allSatisfy { (0...1).contains($0) })
    }
}
