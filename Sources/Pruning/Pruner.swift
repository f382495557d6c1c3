/// The pruning compiler: writes a physically smaller `.hrz` with a plan's heads and FFNs removed.
///
/// For a removed head: its D rows of q/k/v and their biases, and its D input columns of `out_proj`, go;
/// the `out_proj` bias stays (a layer with no heads keeps only that). A removed FFN takes fc1, fc2 and,
/// for pre-LN models, its layer norm. `ModelSchema` states the shapes; this file only gathers the kept
/// elements. Unchanged tensors are copied chunk by chunk without decoding, changed ones are gathered
/// through a `TensorCursor`, so memory stays at a few chunks whatever the model size.
import Foundation
import HRZFormat
import OPTSchema
import Analysis

public struct PruneReport: Sendable {
    public var parent: String
    public var headsBefore: Int
    public var headsAfter: Int
    public var ffnsBefore: Int
    public var ffnsAfter: Int
    /// Decoder-layer parameters before and after.
    public var layerParametersBefore: Int
    public var layerParametersAfter: Int
    public var fileBytesBefore: Int
    public var fileBytesAfter: Int
}

public enum Pruner {
    /// Prunes `model` by `plan` into `output` (atomically). `progress(done, total)` counts decoded bytes.
    public static func prune(
        _ model: String, plan: PrunePlan, to output: String, level: Int = 3,
        threads: Int = ProcessInfo.processInfo.activeProcessorCount,
        progress: ((Int, Int) -> Void)? = nil
    ) throws -> PruneReport {
        let reader = try HRZReader(path: model)
        let config = reader.config
        try plan.validate(config: config)
        let before = reader.metadata.layers
        let after = plan.apply(to: before)
        var metadata = reader.metadata
        metadata.layers = after
        metadata.provenance.lineage.append(LineageStep(parent: reader.contentID, plan: String(decoding: try plan.json(), as: UTF8.self)))

        let expected = ModelSchema.tensors(config: config, layers: after)
        let total = expected.reduce(0) { $0 + $1.shape.reduce(1, *) * ((try? reader.tensor($1.name))?.dtype.size ?? 4) }
        var done = 0
        let writer = try HRZWriter(path: output, level: level, threads: threads)
        writer.onProgress = { bytes in
            done += bytes
            progress?(done, total)
        }
        do {
            for t in expected {
                let source = try reader.tensor(t.name)
                if source.shape == t.shape {
                    try writer.addStored(source, from: reader, layer: t.layer)
                    continue
                }
                let gather = try Gather(source: source, target: t, before: before, after: after, headDim: config.headDim, file: model)
                try writer.add(name: t.name, dtype: source.dtype, shape: t.shape, layer: t.layer) { range, destination in
                    try gather.fill(range, into: destination, reader: reader)
                }
            }
            try writer.finish(metadata: metadata)
        } catch {
            writer.abandon()
            throw error
        }
        func parameters(_ plans: [LayerPlan]) -> Int {
            ModelSchema.tensors(config: config, layers: plans).filter { $0.layer != nil }.reduce(0) { $0 + $1.shape.reduce(1, *) }
        }
        let outBytes = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
        return PruneReport(
            parent: reader.contentID,
            headsBefore: before.reduce(0) { $0 + $1.heads.count }, headsAfter: after.reduce(0) { $0 + $1.heads.count },
            ffnsBefore: before.filter(\.ffn).count, ffnsAfter: after.filter(\.ffn).count,
            layerParametersBefore: parameters(before), layerParametersAfter: parameters(after),
            fileBytesBefore: reader.file.bytes.count, fileBytesAfter: outBytes)
    }
}

/// Which source elements make up a pruned tensor: output row r is source row `rows[r]`, and within a row the
/// output columns are the source column runs `columns` (each `(start, count)`), back to back.
struct Gather: Sendable {
    let rows: [Int]
    let sourceColumns: Int
    let columns: [(start: Int, count: Int)]
    let outputColumns: Int
    let source: TensorInfo

    /// Head rows of q/k/v (weights and biases) or head columns of `out_proj.weight`; nothing else changes shape.
    init(source: TensorInfo, target: ExpectedTensor, before: [LayerPlan], after: [LayerPlan], headDim D: Int, file: String) throws {
        self.source = source
        guard let l = target.layer else { throw PruneError(file: file, "tensor \(target.name): model-level tensors are never pruned") }
        // Position k of each kept head in the source layer's head list: its rows are k·D ..< (k+1)·D.
        let positions = try after[l].heads.map { h -> Int in
            guard let k = before[l].heads.firstIndex(of: h) else { throw PruneError(file: file, "layer \(l) head \(h) is not in the source") }
            return k
        }
        let headRows = positions.flatMap { k in (k * D)..<((k + 1) * D) }
        let name = target.name
        if name.hasSuffix("out_proj.weight") {
            rows = Array(0..<source.shape[0])
            sourceColumns = source.shape[1]
            columns = positions.map { ($0 * D, D) }
        } else if ["q_proj", "k_proj", "v_proj"].contains(where: { name.contains("self_attn.\($0).") }) {
            rows = headRows
            sourceColumns = source.shape.count == 2 ? source.shape[1] : 1
            columns = [(0, sourceColumns)]
        } else {
            throw PruneError(file: file, "tensor \(name): shape \(source.shape) differs from the expected \(target.shape)")
        }
        outputColumns = columns.reduce(0) { $0 + $1.count }
        guard rows.count * outputColumns == target.shape.reduce(1, *) else {
            throw PruneError(file: file, "tensor \(name): source shape \(source.shape) does not match the layer's head list")
        }
    }

    /// Writes output elements `range` to `destination`, reading the source through a private cursor.
    func fill(_ range: Range<Int>, into destination: UnsafeMutableRawPointer, reader: HRZReader) throws {
        let cursor = TensorCursor(reader: reader, info: source)
        let size = source.dtype.size
        var r = range.lowerBound / outputColumns
        while r * outputColumns < range.upperBound {
            var outColumn = 0
            for run in columns {
                let outStart = r * outputColumns + outColumn
                let lo = max(outStart, range.lowerBound), hi = min(outStart + run.count, range.upperBound)
                if lo < hi {
                    let sourceStart = rows[r] * sourceColumns + run.start + (lo - outStart)
                    try cursor.copy(sourceStart..<(sourceStart + hi - lo), to: destination + (lo - range.lowerBound) * size)
                }
                outColumn += run.count
            }
            r += 1
        }
    }
}
