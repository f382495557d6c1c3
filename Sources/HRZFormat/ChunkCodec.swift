/// Encoding and decoding of one chunk. See `formats/HRZ.md` §6.
///
/// 16-bit elements are split into two byte planes, high bytes first: the high byte (sign, exponent,
/// top mantissa bits) of trained weights is highly compressible, the low byte is nearly random.
/// Each plane is stored zstd-compressed or raw, whichever is smaller.
import Files

/// Per-thread scratch for encoding and decoding, reused across chunks.
public final class ChunkScratch {
    let level: Int
    /// Created on first use: decode-only scratches (the runtime's) never allocate a compression context.
    lazy var compressor = ZstdCompressor(level: level)
    let decompressor = ZstdDecompressor()
    var planes: UnsafeMutableRawPointer
    var planesCapacity = 0
    var output: UnsafeMutableRawPointer
    var outputCapacity = 0

    public init(level: Int = 3) {
        self.level = level
        planes = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 64)
        output = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 64)
    }

    deinit {
        planes.deallocate()
        output.deallocate()
    }

    func reservePlanes(_ bytes: Int) {
        if bytes > planesCapacity {
            planes.deallocate()
            planes = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
            planesCapacity = bytes
        }
    }

    func reserveOutput(_ bytes: Int) {
        if bytes > outputCapacity {
            output.deallocate()
            output = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
            outputCapacity = bytes
        }
    }
}

/// A chunk ready to be written: its stored bytes and plane table.
public struct EncodedChunk {
    public var bytes: [UInt8]
    public var planes: [PlaneInfo]
    public var elements: Int
    public var checksum: UInt64
}

public enum ChunkCodec {
    /// Encodes `elements` values of `dtype` at `source` (little-endian).
    public static func encode(
        _ source: UnsafeRawPointer, elements: Int, dtype: DType,
        scratch: ChunkScratch, split: Bool = true
    ) throws(HRZError.Kind) -> EncodedChunk {
        let byteCount = elements * dtype.size
        var stored: [UInt8] = []
        stored.reserveCapacity(byteCount)
        var planes: [PlaneInfo] = []
        if dtype.size == 2 && split {
            scratch.reservePlanes(byteCount)
            let hi = scratch.planes.assumingMemoryBound(to: UInt8.self)
            let lo = hi + elements
            let words = source.assumingMemoryBound(to: UInt16.self)
            for i in 0..<elements {
                let w = UInt16(littleEndian: words[i])
                hi[i] = UInt8(truncatingIfNeeded: w >> 8)
                lo[i] = UInt8(truncatingIfNeeded: w)
            }
            planes.append(try appendPlane(UnsafeRawPointer(hi), count: elements, to: &stored, scratch: scratch))
            planes.append(try appendPlane(UnsafeRawPointer(lo), count: elements, to: &stored, scratch: scratch))
        } else {
            planes.append(try appendPlane(source, count: byteCount, to: &stored, scratch: scratch))
        }
        let checksum = stored.withUnsafeBytes { XXH64.hash($0.baseAddress ?? source, count: $0.count) }
        return EncodedChunk(bytes: stored, planes: planes, elements: elements, checksum: checksum)
    }

    /// Appends one plane, compressed when that is smaller.
    static func appendPlane(
        _ data: UnsafeRawPointer, count: Int, to stored: inout [UInt8],
        scratch: ChunkScratch
    ) throws(HRZError.Kind) -> PlaneInfo {
        let bound = ZstdCompressor.bound(count)
        scratch.reserveOutput(bound)
        let compressed = try scratch.compressor.compress(data, count: count, into: scratch.output, capacity: bound)
        if compressed < count {
            stored.append(contentsOf: UnsafeRawBufferPointer(start: scratch.output, count: compressed))
            return PlaneInfo(codec: .zstd, length: compressed)
        }
        stored.append(contentsOf: UnsafeRawBufferPointer(start: data, count: count))
        return PlaneInfo(codec: .raw, length: count)
    }

    /// Expected decoded byte count of each plane of a chunk.
    public static func planeSizes(elements: Int, dtype: DType, planeCount: Int) -> [Int]? {
        switch (dtype.size, planeCount) {
        case (2, 2): return [elements, elements]
        case (_, 1): return [elements * dtype.size]
        default: return nil
        }
    }

    /// Decodes one chunk's stored bytes into `destination` (`elements · dtype.size` bytes).
    /// The caller has already checked bounds and the checksum.
    public static func decode(
        _ stored: UnsafeRawPointer, chunk: ChunkInfo, dtype: DType,
        into destination: UnsafeMutableRawPointer,
        scratch: ChunkScratch
    ) throws(HRZError.Kind) {
        guard let sizes = planeSizes(elements: chunk.elements, dtype: dtype, planeCount: chunk.planes.count) else {
            throw .malformed("\(chunk.planes.count) planes for dtype \(dtype.rawValue)")
        }
        if sizes.count == 1 {
            try decodePlane(stored, chunk.planes[0], into: destination, size: sizes[0], scratch: scratch)
            return
        }
        let n = chunk.elements
        scratch.reservePlanes(2 * n)
        let planes = try decodePlanes(stored, chunk: chunk, into: (scratch.planes, scratch.planes + n), scratch: scratch)
        interleave(high: planes.high, low: planes.low, into: destination, count: n)
    }

    /// The two byte planes of a 16-bit chunk, not interleaved: a raw plane is returned in place (a pointer
    /// into `stored`), a compressed one is decoded to its target (`elements` bytes each). The caller has
    /// already checked bounds and the checksum; `stored` must outlive the returned pointers.
    public static func decodePlanes(
        _ stored: UnsafeRawPointer, chunk: ChunkInfo,
        into targets: (high: UnsafeMutableRawPointer, low: UnsafeMutableRawPointer),
        scratch: ChunkScratch
    ) throws(HRZError.Kind) -> (high: UnsafePointer<UInt8>, low: UnsafePointer<UInt8>) {
        let n = chunk.elements
        guard chunk.planes.count == 2 else { throw .malformed("\(chunk.planes.count) planes where 2 byte planes were expected") }
        var pointers: [UnsafePointer<UInt8>] = []
        var position = stored
        for (p, plane) in chunk.planes.enumerated() {
            if plane.codec == .raw {
                guard plane.length == n else { throw .malformed("raw plane \(p) is \(plane.length) bytes, expected \(n)") }
                pointers.append(position.assumingMemoryBound(to: UInt8.self))
            } else {
                let target = p == 0 ? targets.high : targets.low
                try decodePlane(position, plane, into: target, size: n, scratch: scratch)
                pointers.append(UnsafePointer(target.assumingMemoryBound(to: UInt8.self)))
            }
            position += plane.length
        }
        return (pointers[0], pointers[1])
    }

    /// Element i = `high[i] << 8 | low[i]`, little-endian (§6).
    public static func interleave(high: UnsafePointer<UInt8>, low: UnsafePointer<UInt8>, into destination: UnsafeMutableRawPointer, count: Int) {
        let out = destination.assumingMemoryBound(to: UInt16.self)
        for i in 0..<count { out[i] = (UInt16(high[i]) << 8 | UInt16(low[i])).littleEndian }
    }

    static func decodePlane(
        _ source: UnsafeRawPointer, _ plane: PlaneInfo, into destination: UnsafeMutableRawPointer,
        size: Int, scratch: ChunkScratch
    ) throws(HRZError.Kind) {
        switch plane.codec {
        case .raw:
            guard plane.length == size else { throw .malformed("raw plane is \(plane.length) bytes, expected \(size)") }
            destination.copyMemory(from: source, byteCount: size)
        case .zstd:
            try scratch.decompressor.decompress(source, count: plane.length, into: destination, expected: size)
        }
    }
}
