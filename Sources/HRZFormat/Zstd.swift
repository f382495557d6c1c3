/// The one file that imports CZstd. Each wrapper owns its context and frees it in `deinit`.
import CZstd
import Files

/// Turns a zstd return code into a value or a typed error naming the C function.
@inline(__always)
func zstdCheck(_ code: Int, _ function: String) throws(HRZError.Kind) -> Int {
    if ZSTD_isError(code) != 0 {
        throw .zstd("\(function): \(String(cString: ZSTD_getErrorName(code)))")
    }
    return code
}

/// A reusable compression context. Not thread-safe: use one per thread.
public final class ZstdCompressor {
    private let context: OpaquePointer
    public let level: Int32

    public init(level: Int) {
        // C: ZSTD_createCCtx. Returns nil only when out of memory.
        guard let context = ZSTD_createCCtx() else { fatalError("ZSTD_createCCtx: out of memory") }
        self.context = context
        self.level = Int32(level)
    }

    deinit { ZSTD_freeCCtx(context) }

    /// Worst-case compressed size of `count` bytes. C: `ZSTD_compressBound`.
    public static func bound(_ count: Int) -> Int { ZSTD_compressBound(count) }

    /// Compresses `count` bytes into `destination` (capacity at least `bound(count)`); returns the frame size.
    /// C: `ZSTD_compressCCtx`.
    public func compress(
        _ source: UnsafeRawPointer, count: Int,
        into destination: UnsafeMutableRawPointer, capacity: Int
    ) throws(HRZError.Kind) -> Int {
        try zstdCheck(ZSTD_compressCCtx(context, destination, capacity, source, count, level), "ZSTD_compressCCtx")
    }
}

/// A reusable decompression context. Not thread-safe: use one per thread.
public final class ZstdDecompressor {
    private let context: OpaquePointer

    public init() {
        // C: ZSTD_createDCtx. Returns nil only when out of memory.
        guard let context = ZSTD_createDCtx() else { fatalError("ZSTD_createDCtx: out of memory") }
        self.context = context
    }

    deinit { ZSTD_freeDCtx(context) }

    /// Decompresses one frame of `count` bytes; the output must be exactly `expected` bytes.
    /// C: `ZSTD_decompressDCtx`.
    public func decompress(
        _ source: UnsafeRawPointer, count: Int,
        into destination: UnsafeMutableRawPointer, expected: Int
    ) throws(HRZError.Kind) {
        let written = try zstdCheck(
            ZSTD_decompressDCtx(context, destination, expected, source, count),
            "ZSTD_decompressDCtx")
        if written != expected {
            throw .zstd("ZSTD_decompressDCtx: frame decoded to \(written) bytes, expected \(expected)")
        }
    }
}

extension ZstdDecompressor {
    /// Decompresses a whole zstd frame that records its content size (as the `zstd` tool and python-zstandard
    /// write by default). C: `ZSTD_getFrameContentSize`, `ZSTD_decompressDCtx`.
    public func decompressFrame(_ data: [UInt8], limit: Int = 1 << 30) throws(HRZError.Kind) -> [UInt8] {
        let size = data.withUnsafeBytes { ZSTD_getFrameContentSize($0.baseAddress, $0.count) }
        guard size != ZSTD_CONTENTSIZE_ERROR, size != ZSTD_CONTENTSIZE_UNKNOWN, size <= UInt64(limit) else {
            throw .zstd("ZSTD_getFrameContentSize: frame has no usable content size")
        }
        var out = [UInt8](repeating: 0, count: Int(size))
        var failure: HRZError.Kind?
        data.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { dst in
                do throws(HRZError.Kind) {
                    try decompress(src.baseAddress!, count: src.count, into: dst.baseAddress!, expected: Int(size))
                } catch { failure = error }
            }
        }
        if let failure { throw failure }
        return out
    }
}
