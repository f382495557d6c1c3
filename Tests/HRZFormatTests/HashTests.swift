import Testing
@testable import HRZFormat
import Basics

/// Published test vectors: xxHash's `xxhsum` sanity values and FIPS 180-2 Appendix B.
struct HashTests {
    @Test(arguments: [
        ("", UInt64(0xEF46_DB37_51D8_E999)),
        ("a", 0xD24E_C4F1_A98C_6E5B),
        ("abc", 0x44BC_2CF5_AD77_0999),
        ("Nobody inspects the spammish repetition", 0xFBCE_A83C_8A37_8BF1),
        ("The quick brown fox jumps over the lazy dog", 0x0B24_2D36_1FDA_71BC),
    ])
    func xxh64(text: String, expected: UInt64) {
        #expect(XXH64.hash(Array(text.utf8)) == expected)
    }

    /// Two streams hashed in one loop give each stream's own hash, whatever the two lengths (stripes shared,
    /// one side's extra stripes, tails, inputs under one stripe) and on the published vectors.
    @Test func xxh64PairEqualsSingle() {
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<5000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let lengths = [0, 1, 7, 31, 32, 33, 63, 64, 65, 100, 4097]
        bytes.withUnsafeBytes { b in
            for m in lengths {
                for n in lengths {
                    let pair = XXH64.hash(b.baseAddress!, count: m, b.baseAddress! + 777, count: n, seed: 5)
                    #expect(pair.0 == XXH64.hash(b.baseAddress!, count: m, seed: 5), "\(m) with \(n)")
                    #expect(pair.1 == XXH64.hash(b.baseAddress! + 777, count: n, seed: 5), "\(n) with \(m)")
                }
            }
        }
        let fox = Array("The quick brown fox jumps over the lazy dog".utf8), abc = Array("abc".utf8)
        fox.withUnsafeBytes { f in
            abc.withUnsafeBytes { a in
                let pair = XXH64.hash(f.baseAddress!, count: f.count, a.baseAddress!, count: a.count)
                #expect(pair.0 == 0x0B24_2D36_1FDA_71BC && pair.1 == 0x44BC_2CF5_AD77_0999)
            }
        }
    }

    @Test func xxh64Seeded() {
        #expect(XXH64.hash(Array("abc".utf8), seed: 1) == 0xBEA9_CA81_9932_8908)
    }

    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (
            "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        ),
    ])
    func sha256(text: String, expected: String) {
        #expect(SHA256.hex(Array(text.utf8)) == expected)
    }

    @Test func sha256MillionAIncremental() {
        var h = SHA256()
        let block = [UInt8](repeating: UInt8(ascii: "a"), count: 1000)
        // Odd split sizes exercise the partial-block buffer.
        for i in 0..<1000 {
            let cut = i % 64
            h.update(Array(block[..<cut]))
            h.update(Array(block[cut...]))
        }
        #expect(h.finalizeHex() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}

struct HalfTests {
    /// Every binary16 value widens exactly and narrows back to itself (NaNs stay NaN).
    @Test func f16RoundTripsEveryBitPattern() {
        for bits in 0...UInt16.max {
            let f = Half.f16ToF32(bits)
            let back = Half.f32ToF16(f)
            if f.isNaN { #expect(Half.f16ToF32(back).isNaN) } else { #expect(back == bits, "bits \(bits)") }
        }
    }

    @Test func f16RoundsToNearestEven() {
        // 1 + 2^-11 is halfway between 1 and the next f16 (1 + 2^-10): ties go to even (1.0).
        #expect(Half.f32ToF16(1 + 0x1p-11) == 0x3C00)
        #expect(Half.f32ToF16(1 + 3 * 0x1p-11) == 0x3C02)
        #expect(Half.f32ToF16(65520) == 0x7C00)  // Rounds to infinity.
        #expect(Half.f32ToF16(0x1p-25) == 0)  // Half the smallest subnormal ties to zero.
        #expect(Half.f32ToF16(0x1p-24) == 1)
    }

    @Test func bf16() {
        #expect(Half.bf16ToF32(0x3F80) == 1)
        #expect(Half.f32ToBF16(1 + 0x1p-8) == 0x3F80)  // Tie to even.
        #expect(Half.f32ToBF16(1 + 3 * 0x1p-8) == 0x3F82)
    }
}

struct HardwareHalfTests {
    /// The hardware conversions (Float16) agree with the portable bit-level ones on every f16 value and on
    /// a sweep of floats, NaNs aside.
    @Test func hardwareAndPortableAgree() {
        for bits in 0...UInt16.max {
            let a = Half.widenF16(bits), b = Half.f16ToF32(bits)
            #expect(a.bitPattern == b.bitPattern || (a.isNaN && b.isNaN))
        }
        var x: Float = -70000
        while x < 70000 {
            for f in [x, x.nextUp, x * 1e-5, x * 1e-8] {
                #expect(Half.narrowF16(f) == Half.f32ToF16(f), "\(f)")
            }
            x += 0.37
        }
    }
}
