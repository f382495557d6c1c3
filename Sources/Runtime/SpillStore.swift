/// Saved activations (layer inputs for the backward pass and the oracle's replay) held in memory up to a
/// byte budget, the rest in a temporary file. The file is unlinked as soon as it is created, so nothing is
/// left behind whatever way the process ends; reads come back through `pread`, written pages through the
/// page cache, which the kernel may evict under pressure instead of the process being killed.
import Foundation

public final class SpillStore: @unchecked Sendable {
    /// Bytes kept in memory before spilling; nil keeps everything in memory.
    public let budget: Int?
    private let directory: String
    private var resident: [Int: [Float]] = [:]
    /// Handle → (file offset, element count) for spilled arrays.
    private var spilled: [Int: (offset: Int, count: Int)] = [:]
    private var fd: Int32 = -1
    private var fileEnd = 0
    private var next = 0
    public private(set) var residentBytes = 0
    public private(set) var spilledBytes = 0

    public init(budget: Int?, directory: String = NSTemporaryDirectory()) {
        self.budget = budget
        self.directory = directory
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Stores `count` floats and returns a handle for `read`.
    public func append(_ source: UnsafePointer<Float>, count: Int) throws -> Int {
        let handle = next
        next += 1
        let bytes = count * 4
        if let budget, residentBytes + bytes > budget {
            if fd < 0 {
                let path = (directory as NSString).appendingPathComponent("headroom-spill-\(getpid())-\(UInt64.random(in: 0...UInt64.max))")
                fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0o600)
                guard fd >= 0 else { throw RuntimeError("\(path): cannot create the spill file: \(String(cString: strerror(errno)))") }
                unlink(path)
            }
            var done = 0
            while done < bytes {
                let n = pwrite(fd, UnsafeRawPointer(source) + done, bytes - done, off_t(fileEnd + done))
                guard n > 0 else {
                    throw RuntimeError("spill file in \(directory): write failed at byte \(fileEnd + done): \(String(cString: strerror(errno)))")
                }
                done += n
            }
            spilled[handle] = (fileEnd, count)
            fileEnd += bytes
            spilledBytes += bytes
        } else {
            resident[handle] = Array(UnsafeBufferPointer(start: source, count: count))
            residentBytes += bytes
        }
        return handle
    }

    public func append(_ values: [Float]) throws -> Int {
        try values.withUnsafeBufferPointer { try append($0.baseAddress!, count: $0.count) }
    }

    /// Elements stored under `handle`.
    public func count(_ handle: Int) -> Int { resident[handle]?.count ?? spilled[handle]?.count ?? 0 }

    /// Copies the array stored under `handle` to `destination`.
    public func read(_ handle: Int, into destination: UnsafeMutablePointer<Float>) throws {
        if let values = resident[handle] {
            destination.update(from: values, count: values.count)
            return
        }
        guard let (offset, count) = spilled[handle] else { throw RuntimeError("spill store: no array \(handle)") }
        var done = 0
        while done < count * 4 {
            let n = pread(fd, UnsafeMutableRawPointer(destination) + done, count * 4 - done, off_t(offset + done))
            guard n > 0 else { throw RuntimeError("spill file in \(directory): read failed at byte \(offset + done): \(String(cString: strerror(errno)))") }
            done += n
        }
    }

    public func array(_ handle: Int) throws -> [Float] {
        var out = [Float](repeating: 0, count: count(handle))
        try out.withUnsafeMutableBufferPointer { try read(handle, into: $0.baseAddress!) }
        return out
    }
}
