/// `headroom rank`: per-file rankings, the aggregate, Spearman matrices (all inputs, across tasks per
/// shots, across shots per task) and top-k% overlaps, as CSV and JSON files ready to plot.
import Foundation
import HRZFormat
import Files

public enum RankReport {
    public static let overlapPercents: [Double] = [10, 20, 30, 50]

    /// A label for a scores file: "task/k-shot" when it says, else its file name.
    static func label(_ s: ScoresFile, path: String) -> String {
        if let task = s.task { return "\(task)/\(s.shots ?? 0)-shot" }
        return ((path as NSString).lastPathComponent as NSString).deletingPathExtension
    }

    /// Writes every output into `directory`; returns the files written.
    public static func write(_ inputs: [(path: String, scores: ScoresFile)], aggregate: Bool, to directory: String) throws -> [String] {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var written: [String] = []
        func save(_ name: String, _ text: String) throws {
            let path = (directory as NSString).appendingPathComponent(name)
            try AtomicFile.write(Array(text.utf8), to: path)
            written.append(path)
        }
        guard let shape = inputs.first.map({ $0.scores.scores.map(\.count) }) else { return [] }
        for (path, s) in inputs where s.scores.map(\.count) != shape {
            throw AnalysisError(file: path, field: "scores", "is \(s.scores.map(\.count)) per layer, the first file's are \(shape)")
        }
        let labels = inputs.map { label($0.scores, path: $0.path) }
        let flat = inputs.map { $0.scores.scores.flatMap { $0 } }
        func rankingCSV(_ scores: [[Double]]) -> String {
            "rank,layer,head,score\n"
                + Ranking.ascending(scores).enumerated().map { "\($0.offset + 1),\($0.element.layer),\($0.element.head),\($0.element.score)" }.joined(
                    separator: "\n") + "\n"
        }
        func fileLabel(_ l: String) -> String { l.replacingOccurrences(of: "/", with: "-") }
        for (i, input) in inputs.enumerated() { try save("ranking-\(fileLabel(labels[i])).csv", rankingCSV(input.scores.scores)) }
        var summary: [String: Any] = ["inputs": labels]
        if aggregate {
            let mean = Ranking.mean(inputs.map { $0.scores.scores })
            let first = inputs[0].scores
            let file = ScoresFile(
                kind: first.kind, method: "mean of \(inputs.count) files (\(first.method))", task: nil, shots: nil,
                model_sha256: first.model_sha256, examples: inputs.reduce(0) { $0 + $1.scores.examples }, scores: mean,
                notes: "plain mean of the raw matrices of: " + labels.joined(separator: ", "))
            try save("aggregate.json", String(decoding: try JSONFiles.pretty(file), as: UTF8.self))
            try save("ranking-aggregate.csv", rankingCSV(mean))
        }
        func matrixCSV(_ indices: [Int]) -> String {
            "," + indices.map { labels[$0] }.joined(separator: ",") + "\n"
                + indices.map { i in
                    labels[i] + "," + indices.map { j in String(Ranking.spearman(flat[i], flat[j])) }.joined(separator: ",")
                }.joined(separator: "\n") + "\n"
        }
        let all = Array(inputs.indices)
        try save("spearman.csv", matrixCSV(all))
        summary["spearman"] = all.map { i in all.map { j in Ranking.spearman(flat[i], flat[j]) } }
        // Across tasks at each shots value, and across shots for each task.
        let byShots = Dictionary(grouping: all.filter { inputs[$0].scores.task != nil }) { inputs[$0].scores.shots ?? 0 }
        for (k, group) in byShots.sorted(by: { $0.key < $1.key }) where group.count > 1 { try save("spearman-tasks-\(k)shot.csv", matrixCSV(group)) }
        let byTask = Dictionary(grouping: all.filter { inputs[$0].scores.task != nil }) { inputs[$0].scores.task! }
        for (task, group) in byTask.sorted(by: { $0.key < $1.key }) where group.count > 1 { try save("spearman-shots-\(task).csv", matrixCSV(group)) }
        var overlap = "a,b," + overlapPercents.map { "top\(Int($0))%" }.joined(separator: ",") + "\n"
        for i in all {
            for j in all where j > i {
                overlap +=
                    "\(labels[i]),\(labels[j])," + overlapPercents.map { String(Ranking.topOverlap(flat[i], flat[j], percent: $0)) }.joined(separator: ",")
                    + "\n"
            }
        }
        try save("overlap.csv", overlap)
        let data = try JSONSerialization.data(
            withJSONObject: summary.mapValues { v -> Any in
                if let m = v as? [[Double]] { return m.map { $0.map { $0.isNaN ? NSNull() as Any : $0 as Any } } }
                return v
            }, options: [.prettyPrinted, .sortedKeys])
        try save("summary.json", String(decoding: data, as: UTF8.self))
        return written
    }
}
