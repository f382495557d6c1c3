import Foundation
import Testing
import TestSupport
@testable import HRZFormat
@testable import Runtime
import OPTSchema

/// A model whose layer 0 physically has zero heads runs natively and equals HF with that layer's heads masked.
struct PrunedLayerTests {
    /// Rewrites `source` with layer `l`'s heads removed: no q/k/v, no out_proj weight; out_proj bias stays.
    static func dropHeads(_ source: String, layer l: Int, to output: String) throws {
        let reader = try HRZReader(path: source)
        var metadata = reader.metadata
        metadata.layers[l].heads = []
        let expected = Set(ModelSchema.tensors(config: reader.config, layers: metadata.layers).map(\.name))
        let writer = try HRZWriter(path: output)
        for t in reader.tensors where expected.contains(t.name) {
            try writer.add(name: t.name, dtype: t.dtype, shape: t.shape, layer: t.layer, bytes: try reader.bytes(t.name))
        }
        try writer.finish(metadata: metadata)
    }

    @Test(arguments: ["bin-f32", "post-ln-350m-style"])
    func zeroHeadLayerMatchesMaskedHF(_ fixture: String) throws {
        Threads.set(2)
        let reference = try RuntimeReference.load(fixture)
        let pruned = ModelCache.shared.directory + "/\(fixture)-zero-heads.hrz"
        try Self.dropHeads(try ModelCache.shared.path(fixture), layer: 0, to: pruned)
        let model = try OPTModel(path: pruned)
        #expect(model.plans[0].heads.isEmpty)
        let expected = try reference.logits(fixture, mask: "zero-heads-layer0")
        let out = try model.forward(allLogits(reference.sequences))
        for (i, o) in out.enumerated() { expectClose(o.values, expected[i], tolerance: 1e-3, "\(fixture) sequence \(i)") }
    }
}

/// Fast kernels against the naive reference kernels on odd shapes.
struct KernelTests {
    @Test func linearMatchesReference() {
        var rng = SystemRandomNumberGenerator()
        let (M, N, K) = (7, 13, 5)
        let x = (0..<(M * K)).map { _ in Float.random(in: -1...1, using: &rng) }
        let w = (0..<(N * K)).map { _ in Float.random(in: -1...1, using: &rng) }
        let b = (0..<N).map { _ in Float.random(in: -1...1, using: &rng) }
        var out = [Float](repeating: 0, count: M * N)
        out.withUnsafeMutableBufferPointer { o in BLAS.linear(out: o.baseAddress!, input: x, weight: w, bias: b, M: M, N: N, K: K) }
        expectClose(out, referenceLinear(x, w, b, M: M, N: N, K: K), tolerance: 1e-5, "linear")
    }

    /// Both attention paths (the AVX-512 head kernel, used without a prefix where the CPU has AVX-512, and the
    /// BLAS block loop) against the reference, at OPT's head sizes and odd ones, over every tile edge
    /// (12- and 6-row blocks, 32-key and 64-column chunks).
    @Test(arguments: [(11, 3, 5), (1, 2, 64), (37, 2, 64), (100, 1, 80), (300, 2, 128), (70, 1, 17)], [true, false])
    func attentionMatchesReference(_ shape: (Int, Int, Int), _ headKernel: Bool) {
        var rng = SystemRandomNumberGenerator()
        let (T, H, D) = shape
        let HD = H * D
        let qkv = (0..<(T * 3 * HD)).map { _ in Float.random(in: -1...1, using: &rng) }
        var q = [Float](), k = [Float](), v = [Float]()
        for t in 0..<T {
            let row: Int = t * 3 * HD
            q += qkv[row..<(row + HD)]
            k += qkv[(row + HD)..<(row + 2 * HD)]
            v += qkv[(row + 2 * HD)..<(row + 3 * HD)]
        }
        var ctx = [Float](repeating: 0, count: T * HD)
        ctx.withUnsafeMutableBufferPointer { c in
            attention(
                ctx: c.baseAddress!, qkv: qkv, spans: [AttentionSpan(start: 0, count: T, prefix: nil)], H: H, D: D, active: nil, scores: FloatBuffer(),
                headKernel: headKernel)
        }
        expectClose(ctx, referenceAttention(q: q, k: k, v: v, T: T, H: H, D: D), tolerance: 1e-5, "attention \(shape) head kernel \(headKernel)")
    }
}

struct FastExpTests {
    @Test func matchesExpOnTheSoftmaxRange() {
        var worst: Double = 0
        var x: Float = -90
        while x <= 0 {
            let exact = Foundation.exp(Double(x))
            let approx = Double(fastExp(x))
            if exact > 1e-37 { worst = max(worst, abs(approx - exact) / exact) } else { #expect(approx < 1e-36) }
            x += 0.0013
        }
        #expect(worst < 3e-7, "worst relative error \(worst)")
        #expect(fastExp(0) == 1)
        #expect(fastExp(-Float.infinity) == 0)
    }

    /// The causal softmax (AVX-512 where the CPU has it) against float64 softmax on rows of every length mod 16.
    @Test func causalSoftmaxMatchesFloat64() {
        let rows = 40, prefix = 7, ld = 64
        var p = (0..<(rows * ld)).map { Float(sin(Double($0) * 0.37) * 9) }
        let original = p
        causalSoftmax(&p, rows: rows, prefix: prefix, ld: ld, parallel: false)
        for i in 0..<rows {
            let valid = min(ld, prefix + i + 1)
            let x = (0..<valid).map { Double(original[i * ld + $0]) }
            let m = x.max()!, e = x.map { Foundation.exp($0 - m) }, sum = e.reduce(0, +)
            for j in 0..<ld {
                let expected = j < valid ? e[j] / sum : 0
                #expect(abs(Double(p[i * ld + j]) - expected) <= 1e-6 * max(expected, 1e-3), "row \(i) column \(j)")
            }
        }
    }

    /// Non-finite scores (a model with NaN or infinite weights) give NaN probabilities, as torch's softmax
    /// does, instead of trapping in the float-to-integer conversion.
    @Test func nonFiniteScoresGiveNaNNotATrap() {
        #expect(fastExp(.nan).isNaN)
        #expect(fastExp(1000) > 1e38)
        var rows: [Float] = [0.5, .nan, 1, 2, .infinity, 1, 0, 0, -.infinity, -.infinity, -.infinity, -.infinity]
        causalSoftmax(&rows, rows: 3, prefix: 3, ld: 4, parallel: false)
        let nan = rows.map { $0.isNaN }
        #expect(nan == [Bool](repeating: true, count: 12))  // a NaN score poisons its row, +∞ − +∞ is NaN, and an all −∞ row is NaN in torch too
    }
}
