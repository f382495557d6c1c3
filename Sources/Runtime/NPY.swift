/// NumPy `.npy` version 1.0, float32 little-endian, C order (numpy `lib/format.py`, "Format Version 1.0").
import Foundation
import HRZFormat

public enum NPY {
    /// The file bytes of a float32 array of `shape`.
    public static func encode(_ values: [Float], shape: [Int]) -> [UInt8] {
        let dims = shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? "," : "")
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(dims)), }"
        // Magic (6) + version (2) + length (2) + header, padded with spaces and a newline to a multiple of 64.
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        out += [UInt8(header.utf8.count & 0xff), UInt8(header.utf8.count >> 8)]
        out += Array(header.utf8)
        values.withUnsafeBytes { out += $0 }
        return out
    }

    /// Writes atomically.
    public static func write(_ values: [Float], shape: [Int], to path: String) throws {
        try AtomicFile.write(encode(values, shape: shape), to: path)
    }

    /// Reads a float32 C-order `.npy`; returns the shape and values. Errors name the file and field.
    public static func read(_ path: String) throws -> (shape: [Int], values: [Float]) {
        guard let data = try FileGuard.contents(atPath: path) else { throw RuntimeError("\(path): cannot read") }
        let bytes = [UInt8](data)
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1..<6]) == Array("NUMPY".utf8) else {
            throw RuntimeError("\(path): not a .npy file (bad magic at byte 0)")
        }
        let major = bytes[6]
        let lengthBytes = major == 1 ? 2 : 4
        var headerLength = 0
        for i in (0..<lengthBytes).reversed() { headerLength = headerLength << 8 | Int(bytes[8 + i]) }
        let start = 8 + lengthBytes
        guard start + headerLength <= bytes.count else { throw RuntimeError("\(path): truncated header") }
        let header = String(decoding: bytes[start..<(start + headerLength)], as: UTF8.self)
        guard header.contains("'descr': '<f4'") else { throw RuntimeError("\(path): field 'descr' must be '<f4' (float32): \(header)") }
        guard header.contains("'fortran_order': False") else { throw RuntimeError("\(path): field 'fortran_order' must be False") }
        guard let open = header.range(of: "'shape': ("), let close = header[open.upperBound...].firstIndex(of: ")") else {
            throw RuntimeError("\(path): field 'shape' missing")
        }
        let shape = header[open.upperBound..<close].split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let count = shape.reduce(1, *)
        let dataStart = start + headerLength
        guard bytes.count - dataStart == count * 4 else {
            throw RuntimeError("\(path): data is \(bytes.count - dataStart) bytes, shape \(shape) needs \(count * 4)")
        }
        let values = bytes[dataStart...].withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        return (shape, values)
    }
}
