/// `headroom bench format`: lossless size ratio and single-core decode speed of the chunk codec,
/// plain zstd against byte-plane split zstd. In memory, so the disk does not enter the figures.
import Foundation
import HRZFormat
import Basics
import Files

public struct FormatRow: Codable, Sendable {
    public var data: String
    public var method: String
    public var level: Int
    public var rawBytes: Int
    public var storedBytes: Int
    public var ratio: Double
    /// Decoded bytes per second on one core, checksum included, in GB/s (10^9).
    public var decodeGBps: Double
}

public enum FormatBenchmark {
    public static let levels = [1, 3, 9]

    public static func run(syntheticElements: Int, models: [String], log: (String) -> Void) throws -> [FormatRow] {
        var inputs: [(String, [UInt16])] = []
        log("bench format: generating \(syntheticElements) fp16 values from N(0, 0.02)")
        var rng = SplitMix64(seed: 0x5eed)
        inputs.append(("synthetic N(0,0.02) fp16", (0..<syntheticElements).map { _ in Half.f32ToF16(0.02 * rng.nextNormal()) }))
        for model in models {
            let reader = try HRZReader(path: model)
            var values: [UInt16] = []
            for t in reader.tensors where t.dtype == .f16 || t.dtype == .bf16 {
                let bytes = try reader.bytes(t.name)
                bytes.withUnsafeBytes { values.append(contentsOf: $0.bindMemory(to: UInt16.self)) }
            }
            if values.isEmpty { log("bench format: \(model) has no 16-bit tensors; skipped"); continue }
            inputs.append(((model as NSString).lastPathComponent + " 16-bit tensors", values))
        }
        var rows: [FormatRow] = []
        for (name, values) in inputs {
            for level in levels {
                for split in [false, true] {
                    log("bench format: \(name), \(split ? "byte-plane split" : "plain zstd"), level \(level)")
                    rows.append(try measure(name, values, level: level, split: split))
                }
            }
        }
        return rows
    }

    static func measure(_ name: String, _ values: [UInt16], level: Int, split: Bool) throws -> FormatRow {
        let chunkElements = 1 << 20
        let scratch = ChunkScratch(level: level)
        var chunks: [(EncodedChunk, ChunkInfo)] = []
        try values.withUnsafeBytes { raw in
            var start = 0
            while start < values.count {
                let n = min(chunkElements, values.count - start)
                let e = try ChunkCodec.encode(raw.baseAddress! + 2 * start, elements: n, dtype: .f16, scratch: scratch, split: split)
                chunks.append((e, ChunkInfo(offset: 0, elements: n, planes: e.planes, xxh64: "")))
                start += n
            }
        }
        let stored = chunks.reduce(0) { $0 + $1.0.bytes.count }
        var output = [UInt16](repeating: 0, count: values.count)
        var best = Double.infinity
        let deadline = Date().addingTimeInterval(1.0)
        var rounds = 0
        while rounds < 3 || (Date() < deadline && rounds < 20) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try output.withUnsafeMutableBytes { out in
                var p = out.baseAddress!
                for (e, info) in chunks {
                    try e.bytes.withUnsafeBytes { b in
                        guard XXH64.hash(b.baseAddress!, count: b.count) == e.checksum else {
                            throw HRZError(.malformed("benchmark checksum mismatch"), file: name)
                        }
                        try ChunkCodec.decode(b.baseAddress!, chunk: info, dtype: .f16, into: p, scratch: scratch)
                    }
                    p += 2 * info.elements
                }
            }
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
            rounds += 1
        }
        guard output == values else { throw HRZError(.malformed("benchmark round trip is not bit-exact"), file: name) }
        let raw = values.count * 2
        return FormatRow(
            data: name, method: split ? "byte-plane split" : "plain zstd", level: level, rawBytes: raw,
            storedBytes: stored, ratio: Double(raw) / Double(stored), decodeGBps: Double(raw) / best / 1e9)
    }

    public static func table(_ rows: [FormatRow]) -> String {
        var out = "| data | method | level | raw | stored | size ratio | decode GB/s (1 core) |\n|---|---|---|---|---|---|---|\n"
        for r in rows {
            out +=
                "| \(r.data) | \(r.method) | \(r.level) | \(r.rawBytes) | \(r.storedBytes) | "
                + String(format: "%.3f× | %.2f |\n", r.ratio, r.decodeGBps)
        }
        return out
    }

    public static func json(_ rows: [FormatRow]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return String(decoding: (try? encoder.encode(rows)) ?? Data(), as: UTF8.self)
    }
}
