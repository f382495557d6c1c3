/// Output written to a temporary file beside the target and renamed into place on `commit()`,
/// so a reader never sees a partial file and a failed run leaves nothing behind.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public final class AtomicFile {
    public let path: String
    public let temporaryPath: String
    private var fd: Int32
    /// Bytes written so far (the next sequential write offset).
    public private(set) var position = 0
    private var committed = false
    /// This file's slot in `FileGuard`'s list of partial files that a stopping signal removes.
    private var partialSlot: Int?

    /// Refuses a destination that is an input of this run or not a regular file, and removes partial files
    /// that killed earlier runs left for the same destination.
    public init(path: String) throws(FileError) {
        self.path = path
        temporaryPath = "\(path).partial-\(FileGuard.hostTag)-\(getpid())"
        try FileGuard.checkReplaceable(path)
        FileGuard.removeStalePartials(of: path)
        partialSlot = FileGuard.registerPartial(temporaryPath)
        fd = open(temporaryPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            FileGuard.unregisterPartial(partialSlot)
            throw FileError(file: path, "cannot create \(temporaryPath): \(String(cString: strerror(errno)))")
        }
    }

    deinit { if !committed { discard() } }

    public func write(_ data: UnsafeRawBufferPointer) throws(FileError) {
        guard var p = data.baseAddress else { return }
        var left = data.count
        while left > 0 {
            let n = Glibc.write(fd, p, left)
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError(file: path, offset: position, "write failed: \(String(cString: strerror(errno)))")
            }
            p += n
            left -= n
            position += n
        }
    }

    public func write(_ bytes: [UInt8]) throws(FileError) {
        var failure: FileError?
        bytes.withUnsafeBytes { b in
            do throws(FileError) { try write(b) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// Writes zeros up to `offset`.
    public func pad(to offset: Int) throws(FileError) {
        if offset > position { try write([UInt8](repeating: 0, count: offset - position)) }
    }

    /// Overwrites bytes at `offset` without moving `position`. C: `pwrite`.
    public func write(_ bytes: [UInt8], at offset: Int) throws(FileError) {
        let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
        guard n == bytes.count else {
            throw FileError(file: path, offset: offset, "pwrite failed: \(String(cString: strerror(errno)))")
        }
    }

    /// Flushes to disk and renames over `path`.
    public func commit() throws(FileError) {
        guard fsync(fd) == 0 else { throw FileError(file: path, "fsync failed: \(String(cString: strerror(errno)))") }
        close(fd)
        fd = -1
        do throws(FileError) { try FileGuard.checkReplaceable(path) } catch {
            discard()
            throw error
        }
        guard rename(temporaryPath, path) == 0 else {
            let why = String(cString: strerror(errno))
            unlink(temporaryPath)
            FileGuard.unregisterPartial(partialSlot)
            throw FileError(file: path, "cannot rename \(temporaryPath) into place: \(why)")
        }
        committed = true
        FileGuard.unregisterPartial(partialSlot)
    }

    /// Closes and deletes the temporary file.
    public func discard() {
        if fd >= 0 { close(fd); fd = -1 }
        unlink(temporaryPath)
        committed = true
        FileGuard.unregisterPartial(partialSlot)
        partialSlot = nil
    }

    /// Writes `data` to `path` atomically in one call.
    public static func write(_ data: [UInt8], to path: String) throws(FileError) {
        let file = try AtomicFile(path: path)
        try file.write(data)
        try file.commit()
    }
}
