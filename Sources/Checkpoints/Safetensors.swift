/// safetensors: an 8-byte little-endian header length, a JSON header, then raw tensor data.
/// Spec: huggingface/safetensors README ("Format"). Header capped at 100 MB, as the reference reader does.
import Foundation
import HRZFormat
import Files

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
        // JSONSerialization keeps the last of duplicate keys: a tensor would silently get another's weights.
        if let (key, offset) = firstDuplicateKey(UnsafeRawBufferPointer(rebasing: bytes[8..<dataStart])) {
            throw CheckpointError(.malformed("header names tensor '\(key)' twice"), file: path, offset: 8 + offset, tensor: key)
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
                let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int], offsets.count == 2
            else {
                throw bad("header entry needs dtype, shape and data_offsets")
            }
            guard let dtype = DType(loose: dtypeName), dtypeName == dtypeName.uppercased() else {
                throw CheckpointError(.unsupportedDType(dtypeName), file: path, offset: 8, tensor: name)
            }
            guard shape.allSatisfy({ $0 >= 0 }), shape.count <= 8 else { throw bad("invalid shape \(shape)") }
            guard let count = checkedElementCount(shape), offsets[0] >= 0, offsets[1] <= bytes.count, offsets[1] >= offsets[0],
                offsets[1] - offsets[0] == count * dtype.size
            else {
                throw bad("data_offsets \(offsets) do not hold \(shape) of \(dtypeName)")
            }
            guard dataStart + offsets[1] <= bytes.count else {
                throw CheckpointError(
                    .truncated(needed: dataStart + offsets[1] - bytes.count), file: path,
                    offset: bytes.count, tensor: name)
            }
            var strides = [Int](repeating: 1, count: shape.count)
            for d in stride(from: shape.count - 2, through: 0, by: -1) { strides[d] = strides[d + 1] * shape[d + 1] }
            tensors.append(
                SourceTensor(
                    name: name, dtype: dtype, shape: shape, strides: strides, mapping: mapping,
                    storageByteOffset: dataStart + offsets[0], storageOffset: 0, file: path))
        }
        // As the reference reader: sorted by offset, the tensors tile the data exactly, with no overlap, gap or
        // trailing bytes.
        var end = 0
        for t in tensors.sorted(by: { $0.storageByteOffset < $1.storageByteOffset }) {
            let start = t.storageByteOffset - dataStart
            guard start == end else {
                throw CheckpointError(
                    .malformed(
                        start < end
                            ? "data overlaps the previous tensor's (starts at \(start), previous ends at \(end))"
                            : "\(start - end) bytes of data before it belong to no tensor"),
                    file: path, offset: dataStart + min(start, end), tensor: t.name)
            }
            end = start + t.elementCount * t.dtype.size
        }
        guard dataStart + end == bytes.count else {
            throw CheckpointError(
                .malformed("\(bytes.count - dataStart - end) trailing bytes after the last tensor's data"), file: path,
                offset: dataStart + end)
        }
        self.tensors = tensors
        self.metadata = metadata
    }
}

/// The first key that a JSON object's top level repeats, with its byte offset in `json`; nil if none.
/// A small scanner: strings (with escapes) and nesting are tracked; keys are decoded by JSONSerialization.
func firstDuplicateKey(_ json: UnsafeRawBufferPointer) -> (String, Int)? {
    var seen: Set<String> = []
    var depth = 0, i = 0
    var expectKey = false
    while i < json.count {
        let c = json[i]
        switch c {
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            depth += 1
            expectKey = c == UInt8(ascii: "{") && depth == 1
        case UInt8(ascii: "}"), UInt8(ascii: "]"): depth -= 1
        case UInt8(ascii: ","): expectKey = depth == 1
        case UInt8(ascii: "\""):
            let start = i
            i += 1
            while i < json.count && json[i] != UInt8(ascii: "\"") { i += json[i] == UInt8(ascii: "\\") ? 2 : 1 }
            if expectKey {
                let token = Data(UnsafeRawBufferPointer(rebasing: json[start..<min(i + 1, json.count)]))
                if let key = (try? JSONSerialization.jsonObject(with: token, options: .fragmentsAllowed)) as? String {
                    if !seen.insert(key).inserted { return (key, start) }
                }
                expectKey = false
            }
        default: break
        }
        i += 1
    }
    return nil
}
