import Foundation
import Testing
@testable import Analysis
import TestSupport

/// Spearman and average ranks against scipy (Tools/make_rank_reference.py).
struct RankingTests {
    struct Reference: Decodable {
        struct Pair: Decodable { var a: Int; var b: Int; var rho: Double }
        var vectors: [[Double]]
        var ranks: [[Double]]
        var pairs: [Pair]
    }

    @Test func matchesScipy() throws {
        let r = try JSONDecoder().decode(
            Reference.self, from: Data(contentsOf: Bundle.module.resourceURL!.appendingPathComponent("Fixtures/rank/spearman.json")))
        for (v, ranks) in zip(r.vectors, r.ranks) { #expect(Ranking.averageRanks(v) == ranks) }
        for p in r.pairs {
            #expect(abs(Ranking.spearman(r.vectors[p.a], r.vectors[p.b]) - p.rho) < 1e-12, "pair \(p.a), \(p.b)")
        }
    }

    @Test func rankingAggregateAndOverlap() {
        let a: [[Double]] = [[3, 1], [2, 4]], b: [[Double]] = [[1, 1], [4, 2]]
        #expect(Ranking.ascending(a).map { [$0.layer, $0.head] } == [[0, 1], [1, 0], [0, 0], [1, 1]])
        #expect(Ranking.mean([a, b]) == [[2, 1], [3, 3]])
        // Top 50% (2 of 4): a → {(1,1), (0,0)}, b → {(1,0), (1,1)}: one shared.
        #expect(Ranking.topOverlap(a.flatMap { $0 }, b.flatMap { $0 }, percent: 50) == 0.5)
    }
}

struct RankReportTests {
    func file(_ task: String, _ shots: Int, _ scores: [[Double]]) -> ScoresFile {
        ScoresFile(kind: "heads", method: "gradient", task: task, shots: shots, model_sha256: "x", examples: 1, scores: scores)
    }

    @Test func writesRankingsAggregateAndCorrelations() throws {
        let dir = testScratch() + "headroom-rank-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let inputs = [
            ("a.json", file("copa", 0, [[3, 1], [2, 4]])), ("b.json", file("copa", 1, [[1, 1], [4, 2]])),
            ("c.json", file("cb", 1, [[4, 3], [2, 1]])),
        ]
        let written = try RankReport.write(inputs.map { ($0.0, $0.1) }, aggregate: true, to: dir).map { ($0 as NSString).lastPathComponent }
        #expect(
            Set(written) == [
                "ranking-copa-0-shot.csv", "ranking-copa-1-shot.csv", "ranking-cb-1-shot.csv", "aggregate.json",
                "ranking-aggregate.csv", "spearman.csv", "spearman-tasks-1shot.csv", "spearman-shots-copa.csv",
                "overlap.csv", "summary.json",
            ])
        let aggregate = try JSONDecoder().decode(ScoresFile.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/aggregate.json")))
        #expect(aggregate.scores == Ranking.mean(inputs.map { $0.1.scores }))
        let ranking = try String(contentsOfFile: dir + "/ranking-copa-0-shot.csv", encoding: .utf8)
        #expect(ranking == "rank,layer,head,score\n1,0,1,1.0\n2,1,0,2.0\n3,0,0,3.0\n4,1,1,4.0\n")
        let spearman = try String(contentsOfFile: dir + "/spearman.csv", encoding: .utf8).split(separator: "\n")
        #expect(
            spearman[1].split(separator: ",").dropFirst().compactMap { Double($0) }[2]
                == Ranking.spearman([3, 1, 2, 4], [4, 3, 2, 1]))
    }

    @Test func mismatchedShapesAreNamed() {
        #expect(throws: (any Error).self) {
            try RankReport.write(
                [("a.json", file("copa", 0, [[1, 2]])), ("b.json", file("copa", 1, [[1, 2, 3]]))], aggregate: false,
                to: testScratch() + "headroom-rank-bad-\(getpid())")
        }
    }
}
