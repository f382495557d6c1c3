/// Rankings and cross-task analysis of scores files: the global ascending ranking, the aggregate over
/// tasks (the plain mean of the raw matrices, as the paper does), Spearman rank correlations (ties take
/// average ranks, as scipy.stats.spearmanr), and the overlap of top-k% sets.
import Foundation

public enum Ranking {
    /// 1-based ranks, ties sharing their average rank (scipy.stats.rankdata "average").
    public static func averageRanks(_ values: [Double]) -> [Double] {
        let order = values.indices.sorted { values[$0] < values[$1] }
        var ranks = [Double](repeating: 0, count: values.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && values[order[j + 1]] == values[order[i]] { j += 1 }
            let average = Double(i + j) / 2 + 1
            for k in i...j { ranks[order[k]] = average }
            i = j + 1
        }
        return ranks
    }

    /// Spearman's rho: the Pearson correlation of average ranks. NaN when either side is constant (as scipy).
    public static func spearman(_ a: [Double], _ b: [Double]) -> Double {
        let ra = averageRanks(a), rb = averageRanks(b)
        let n = Double(a.count)
        let ma = ra.reduce(0, +) / n, mb = rb.reduce(0, +) / n
        var sab = 0.0, saa = 0.0, sbb = 0.0
        for i in 0..<a.count {
            sab += (ra[i] - ma) * (rb[i] - mb)
            saa += (ra[i] - ma) * (ra[i] - ma)
            sbb += (rb[i] - mb) * (rb[i] - mb)
        }
        return saa == 0 || sbb == 0 ? .nan : sab / (saa * sbb).squareRoot()
    }

    /// Every (layer, head) in ascending order of score: the order pruning removes them in.
    public static func ascending(_ scores: [[Double]]) -> [(layer: Int, head: Int, score: Double)] {
        scores.enumerated().flatMap { l, row in row.enumerated().map { (l, $0.offset, $0.element) } }
            .sorted { ($0.2, $0.0, $0.1) < ($1.2, $1.0, $1.1) }
    }

    /// Element-wise mean of equally shaped matrices.
    public static func mean(_ matrices: [[[Double]]]) -> [[Double]] {
        guard let first = matrices.first else { return [] }
        return first.indices.map { l in first[l].indices.map { h in matrices.map { $0[l][h] }.reduce(0, +) / Double(matrices.count) } }
    }

    /// |top p% of a ∩ top p% of b| / count, with count = floor(p · n / 100) highest-scoring entries.
    public static func topOverlap(_ a: [Double], _ b: [Double], percent: Double) -> Double {
        let count = Int((percent * Double(a.count) / 100).rounded(.down))
        guard count > 0 else { return .nan }
        func top(_ x: [Double]) -> Set<Int> { Set(x.indices.sorted { (x[$0], $0) > (x[$1], $1) }.prefix(count)) }
        return Double(top(a).intersection(top(b)).count) / Double(count)
    }
}
