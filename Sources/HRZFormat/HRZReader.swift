/// Opens an `.hrz`: maps it, checks the header and index against every reader MUST rule of
/// `formats/HRZ.md` §7, and decodes tensors chunk by chunk. Opening costs O(tensors), not O(bytes).
import Foundation
import Basics
import OPTSchema
import Files

public final class HRZReader: @unchecked Sendable {
    public let file: MappedFile
    public let header: HRZHeader
    public let index: HRZIndex
    private let byName: [String: Int]

    public var path: String { file.path }
    public var metadata: Metadata { index.metadata }
    public var config: OPTConfig { index.metadata.config }
    public var tensors: [TensorInfo] { index.tensors }

    public init(path: String) throws(HRZError) {
        file = try io { () throws(FileError) in try MappedFile(path: path) }
        let bytes = file.bytes
        header = try HRZHeader.decode(bytes, file: path)
        if header.fileLength > bytes.count {
            throw HRZError(.truncated(needed: header.fileLength - bytes.count), file: path, offset: bytes.count)
        }
        if header.fileLength < bytes.count {
            throw HRZError(
                .malformed("\(bytes.count - header.fileLength) unexpected bytes after the declared end"),
                file: path, offset: header.fileLength)
        }
        guard header.indexOffset >= HRZLayout.alignment, header.indexLength <= HRZLayout.maxIndexLength,
            header.indexOffset + header.indexLength == header.fileLength
        else {
            throw HRZError(
                .malformed("index range \(header.indexOffset)+\(header.indexLength) does not end the file"),
                file: path, offset: 16)
        }
        let indexBytes = UnsafeRawBufferPointer(rebasing: bytes[header.indexOffset..<header.fileLength])
        let actual = XXH64.hash(indexBytes.baseAddress!, count: indexBytes.count)
        guard actual == header.indexChecksum else {
            throw HRZError(
                .checksumMismatch(expected: header.indexChecksum, actual: actual), file: path,
                offset: header.indexOffset)
        }
        do {
            index = try JSONDecoder().decode(HRZIndex.self, from: Data(indexBytes))
        } catch let error as DecodingError {
            throw HRZError(.badIndex(describe(error)), file: path, offset: header.indexOffset)
        } catch {
            throw HRZError(.badIndex("\(error)"), file: path, offset: header.indexOffset)
        }
        var names: [String: Int] = [:]
        for (i, t) in index.tensors.enumerated() {
            guard names.updateValue(i, forKey: t.name) == nil else {
                throw HRZError(.malformed("duplicate tensor name"), file: path, offset: header.indexOffset, tensor: t.name)
            }
        }
        byName = names
        var h = SHA256()
        h.update(indexBytes)
        contentID = h.finalizeHex()
        try validate()
    }

    /// Reader MUST rules on the index. Each failure names the rule's subject.
    private func validate() throws(HRZError) {
        let m = index.metadata
        func fail(_ why: String, tensor: String? = nil, chunk: Int? = nil, offset: Int? = nil) -> HRZError {
            HRZError(.malformed(why), file: path, offset: offset ?? header.indexOffset, tensor: tensor, chunk: chunk)
        }
        if let problem = m.config.problems().first { throw fail("config.\(problem.key): \(problem.reason)") }
        guard m.layers.count == m.config.numHiddenLayers else {
            throw fail("metadata lists \(m.layers.count) layers, config has \(m.config.numHiddenLayers)")
        }
        for (l, plan) in m.layers.enumerated() {
            guard plan.heads == plan.heads.sorted(), Set(plan.heads).count == plan.heads.count,
                plan.heads.allSatisfy({ (0..<m.config.numAttentionHeads).contains($0) })
            else {
                throw fail("layer \(l) head list \(plan.heads) is not ascending unique indices below \(m.config.numAttentionHeads)")
            }
        }
        // Chunks tile the data region in file order: each starts at the next 4096 boundary after the previous.
        var expectedOffset = HRZLayout.alignment
        var lastEnd = HRZLayout.alignment
        var lastLayer = -1
        var sawLayerTensors = false, afterLayers = false
        for t in index.tensors {
            guard t.shape.allSatisfy({ $0 >= 0 && $0 <= 1 << 40 }), t.shape.count <= 8 else {
                throw fail("shape \(t.shape) out of range", tensor: t.name)
            }
            guard let count = checkedElementCount(t.shape) else { throw fail("shape \(t.shape) overflows", tensor: t.name) }
            if let layer = t.layer {
                guard (0..<m.config.numHiddenLayers).contains(layer), layer >= lastLayer, !afterLayers else {
                    throw fail("layer \(layer) tensor out of execution order", tensor: t.name)
                }
                lastLayer = layer
                sawLayerTensors = true
            } else if sawLayerTensors {
                afterLayers = true
            }
            var elements = 0
            for (c, chunk) in t.chunks.enumerated() {
                guard chunk.offset == expectedOffset else {
                    throw fail(
                        "chunk at \(chunk.offset), expected \(expectedOffset) (chunks must tile the data region)",
                        tensor: t.name, chunk: c, offset: chunk.offset)
                }
                guard chunk.elements > 0, chunk.elements <= 1 << 32,
                    let sizes = ChunkCodec.planeSizes(elements: chunk.elements, dtype: t.dtype, planeCount: chunk.planes.count)
                else {
                    throw fail("chunk has \(chunk.elements) elements in \(chunk.planes.count) planes", tensor: t.name, chunk: c)
                }
                for (plane, size) in zip(chunk.planes, sizes) {
                    let ok = plane.codec == .raw ? plane.length == size : (plane.length > 0 && plane.length < size)
                    guard ok else {
                        throw fail(
                            "\(plane.codec.rawValue) plane of \(plane.length) bytes for \(size) decoded bytes",
                            tensor: t.name, chunk: c)
                    }
                }
                guard chunk.xxh64.count == 16, UInt64(chunk.xxh64, radix: 16) != nil else {
                    throw fail("checksum '\(chunk.xxh64)' is not 16 hex digits", tensor: t.name, chunk: c)
                }
                elements += chunk.elements
                lastEnd = chunk.offset + chunk.storedLength
                guard lastEnd <= header.indexOffset else {
                    throw fail("chunk runs past the data region", tensor: t.name, chunk: c, offset: chunk.offset)
                }
                expectedOffset = HRZLayout.alignUp(lastEnd)
            }
            guard elements == count else {
                throw fail("chunks hold \(elements) elements, shape \(t.shape) needs \(count)", tensor: t.name)
            }
        }
        guard lastEnd == header.indexOffset else {
            throw fail("\(header.indexOffset - lastEnd) bytes between the last chunk and the index", offset: lastEnd)
        }
    }

    /// The tensor named `name`, or a `missingTensor` error.
    public func tensor(_ name: String) throws(HRZError) -> TensorInfo {
        guard let i = byName[name] else { throw HRZError(.missingTensor, file: path, tensor: name) }
        return index.tensors[i]
    }

    /// A copy of the file from byte `fileOffset` on, `count` bytes long (`MappedFile.readDirect`).
    public typealias Staged = (base: UnsafeRawPointer, fileOffset: Int, count: Int)

    /// Decodes `info` in its stored dtype into `destination` (`info.byteCount` bytes), checking each chunk's checksum.
    /// With `release`, each chunk's mapped pages are dropped from this process as soon as it is decoded, so
    /// streaming a layer never holds more than a chunk of it compressed.
    /// Chunks inside `staged` are read from there instead of the map.
    public func read(
        _ info: TensorInfo, into destination: UnsafeMutableRawPointer, scratch: ChunkScratch,
        release: Bool = false, staged: Staged? = nil
    ) throws(HRZError) {
        var out = destination
        for c in info.chunks.indices {
            try readChunk(info, chunk: c, into: out, scratch: scratch, release: release, staged: staged)
            out += info.chunks[c].elements * info.dtype.size
        }
    }

    /// Chunk `c` of `info` decoded in its stored dtype into `destination` (`elements · dtype.size` bytes); as
    /// `read`. `verified`: the caller has already checked this chunk with `verify` (same `staged`).
    public func readChunk(
        _ info: TensorInfo, chunk c: Int, into destination: UnsafeMutableRawPointer, scratch: ChunkScratch,
        release: Bool = false, staged: Staged? = nil, verified: Bool = false
    ) throws(HRZError) {
        let chunk = info.chunks[c]
        let stored = verified ? storage(of: chunk, staged: staged) : try verifiedChunk(info, c, staged: staged)
        do {
            try ChunkCodec.decode(stored, chunk: chunk, dtype: info.dtype, into: destination, scratch: scratch)
        } catch {
            throw HRZError(error, file: path, offset: chunk.offset, tensor: info.name, chunk: c)
        }
        if release { file.release(offset: chunk.offset, length: chunk.storedLength) }
    }

    /// Chunk `c` of a two-plane (16-bit) tensor as its byte planes, not interleaved, checksum checked: raw planes
    /// point into `staged` (or the map), compressed ones are decoded to `targets` (`ChunkCodec.decodePlanes`).
    /// The pointers stay valid while that storage does, so the chunk's pages are not released.
    public func readPlanes(
        _ info: TensorInfo, chunk c: Int,
        into targets: (high: UnsafeMutableRawPointer, low: UnsafeMutableRawPointer),
        scratch: ChunkScratch, staged: Staged? = nil,
        verified: Bool = false
    ) throws(HRZError) -> (high: UnsafePointer<UInt8>, low: UnsafePointer<UInt8>) {
        let chunk = info.chunks[c]
        let stored = verified ? storage(of: chunk, staged: staged) : try verifiedChunk(info, c, staged: staged)
        do {
            return try ChunkCodec.decodePlanes(stored, chunk: chunk, into: targets, scratch: scratch)
        } catch {
            throw HRZError(error, file: path, offset: chunk.offset, tensor: info.name, chunk: c)
        }
    }

    /// Checks the checksums of two chunks in one pass over memory (`XXH64.hash(_:count:_:count:)`, faster from
    /// memory than two passes); the error names the first chunk that does not match.
    public func verify(_ a: (info: TensorInfo, chunk: Int), _ b: (info: TensorInfo, chunk: Int), staged: Staged? = nil) throws(HRZError) {
        let ca = a.info.chunks[a.chunk], cb = b.info.chunks[b.chunk]
        let sums = XXH64.hash(storage(of: ca, staged: staged), count: ca.storedLength, storage(of: cb, staged: staged), count: cb.storedLength)
        try check(a.info, a.chunk, actual: sums.0)
        try check(b.info, b.chunk, actual: sums.1)
    }

    /// Where chunk `c` of `info` is stored, once its bytes match the chunk's checksum.
    private func verifiedChunk(_ info: TensorInfo, _ c: Int, staged: Staged?) throws(HRZError) -> UnsafeRawPointer {
        let chunk = info.chunks[c]
        let stored = storage(of: chunk, staged: staged)
        try check(info, c, actual: XXH64.hash(stored, count: chunk.storedLength))
        return stored
    }

    /// The chunk's stored bytes: inside `staged` when it holds the whole chunk, else the map.
    private func storage(of chunk: ChunkInfo, staged: Staged?) -> UnsafeRawPointer {
        if let staged, chunk.offset >= staged.fileOffset, chunk.offset + chunk.storedLength <= staged.fileOffset + staged.count {
            return staged.base + (chunk.offset - staged.fileOffset)
        }
        return file.base + chunk.offset
    }

    private func check(_ info: TensorInfo, _ c: Int, actual: UInt64) throws(HRZError) {
        let chunk = info.chunks[c]
        let expected = UInt64(chunk.xxh64, radix: 16) ?? 0
        guard expected == actual else {
            throw HRZError(
                .checksumMismatch(expected: expected, actual: actual), file: path, offset: chunk.offset,
                tensor: info.name, chunk: c)
        }
    }

    /// The tensor's bytes in its stored dtype.
    public func bytes(_ name: String, scratch: ChunkScratch = ChunkScratch()) throws(HRZError) -> [UInt8] {
        let info = try tensor(name)
        var out = [UInt8](repeating: 0, count: info.byteCount)
        var failure: HRZError?
        out.withUnsafeMutableBytes { b in
            guard let base = b.baseAddress else { return }
            do throws(HRZError) { try read(info, into: base, scratch: scratch) } catch { failure = error }
        }
        if let failure { throw failure }
        return out
    }

    /// The tensor widened to fp32.
    public func floats(_ name: String, scratch: ChunkScratch = ChunkScratch()) throws(HRZError) -> [Float] {
        let info = try tensor(name)
        let raw = try bytes(name, scratch: scratch)
        var out = [Float](repeating: 0, count: info.elementCount)
        raw.withUnsafeBytes { r in
            out.withUnsafeMutableBytes { o in
                if let s = r.baseAddress, let d = o.baseAddress { info.dtype.convert(s, to: .f32, d, count: info.elementCount) }
            }
        }
        return out
    }

    /// Decodes every chunk and checks every checksum and the zero padding; returns every problem found.
    public func verify(progress: ((Int) -> Void)? = nil) -> [HRZError] {
        var problems: [HRZError] = []
        let scratch = ChunkScratch()
        var expectedPad = HRZLayout.headerSize
        for t in index.tensors {
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(1, (t.chunks.map(\.elements).max() ?? 1) * t.dtype.size), alignment: 64)
            defer { buffer.deallocate() }
            for (c, chunk) in t.chunks.enumerated() {
                if let bad = (expectedPad..<chunk.offset).first(where: { file.bytes[$0] != 0 }) {
                    problems.append(HRZError(.malformed("non-zero padding byte"), file: path, offset: bad))
                }
                do {
                    try readChunk(t, chunk: c, into: buffer, scratch: scratch)
                } catch {
                    problems.append(error)
                }
                expectedPad = chunk.offset + chunk.storedLength
                progress?(chunk.elements * t.dtype.size)
            }
        }
        return problems
    }

    /// A stable id of the model's content: SHA-256 of the index bytes, which hold every chunk's checksum.
    /// Costs O(index), computed once when the file is opened, so results files can name a 132 GB model
    /// without rereading it, and every recorded input can name it for free.
    public let contentID: String

    /// Elements in decoder-layer tensors: the parameters pruning removes from.
    public var layerParameters: Int { index.tensors.filter { $0.layer != nil }.reduce(0) { $0 + $1.elementCount } }

    /// Raw and stored bytes per layer (nil key: model-level tensors).
    public func layerSizes() -> [(layer: Int?, raw: Int, stored: Int)] {
        var order: [Int?] = []
        var sums: [Int?: (Int, Int)] = [:]
        for t in index.tensors {
            if sums[t.layer] == nil { order.append(t.layer) }
            let s = sums[t.layer] ?? (0, 0)
            sums[t.layer] = (s.0 + t.byteCount, s.1 + t.storedByteCount)
        }
        return order.map { ($0, sums[$0]!.0, sums[$0]!.1) }
    }
}
