import Foundation
import Testing
import TestSupport
import CKernels
@testable import Checkpoints
@testable import HRZFormat
@testable import Runtime
@testable import Analysis

/// The model in bf16 against the same model in fp32 (itself checked against HF), on every fixture layout:
/// logits, and gradient head importance (forward and backward through the same bf16 GEMMs).
/// Tolerances, stated: the fixtures' logits are O(0.1–1) through 2–3 random layers; bf16 rounding of every
/// GEMM input (8 significant bits, relative error ≤ 2⁻⁹) moves them by at most 0.005 · (1 + |logit|) here
/// (measured: at most 0.00085 absolute). Head importance moves by at most 2% of the largest head's score (measured ≤ 0.21%)
/// and keeps its ranking (Spearman ≥ 0.99; measured 1.0).
struct BF16ModelTests {
    init() { Threads.set(2); BF16Kernel.quiet = true }

    static let fixtures = ["safetensors-f32", "safetensors-sharded-f16", "bin-sharded-bf16", "post-ln-350m-style"]

    func open(_ fixture: String, _ precision: Precision) throws -> OPTModel {
        try OPTModel(path: try convertFixture("Tests/CheckpointsTests/Fixtures/\(fixture)"), precision: precision)
    }

    static let sequences: [[Int]] = [[2, 100, 200, 300, 17, 5, 9, 44], [2, 7, 7, 7, 300, 1, 250], [2, 31, 59, 26, 53, 58, 97, 93, 23, 84, 62, 64]]

    @Test(arguments: BF16ModelTests.fixtures)
    func logitsCloseToFP32(_ fixture: String) throws {
        let fp32 = try open(fixture, .fp32), bf16 = try open(fixture, .bf16)
        let batch = Self.sequences.map { SequenceInput(tokens: $0.map { $0 % fp32.config.vocabSize }, logits: .all) }
        let a = try fp32.forward(batch), b = try bf16.forward(batch)
        var worst = 0.0, changed = 0.0
        for (x, y) in zip(a, b) {
            for (u, v) in zip(x.values, y.values) {
                worst = max(worst, Double(abs(u - v)) / (1 + Double(abs(u))))
                changed = max(changed, Double(abs(u - v)))
            }
        }
        #expect(worst <= 0.005, "\(fixture): max |Δlogit| / (1 + |logit|) = \(worst)")
        #expect(changed > 0, "\(fixture): bf16 changed nothing, so it did not run")
        print("bf16 \(fixture): max |Δlogit| \(changed), relative \(worst)")
    }

    /// Both kernel paths give the same logits (fp32 summation order apart).
    @Test(arguments: BF16ModelTests.fixtures)
    func fastAndPortablePathsAgreeOnTheModel(_ fixture: String) throws {
        guard hr_bf16_fast_available() != 0 else { return }
        let fast = try open(fixture, .bf16), portable = try open(fixture, .bf16)
        fast.bf16Kernel = .avx512bf16
        portable.bf16Kernel = .portable
        let batch = Self.sequences.map { SequenceInput(tokens: $0.map { $0 % fast.config.vocabSize }, logits: .all) }
        let a = try fast.forward(batch), b = try portable.forward(batch)
        for (x, y) in zip(a, b) {
            for (u, v) in zip(x.values, y.values) { #expect(abs(u - v) <= 1e-4 * (1 + abs(u)), "\(fixture): fast \(u) vs portable \(v)") }
        }
    }

    /// The fused steps (pre-LN layer norms written straight into the GEMM's activations; fc1's ReLU-and-pack
    /// epilogue, used unless a tap reads the hidden state) give the same logits, bit for bit, as the steps one
    /// after another; kept packs and packs made per use alike, pre-LN and post-LN.
    @Test(arguments: ["safetensors-sharded-f16", "post-ln-350m-style"])
    func fusedStepsMatchUnfused(_ fixture: String) throws {
        for limit in [6 << 30, 0] {
            let fused = try open(fixture, .bf16), unfused = try open(fixture, .bf16)
            unfused.fusesIntoGEMMs = false
            fused.packedLimit = limit
            unfused.packedLimit = limit
            let batch = Self.sequences.map { SequenceInput(tokens: $0.map { $0 % fused.config.vocabSize }, logits: .all) }
            #expect(try fused.forward(batch).map(\.values) == unfused.forward(batch).map(\.values), "\(fixture), pack limit \(limit)")
        }
    }

    /// A model too big to keep its packs (OPT-66B) packs each matrix for one use and the LM head in vocabulary
    /// blocks: the same logits, bit for bit, and the same importance up to fp32 summation order.
    @Test(arguments: ["safetensors-sharded-f16", "post-ln-350m-style"])
    func packingPerUseMatchesKeptPacks(_ fixture: String) throws {
        let kept = try open(fixture, .bf16), perUse = try open(fixture, .bf16)
        perUse.packedLimit = 0
        // Blocks of one 32-row panel of packed weights, widened 3 rows at a time: every block edge is crossed.
        perUse.packBlockBytes = 1
        perUse.widenBlockBytes = 3 * 4 * perUse.config.hiddenSize
        let batch = Self.sequences.map { SequenceInput(tokens: $0.map { $0 % kept.config.vocabSize }, logits: .all) }
        #expect(try kept.forward(batch).map(\.values) == perUse.forward(batch).map(\.values))
        let requests = [ImportanceRequest(context: [2, 10, 20, 30, 17], continuation: [5, 9, 44])]
        let a = try HeadImportance(kept).scores(requests).flatMap { $0 }, b = try HeadImportance(perUse).scores(requests).flatMap { $0 }
        let scale = a.map(abs).max()!
        #expect(zip(a, b).allSatisfy { abs($0 - $1) <= 1e-4 * scale }, "\(fixture): \(a) vs \(b)")
    }

    @Test(arguments: ["safetensors-f32", "safetensors-sharded-f16", "post-ln-350m-style"])
    func headImportanceCloseToFP32(_ fixture: String) throws {
        let requests = [
            ImportanceRequest(context: [2, 10, 20, 30, 17], continuation: [5, 9, 44]),
            ImportanceRequest(context: [2, 31, 59, 26, 53, 58], continuation: [90, 93, 23, 84]),
        ]
        let a = try HeadImportance(open(fixture, .fp32)).scores(requests), b = try HeadImportance(open(fixture, .bf16)).scores(requests)
        let x = a.flatMap { $0 }, y = b.flatMap { $0 }
        let scale = x.map(abs).max()!
        let worst = zip(x, y).map { abs($0 - $1) }.max()!
        #expect(worst <= 0.02 * scale, "\(fixture): max |Δ importance| \(worst), largest \(scale)")
        #expect(worst > 0, "\(fixture): bf16 changed nothing")
        let rho = Ranking.spearman(x, y)
        #expect(rho >= 0.99, "\(fixture): Spearman \(rho)")
        print("bf16 \(fixture): importance max |Δ| / max = \(worst / scale), Spearman \(rho)")
    }
}
