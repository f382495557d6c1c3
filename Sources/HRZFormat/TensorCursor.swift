/// Reads arbitrary element ranges of one stored tensor with bounded memory: chunks are decoded on demand
/// and the two most recent are kept, so walking a tensor row by row decodes each chunk about once.
/// The pruner uses it to gather kept rows and columns without ever holding a whole tensor.
import Files
public final class TensorCursor {
    public let info: TensorInfo
    private let reader: HRZReader
    private let scratch = ChunkScratch()
    /// First element of each chunk, ascending, plus the total at the end.
    private let starts: [Int]
    private var cached: [(chunk: Int, buffer: UnsafeMutableRawPointer)] = []

    public init(reader: HRZReader, info: TensorInfo) {
        self.reader = reader
        self.info = info
        var starts = [0]
        for c in info.chunks { starts.append(starts.last! + c.elements) }
        self.starts = starts
    }

    deinit { cached.forEach { $0.buffer.deallocate() } }

    /// Copies elements `range` (in the stored dtype) to `destination`, verifying each chunk it decodes.
    public func copy(_ range: Range<Int>, to destination: UnsafeMutableRawPointer) throws(HRZError) {
        let size = info.dtype.size
        var element = range.lowerBound
        var out = destination
        while element < range.upperBound {
            let c = chunkIndex(of: element)
            let buffer = try decoded(c)
            let end = min(range.upperBound, starts[c + 1])
            out.copyMemory(from: buffer + (element - starts[c]) * size, byteCount: (end - element) * size)
            out += (end - element) * size
            element = end
        }
    }

    private func chunkIndex(of element: Int) -> Int {
        var lo = 0, hi = info.chunks.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if starts[mid] <= element { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }

    private func decoded(_ c: Int) throws(HRZError) -> UnsafeMutableRawPointer {
        if let hit = cached.first(where: { $0.chunk == c }) { return hit.buffer }
        let chunk = info.chunks[c]
        let buffer: UnsafeMutableRawPointer
        if cached.count == 2 {
            buffer = cached.removeFirst().buffer
        } else {
            let largest = info.chunks.map(\.elements).max() ?? 1
            buffer = UnsafeMutableRawPointer.allocate(byteCount: largest * info.dtype.size, alignment: 64)
        }
        let single = TensorInfo(name: info.name, dtype: info.dtype, shape: [chunk.elements], layer: info.layer, chunks: [chunk])
        do {
            try reader.read(single, into: buffer, scratch: scratch)
        } catch {
            var e = error
            e.chunk = c
            buffer.deallocate()
            throw e
        }
        cached.append((c, buffer))
        return buffer
    }
}
