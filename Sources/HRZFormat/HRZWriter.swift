/// Streams tensors into a new `.hrz`, chunk by chunk, with bounded memory, and renames it into place
/// only when the index is written. See `formats/HRZ.md`.
import Foundation
import Basics
import Files

public final class HRZWriter {
    public let path: String
    public let level: Int
    public let threads: Int
    /// Elements per chunk (the last chunk of a tensor may be shorter).
    public let chunkElements: Int
    /// Whether 16-bit tensors are byte-plane split (the format allows both; the benchmark compares them).
    public let splitPlanes: Bool
    private let output: AtomicFile
    private var tensors: [TensorInfo] = []
    private var names: Set<String> = []
    private var scratches: [ChunkScratch]
    private var buffers: [UnsafeMutableRawPointer]
    private let batch: Int
    /// Bytes of chunk data written (excluding alignment padding, header and index).
    public private(set) var storedBytes = 0
    /// Called after each batch with the decoded bytes it covered.
    public var onProgress: ((Int) -> Void)?

    public init(
        path: String, level: Int = 3, threads: Int = 1, chunkElements: Int = 1 << 20,
        splitPlanes: Bool = true
    ) throws(HRZError) {
        self.path = path
        self.level = level
        self.threads = max(1, threads)
        self.chunkElements = chunkElements
        self.splitPlanes = splitPlanes
        output = try io { () throws(FileError) in try AtomicFile(path: path) }
        batch = self.threads * 2
        scratches = (0..<batch).map { _ in ChunkScratch(level: level) }
        buffers = (0..<batch).map { _ in UnsafeMutableRawPointer.allocate(byteCount: chunkElements * 4, alignment: 64) }
        try io { () throws(FileError) in try output.write([UInt8](repeating: 0, count: HRZLayout.headerSize)) }
        try io { () throws(FileError) in try output.pad(to: HRZLayout.alignment) }
    }

    deinit { buffers.forEach { $0.deallocate() } }

    /// Appends one tensor. `fill(range, destination)` writes elements `range` in `dtype` to `destination`;
    /// it is called concurrently for different ranges and must be thread-safe.
    public func add(
        name: String, dtype: DType, shape: [Int], layer: Int?,
        fill: @escaping @Sendable (Range<Int>, UnsafeMutableRawPointer) throws -> Void
    ) throws {
        guard names.insert(name).inserted else {
            throw HRZError(.malformed("duplicate tensor name"), file: path, tensor: name)
        }
        let total = shape.reduce(1, *)
        var chunks: [ChunkInfo] = []
        var start = 0
        while start < total {
            var ranges: [Range<Int>] = []
            while ranges.count < batch && start < total {
                let end = min(total, start + chunkElements)
                ranges.append(start..<end)
                start = end
            }
            let encoded = try encodeBatch(ranges, dtype: dtype, fill: fill)
            for chunk in encoded {
                try output.pad(to: HRZLayout.alignUp(output.position))
                let offset = output.position
                try output.write(chunk.bytes)
                storedBytes += chunk.bytes.count
                chunks.append(
                    ChunkInfo(
                        offset: offset, elements: chunk.elements, planes: chunk.planes,
                        xxh64: String(hex64(chunk.checksum).dropFirst(2))))
            }
            onProgress?(ranges.reduce(0) { $0 + $1.count } * dtype.size)
        }
        tensors.append(TensorInfo(name: name, dtype: dtype, shape: shape, layer: layer, chunks: chunks))
    }

    /// Appends a tensor already in memory.
    public func add(name: String, dtype: DType, shape: [Int], layer: Int?, bytes: [UInt8]) throws {
        let data = bytes
        try add(name: name, dtype: dtype, shape: shape, layer: layer) { range, destination in
            data.withUnsafeBytes { b in
                destination.copyMemory(
                    from: b.baseAddress! + range.lowerBound * dtype.size,
                    byteCount: range.count * dtype.size)
            }
        }
    }

    /// Appends `info` from `reader` with its stored chunks copied verbatim (after checking each checksum),
    /// under a new name and layer: no decode or recompression, so unchanged tensors cost a memcpy.
    public func addStored(_ info: TensorInfo, from reader: HRZReader, name: String? = nil, layer: Int?) throws {
        let name = name ?? info.name
        guard names.insert(name).inserted else {
            throw HRZError(.malformed("duplicate tensor name"), file: path, tensor: name)
        }
        var chunks: [ChunkInfo] = []
        // Each chunk is checked before it is copied: its checksum, and that it decodes to its element count (an
        // index rewritten with matching checksums but undecodable data would otherwise travel into the copy).
        let scratch = ChunkScratch()
        let decoded = UnsafeMutableRawPointer.allocate(byteCount: max(1, (info.chunks.map(\.elements).max() ?? 1) * info.dtype.size), alignment: 64)
        defer { decoded.deallocate() }
        for (c, chunk) in info.chunks.enumerated() {
            let stored = UnsafeRawBufferPointer(start: reader.file.base + chunk.offset, count: chunk.storedLength)
            try reader.readChunk(info, chunk: c, into: decoded, scratch: scratch)
            try output.pad(to: HRZLayout.alignUp(output.position))
            var copy = chunk
            copy.offset = output.position
            try output.write(stored)
            storedBytes += stored.count
            chunks.append(copy)
            onProgress?(chunk.elements * info.dtype.size)
        }
        tensors.append(TensorInfo(name: name, dtype: info.dtype, shape: info.shape, layer: layer, chunks: chunks))
    }

    private func encodeBatch(
        _ ranges: [Range<Int>], dtype: DType,
        fill: @escaping @Sendable (Range<Int>, UnsafeMutableRawPointer) throws -> Void
    ) throws -> [EncodedChunk] {
        let results = ResultSlots<EncodedChunk>(count: ranges.count)
        let scratches = self.scratches, buffers = self.buffers, split = splitPlanes
        DispatchQueue.concurrentPerform(iterations: ranges.count) { i in
            results.set(i) {
                try fill(ranges[i], buffers[i])
                return try ChunkCodec.encode(
                    buffers[i], elements: ranges[i].count, dtype: dtype,
                    scratch: scratches[i], split: split)
            }
        }
        return try results.values(wrap: HRZError.wrapping(file: path))
    }

    /// Writes the index and header, flushes, and renames the file into place.
    public func finish(metadata: Metadata) throws {
        let index = HRZIndex(metadata: metadata, tensors: tensors)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = [UInt8](try encoder.encode(index))
        guard json.count <= HRZLayout.maxIndexLength else {
            throw HRZError(
                .malformed("the index would be \(json.count) bytes; readers accept at most \(HRZLayout.maxIndexLength) (formats/HRZ.md §3)"),
                file: path)
        }
        let indexOffset = output.position
        try output.write(json)
        let header = HRZHeader(
            indexOffset: indexOffset, indexLength: json.count,
            fileLength: indexOffset + json.count, indexChecksum: XXH64.hash(json))
        try output.write(header.encoded(), at: 0)
        try output.commit()
    }

    /// Deletes the partial output.
    public func abandon() { output.discard() }

    /// Bytes written so far.
    public var position: Int { output.position }
}
