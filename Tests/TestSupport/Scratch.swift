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
