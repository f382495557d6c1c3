/// CPython's `random.Random`, exactly: the harness shuffles eval docs with `random.Random(42)` and draws each
/// doc's few-shot examples with `rnd.sample` from the same generator, so contexts are byte-identical only if
/// every draw is. References: CPython `Modules/_randommodule.c` (MT19937 `init_genrand`, `init_by_array`,
/// `genrand_uint32`, `random_seed`, `getrandbits`) and `Lib/random.py` (`_randbelow_with_getrandbits`,
/// `shuffle`, `sample`). Tested against values printed by Python (Tools/make_random_reference.py).
import Foundation

public struct PythonRandom: Sendable {
    private var mt = [UInt32](repeating: 0, count: 624)
    private var index = 624

    /// `random.Random(seed)` for a non-negative integer seed given as 32-bit words, least significant first
    /// (CPython splits abs(seed) that way and feeds the words to `init_by_array`).
    public init(seedWords: [UInt32]) {
        initByArray(seedWords.isEmpty ? [0] : seedWords)
    }

    /// `random.Random(seed)` for a seed below 2^64.
    public init(seed: UInt64) {
        var words: [UInt32] = [UInt32(truncatingIfNeeded: seed)]
        if seed >> 32 != 0 { words.append(UInt32(truncatingIfNeeded: seed >> 32)) }
        self.init(seedWords: words)
    }

    private mutating func initGenrand(_ s: UInt32) {
        mt[0] = s
        for i in 1..<624 { mt[i] = 1_812_433_253 &* (mt[i - 1] ^ (mt[i - 1] >> 30)) &+ UInt32(i) }
        index = 624
    }

    private mutating func initByArray(_ key: [UInt32]) {
        initGenrand(19_650_218)
        var i = 1, j = 0
        for _ in 0..<max(624, key.count) {
            mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) &* 1_664_525)) &+ key[j] &+ UInt32(j)
            i += 1
            j += 1
            if i >= 624 { mt[0] = mt[623]; i = 1 }
            if j >= key.count { j = 0 }
        }
        for _ in 0..<623 {
            mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) &* 1_566_083_941)) &- UInt32(i)
            i += 1
            if i >= 624 { mt[0] = mt[623]; i = 1 }
        }
        mt[0] = 0x8000_0000
        index = 624
    }

    /// MT19937's next 32-bit output (`genrand_uint32`).
    public mutating func nextUInt32() -> UInt32 {
        if index >= 624 {
            for k in 0..<624 {
                let y = (mt[k] & 0x8000_0000) | (mt[(k + 1) % 624] & 0x7fff_ffff)
                mt[k] = mt[(k + 397) % 624] ^ (y >> 1) ^ ((y & 1) != 0 ? 0x9908_b0df : 0)
            }
            index = 0
        }
        var y = mt[index]
        index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9d2c_5680
        y ^= (y << 15) & 0xefc6_0000
        y ^= y >> 18
        return y
    }

    /// `getrandbits(k)` as 32-bit words, least significant first: one draw per word, the last word keeping
    /// its top `k mod 32` bits (CPython drops the least significant ones).
    public mutating func getrandbitsWords(_ k: Int) -> [UInt32] {
        guard k > 0 else { return [] }
        if k <= 32 { return [nextUInt32() >> UInt32(32 - k)] }
        var words: [UInt32] = []
        var left = k
        while left > 0 {
            var r = nextUInt32()
            if left < 32 { r >>= UInt32(32 - left) }
            words.append(r)
            left -= 32
        }
        return words
    }

    /// `getrandbits(k)` for k ≤ 64.
    public mutating func getrandbits(_ k: Int) -> UInt64 {
        precondition(k >= 0 && k <= 64, "getrandbits(k) here takes k ≤ 64")
        let words = getrandbitsWords(k)
        return words.enumerated().reduce(0) { $0 | UInt64($1.element) << (32 * UInt64($1.offset)) }
    }

    /// `random()`: a float in [0, 1) from 53 bits of two words, as CPython's `random_random`.
    public mutating func random() -> Double {
        let a = Double(nextUInt32() >> 5), b = Double(nextUInt32() >> 6)
        return (a * 67_108_864 + b) * (1.0 / 9_007_199_254_740_992)
    }

    /// `_randbelow(n)`: rejection sampling on `n.bit_length()` bits. n ≥ 1.
    public mutating func randbelow(_ n: Int) -> Int {
        precondition(n >= 1, "randbelow needs n ≥ 1")
        let k = Int.bitWidth - n.leadingZeroBitCount
        var r = Int(getrandbits(k))
        while r >= n { r = Int(getrandbits(k)) }
        return r
    }

    /// `shuffle(x)`: Fisher–Yates from the end.
    public mutating func shuffle<T>(_ x: inout [T]) {
        guard x.count > 1 else { return }
        for i in stride(from: x.count - 1, through: 1, by: -1) {
            let j = randbelow(i + 1)
            x.swapAt(i, j)
        }
    }

    /// `sample(range(n), k)`: k distinct indices in selection order. CPython picks a pool-based or a
    /// set-based method by comparing n with a set size that depends on k; both consume the generator
    /// differently, so the switch point must match too.
    public mutating func sample(_ n: Int, _ k: Int) -> [Int] {
        precondition(k >= 0 && k <= n, "sample larger than population")
        var setsize = 21
        if k > 5 { setsize += Int(pow(4, ceil(log(Double(k * 3)) / log(4)))) }
        var result: [Int] = []
        result.reserveCapacity(k)
        if n <= setsize {
            var pool = Array(0..<n)
            for i in 0..<k {
                let j = randbelow(n - i)
                result.append(pool[j])
                pool[j] = pool[n - i - 1]
            }
        } else {
            var selected = Set<Int>()
            for _ in 0..<k {
                var j = randbelow(n)
                while selected.contains(j) { j = randbelow(n) }
                selected.insert(j)
                result.append(j)
            }
        }
        return result
    }
}
