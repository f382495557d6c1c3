/// Small shared helpers for work spread over threads with `DispatchQueue.concurrentPerform`, and a
/// deterministic random generator for synthetic data. Kept in the lowest target, so every stage uses the
/// same ones.
import Foundation

/// A counter shared by threads: work-stealing indices, progress totals.
public final class LockedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    public init() {}

    /// Adds `n` and returns the value before the addition.
    @discardableResult
    public func add(_ n: Int = 1) -> Int {
        lock.lock(); defer { lock.unlock() }
        count += n
        return count - n
    }

    public var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}

/// One result slot per work item, each written once by whichever thread ran it.
public final class ResultSlots<Value>: @unchecked Sendable {
    private var slots: [Result<Value, Error>?]
    private let lock = NSLock()

    public init(count: Int) { slots = Array(repeating: nil, count: count) }

    /// Runs `body` and stores its value or error in slot `i`.
    public func set(_ i: Int, _ body: () throws -> Value) {
        let result = Result { try body() }
        lock.lock(); slots[i] = result; lock.unlock()
    }

    /// All values in slot order; rethrows the first error (by slot), passed through `wrap` (which may name
    /// the file it concerns).
    public func values(wrap: (Error) -> Error = { $0 }) throws -> [Value] {
        try slots.map { slot in
            switch slot {
            case .success(let v): return v
            case .failure(let e): throw wrap(e)
            case nil: throw wrap(SlotError())
            }
        }
    }
}

/// A work item that never ran (a bug, not bad input).
public struct SlotError: Error, CustomStringConvertible {
    public var description: String { "internal: a work item did not run" }
}

/// SplitMix64 (Steele, Lea, Flood 2014): small, fast and seedable, for synthetic weights and fuzzing.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Standard normal by Box–Muller.
    public mutating func nextNormal() -> Float {
        let u1 = Double(next() >> 11 | 1) * 0x1p-53, u2 = Double(next() >> 11) * 0x1p-53
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }
}
