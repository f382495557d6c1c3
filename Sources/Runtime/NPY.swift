/// NumPy `.npy` version 1.0, float32 little-endian, C order (numpy `lib/format.py`, "Format Version 1.0").
import Foundation
import HRZFormat
import Files

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
        let (shape, values) = try readNumbers(path, allowDouble: false)
        return (shape, values.map(Float.init))
    }

    /// Reads a float32 or float64 C-order `.npy` (what `np.save(t.numpy())` writes for a torch tensor) as doubles.
    public static func readNumbers(_ path: String, allowDouble: Bool = true) throws -> (shape: [Int], values: [Double]) {
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
        let width: Int
        if header.contains("'descr': '<f4'") {
            width = 4
        } else if allowDouble && header.contains("'descr': '<f8'") {
            width = 8
        } else {
            throw RuntimeError("\(path): field 'descr' must be '<f4' (float32)\(allowDouble ? " or '<f8' (float64)" : ""): \(header)")
        }
        guard header.contains("'fortran_order': False") else { throw RuntimeError("\(path): field 'fortran_order' must be False") }
        guard let open = header.range(of: "'shape': ("), let close = header[open.upperBound...].firstIndex(of: ")") else {
            throw RuntimeError("\(path): field 'shape' missing")
        }
        let fields = header[open.upperBound..<close].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let shape = fields.compactMap { Int($0) }
        guard shape.count == fields.count, shape.allSatisfy({ $0 >= 0 && $0 <= 1 << 40 }), let count = checkedElementCount(shape) else {
            throw RuntimeError("\(path): field 'shape' is not a tuple of sizes: \(header)")
        }
        let dataStart = start + headerLength
        guard bytes.count - dataStart == count * width else {
            throw RuntimeError("\(path): data is \(bytes.count - dataStart) bytes, shape \(shape) needs \(count * width)")
        }
        let values: [Double] = bytes[dataStart...].withUnsafeBytes { raw in
            width == 4
                ? (0..<count).map { Double(raw.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self)) }
                : (0..<count).map { raw.loadUnaligned(fromByteOffset: 8 * $0, as: Double.self) }
        }
        return (shape, values)
    }
}
