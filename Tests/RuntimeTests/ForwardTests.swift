import Foundation
import Testing
import TestSupport
@testable import HRZFormat
@testable import Runtime
@testable import Files

/// Logits equal HF's (fp32, eager attention) within 1e-3 for every layout, including post-LN with projections.
struct ForwardTests {
    init() { Threads.set(2) }

    @Test(arguments: layouts)
    func raggedBatchMatchesHF(_ fixture: String) throws {
        let reference = try RuntimeReference.load(fixture)
        let model = try OPTModel(path: try ModelCache.shared.path(fixture))
        let expected = try reference.logits(fixture)
        let batch = try model.forward(allLogits(reference.sequences))
        for (i, out) in batch.enumerated() { expectClose(out.values, expected[i], tolerance: 1e-3, "\(fixture) sequence \(i)") }
        // One sequence at a time gives the same numbers as the ragged batch.
        for (i, s) in reference.sequences.enumerated() {
            let alone = try model.forward([SequenceInput(tokens: s, logits: .all)])
            expectClose(alone[0].values, batch[i].values, tolerance: 1e-5, "\(fixture) sequence \(i) alone vs batched")
        }
    }

    @Test(arguments: ["safetensors-sharded-f16", "post-ln-350m-style"], LayerStream.Schedule.allCases)
    func tinyMemoryBudgetStreamsInManyPasses(_ fixture: String, schedule: LayerStream.Schedule) throws {
        let reference = try RuntimeReference.load(fixture)
        let expected = try reference.logits(fixture)
        let model = try OPTModel(path: try ModelCache.shared.path(fixture), resident: false, schedule: schedule)
        var stats = ForwardStats()
        let out = try model.forward(allLogits(reference.sequences), options: ForwardOptions(memoryBudget: 1), stats: &stats)
        #expect(stats.passes == reference.sequences.count)
        for (i, o) in out.enumerated() { expectClose(o.values, expected[i], tolerance: 1e-3, "\(fixture) pass \(i)") }
    }

    /// Streaming inline, layers after the first are decoded from the staging buffer the read-ahead filled
    /// (`MappedFile.readDirect`); a flipped byte there is caught by the chunk checksum as through the map.
    @Test func stagedReadAheadIsCheckedAsTheMap() throws {
        let fixture = "safetensors-sharded-f16"
        let good = try ModelCache.shared.path(fixture)
        let reader = try HRZReader(path: good)
        let chunk = try reader.tensor("layers.1.fc1.weight").chunks[0]
        let bad = ModelCache.shared.directory + "/staged-flip.hrz"
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: good)))
        bytes[chunk.offset + chunk.storedLength / 2] ^= 0x40
        try Data(bytes).write(to: URL(fileURLWithPath: bad))
        let sequences = try RuntimeReference.load(fixture).sequences
        let model = try OPTModel(path: bad, resident: false, schedule: .inline)
        #expect(model.reader.config.numHiddenLayers == 2)
        do {
            _ = try model.forward(allLogits(sequences))
            Issue.record("a flipped byte in layer 1 went unnoticed")
        } catch let error as HRZError {
            guard case .checksumMismatch = error.kind else { Issue.record("\(error)"); return }
            #expect(error.tensor == "layers.1.fc1.weight")
            #expect(error.offset == chunk.offset)
            #expect(error.description.hasPrefix(bad + ":"))
        }
        // The same file with the byte restored streams to HF's logits, through the staging buffer.
        let expected = try RuntimeReference.load(fixture).logits(fixture)
        let streamed = try OPTModel(path: good, resident: false, schedule: .inline).forward(allLogits(sequences))
        for (i, o) in streamed.enumerated() { expectClose(o.values, expected[i], tolerance: 1e-3, "staged sequence \(i)") }
        // On tmpfs, which refuses O_DIRECT, the read-ahead falls back to plain reads into the same buffer.
        let shm = "/dev/shm/headroom-test-\(getpid())-staged.hrz"
        if FileManager.default.createFile(atPath: shm, contents: try Data(contentsOf: URL(fileURLWithPath: good))) {
            defer { try? FileManager.default.removeItem(atPath: shm) }
            let fromTmpfs = try OPTModel(path: shm, resident: false, schedule: .inline).forward(allLogits(sequences))
            for (i, o) in fromTmpfs.enumerated() { expectClose(o.values, expected[i], tolerance: 1e-3, "tmpfs sequence \(i)") }
        }
    }

    @Test(arguments: layouts)
    func masksMatchHF(_ fixture: String) throws {
        let reference = try RuntimeReference.load(fixture)
        let model = try OPTModel(path: try ModelCache.shared.path(fixture))
        for (name, mask) in reference.masks {
            let expected = try reference.logits(fixture, mask: name)
            let out = try model.forward(allLogits(reference.sequences), options: ForwardOptions(mask: ModelMask(heads: mask.heads, ffns: mask.ffns)))
            for (i, o) in out.enumerated() { expectClose(o.values, expected[i], tolerance: 1e-3, "\(fixture) mask \(name) sequence \(i)") }
        }
    }

    @Test func requestedPositionsOnly() throws {
        let fixture = "safetensors-f32"
        let reference = try RuntimeReference.load(fixture)
        let expected = try reference.logits(fixture)
        let model = try OPTModel(path: try ModelCache.shared.path(fixture))
        let V = model.config.vocabSize
        let s = reference.sequences[3]
        let out = try model.forward([SequenceInput(tokens: s, logits: .positions([0, 5, 19])), SequenceInput(tokens: s, logits: .last)])
        for (k, p) in [0, 5, 19].enumerated() {
            expectClose(Array(out[0].values[(k * V)..<((k + 1) * V)]), Array(expected[3][(p * V)..<((p + 1) * V)]), tolerance: 1e-3, "position \(p)")
        }
        expectClose(out[1].values, Array(expected[3][(19 * V)...]), tolerance: 1e-3, "last")
    }

    /// A continuation attending to its context in the same pass equals the concatenated sequence.
    @Test func prefixSpanEqualsConcatenation() throws {
        let fixture = "post-ln-350m-style"
        let reference = try RuntimeReference.load(fixture)
        let expected = try reference.logits(fixture)
        let model = try OPTModel(path: try ModelCache.shared.path(fixture))
        let V = model.config.vocabSize
        let whole = reference.sequences[3]
        let out = try model.forward([
            SequenceInput(tokens: Array(whole[..<12]), logits: .none),
            SequenceInput(tokens: Array(whole[12...]), prefix: 0, logits: .all),
            SequenceInput(tokens: Array(whole[12..<15]), prefix: 0, logits: .all),
        ])
        expectClose(out[1].values, Array(expected[3][(12 * V)...]), tolerance: 1e-3, "continuation of 8")
        expectClose(out[2].values, Array(expected[3][(12 * V)..<(15 * V)]), tolerance: 1e-3, "continuation of 3")
    }

    @Test func badInputsAreNamed() throws {
        let model = try OPTModel(path: try ModelCache.shared.path("safetensors-f32"))
        #expect(throws: RuntimeError("sequence 1, position 2: token id 96 is outside the vocabulary (0..<96)")) {
            try model.forward([SequenceInput(tokens: [1]), SequenceInput(tokens: [1, 2, 96])])
        }
        #expect(throws: RuntimeError("sequence 0 has 67 positions; the model has 64 (max_position_embeddings)")) {
            try model.forward([SequenceInput(tokens: Array(repeating: 5, count: 67))])
        }
    }
}

extension RuntimeError: Equatable {
    public static func == (a: RuntimeError, b: RuntimeError) -> Bool { a.message == b.message }
}

/// Greedy generation with the KV cache equals HF's greedy output for 20 tokens.
struct GenerateTests {
    @Test(arguments: layouts)
    func greedyMatchesHF(_ fixture: String) throws {
        Threads.set(2)
        let reference = try RuntimeReference.load(fixture)
        let model = try OPTModel(path: try ModelCache.shared.path(fixture))
        let tokens = try model.generate(prompt: reference.generation.prompt, maxTokens: 20)
        #expect(tokens == reference.generation.tokens)
    }
}

/// Widening 16-bit weights in tiny row blocks (blocks spanning the q/k/v boundaries) gives the same logits.
struct BlockedWidenTests {
    @Test(arguments: ["safetensors-sharded-f16", "bin-sharded-bf16", "post-ln-350m-style"])
    func tinyBlocksMatchHF(_ fixture: String) throws {
        Threads.set(2)
        let reference = try RuntimeReference.load(fixture)
        let model = try OPTModel(path: try ModelCache.shared.path(fixture))
        model.widenBlockBytes = 3 * 4 * model.config.hiddenSize  // 3 rows of C, fewer for fc2
        let expected = try reference.logits(fixture)
        let out = try model.forward(allLogits(reference.sequences))
        for (i, o) in out.enumerated() { expectClose(o.values, expected[i], tolerance: 1e-3, "\(fixture) sequence \(i)") }
    }
}
