/// What resuming rests on. Every finished unit of work (an evaluation cell, a sweep point, a scores file, the
/// pruned model) records the inputs it was computed from; a rerun keeps a unit only when its record equals
/// what this run would record, and says in one line what changed otherwise. Writers that share one results
/// file merge into it under an exclusive lock, so two runs into one directory never lose each other's work.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Basics

public enum Headroom {
    /// The tool's version, recorded with every result (a new version may compute differently).
    public static let version = "0.1.0"
}

/// The inputs of one unit of work, as named strings: compared whole, printed by difference.
public struct InputRecord: Codable, Equatable, Sendable {
    public var values: [String: String]

    public init(_ values: [String: String] = [:]) { self.values = values }

    public init(from decoder: Decoder) throws { values = try decoder.singleValueContainer().decode([String: String].self) }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(values)
    }

    public subscript(key: String) -> String? {
        get { values[key] }
        set { values[key] = newValue }
    }

    /// Adds the fields every unit shares: the model's content id, the precision and the tool's version.
    public static func base(modelID: String, precision: String = "fp32") -> InputRecord {
        InputRecord(["model": modelID, "precision": precision, "tool": "headroom \(Headroom.version)"])
    }

    /// nil when `old` equals this record; else one line naming what changed ("limit: 100 → 200").
    public func changes(from old: InputRecord?) -> String? {
        guard let old else { return "no record of its inputs (written by an older version)" }
        guard old != self else { return nil }
        let keys = Set(values.keys).union(old.values.keys).sorted().filter { values[$0] != old.values[$0] }
        return keys.map { key in
            func show(_ v: String?) -> String {
                guard let v else { return "none" }
                if v.hasPrefix("sha256 ") { return String(v.prefix(19)) + "…" }
                return v.count > 40 ? String(v.prefix(16)) + "…" : v
            }
            return "\(key): \(show(old.values[key])) → \(show(values[key]))"
        }.joined(separator: "; ")
    }

    /// A data file's identity: the SHA-256 of its contents and its size (symlinks followed). Contents, not
    /// path or modification time: a copy of the same data on another node or in another build keeps its
    /// results, and any edit recomputes them. Digests are cached per process by path, size and mtime, so a
    /// run hashes each file once. nil when the file does not exist.
    public static func fileIdentity(_ path: String) -> String? {
        guard let stamp = fileStamp(path) else { return nil }
        let key = "\(path)\u{0}\(stamp)"
        digestLock.lock()
        let cached = digests[key]
        digestLock.unlock()
        if let cached { return cached }
        guard let data = try? FileGuard.contents(atPath: path) else { return nil }
        var hasher = SHA256()
        data.withUnsafeBytes { hasher.update($0) }
        let identity = "sha256 \(hasher.finalizeHex()), \(data.count) bytes"
        digestLock.lock()
        digests[key] = identity
        digestLock.unlock()
        return identity
    }

    nonisolated(unsafe) private static var digests: [String: String] = [:]
    private static let digestLock = NSLock()

    /// SHA-256 of a value's canonical JSON: for contents (masks, scores, plans) rather than their paths.
    public static func digest<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return SHA256.hex([UInt8]((try? encoder.encode(value)) ?? Data()))
    }
}

/// An exclusive `flock` on `DIRECTORY/.headroom.lock`, held while a results file is re-read, merged and
/// rewritten. A second writer waits (the lock is held for milliseconds), so it merges into what the first
/// wrote instead of overwriting it.
public enum DirectoryLock {
    public static func withLock<T>(_ directory: String, _ body: () throws -> T) throws -> T {
        let path = (directory as NSString).appendingPathComponent(".headroom.lock")
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError(file: path, "cannot open the lock file: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else { throw FileError(file: path, "cannot lock: \(String(cString: strerror(errno)))") }
        }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }
}

/// A file's inode, size and modification time ("inode size mtime-ns"), nil when it does not exist: cheap to
/// check on every run, and it changes whenever the file is rewritten (atomically or in place). Not a content
/// identity (see `InputRecord.fileIdentity`).
public func fileStamp(_ path: String) -> String? {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    #if canImport(Glibc)
    let mtime = Int(info.st_mtim.tv_sec) * 1_000_000_000 + Int(info.st_mtim.tv_nsec)
    #else
    let mtime = Int(info.st_mtimespec.tv_sec) * 1_000_000_000 + Int(info.st_mtimespec.tv_nsec)
    #endif
    return "\(info.st_ino) \(info.st_size) \(mtime)"
}

/// An exclusive `flock` on one file, held by one process at a time: how concurrent runners of one study
/// claim a unit. Released when the lock is dropped (or the process ends, however it ends).
public final class FileLock {
    public let path: String
    private let fd: Int32
    private var held = false

    public init(_ path: String) throws(FileError) {
        self.path = path
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError(file: path, "cannot open the lock file: \(String(cString: strerror(errno)))") }
    }

    deinit {
        if held { flock(fd, LOCK_UN) }
        close(fd)
    }

    /// Takes the lock if nobody holds it; false when another process does.
    public func tryLock() throws(FileError) -> Bool {
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            if errno == EWOULDBLOCK { return false }
            guard errno == EINTR else { throw FileError(file: path, "cannot lock: \(String(cString: strerror(errno)))") }
        }
        held = true
        return true
    }

    /// Waits for the lock.
    public func lock() throws(FileError) {
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else { throw FileError(file: path, "cannot lock: \(String(cString: strerror(errno)))") }
        }
        held = true
    }
}
