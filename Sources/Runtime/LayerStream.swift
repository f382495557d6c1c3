/// Streams decoder layers out of a mapped `.hrz`: the next layer is decoded on a background thread while the
/// current one computes, then the current layer's compressed pages are released, so resident memory stays
/// near two decoded layers plus activations whatever the depth. Mapping and advice follow llama.cpp's
/// `llama_mmap`: `MADV_WILLNEED` before use, `MADV_DONTNEED` after; both best effort.
import Dispatch
import Foundation
import HRZFormat

/// One layer's tensors, decoded in their stored dtype, keyed by name without the `layers.N.` prefix.
public final class DecodedLayer: @unchecked Sendable {
    public internal(set) var index = -1
    var tensors: [String: (info: TensorInfo, buffer: RawBuffer)] = [:]
    /// Seconds the background thread spent decoding this layer.
    public internal(set) var decodeSeconds = 0.0

    /// The decoded tensor `layers.<index>.<suffix>`, if the layer has it.
    public func tensor(_ suffix: String) -> (info: TensorInfo, pointer: UnsafeMutableRawPointer)? {
        guard let t = tensors[suffix] else { return nil }
        return (t.info, t.buffer.pointer)
    }

    /// Decoded bytes held.
    public var byteCount: Int { tensors.values.reduce(0) { $0 + $1.info.byteCount } }
}

public final class LayerStream: @unchecked Sendable {
    public let reader: HRZReader
    /// Keep every layer decoded after its first use (small models, generation) instead of two slots.
    public let resident: Bool
    private let queue = DispatchQueue(label: "headroom.layer-decode", qos: .userInitiated)
    private var slots: [DecodedLayer]
    private var pending: [Int: DispatchGroup] = [:]
    private var errors: [Int: Error] = [:]
    private let lock = NSLock()
    private let layerTensors: [[TensorInfo]]
    /// Seconds the consumer waited for a layer that was not yet decoded, summed.
    public private(set) var waitSeconds = 0.0

    public init(reader: HRZReader, resident: Bool) {
        self.reader = reader
        self.resident = resident
        let L = reader.config.numHiddenLayers
        var byLayer = [[TensorInfo]](repeating: [], count: L)
        for t in reader.tensors { if let l = t.layer { byLayer[l].append(t) } }
        layerTensors = byLayer
        slots = (0..<(resident ? L : 2)).map { _ in DecodedLayer() }
    }

    private func slot(_ l: Int) -> DecodedLayer { slots[resident ? l : l % 2] }

    /// File range of layer `l`'s chunks (contiguous by the format's layout rule).
    private func byteRange(_ l: Int) -> Range<Int>? {
        let chunks = layerTensors[l].flatMap(\.chunks)
        guard let first = chunks.first, let last = chunks.last else { return nil }
        return first.offset..<(last.offset + last.storedLength)
    }

    /// Starts decoding layer `l` in the background unless it is decoded or under way.
    public func prefetch(_ l: Int) {
        guard l >= 0, l < layerTensors.count else { return }
        lock.lock()
        defer { lock.unlock() }
        if pending[l] != nil || slot(l).index == l { return }
        let group = DispatchGroup()
        pending[l] = group
        let target = slot(l)
        queue.async(group: group) { [self] in
            do { try decode(l, into: target) } catch {
                lock.lock(); errors[l] = error; lock.unlock()
            }
        }
    }

    /// Layer `l`, decoded; schedules `next` behind it. In streaming mode the returned layer's slot is reused
    /// for layer `l + 2`, so use it before asking for the layer after `next`.
    public func layer(_ l: Int, next: Int?) throws -> DecodedLayer {
        prefetch(l)
        lock.lock()
        let group = pending[l]
        lock.unlock()
        let start = DispatchTime.now().uptimeNanoseconds
        group?.wait()
        waitSeconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        lock.lock()
        pending[l] = nil
        let error = errors.removeValue(forKey: l)
        lock.unlock()
        if let error { throw error }
        if let next { prefetch(next) }
        return slot(l)
    }


    private func decode(_ l: Int, into layer: DecodedLayer) throws {
        let start = DispatchTime.now().uptimeNanoseconds
        if let r = byteRange(l) { reader.file.willNeed(offset: r.lowerBound, length: r.count) }
        let scratch = ChunkScratch()
        let prefix = "layers.\(l)."
        var kept: [String: (info: TensorInfo, buffer: RawBuffer)] = [:]
        for info in layerTensors[l] {
            let suffix = String(info.name.dropFirst(prefix.count))
            // Reuse the slot's buffer for the same tensor role: no allocation per layer after the first two.
            let buffer = layer.tensors[suffix]?.buffer ?? RawBuffer(info.byteCount)
            buffer.reserve(info.byteCount)
            try reader.read(info, into: buffer.pointer, scratch: scratch)
            kept[suffix] = (info, buffer)
        }
        layer.tensors = kept
        layer.index = l
        // The decoded copy is what computes; drop the compressed pages now rather than after the layer runs.
        if let r = byteRange(l) { reader.file.release(offset: r.lowerBound, length: r.count) }
        layer.decodeSeconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }
}
