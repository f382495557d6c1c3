/// safetensors: an 8-byte little-endian header length, a JSON header, then raw tensor data.
/// Spec: huggingface/safetensors README ("Format"). Header capped at 100 MB, as the reference reader does.
import Foundation
import HRZFormat

public struct SafetensorsFile: CheckpointSource {
    public let path: String
    public let tensors: [SourceTensor]
    public let metadata: [String: String]

    static let maxHeader = 100_000_000

    public init(path: String) throws(CheckpointError) {
        self.path = path
        let mapping: MappedFile
        do { mapping = try MappedFile(path: path) } catch { throw CheckpointError(.io(error.description), file: path) }
        let bytes = mapping.bytes
        let headerLength = try readLE(bytes, 0, UInt64.self, file: path)
        guard headerLength <= UInt64(Self.maxHeader) else {
            throw CheckpointError(.malformed("header length \(headerLength) exceeds the 100 MB cap"), file: path, offset: 0)
        }
        let dataStart = 8 + Int(headerLength)
        guard dataStart <= bytes.count else {
            throw CheckpointError(.truncated(needed: dataStart - bytes.count), file: path, offset: bytes.count)
        }
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(UnsafeRawBufferPointer(rebasing: bytes[8..<dataStart])))
        } catch {
            throw CheckpointError(.malformed("header is not valid JSON"), file: path, offset: 8)
        }
        guard let header = json as? [String: Any] else {
            throw CheckpointError(.malformed("header is not a JSON object"), file: path, offset: 8)
        }
        var tensors: [SourceTensor] = []
        var metadata: [String: String] = [:]
        for (name, value) in header.sorted(by: { $0.key < $1.key }) {
            if name == "__metadata__" {
                metadata = (value as? [String: String]) ?? [:]
                continue
            }
            func bad(_ why: String) -> CheckpointError { CheckpointError(.malformed(why), file: path, offset: 8, tensor: name) }
            guard let entry = value as? [String: Any], let dtypeName = entry["dtype"] as? String,
                  let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int], offsets.count == 2 else {
                throw bad("header entry needs dtype, shape and data_offsets")
            }
            guard let dtype = DType(loose: dtypeName), dtypeName == dtypeName.uppercased() else {
                throw CheckpointError(.unsupportedDType(dtypeName), file: path, offset: 8, tensor: name)
            }
            guard shape.allSatisfy({ $0 >= 0 }), shape.count <= 8 else { throw bad("invalid shape \(shape)") }
            guard let count = checkedElementCount(shape), offsets[0] >= 0, offsets[1] <= bytes.count, offsets[1] >= offsets[0], offsets[1] - offsets[0] == count * dtype.size else {
                throw bad("data_offsets \(offsets) do not hold \(shape) of \(dtypeName)")
            }
            guard dataStart + offsets[1] <= bytes.count else {
                throw CheckpointError(.truncated(needed: dataStart + offsets[1] - bytes.count), file: path,
                                      offset: bytes.count, tensor: name)
            }
            var strides = [Int](repeating: 1, count: shape.count)
            for d in stride(from: shape.count - 2, through: 0, by: -1) { strides[d] = strides[d + 1] * shape[d + 1] }
            tensors.append(SourceTensor(name: name, dtype: dtype, shape: shape, strides: strides, mapping: mapping,
                                        storageByteOffset: dataStart + offsets[0], storageOffset: 0, file: path))
        }
        self.tensors = tensors
        self.metadata = metadata
    }
}
