import Foundation
import Testing
import TestSupport
@testable import Analysis
@testable import Checkpoints
@testable import Runtime
@testable import Tokenizer

/// Prefix-matching scores against HF attentions (Tools/make_induction_reference.py), and the random sequences.
struct InductionTests {
    struct Reference: Decodable { var sequences: [[Int]]; var prefix_matching: [[Double]]; var copying: [[Double]] }

    @Test(arguments: ["safetensors-f32", "post-ln-350m-style"])
    func prefixMatchingMatchesHF(_ fixture: String) throws {
        Threads.set(2)
        let reference = try JSONDecoder().decode(
            Reference.self,
            from: Data(
                contentsOf: Bundle.module.resourceURL!
                    .appendingPathComponent("Fixtures/\(fixture)/induction.json")))
        let out = try convertFixture("Tests/CheckpointsTests/Fixtures/\(fixture)")
        let model = try OPTModel(path: out)
        for (name, scores, expected) in [
            ("prefix matching", try PrefixMatching(model).scores(reference.sequences), reference.prefix_matching),
            ("copying", try CopyingScores(model).scores(reference.sequences), reference.copying),
        ] {
            for (l, row) in scores.enumerated() {
                for (h, value) in row.enumerated() {
                    #expect(
                        abs(value - expected[l][h]) <= 1e-5 + 1e-3 * abs(expected[l][h]),
                        "\(fixture) \(name) layer \(l) head \(h): \(value) vs reference \(expected[l][h])")
                }
            }
        }
    }

    @Test func randomSequencesAreUniqueMidRankTokensAndDeterministic() throws {
        let tokenizer = try Tokenizer(directory: ImportanceTests.root.appendingPathComponent("../shared/data/tokenizer/opt").standardized.path)
        let a = InductionSequences.random(count: 3, seed: 7, tokenizer: tokenizer)
        #expect(a == InductionSequences.random(count: 3, seed: 7, tokenizer: tokenizer))
        #expect(a != InductionSequences.random(count: 3, seed: 8, tokenizer: tokenizer))
        #expect(a.map(\.count) == [25, 27, 29])
        let ranked = tokenizer.mergedTokenIDs
        let middle = Set(ranked[(ranked.count * 4 / 100)..<(ranked.count - ranked.count * 4 / 100)])
        #expect(a.allSatisfy { Set($0).count == $0.count && $0.allSatisfy(middle.contains) })
        #expect(ranked.count == 50000)
    }
}
