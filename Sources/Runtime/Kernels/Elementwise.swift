/// Row-parallel helpers and element-wise kernels. All kernels overwrite their outputs unless named `add…`.
import Dispatch
import HRZFormat
import Files

/// Runs `body(range)` over `0..<count` split into contiguous ranges, on all cores when the work is large.
@inline(__always)
public func parallelRanges(_ count: Int, minimumPerTask: Int = 1, _ body: (Range<Int>) -> Void) {
    let tasks = min(Threads.count * 4, max(1, count / max(1, minimumPerTask)))
    if tasks <= 1 || Threads.count <= 1 { body(0..<count); return }
    DispatchQueue.concurrentPerform(iterations: tasks) { t in
        let start = count * t / tasks, end = count * (t + 1) / tasks
        if start < end { body(start..<end) }
    }
}

/// The process-wide thread count: Headroom's own parallel loops and OpenBLAS's pool.
public enum Threads {
    nonisolated(unsafe) public static var count = 1

    public static func set(_ n: Int) {
        count = max(1, n)
        BLAS.setThreads(count)
    }
}

/// Runs `body(i)` for i in 0..<count on all cores with OpenBLAS single-threaded inside, so each task's small
/// GEMMs run on its own core instead of contending for OpenBLAS's pool. (Debian's OpenBLAS is built thread-safe.)
public func parallelWithSerialBLAS(_ count: Int, _ body: (Int) -> Void) {
    guard Threads.count > 1, count > 1 else { for i in 0..<count { body(i) }; return }
    BLAS.setThreads(1)
    defer { BLAS.setThreads(Threads.count) }
    DispatchQueue.concurrentPerform(iterations: count, execute: body)
}

/// x[i] += y[i] for i < count.  (the residual add)
public func addInPlace(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, count: Int) {
    parallelRanges(count, minimumPerTask: 1 << 16) { r in for i in r { x[i] += y[i] } }
}

/// x = max(x, 0), in place.
public func reluInPlace(_ x: UnsafeMutablePointer<Float>, count: Int) {
    parallelRanges(count, minimumPerTask: 1 << 16) { r in for i in r { x[i] = max(x[i], 0) } }
}

/// Widens `count` elements of `dtype` at `source` to fp32 at `destination`, on all cores.
public func widen(_ source: UnsafeRawPointer, dtype: DType, into destination: UnsafeMutablePointer<Float>, count: Int) {
    parallelRanges(count, minimumPerTask: 1 << 18) { r in
        dtype.convert(source + r.lowerBound * dtype.size, to: .f32, destination + r.lowerBound, count: r.count)
    }
}
