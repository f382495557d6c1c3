/// A reader for zip archives of stored (uncompressed) entries, zip64 included: the container of `torch.save`.
/// Spec: PKWARE APPNOTE.TXT §4.3 (structure) and §4.5.3 (zip64 extended information).
import HRZFormat
import Files

public struct ZipEntry: Sendable {
    public var name: String
    /// Absolute offset of the entry's data in the archive.
    public var dataOffset: Int
    public var size: Int
    public var crc32: UInt32
}

public struct ZipArchive {
    public let path: String
    public let mapping: MappedFile
    public let entries: [String: ZipEntry]

    static let maxEntries = 10_000_000

    public init(path: String) throws(CheckpointError) {
        self.path = path
        do { mapping = try MappedFile(path: path) } catch { throw CheckpointError(.io(error.description), file: path) }
        let b = mapping.bytes
        let file = path
        func u16(_ o: Int) throws(CheckpointError) -> Int { Int(try readLE(b, o, UInt16.self, file: file)) }
        func u32(_ o: Int) throws(CheckpointError) -> Int { Int(try readLE(b, o, UInt32.self, file: file)) }
        func u64(_ o: Int) throws(CheckpointError) -> Int {
            let v = try readLE(b, o, UInt64.self, file: file)
            guard v <= UInt64(Int.max / 2) else { throw CheckpointError(.malformed("zip64 field out of range"), file: file, offset: o) }
            return Int(v)
        }
        // End of central directory: the last signature within the final 22 + 65535 bytes.
        guard b.count >= 22 else { throw CheckpointError(.truncated(needed: 22 - b.count), file: path, offset: 0) }
        var eocd = -1
        var o = b.count - 22
        while o >= max(0, b.count - 22 - 65535) {
            if try u32(o) == 0x0605_4b50 { eocd = o; break }
            o -= 1
        }
        guard eocd >= 0 else {
            throw CheckpointError(
                .malformed("not a zip archive (no end-of-central-directory record); a legacy non-zip torch file is not supported"),
                file: path, offset: b.count)
        }
        var count = try u16(eocd + 10)
        var cdSize = try u32(eocd + 12)
        var cdOffset = try u32(eocd + 16)
        if count == 0xFFFF || cdSize == 0xFFFF_FFFF || cdOffset == 0xFFFF_FFFF {
            let locator = eocd - 20
            guard locator >= 0, try u32(locator) == 0x0706_4b50 else {
                throw CheckpointError(.malformed("zip64 locator missing"), file: path, offset: max(0, locator))
            }
            let record = try u64(locator + 8)
            guard try u32(record) == 0x0606_4b50 else {
                throw CheckpointError(.malformed("bad zip64 end-of-central-directory signature"), file: path, offset: record)
            }
            count = try u64(record + 32)
            cdSize = try u64(record + 40)
            cdOffset = try u64(record + 48)
        }
        guard count <= Self.maxEntries, cdOffset + cdSize <= b.count else {
            throw CheckpointError(
                .malformed("central directory (\(count) entries at \(cdOffset), \(cdSize) bytes) lies outside the file"),
                file: path, offset: eocd)
        }
        var entries: [String: ZipEntry] = [:]
        var p = cdOffset
        for _ in 0..<count {
            guard try u32(p) == 0x0201_4b50 else {
                throw CheckpointError(.malformed("bad central directory entry signature"), file: path, offset: p)
            }
            let method = try u16(p + 10)
            let crc = UInt32(try u32(p + 16))
            var compressed = try u32(p + 20)
            var size = try u32(p + 24)
            let nameLength = try u16(p + 28), extraLength = try u16(p + 30), commentLength = try u16(p + 32)
            var local = try u32(p + 42)
            let nameStart = p + 46
            guard nameStart + nameLength + extraLength + commentLength <= b.count else {
                throw CheckpointError(.truncated(needed: nameStart + nameLength + extraLength + commentLength - b.count), file: path, offset: p)
            }
            let name = String(decoding: UnsafeRawBufferPointer(rebasing: b[nameStart..<(nameStart + nameLength)]), as: UTF8.self)
            // zip64 extra field (0x0001): the 64-bit values, in order, of whichever fields are 0xFFFFFFFF.
            var e = nameStart + nameLength
            let extraEnd = e + extraLength
            while e + 4 <= extraEnd {
                let id = try u16(e), length = try u16(e + 2)
                if id == 0x0001 {
                    var q = e + 4
                    if size == 0xFFFF_FFFF { size = try u64(q); q += 8 }
                    if compressed == 0xFFFF_FFFF { compressed = try u64(q); q += 8 }
                    if local == 0xFFFF_FFFF { local = try u64(q); q += 8 }
                }
                e += 4 + length
            }
            guard method == 0, compressed == size else {
                throw CheckpointError(
                    .malformed("entry '\(name)' is compressed (method \(method)); only stored entries are supported"),
                    file: path, offset: p)
            }
            guard try u32(local) == 0x0403_4b50 else {
                throw CheckpointError(.malformed("bad local header signature for '\(name)'"), file: path, offset: local)
            }
            let dataOffset = local + 30 + (try u16(local + 26)) + (try u16(local + 28))
            guard dataOffset + size <= b.count else {
                throw CheckpointError(.truncated(needed: dataOffset + size - b.count), file: path, offset: dataOffset)
            }
            entries[name] = ZipEntry(name: name, dataOffset: dataOffset, size: size, crc32: crc)
            p = extraEnd + commentLength
        }
        self.entries = entries
    }

    /// The entry's bytes in the mapping (no copy).
    public func data(_ entry: ZipEntry) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: mapping.base + entry.dataOffset, count: entry.size)
    }

    /// Checks an entry against its CRC-32.
    public func verify(_ entry: ZipEntry) throws(CheckpointError) {
        let actual = CRC32.checksum(data(entry))
        guard actual == entry.crc32 else {
            throw CheckpointError(
                .crcMismatch(expected: entry.crc32, actual: actual), file: path + ":" + entry.name,
                offset: entry.dataOffset)
        }
    }
}

/// CRC-32 (ISO-HDLC, reflected polynomial 0xEDB88320) as zip uses, slicing by 8.
public enum CRC32 {
    static let tables: [[UInt32]] = {
        var t = [[UInt32]](repeating: [UInt32](repeating: 0, count: 256), count: 8)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            t[0][i] = c
        }
        for i in 0..<256 {
            for k in 1..<8 { t[k][i] = (t[k - 1][i] >> 8) ^ t[0][Int(t[k - 1][i] & 0xff)] }
        }
        return t
    }()

    public static func checksum(_ data: UnsafeRawBufferPointer, initial: UInt32 = 0) -> UInt32 {
        var crc = ~initial
        guard let base = data.baseAddress else { return initial }
        let flat = tables.flatMap { $0 }
        return flat.withUnsafeBufferPointer { t in
            var i = 0
            let n = data.count
            while i + 8 <= n {
                let lo = base.loadUnaligned(fromByteOffset: i, as: UInt32.self).littleEndian ^ crc
                let hi = base.loadUnaligned(fromByteOffset: i + 4, as: UInt32.self).littleEndian
                crc =
                    t[7 * 256 + Int(lo & 0xff)] ^ t[6 * 256 + Int((lo >> 8) & 0xff)]
                    ^ t[5 * 256 + Int((lo >> 16) & 0xff)] ^ t[4 * 256 + Int(lo >> 24)]
                    ^ t[3 * 256 + Int(hi & 0xff)] ^ t[2 * 256 + Int((hi >> 8) & 0xff)]
                    ^ t[1 * 256 + Int((hi >> 16) & 0xff)] ^ t[Int(hi >> 24)]
                i += 8
            }
            while i < n {
                crc = t[Int((crc ^ UInt32(base.load(fromByteOffset: i, as: UInt8.self))) & 0xff)] ^ (crc >> 8)
                i += 1
            }
            return ~crc
        }
    }
}
