/// Streams decoder layers out of a mapped `.hrz`, so resident memory stays near one or two decoded layers plus
/// activations whatever the depth. Two schedules (see `Schedule`): the next layer decoded on a background
/// thread while the current one computes (two slots), or each layer decoded just before use on all cores
/// while its compressed bytes were read ahead by direct I/O (one slot, two staging buffers: the current
/// layer's matrices are widened straight from the byte planes in one while the next layer is read into the
/// other). Mapped pages are released as soon as their chunk is decoded (`MADV_DONTNEED`, as llama.cpp's
/// `llama_mmap`).
import Dispatch
import Foundation
import HRZFormat
import Basics
import Files

public final class LayerStream: @unchecked Sendable {
    /// How decoding is scheduled against compute.
    public enum Schedule: String, Sendable, CaseIterable {
        /// Decode layer l+1 on one background thread while layer l computes. Best with many cores: the
        /// decode takes one core of many.
        case overlap
        /// Decode each layer when it is needed, on all cores, while a background thread reads the next
        /// layer's compressed bytes ahead with `O_DIRECT` (the device writes them into a staging buffer;
        /// almost no CPU). Best with few cores: OpenBLAS splits each GEMM statically across its threads, so a
        /// decode thread competing for one of two cores stalls the whole GEMM, not half of it. Streaming
        /// inline needs one decoded slot, not two, and two staging buffers: the current layer's raw byte
        /// planes stay in one while the next layer is read into the other.
        case inline

        /// `inline` up to 4 threads, `overlap` above.
        public static func automatic(threads: Int) -> Schedule { threads <= 4 ? .inline : .overlap }
    }

    public let reader: HRZReader
    /// Keep every layer decoded after its first use (small models, generation) instead of two slots.
    public let resident: Bool
    public let schedule: Schedule
    private let queue = DispatchQueue(label: "headroom.layer-decode", qos: .userInitiated)
    private var slots: [DecodedLayer]
    private var pending: [Int: DispatchGroup] = [:]
    private var errors: [Int: Error] = [:]
    private let lock = NSLock()
    private let layerTensors: [[TensorInfo]]
    /// Decode scratch per worker, kept across layers (decodes of one stream never run concurrently).
    private var scratches: [ChunkScratch] = []
    /// Seconds the consumer waited for a layer that was not yet decoded, summed.
    public private(set) var waitSeconds = 0.0
    /// `inline` streaming: the next layer's compressed bytes are read ahead into one of these while the
    /// current layer's byte planes may still point into the other (see `Schedule.inline`).
    private let staging = [RawBuffer(alignment: MappedFile.directAlignment), RawBuffer(alignment: MappedFile.directAlignment)]
    private var stagedRead: StagedRead?

    public init(reader: HRZReader, resident: Bool, schedule: Schedule = .automatic(threads: Threads.count)) {
        self.reader = reader
        self.resident = resident
        self.schedule = schedule
        let L = reader.config.numHiddenLayers
        var byLayer = [[TensorInfo]](repeating: [], count: L)
        for t in reader.tensors { if let l = t.layer { byLayer[l].append(t) } }
        layerTensors = byLayer
        slots = (0..<(resident ? L : schedule == .inline ? 1 : 2)).map { _ in DecodedLayer() }
    }

    deinit { stagedRead?.done.wait() }  // the device may still be writing into the staging buffer

    private func slot(_ l: Int) -> DecodedLayer { slots[l % slots.count] }

    /// File range of layer `l`'s chunks (contiguous by the format's layout rule).
    private func byteRange(_ l: Int) -> Range<Int>? {
        let chunks = layerTensors[l].flatMap(\.chunks)
        guard let first = chunks.first, let last = chunks.last else { return nil }
        return first.offset..<(last.offset + last.storedLength)
    }

    /// Starts decoding layer `l` in the background unless it is decoded or under way. With the `inline`
    /// schedule it only reads the layer's compressed bytes ahead, into a free staging buffer.
    public func prefetch(_ l: Int) {
        guard l >= 0, l < layerTensors.count else { return }
        if schedule == .inline {
            guard slot(l).index != l, let r = byteRange(l) else { return }
            if resident {  // each layer is decoded once: warm the page cache, hold no buffer
                let file = reader.file
                queue.async { file.willNeed(offset: r.lowerBound, length: r.count) }
                return
            }
            stagedRead?.done.wait()  // a read's buffer is free once it is done and its layer decoded
            if stagedRead?.layer == l { return }
            // Not the buffer the decoded layer's planes point into.
            let b = staging[0] === slot(l).planeStorage ? 1 : 0
            let read = StagedRead(layer: l, end: r.upperBound, buffer: b), file = reader.file
            // Written only by the read, read only after `done`.
            nonisolated(unsafe) let buffer = staging[b].reserve(MappedFile.directReadCapacity(r.count))
            stagedRead = read
            // The closure does not own the stream, so the stream's deinit never runs on this queue.
            queue.async(group: read.done) { read.fileOffset = file.readDirect(offset: r.lowerBound, length: r.count, into: buffer) }
            return
        }
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
        if schedule == .inline {
            if slot(l).index != l {
                let start = DispatchTime.now().uptimeNanoseconds
                try decode(l, into: slot(l), parallel: true)
                waitSeconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            }
            if let next { prefetch(next) }
            return slot(l)
        }
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

    /// Waits until no decode is under way.
    public func drain() { queue.sync {} }

    private func decode(_ l: Int, into layer: DecodedLayer, parallel: Bool = false) throws {
        if !parallel, let r = byteRange(l) { reader.file.willNeed(offset: r.lowerBound, length: r.count) }
        // Inline streaming: read from the staging buffer if it holds this layer (waiting for its read).
        var source: HRZReader.Staged?
        var sourceBuffer: RawBuffer?
        if let read = stagedRead, read.layer == l {
            read.done.wait()
            if let offset = read.fileOffset {
                sourceBuffer = staging[read.buffer]
                source = (UnsafeRawPointer(staging[read.buffer].pointer), offset, read.end - offset)
            }
        }
        defer { if source != nil { stagedRead = nil } }
        let prefix = "layers.\(l)."
        var kept: [String: DecodedLayer.Entry] = [:]
        // Every chunk of the layer with where it decodes to; chunks are independent. A 16-bit matrix read ahead
        // is kept as byte planes (see `DecodedLayer`); everything else is decoded packed.
        var work: [(info: TensorInfo, suffix: String, chunk: Int, element: Int, planar: Bool, base: UnsafeMutableRawPointer)] = []
        for info in layerTensors[l] {
            let suffix = String(info.name.dropFirst(prefix.count))
            let planar = source != nil && info.dtype.size == 2 && info.shape.count == 2 && info.chunks.allSatisfy { $0.planes.count == 2 }
            // Reuse the slot's buffers for the same tensor role: no allocation per layer after the first two.
            let old = layer.tensors[suffix]
            let buffer = old?.buffer ?? RawBuffer(info.byteCount)
            buffer.reserve(info.byteCount)
            kept[suffix] = DecodedLayer.Entry(
                info: info, buffer: buffer, planes: planar ? [] : nil,
                interleaved: old?.interleaved, interleavedValid: false)
            var element = 0
            for (c, chunk) in info.chunks.enumerated() {
                work.append((info, suffix, c, element, planar, buffer.pointer))
                element += chunk.elements
            }
        }
        let spans = UnsafeMutableBufferPointer<DecodedLayer.PlaneSpan>.allocate(capacity: work.count)
        defer { spans.deallocate() }
        let workers = parallel ? max(1, min(Threads.count, work.count)) : 1
        while scratches.count < workers { scratches.append(ChunkScratch()) }
        let scratches = self.scratches
        let next = LockedCounter()
        let failures = ResultBox()
        // One iteration runs on the calling thread, so the serial case costs nothing extra. Each worker takes
        // two chunks at a time and checks both checksums in one pass (two hash streams read memory faster).
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            while true {
                let first = 2 * next.add()
                guard first < work.count else { return }
                let pair = first + 1 < work.count ? [first, first + 1] : [first]
                var verified = false
                if pair.count == 2 {
                    do throws(HRZError) {
                        try self.reader.verify(
                            (work[first].info, work[first].chunk), (work[first + 1].info, work[first + 1].chunk),
                            staged: source)
                        verified = true
                    } catch {
                        failures.record(error)
                        continue
                    }
                }
                for i in pair {
                    let item = work[i], base = item.base
                    do throws(HRZError) {
                        if item.planar {
                            let planes = try self.reader.readPlanes(
                                item.info, chunk: item.chunk,
                                into: (base + item.element, base + item.info.elementCount + item.element),
                                scratch: scratches[worker], staged: source, verified: verified)
                            spans[i] = DecodedLayer.PlaneSpan(
                                start: item.element, count: item.info.chunks[item.chunk].elements,
                                high: planes.high, low: planes.low)
                        } else {
                            try self.reader.readChunk(
                                item.info, chunk: item.chunk, into: base + item.element * item.info.dtype.size,
                                scratch: scratches[worker], release: true, staged: source, verified: verified)
                        }
                    } catch {
                        failures.record(error)
                    }
                }
            }
        }
        if let error = failures.first { throw error }
        for (i, item) in work.enumerated() where item.planar { kept[item.suffix]!.planes!.append(spans[i]) }
        layer.tensors = kept
        layer.planeStorage = kept.values.contains { $0.planes != nil } ? sourceBuffer : nil
        layer.index = l
    }
}

/// One read-ahead of a layer's compressed bytes into a staging buffer.
private final class StagedRead: @unchecked Sendable {
    let layer: Int
    /// End of the layer's byte range in the file.
    let end: Int
    /// Which staging buffer it fills.
    let buffer: Int
    let done = DispatchGroup()
    /// File offset of the staging buffer's first byte, or nil if the read failed. Read it after `done.wait()`.
    var fileOffset: Int?

    init(layer: Int, end: Int, buffer: Int) {
        self.layer = layer
        self.end = end
        self.buffer = buffer
    }
}

/// The first error recorded by concurrent workers.
final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var first: Error?
    func record(_ error: Error) {
        lock.lock(); if first == nil { first = error }; lock.unlock()
    }
}
