import Foundation
import Testing
import TestSupport
@testable import Runtime
import Basics

/// Masked heads are not computed (their q/k/v rows, attention and out_proj columns are left out) and masked
/// FFNs are skipped: the same logits as computing every head and zeroing the masked ones, on every layout and
/// in both precisions. An observer that reads a layer's qkv makes the walk compute every head (the full
/// layout), which is the reference here.
struct MaskedWorkTests {
    final class ReadsHeads: ForwardObserver {
        func wants(_ point: TapPoint, layer: Int) -> Bool { point == .ctx }
        func observe(_ tap: Tap) throws {}
    }

    @Test(arguments: layouts, [Precision.fp32, .bf16])
    func skippedHeadsEqualZeroedHeads(_ fixture: String, _ precision: Precision) throws {
        let path = try ModelCache.shared.path(fixture)
        let model = try OPTModel(path: path, precision: precision)
        let reference = try RuntimeReference.load(fixture)
        let L = model.config.numHiddenLayers, H = model.config.numAttentionHeads
        var rng = SplitMix64(seed: 3)
        // Random masks, one layer with every head masked, and FFNs masked.
        for trial in 0..<4 {
            var heads = (0..<L).map { _ in (0..<H).map { _ in rng.next() % 3 != 0 } }
            if trial == 1 { heads[0] = Array(repeating: false, count: H) }
            if trial == 2 { heads[L - 1] = Array(repeating: false, count: H); heads[0][0] = true }
            let ffns = (0..<L).map { l in trial == 3 ? l % 2 == 0 : true }
            var skipped = ForwardOptions(mask: ModelMask(heads: heads, ffns: ffns))
            let fast = try model.forward(allLogits(reference.sequences), options: skipped)
            skipped.observers = [ReadsHeads()]
            let full = try model.forward(allLogits(reference.sequences), options: skipped)
            for (i, (a, b)) in zip(fast, full).enumerated() {
                expectClose(a.values, b.values, tolerance: precision == .fp32 ? 1e-5 : 1e-4, "\(fixture) \(precision) trial \(trial) sequence \(i)")
            }
        }
    }
}
