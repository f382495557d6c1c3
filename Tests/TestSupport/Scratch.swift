/// Where tests write: one folder per test process, `$TMPDIR/headroom-test-<pid>/`, removed when the process
/// exits, so repeated `swift test` runs leave nothing behind (a killed run leaves its one folder).
import Foundation

/// The per-process scratch folder, with a trailing slash; created, and scheduled for removal, on first use.
public func testScratch() -> String { TestScratch.path }

enum TestScratch {
    static let path: String = {
        let path = NSTemporaryDirectory() + "headroom-test-\(getpid())/"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "headroom-test-\(getpid())") }
        return path
    }()
}

/// Everything a pipe delivers until its writer closes, retrying reads a signal interrupts (Foundation's
/// `readDataToEndOfFile` traps on EINTR, which a SIGCHLD from another test's child can cause).
public func readToEnd(_ handle: FileHandle) -> Data {
    var data = Data()
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    let fd = handle.fileDescriptor
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n > 0 { data.append(contentsOf: buffer[0..<n]); continue }
        if n < 0 && errno == EINTR { continue }
        return data
    }
}
