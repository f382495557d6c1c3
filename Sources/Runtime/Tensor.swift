/// Buffers and shape conventions of the runtime.
///
/// Dimension letters, used in every doc comment as `[outer, …, inner]` (row-major, as HF):
/// - `T`: tokens packed over all sequences of a pass
/// - `S`: sequences
/// - `C`: `hidden_size`
/// - `E`: `word_embed_proj_dim`
/// - `H`: heads present in this layer (0 after pruning is allowed)
/// - `D`: head dim, C / `num_attention_heads`
/// - `F`: `ffn_dim` (a layer without FFN has none)
/// - `V`: vocab (`vocab_size` rows of `embed_tokens`)
/// - `L`: layers
/// - `R`: rows whose logits were requested

import HRZFormat
import Basics

/// A growable fp32 buffer, reused across layers and passes. One owner; freed in `deinit`.
public final class FloatBuffer: @unchecked Sendable {
    public private(set) var pointer: UnsafeMutablePointer<Float>
    public private(set) var capacity: Int

    public init(_ capacity: Int = 0) {
        self.capacity = max(1, capacity)
        pointer = LargeAllocation.allocate(byteCount: 4 * self.capacity).bindMemory(to: Float.self, capacity: self.capacity)
    }

    deinit { pointer.deallocate() }

    /// Ensures room for `count` floats (contents are not preserved) and returns the pointer.
    @discardableResult
    public func reserve(_ count: Int) -> UnsafeMutablePointer<Float> {
        if count > capacity {
            pointer.deallocate()
            capacity = count
            pointer = LargeAllocation.allocate(byteCount: 4 * count).bindMemory(to: Float.self, capacity: count)
        }
        return pointer
    }

    public func zero(_ count: Int) { reserve(count).initialize(repeating: 0, count: count) }
}

/// A growable raw buffer for decoded 16- or 32-bit weights (and staged file bytes, 4096-aligned for `O_DIRECT`).
public final class RawBuffer: @unchecked Sendable {
    public private(set) var pointer: UnsafeMutableRawPointer
    public private(set) var capacity: Int
    public let alignment: Int

    public init(_ capacity: Int = 0, alignment: Int = 64) {
        self.capacity = max(1, capacity)
        self.alignment = alignment
        pointer = LargeAllocation.allocate(byteCount: self.capacity, alignment: alignment)
    }

    deinit { pointer.deallocate() }

    @discardableResult
    public func reserve(_ bytes: Int) -> UnsafeMutableRawPointer {
        if bytes > capacity {
            pointer.deallocate()
            capacity = bytes
            pointer = LargeAllocation.allocate(byteCount: bytes, alignment: alignment)
        }
        return pointer
    }
}
