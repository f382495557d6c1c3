/// The fixed 64-byte header at offset 0. See `formats/HRZ.md` §2–§3. All integers little-endian.
import Files
public enum HRZLayout {
    /// `\x89 H R Z \r \n \x1a \n`: the high byte catches 7-bit transfers, CR/LF catch newline mangling (as PNG).
    public static let magic: [UInt8] = [0x89, 0x48, 0x52, 0x5A, 0x0D, 0x0A, 0x1A, 0x0A]
    public static let majorVersion = HRZError.readerMajorVersion
    public static let minorVersion = 0
    public static let headerSize = 64
    /// Every chunk starts on this boundary, so it can be mapped and advised on its own.
    public static let alignment = 4096
    /// Caps a reader's allocation for the JSON index (a 66B model's index is a few MB).
    public static let maxIndexLength = 256 << 20

    @inline(__always) public static func alignUp(_ value: Int) -> Int { (value + alignment - 1) / alignment * alignment }
}

/// The decoded header.
public struct HRZHeader: Equatable, Sendable {
    public var major: Int
    public var minor: Int
    public var indexOffset: Int
    public var indexLength: Int
    public var fileLength: Int
    /// xxHash64 of the index bytes.
    public var indexChecksum: UInt64

    public init(
        major: Int = HRZLayout.majorVersion, minor: Int = HRZLayout.minorVersion,
        indexOffset: Int, indexLength: Int, fileLength: Int, indexChecksum: UInt64
    ) {
        self.major = major
        self.minor = minor
        self.indexOffset = indexOffset
        self.indexLength = indexLength
        self.fileLength = fileLength
        self.indexChecksum = indexChecksum
    }

    /// The 64 header bytes, header checksum included.
    public func encoded() -> [UInt8] {
        var bytes = HRZLayout.magic
        func put<T: FixedWidthInteger>(_ value: T) {
            withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
        }
        put(UInt16(major)); put(UInt16(minor)); put(UInt32(0))
        put(UInt64(indexOffset)); put(UInt64(indexLength)); put(UInt64(fileLength))
        put(indexChecksum); put(UInt64(0))
        put(XXH64.hash(bytes))
        return bytes
    }

    /// Decodes and checks the header: magic, header checksum, version, flags. `file` names errors.
    public static func decode(_ data: UnsafeRawBufferPointer, file: String) throws(HRZError) -> HRZHeader {
        guard data.count >= 8 else { throw HRZError(.truncated(needed: 8 - data.count), file: file, offset: data.count) }
        for i in 0..<8 where data[i] != HRZLayout.magic[i] { throw HRZError(.badMagic, file: file, offset: i) }
        guard data.count >= HRZLayout.headerSize else {
            throw HRZError(.truncated(needed: HRZLayout.headerSize - data.count), file: file, offset: data.count)
        }
        func u64(_ at: Int) -> UInt64 { UInt64(littleEndian: data.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
        let major = Int(UInt16(littleEndian: data.loadUnaligned(fromByteOffset: 8, as: UInt16.self)))
        let minor = Int(UInt16(littleEndian: data.loadUnaligned(fromByteOffset: 10, as: UInt16.self)))
        // The version is checked before the checksum, so a future file whose header grew says "version", not "corrupt".
        guard major == HRZLayout.majorVersion else {
            throw HRZError(.unsupportedVersion(major: major, minor: minor), file: file, offset: 8)
        }
        let expected = u64(56)
        let actual = XXH64.hash(data.baseAddress!, count: 56)
        guard expected == actual else {
            throw HRZError(.checksumMismatch(expected: expected, actual: actual), file: file, offset: 56)
        }
        let flags = UInt32(littleEndian: data.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
        guard flags == 0 else { throw HRZError(.malformed("unknown header flags \(flags)"), file: file, offset: 12) }
        let limit = UInt64(Int.max / 2)
        let fields = [u64(16), u64(24), u64(32)]
        if let bad = fields.firstIndex(where: { $0 > limit }) {
            throw HRZError(.malformed("header field out of range"), file: file, offset: 16 + 8 * bad)
        }
        return HRZHeader(
            major: major, minor: minor, indexOffset: Int(fields[0]), indexLength: Int(fields[1]),
            fileLength: Int(fields[2]), indexChecksum: u64(40))
    }
}
