import Foundation
import Testing
import TestSupport
@testable import HRZFormat
@testable import Runtime
import Basics

/// One model shared by threads: runs take turns on its scratch buffers and layer stream, so each thread's
/// logits are exactly what the same call gives alone (and HF's, within 1e-3).
struct ConcurrencyTests {
    @Test func concurrentForwardsOnOneModelEqualSequentialOnes() throws {
        let fixture = "safetensors-sharded-f16"
        let reference = try RuntimeReference.load(fixture)
        let expected = try reference.logits(fixture)
        let model = try OPTModel(path: try ModelCache.shared.path(fixture), resident: false, schedule: .overlap)
        let alone = try reference.sequences.map { try model.forward([SequenceInput(tokens: $0, logits: .all)])[0].values }
        let results = ResultSlots<[[Float]]>(count: 4)
        DispatchQueue.concurrentPerform(iterations: 4) { thread in
            results.set(thread) {
                // Each thread walks the sequences in its own order, several times.
                let order = (0..<(3 * reference.sequences.count)).map { ($0 * (thread + 1)) % reference.sequences.count }
                return try order.map { try model.forward([SequenceInput(tokens: reference.sequences[$0], logits: .all)])[0].values }
            }
        }
        for (thread, outputs) in try results.values().enumerated() {
            let order = (0..<(3 * reference.sequences.count)).map { ($0 * (thread + 1)) % reference.sequences.count }
            for (k, i) in order.enumerated() {
                #expect(outputs[k] == alone[i], "thread \(thread), call \(k): sequence \(i) differs from the same call alone")
            }
        }
        for (i, values) in alone.enumerated() { expectClose(values, expected[i], tolerance: 1e-3, "sequence \(i)") }
    }
}
