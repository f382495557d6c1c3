/// Big working buffers (decoded layers, staged reads, widened weights) on transparent huge pages where the
/// kernel offers them (`madvise` mode, as on this project's VMs): every pass over them (decode, widen, GEMM
/// packing) then walks 2 MiB pages instead of 4 KiB ones, with far fewer TLB misses.
import Foundation

public enum LargeAllocation {
    /// Buffers at least this big are 2 MiB-aligned and advised `MADV_HUGEPAGE`.
    public static let threshold = 4 << 20
    static let hugePage = 2 << 20

    /// `byteCount` bytes aligned to at least `alignment`; free with `deallocate()`.
    public static func allocate(byteCount: Int, alignment: Int = 64) -> UnsafeMutableRawPointer {
        guard byteCount >= threshold else { return .allocate(byteCount: byteCount, alignment: alignment) }
        let pointer = UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: max(alignment, hugePage))
        #if os(Linux)
        _ = madvise(pointer, byteCount / hugePage * hugePage, Int32(MADV_HUGEPAGE))  // best effort
        #endif
        return pointer
    }
}
