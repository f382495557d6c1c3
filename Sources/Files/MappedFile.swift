/// A read-only `mmap` of a whole file, with page advice. One owner; unmapped in `deinit`.
/// Mapping and advice follow llama.cpp's `llama_mmap`: MAP_SHARED, advice is best effort.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let base: UnsafeRawPointer
    public let count: Int
    /// Kept open for `willNeed`'s reads.
    private let fd: Int32
    /// Slot in `FileGuard`'s table of mappings, so a SIGBUS here (the file was truncated under us) is named.
    private var mappingSlot: Int?

    /// Opens through `FileGuard.openInput`: a FIFO or device is refused before it can block.
    public init(path: String) throws(FileError) {
        self.path = path
        let (fd, size) = try FileGuard.openInput(path)
        self.fd = fd
        count = size
        if count == 0 {
            base = UnsafeRawPointer(UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 1))
            return
        }
        let mapped = mmap(nil, count, PROT_READ, MAP_SHARED, fd, 0)
        guard let mapped, mapped != MAP_FAILED else {
            close(fd)
            throw FileError(file: path, "cannot mmap: \(String(cString: strerror(errno)))")
        }
        base = UnsafeRawPointer(mapped)
        mappingSlot = FileGuard.registerMapping(base: base, count: count, path: path)
    }

    deinit {
        FileGuard.unregisterMapping(mappingSlot)
        FileGuard.releaseInput(fd: fd)
        close(fd)
        if count == 0 { UnsafeMutableRawPointer(mutating: base).deallocate() } else { munmap(UnsafeMutableRawPointer(mutating: base), count) }
    }

    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// Page-aligned sub-range covering `[offset, offset + length)`, clipped to the file.
    private func pageRange(_ offset: Int, _ length: Int) -> (UnsafeMutableRawPointer, Int)? {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = offset / page * page
        let end = min(count, offset + length)
        guard end > start else { return nil }
        return (UnsafeMutableRawPointer(mutating: base + start), end - start)
    }

    /// Brings a range into the page cache ahead of use, blocking until it is there. `madvise(MADV_WILLNEED)`
    /// and `posix_fadvise` were measured to be ignored on this project's VMs (an advised range read no
    /// faster than a cold one), so this reads the range with `pread` into a small scratch buffer: the page
    /// cache fills, this process's RSS does not. Call it off the compute thread. Errors are ignored: the
    /// later real read reports them.
    public func willNeed(offset: Int, length: Int) {
        if let (p, n) = pageRange(offset, length) { _ = madvise(p, n, Int32(MADV_WILLNEED)) }
        let step = 8 << 20
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: step, alignment: 4096)
        defer { scratch.deallocate() }
        var position = max(0, offset)
        let end = min(count, offset + length)
        while position < end {
            let n = pread(fd, scratch, min(step, end - position), off_t(position))
            if n <= 0 { break }
            position += n
        }
    }

    /// Reads the file range covering `[offset, offset + length)` into `buffer` (4096-aligned, at least
    /// `directReadCapacity(length)` bytes) and returns the file offset of `buffer`'s first byte, or nil on
    /// failure (the caller then reads through the map, which reports the error). Uses `O_DIRECT` where the
    /// file system allows it: the device writes straight into `buffer`, with no page-cache copy to pay for in
    /// CPU time and no page-cache churn while streaming a model larger than RAM. Elsewhere (tmpfs), plain `pread`.
    public func readDirect(offset: Int, length: Int, into buffer: UnsafeMutableRawPointer) -> Int? {
        let start = offset / Self.directAlignment * Self.directAlignment
        let end = min(count, offset + length)
        guard end > start else { return nil }
        let a = Self.directAlignment, wanted = (end - start + a - 1) / a * a
        let direct = openDirect == 0 ? -1 : open(path, O_RDONLY | O_NONBLOCK | openDirect)
        defer { if direct >= 0 { close(direct) } }
        let descriptor = direct >= 0 ? direct : fd
        var done = 0
        while done < end - start {  // 64 MiB reads: aligned, and below Linux's 2 GiB per-call limit
            let n = pread(descriptor, buffer + done, min(64 << 20, wanted - done), off_t(start + done))
            if n <= 0 { return nil }
            done += n
        }
        return start
    }

    /// Alignment of `readDirect`'s offsets, lengths and buffer.
    public static let directAlignment = 4096

    /// Bytes `readDirect` may write for a range of `length` bytes.
    public static func directReadCapacity(_ length: Int) -> Int { (length + 2 * directAlignment - 1) / directAlignment * directAlignment }

    /// Lets the kernel drop a range's pages from this process (C: `madvise(MADV_DONTNEED)`); they are re-read on
    /// the next access, so resident memory stays near what is in use. Best effort.
    public func release(offset: Int, length: Int) {
        if let (p, n) = pageRange(offset, length) { _ = madvise(p, n, Int32(MADV_DONTNEED)) }
    }
}

/// Linux's `O_DIRECT`, which Glibc's Swift overlay does not export (it needs `_GNU_SOURCE`); 0 elsewhere.
#if os(Linux) && (arch(arm64) || arch(arm))
private let openDirect: Int32 = 0o200000
#elseif os(Linux)
private let openDirect: Int32 = 0o40000
#else
private let openDirect: Int32 = 0
#endif
