import Foundation
import Testing
@testable import Evaluation

/// CPython's random, checked against values Python printed (Tools/make_random_reference.py).
struct PythonRandomTests {
    struct Reference: Decodable {
        struct Sample: Decodable { var n: Int; var k: Int; var result: [Int] }
        struct Case: Decodable {
            var getrandbits32: [UInt32]
            var getrandbits_mixed: [String]
            var randbelow: [Int]
            var shuffle100: [Int]
            var samples: [Sample]
        }
        struct Harness: Decodable { var eval_len: Int; var train_len: Int; var k: Int; var shuffled: [Int]; var draws: [[Int]] }
        var cases: [String: Case]
        var harness: Harness
    }

    static let reference: Reference = {
        let url = Bundle.module.resourceURL!.appendingPathComponent("Fixtures/python_random.json")
        do { return try JSONDecoder().decode(Reference.self, from: Data(contentsOf: url)) } catch { fatalError("\(url.path): \(error)") }
    }()

    /// Python ints as 32-bit words, least significant first.
    static func words(_ seed: String) -> [UInt32] {
        var digits = seed.compactMap { $0.wholeNumberValue }
        var out: [UInt32] = []
        while !(digits.isEmpty || digits.allSatisfy { $0 == 0 }) {
            // Divide the decimal digit string by 2^32, keeping the remainder.
            var remainder: UInt64 = 0
            var quotient: [Int] = []
            for d in digits {
                let value = remainder * 10 + UInt64(d)
                quotient.append(Int(value >> 32))
                remainder = value & 0xffff_ffff
            }
            out.append(UInt32(remainder))
            digits = Array(quotient.drop { $0 == 0 })
        }
        return out
    }

    static func decimal(_ words: [UInt32]) -> String {
        var w = words
        var digits: [Character] = []
        while w.contains(where: { $0 != 0 }) {
            var remainder: UInt64 = 0
            for i in stride(from: w.count - 1, through: 0, by: -1) {
                let value = remainder << 32 | UInt64(w[i])
                w[i] = UInt32(value / 10)
                remainder = value % 10
            }
            digits.append(Character(String(remainder)))
        }
        return digits.isEmpty ? "0" : String(digits.reversed())
    }

    @Test(arguments: ["0", "1", "42", "1234", "4294967301", "1180591620717411303427"])
    func matchesCPython(_ seed: String) {
        let c = Self.reference.cases[seed]!
        var r = PythonRandom(seedWords: Self.words(seed))
        #expect((0..<8).map { _ in r.nextUInt32() } == c.getrandbits32)
        #expect([1, 5, 31, 33, 64, 65, 100].map { Self.decimal(r.getrandbitsWords($0)) } == c.getrandbits_mixed)
        #expect([1, 2, 3, 7, 10, 100, 1000, 2_147_483_659, 5153].map { r.randbelow($0) } == c.randbelow)
        var xs = Array(0..<100)
        r.shuffle(&xs)
        #expect(xs == c.shuffle100)
        for s in c.samples { #expect(r.sample(s.n, s.k) == s.result, "sample(range(\(s.n)), \(s.k))") }
    }

    /// The harness's own sequence: Random(42) shuffles the eval docs, then one sample per doc.
    @Test func harnessSequence() {
        let h = Self.reference.harness
        var r = PythonRandom(seed: 42)
        var docs = Array(0..<h.eval_len)
        r.shuffle(&docs)
        #expect(docs == h.shuffled)
        #expect(docs.map { _ in r.sample(h.train_len, h.k) } == h.draws)
    }
}

/// Standard errors as lm-evaluation-harness 11fa0bf computes them; expected values from its own
/// `mean_stderr` and `bootstrap_stderr(perplexity, xs, 100000)` run in CPython (the bootstrap without the
/// process pool, which keeps chunk order).
struct HarnessStderrTests {
    @Test func meanStderrMatchesPython() {
        #expect(meanStderr([1, 0, 1, 1, 0, 0, 1, 1]) == 0.18298126367784995)
        #expect(meanStderr([1]).isNaN)
    }

    @Test func perplexityBootstrapMatchesPython() {
        let xs = [-1.25, -0.5, -3.0, -2.25, -0.125, -4.5, -0.75]
        let stderr = bootstrapStderr(xs, iterations: 100_000) { Foundation.exp(-pyMean($0)) }
        #expect(abs(stderr - 4.3244003244116165) <= 1e-12 * 4.33, "\(stderr)")
    }

    @Test func multircGroupsByQuestionIdOnly() {
        // Two paragraphs share question id 0: acc_all keeps them apart, acc_all_stderr (the harness's) merges them.
        let outcomes = [
            DocOutcome(values: [:], group: "0/0", prediction: 1), DocOutcome(values: [:], group: "1/0", prediction: 0),
            DocOutcome(values: [:], group: "1/1", prediction: 1), DocOutcome(values: [:], group: "2/2", prediction: 0),
        ]
        #expect(EvalTask.multirc.standardErrors(outcomes)["acc"] == meanStderr([0, 1, 0]))
        #expect(EvalTask.cb.standardErrors([DocOutcome(values: ["acc": 1]), DocOutcome(values: ["acc": 0])]).keys.sorted() == ["acc"])
    }
}
