import Basics
import Files

/// An error reading or writing an `.hrz` file: what failed, and where in the data.
///
/// Printed as `model.hrz: tensor 'layers.3.fc1.weight', chunk 2 at byte 1048576: checksum mismatch …`.
public struct HRZError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Error, Equatable, Sendable {
        /// The file ends before a structure it declares; `needed` is the byte count the reader wanted.
        case truncated(needed: Int)
        /// The first 8 bytes are not the HRZ magic.
        case badMagic
        /// A major version this reader does not understand (minor versions are always readable).
        case unsupportedVersion(major: Int, minor: Int)
        /// Stored bytes do not hash to the recorded xxHash64.
        case checksumMismatch(expected: UInt64, actual: UInt64)
        /// The header or index disagrees with itself or with the file (sizes, offsets, overlaps).
        case malformed(String)
        /// The JSON index could not be decoded; the string is the dotted key path and reason.
        case badIndex(String)
        /// A tensor the caller asked for is not in the file.
        case missingTensor
        /// zstd reported an error; the string names the C function and zstd's message.
        case zstd(String)
        /// An operating-system call failed (open, mmap, write, rename …).
        case io(String)
    }

    /// The HRZ major version this build reads (`HRZLayout.majorVersion`), kept here so the message can say it.
    public static let readerMajorVersion = 1

    public var kind: Kind
    /// The file as the user typed it.
    public var file: String
    /// Absolute byte offset in `file`, when known.
    public var offset: Int?
    /// Canonical tensor name, when known.
    public var tensor: String?
    /// Chunk index within the tensor, when known.
    public var chunk: Int?

    public init(_ kind: Kind, file: String, offset: Int? = nil, tensor: String? = nil, chunk: Int? = nil) {
        self.kind = kind
        self.file = file
        self.offset = offset
        self.tensor = tensor
        self.chunk = chunk
    }

    public var description: String {
        var place: [String] = []
        if let tensor { place.append("tensor '\(tensor)'") }
        if let chunk { place.append("chunk \(chunk)") }
        if let offset { place.append("at byte \(offset)") }
        return ([file] + (place.isEmpty ? [] : [place.joined(separator: ", ")]) + [reason]).joined(separator: ": ")
    }

    public var reason: String {
        switch kind {
        case .truncated(let needed): return "file is truncated (needed \(needed) more bytes)"
        case .badMagic: return "not an HRZ file (bad magic)"
        case .unsupportedVersion(let major, let minor):
            return "unsupported HRZ version \(major).\(minor) (this reader understands major version \(HRZError.readerMajorVersion))"
        case .checksumMismatch(let expected, let actual):
            return "checksum mismatch (expected \(hex64(expected)), got \(hex64(actual)))"
        case .malformed(let why): return "malformed file: \(why)"
        case .badIndex(let why): return "bad index: \(why)"
        case .missingTensor: return "no such tensor"
        case .zstd(let why): return "zstd error: \(why)"
        case .io(let why): return why
        }
    }
}

/// `0x` followed by 16 lowercase hex digits.
public func hex64(_ value: UInt64) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: 16 - digits.count) + digits
}

extension HRZError {
    /// Wraps a worker's error for `ResultSlots.values`: an HRZ kind gets the file it concerns.
    public static func wrapping(file: String) -> (Error) -> Error {
        { error in
            if let kind = error as? HRZError.Kind { return HRZError(kind, file: file) }
            if error is SlotError { return HRZError(.malformed("internal: a work item did not run"), file: file) }
            return error
        }
    }
}

extension HRZError {
    /// A file error of the container's own file, as an HRZ error of the same file and offset.
    public init(_ error: FileError) {
        self.init(.io(error.message), file: error.file, offset: error.offset)
    }
}

/// Runs a Files operation inside a `throws(HRZError)` body.
func io<T>(_ body: () throws(FileError) -> T) throws(HRZError) -> T {
    do { return try body() } catch { throw HRZError(error) }
}
