import Foundation
import Testing
@testable import Checkpoints
@testable import HRZFormat
@testable import Pruning
@testable import Runtime
import TestSupport
@testable import Files
@testable import Analysis

let root = Repository.root
let scratch = testScratch() + "headroom-pruning-\(getpid())"

/// Converts a checkpoint fixture to a fresh `.hrz`; small chunks make the pruner cross chunk boundaries.
func convert(_ fixture: String, chunkElements: Int = 1 << 20) throws -> String {
    try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    let out = "\(scratch)/\(fixture)-\(chunkElements)-\(UInt32.random(in: 0...UInt32.max)).hrz"
    var options = ConvertOptions()
    options.chunkElements = chunkElements
    _ = try Converter.convert(root.appendingPathComponent("Tests/CheckpointsTests/Fixtures/\(fixture)").path, to: out, options: options)
    return out
}

func temporary(_ name: String) -> String { "\(scratch)/\(UInt32.random(in: 0...UInt32.max))-\(name)" }

/// The runtime fixtures (Tools/make_runtime_reference.py): sequences, masks, and HF logits with each mask.
struct MaskedReference: Decodable {
    struct Mask: Decodable { var heads: [[Bool]]?; var ffns: [Bool]? }
    var sequences: [[Int]]
    var masks: [String: Mask]

    static func load(_ fixture: String) throws -> MaskedReference {
        try JSONDecoder().decode(
            MaskedReference.self, from: Data(contentsOf: root.appendingPathComponent("Tests/RuntimeTests/Fixtures/\(fixture)/reference.json")))
    }

    func logits(_ fixture: String, mask: String) throws -> [Float] {
        try NPY.read(root.appendingPathComponent("Tests/RuntimeTests/Fixtures/\(fixture)/logits-\(mask).npy").path).values
    }

    /// The plan that removes what `mask` switches off.
    func plan(_ mask: String) -> PrunePlan {
        let m = masks[mask]!
        let heads = (m.heads ?? []).enumerated().flatMap { l, row in row.enumerated().filter { !$0.element }.map { [l, $0.offset] } }
        let ffns = (m.ffns ?? []).enumerated().filter { !$0.element }.map(\.offset)
        return PrunePlan(heads: heads, ffns: ffns)
    }
}

func logits(_ path: String, _ sequences: [[Int]], mask: ModelMask = ModelMask()) throws -> [Float] {
    let model = try OPTModel(path: path)
    return try model.forward(sequences.map { SequenceInput(tokens: $0, logits: .all) }, options: ForwardOptions(mask: mask)).flatMap(\.values)
}

func maxDiff(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "\(a.count) vs \(b.count) values")
    return zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

/// A physically pruned model against HF with the same heads and FFNs masked, in every layout.
struct PrunedMatchesMaskedTests {
    @Test(arguments: [
        ("safetensors-f32", "mixed"), ("safetensors-f32", "zero-heads-layer0"), ("safetensors-f32", "ffn-layer0"),
        ("post-ln-350m-style", "mixed"), ("post-ln-350m-style", "zero-heads-layer0"), ("post-ln-350m-style", "ffn-layer0"),
        ("safetensors-sharded-f16", "mixed"), ("bin-sharded-bf16", "zero-heads-layer0"), ("bin-decoder-prefix-f16", "mixed"),
    ])
    func prunedLogitsEqualMaskedHF(_ fixture: String, _ mask: String) throws {
        Threads.set(2)
        let reference = try MaskedReference.load(fixture)
        // 7-element chunks: every gathered row and column run straddles chunk boundaries.
        let source = try convert(fixture, chunkElements: 7)
        let plan = reference.plan(mask)
        let pruned = temporary("\(fixture)-\(mask).hrz")
        let report = try Pruner.prune(source, plan: plan, to: pruned)
        let reader = try HRZReader(path: pruned)
        #expect(reader.metadata.layers == plan.apply(to: Metadata.fullLayers(reader.config)))
        #expect(report.layerParametersAfter < report.layerParametersBefore)
        #expect(reader.metadata.provenance.lineage.last?.parent == (try HRZReader(path: source)).contentID)
        #expect(try JSONDecoder().decode(PrunePlan.self, from: Data(reader.metadata.provenance.lineage.last!.plan.utf8)) == plan)
        #expect(reader.verify().isEmpty)

        let hf = try reference.logits(fixture, mask: mask)
        let ours = try logits(pruned, reference.sequences)
        #expect(maxDiff(ours, hf) <= 1e-4, "\(fixture) \(mask): pruned vs HF masked")
        let masked = try logits(source, reference.sequences, mask: plan.mask(config: reader.config))
        #expect(maxDiff(ours, masked) <= 1e-4, "\(fixture) \(mask): pruned vs Headroom masked")
    }
}

struct PruningCompositionTests {
    /// Every tensor's bytes, by name.
    static func contents(_ path: String) throws -> [String: [UInt8]] {
        let reader = try HRZReader(path: path)
        var out: [String: [UInt8]] = [:]
        for t in reader.tensors { out[t.name] = try reader.bytes(t.name) }
        return out
    }

    @Test(arguments: ["safetensors-f32", "post-ln-350m-style"])
    func pruningTwiceEqualsPruningTheUnion(_ fixture: String) throws {
        let source = try convert(fixture, chunkElements: 5)
        let a = PrunePlan(heads: [[0, 1], [1, 0], [1, 2]], ffns: [1])
        let b = PrunePlan(heads: [[0, 1], [0, 2], [1, 1]], ffns: [0])
        let step1 = temporary("a.hrz"), step2 = temporary("ab.hrz"), once = temporary("union.hrz")
        _ = try Pruner.prune(source, plan: a, to: step1)
        _ = try Pruner.prune(step1, plan: b, to: step2)
        _ = try Pruner.prune(source, plan: a.union(b), to: once)
        let (twice, single) = (try HRZReader(path: step2), try HRZReader(path: once))
        #expect(twice.metadata.layers == single.metadata.layers)
        // Layer 1 keeps heads 3… only: none at all in the 3-head post-LN fixture.
        #expect(twice.metadata.layers[1].heads == Array(3..<twice.config.numAttentionHeads))
        #expect(twice.metadata.provenance.lineage.count == 2 && single.metadata.provenance.lineage.count == 1)
        #expect(twice.metadata.provenance.lineage[1].parent == (try HRZReader(path: step1)).contentID)
        #expect(try Self.contents(step2) == Self.contents(once))
    }
}

/// Importance on a pruned model lands on original head indices and equals HF's with those heads masked.
struct PrunedImportanceTests {
    struct Reference: Decodable {
        struct Item: Decodable { var context: [Int]; var continuation: [Int] }
        struct Masked: Decodable { var heads: [[Bool]]; var ffns: [Bool]; var scores: [[Double]] }
        var requests: [Item]
        var masked: Masked
    }

    @Test(arguments: ["safetensors-f32", "post-ln-350m-style"])
    func scoresReferToOriginalHeads(_ fixture: String) throws {
        Threads.set(2)
        let reference = try JSONDecoder().decode(
            Reference.self, from: Data(contentsOf: root.appendingPathComponent("Tests/AnalysisTests/Fixtures/\(fixture)/importance.json")))
        let heads = reference.masked.heads.enumerated().flatMap { l, row in row.enumerated().filter { !$0.element }.map { [l, $0.offset] } }
        let ffns = reference.masked.ffns.enumerated().filter { !$0.element }.map(\.offset)
        let pruned = temporary("\(fixture)-importance.hrz")
        _ = try Pruner.prune(try convert(fixture), plan: PrunePlan(heads: heads, ffns: ffns), to: pruned)
        let scores = try HeadImportance(OPTModel(path: pruned)).scores(
            reference.requests.map { ImportanceRequest(context: $0.context, continuation: $0.continuation) })
        #expect(scores.count == reference.masked.scores.count && scores[0].count == reference.masked.scores[0].count)
        for (l, row) in reference.masked.scores.enumerated() {
            for (h, expected) in row.enumerated() {
                if !reference.masked.heads[l][h] { #expect(scores[l][h] == 0, "layer \(l) head \(h) was pruned") }
                #expect(abs(scores[l][h] - expected) <= 1e-3 * abs(expected) + 1e-9, "\(fixture) layer \(l) head \(h): \(scores[l][h]) vs autograd \(expected)")
            }
        }
    }
}

struct PlanTests {
    @Test func lowestPercentIsGlobalWithFloorCount() {
        // 2 layers × 3 heads; 50% of 6 = 3 heads; ties are broken by (layer, head).
        let scores: [[Double]] = [[0.5, 0.1, 0.9], [0.1, 0.7, 0.2]]
        #expect(PrunePlan.lowest(scores, percent: 50).map { [$0.layer, $0.head] } == [[0, 1], [1, 0], [1, 2]])
        // floor(0.34 · 6) = 2, floor(0.16 · 6) = 0.
        #expect(PrunePlan.lowest(scores, percent: 34).count == 2)
        #expect(PrunePlan.lowest(scores, percent: 16).isEmpty)
        #expect(PrunePlan.lowest(scores, percent: 100).count == 6)
    }

    @Test func badPlansNameTheFileAndEntryAndLeaveNoOutput() throws {
        let source = try convert("safetensors-f32")
        let config = try HRZReader(path: source).config
        let cases: [(String, String)] = [
            (#"{"format": "headroom-prune-plan/1", "heads": [[0, 1], [2, 0]], "ffns": []}"#, "heads[1] = [2, 0] is not a [layer, head] of a 2×4 model"),
            (#"{"format": "headroom-prune-plan/1", "heads": [], "ffns": [0, 9]}"#, "ffns[1] = 9 is not a layer below 2"),
            (#"{"format": "headroom-prune-plan/1", "heads": [[0]], "ffns": []}"#, "heads[0] = [0] is not a [layer, head]"),
            (#"{"format": "something-else", "heads": [], "ffns": []}"#, "format is 'something-else'"),
            (#"{"format": "headroom-prune-plan/1", "ffns": []}"#, "heads: missing"),
        ]
        for (text, message) in cases {
            let path = temporary("plan.json")
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
            #expect {
                _ = try PrunePlan.load(path, config: config)
            } throws: { error in
                "\(error)".contains(path) && "\(error)".contains(message)
            }
        }
        let out = temporary("never.hrz")
        #expect(throws: PruneError.self) { _ = try Pruner.prune(source, plan: PrunePlan(heads: [[5, 0]]), to: out) }
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test func planIsAlsoAMask() throws {
        // `eval --mask-heads PLAN --mask-ffns PLAN` reads a plan file as a mask (formats/masks.md).
        let plan = PrunePlan(heads: [[1, 3], [0, 2]], ffns: [1])
        let json = try JSONSerialization.jsonObject(with: Data(try plan.json())) as! [String: Any]
        #expect(json["heads"] as? [[Int]] == [[0, 2], [1, 3]])
        #expect(json["ffns"] as? [Int] == [1])
    }
}
