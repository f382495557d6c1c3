/// One decoder layer's tensors as `LayerStream` decoded them, and the two ways its weights reach fp32.
import Foundation
import HRZFormat

/// One layer's tensors, decoded, keyed by name without the `layers.N.` prefix.
///
/// A tensor is held either packed (its elements in the stored dtype) or, for 16-bit matrices streamed from the
/// read-ahead buffer, as each chunk's two byte planes (HRZ §6): raw planes are used where the read put them
/// and only compressed planes are decoded. The matrices are only ever widened to fp32 (`widen`), which reads
/// the planes directly, so streaming never pays to interleave a layer's bytes (about 0.2 core-seconds per
/// OPT-66B layer). `tensor()` interleaves a planar tensor on demand for any other consumer.
public final class DecodedLayer: @unchecked Sendable {
    public internal(set) var index = -1
    var tensors: [String: Entry] = [:]
    /// The read-ahead buffer that planar tensors' raw planes point into, kept alive as long as they do.
    var planeStorage: RawBuffer?
    private let lock = NSLock()

    struct Entry {
        var info: TensorInfo
        /// Packed: the elements. Planar: compressed planes decoded, chunk by chunk at each chunk's first element,
        /// high planes in the first half, low planes in the second.
        var buffer: RawBuffer
        /// Planar only: each chunk's first element, element count and planes.
        var planes: [PlaneSpan]?
        /// Planar only: the elements interleaved by `tensor()`, when asked for.
        var interleaved: RawBuffer?
        var interleavedValid = false
    }

    struct PlaneSpan: @unchecked Sendable {
        var start: Int
        var count: Int
        var high: UnsafePointer<UInt8>
        var low: UnsafePointer<UInt8>
    }

    /// The tensor's description, if the layer has it.
    public func info(_ suffix: String) -> TensorInfo? { entry(suffix)?.info }

    /// The entry, read under the lock that `tensor()` writes under.
    func entry(_ suffix: String) -> Entry? {
        lock.lock()
        defer { lock.unlock() }
        return tensors[suffix]
    }

    /// The decoded tensor `layers.<index>.<suffix>` in its stored dtype, if the layer has it.
    public func tensor(_ suffix: String) -> (info: TensorInfo, pointer: UnsafeMutableRawPointer)? {
        lock.lock()  // the first call on a planar tensor writes its interleaved copy
        defer { lock.unlock() }
        guard var t = tensors[suffix] else { return nil }
        guard let planes = t.planes else { return (t.info, t.buffer.pointer) }
        let out = t.interleaved ?? RawBuffer(t.info.byteCount)
        if !t.interleavedValid {
            let base = out.reserve(t.info.byteCount)
            for p in planes { ChunkCodec.interleave(high: p.high, low: p.low, into: base + 2 * p.start, count: p.count) }
            t.interleaved = out
            t.interleavedValid = true
            tensors[suffix] = t
        }
        return (t.info, out.pointer)
    }

    /// Elements `range` of the tensor (flat, row-major) widened to fp32 at `destination`, on all cores.
    /// Nothing is written if the layer lacks the tensor.
    public func widen(_ suffix: String, elements range: Range<Int>, into destination: UnsafeMutablePointer<Float>) {
        entry(suffix)?.widen(elements: range, into: destination)
    }

    /// Whether `suffix` is held as byte planes (for tests).
    func isPlanar(_ suffix: String) -> Bool { tensors[suffix]?.planes != nil }

    /// Names of the planar tensors `tensor()` has interleaved since the layer was decoded (for tests: the
    /// forward and backward must widen matrices from the planes, never interleave a copy first).
    var interleavedNames: [String] { tensors.filter { $0.value.interleavedValid }.keys.sorted() }

    /// Decoded bytes held.
    public var byteCount: Int { tensors.values.reduce(0) { $0 + $1.info.byteCount } }
}

/// The packed widen, under a name the method `DecodedLayer.widen` does not shadow.
private func widenPacked(_ source: UnsafeRawPointer, dtype: DType, into destination: UnsafeMutablePointer<Float>, count: Int) {
    widen(source, dtype: dtype, into: destination, count: count)
}

extension DecodedLayer.Entry {
    /// Elements `range` (flat, row-major) widened to fp32 at `destination`, on all cores, from the packed
    /// elements or straight from the byte planes.
    func widen(elements range: Range<Int>, into destination: UnsafeMutablePointer<Float>) {
        guard !range.isEmpty else { return }
        let dtype = info.dtype
        guard let planes else {
            widenPacked(buffer.pointer + range.lowerBound * dtype.size, dtype: dtype, into: destination, count: range.count)
            return
        }
        parallelRanges(range.count, minimumPerTask: 1 << 18) { r in
            let first = range.lowerBound + r.lowerBound, last = range.lowerBound + r.upperBound
            // The span holding `first`: chunks are contiguous and ascending.
            var s = 0, hi = planes.count - 1
            while s < hi {
                let mid = (s + hi + 1) / 2
                if planes[mid].start <= first { s = mid } else { hi = mid - 1 }
            }
            var e = first
            while e < last {
                let p = planes[s]
                let n = min(last, p.start + p.count) - e
                dtype.widenPlanes(
                    high: p.high + (e - p.start), low: p.low + (e - p.start),
                    into: destination + (e - range.lowerBound), count: n)
                e += n
                s += 1
            }
        }
    }

    /// The whole tensor as fp32: in place when it is stored packed as f32, else widened into `buffer`.
    func floats(into scratch: FloatBuffer) -> UnsafeMutablePointer<Float> {
        if info.dtype == .f32 && planes == nil { return buffer.pointer.assumingMemoryBound(to: Float.self) }
        let out = scratch.reserve(info.elementCount)
        widen(elements: 0..<info.elementCount, into: out)
        return out
    }
}
