/// A tensor as it lies in a checkpoint file: a strided view of a mapped storage. See `CheckpointSource`.
import HRZFormat
import Files

public struct SourceTensor: @unchecked Sendable {
    /// The name in the file (HF's, prefix included).
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    /// In elements, one per dimension (contiguous row-major for safetensors).
    public var strides: [Int]
    /// The mapped file that holds the storage; kept alive by this reference.
    public var mapping: MappedFile
    /// Byte offset of the storage's first element in `mapping`.
    public var storageByteOffset: Int
    /// Element offset of the view within its storage.
    public var storageOffset: Int
    /// Which file, for messages.
    public var file: String

    public var elementCount: Int { shape.reduce(1, *) }

    /// Whether the view is dense row-major, so ranges are plain byte ranges.
    public var isContiguous: Bool {
        var expected = 1
        for (size, stride) in zip(shape, strides).reversed() {
            if size != 1 && stride != expected { return false }
            expected *= size
        }
        return true
    }

    /// Writes elements `range` (in row-major order of the view) as `target` to `destination`.
    public func copy(_ range: Range<Int>, as target: DType, to destination: UnsafeMutableRawPointer) {
        let base = mapping.base + storageByteOffset
        if isContiguous {
            dtype.convert(base + (storageOffset + range.lowerBound) * dtype.size, to: target, destination, count: range.count)
            return
        }
        // Strided gather, one element at a time: rare in HF checkpoints (views saved without `.contiguous()`).
        var index = [Int](repeating: 0, count: shape.count)
        var rest = range.lowerBound
        for d in stride(from: shape.count - 1, through: 0, by: -1) {
            index[d] = rest % shape[d]
            rest /= shape[d]
        }
        var out = destination
        for _ in range {
            var element = storageOffset
            for d in 0..<shape.count { element += index[d] * strides[d] }
            dtype.convert(base + element * dtype.size, to: target, out, count: 1)
            out += target.size
            var d = shape.count - 1
            while d >= 0 {
                index[d] += 1
                if index[d] < shape[d] { break }
                index[d] = 0
                d -= 1
            }
        }
    }

    /// The byte range of the storage that this view can touch.
    public var touchedBytes: Range<Int> {
        guard elementCount > 0 else { return storageByteOffset..<storageByteOffset }
        let last = storageOffset + zip(shape, strides).reduce(0) { $0 + ($1.0 - 1) * $1.1 }
        return (storageByteOffset + storageOffset * dtype.size)..<(storageByteOffset + (last + 1) * dtype.size)
    }

    /// Drops the tensor's pages from this process once it has been converted, so RSS stays bounded.
    public func release() {
        let r = touchedBytes
        mapping.release(offset: r.lowerBound, length: r.count)
    }
}

/// A checkpoint file format: today safetensors and the torch zip pickle.
public protocol CheckpointSource {
    var path: String { get }
    var tensors: [SourceTensor] { get }
}

/// Reads a little-endian integer at `offset` after checking bounds.
@inline(__always)
func readLE<T: FixedWidthInteger>(_ bytes: UnsafeRawBufferPointer, _ offset: Int, _: T.Type, file: String) throws(CheckpointError) -> T {
    guard offset >= 0, offset + MemoryLayout<T>.size <= bytes.count else {
        throw CheckpointError(.truncated(needed: offset + MemoryLayout<T>.size - bytes.count), file: file, offset: offset)
    }
    return T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
}

extension CheckpointSource {
    /// Checks the integrity of the data behind `tensor` where the format records a checksum (zip CRC-32).
    /// safetensors records none, so there it is a no-op.
    public func verifyData(of tensor: String) throws(CheckpointError) {
        if let torch = self as? TorchCheckpoint { try torch.verifyStorage(of: tensor) }
    }
}
