/// The report's words drawn from its numbers: an introduction, chance levels, and one "what this shows" line
/// per figure, each computed from the values the figure plots (so a reader learns the finding without
/// reading the plot, and can check it against it).
import Analysis
import Evaluation
import Foundation
import Jobs
import HRZFormat
import Pruning
import Reports

extension StudyReport {
    /// Accuracy of guessing uniformly among a task's choices; nil where the metric is no choice (ReCoRD's em,
    /// LAMBADA's word). Generic tasks: the mean of 1 / choices over their rows.
    static func chance(_ task: String, _ o: StudyOptions) -> Double? {
        switch EvalTask.named(task, dataDirectory: o.data) {
        case .arcEasy?, .arcChallenge?, .openbookqa?, .hellaswag?: return 0.25
        case .mathqa?: return 0.2
        case .cb?: return 1.0 / 3
        case .record?, .lambadaOpenAI?, nil: return nil
        case .generic(let name)?:
            guard let file = try? JSONLFile(path: "\(o.data)/\(name)/validation.jsonl"), file.count > 0 else { return nil }
            let counts = (0..<min(file.count, 500)).compactMap { (try? file.row($0))?.fields["choices"] as? [Any] }.map(\.count).filter { $0 > 0 }
            return counts.isEmpty ? nil : counts.reduce(0.0) { $0 + 1 / Double($1) } / Double(counts.count)
        default: return 0.5
        }
    }

    /// Chance lines for a chart of `tasks`: one per distinct level, labelled "chance" when every task shares
    /// it, else by its task (or how many share it).
    static func chanceLines(_ tasks: [String], _ o: StudyOptions) -> [(y: Double, label: String)] {
        var levels: [(y: Double, tasks: [String])] = []
        for t in tasks {
            guard let c = chance(t, o) else { continue }
            if let i = levels.firstIndex(where: { abs($0.y - c) < 1e-9 }) { levels[i].tasks.append(t) } else { levels.append((c, [t])) }
        }
        return levels.map { level in
            (
                level.y,
                level.tasks.count == tasks.count ? "chance" : level.tasks.count == 1 ? "chance (\(level.tasks[0]))" : "chance (\(level.tasks.count) tasks)"
            )
        }
    }

    static func introduction(_ i: Inputs) -> String {
        let o = i.options
        let model = o.label.map { "the \(escapeXML($0))" } ?? "<code>\(escapeXML((o.model as NSString).lastPathComponent))</code>"
        var text =
            "<p><strong>What this is.</strong> Bansal et al. (ACL 2023) asked which attention heads and feed-forward blocks (FFNs) "
            + "OPT-66B needs to learn in context. They found that about 70% of the heads and 20% of the FFNs can be removed with little loss "
            + "of in-context accuracy; that the heads that matter are largely the same across tasks and numbers of shots; and that many of "
            + "them are induction heads (heads that copy what followed an earlier occurrence of the current token). This report runs the "
            + "same analyses on \(model) over \(o.tasks.count) task\(o.tasks.count == 1 ? "" : "s") and \(o.shots.map(String.init).joined(separator: "/")) shots, "
            + "and each figure says which of those findings it mirrors and what the numbers here show.</p>"
        if o.label?.contains("demo") == true {
            text +=
                "<p><strong>The demo model</strong> is a 4-layer, 4-head OPT trained by <code>Tools/train_demo.py</code> on three small "
                + "tasks in the generic JSONL format: <code>demo_copy</code> (continue a word list copied earlier in the context: "
                + "\"Copy: w1 … wn. Copy: w1 … wk\" → w(k+1)), and <code>demo_map_a</code> / <code>demo_map_b</code> (a made-up dictionary, "
                + "\"item =\" → colour, with a new random mapping in every document, so only the in-context examples say which colour an "
                + "item has). A model that learns in context scores near chance at 0 shots on the map tasks "
                + "and well above it with examples.</p>"
        }
        return text
    }

    /// "demo_map_a rises from 0.31 at 0 shots to 0.82 at 5 (+0.51)" for each task.
    static func baselineReading(_ i: Inputs, value: (String, Int) -> Double) -> String {
        let o = i.options
        guard let first = o.shots.min(), let last = o.shots.max(), first != last else { return "" }
        let parts = o.tasks.compactMap { t -> String? in
            let a = value(t, first), b = value(t, last)
            guard a.isFinite, b.isFinite else { return nil }
            let verb = b - a > 0.02 ? "rises" : b - a < -0.02 ? "falls" : "stays flat"
            return
                "\(escapeXML(t)) \(verb) from \(String(format: "%.2f", a)) at \(first) shots to \(String(format: "%.2f", b)) at \(last) (\(String(format: "%+.2f", b - a)))"
        }
        return parts.isEmpty ? "" : " <strong>What this shows:</strong> " + parts.joined(separator: "; ") + "."
    }

    /// For each shots value of a mean sweep: up to how much removed the accuracy stays within 2 points of the
    /// unpruned value, and where it ends.
    static func sweepReading(_ rows: [(shots: Int, x: Double, value: Double)], what: String, unit: String) -> String {
        let parts = Set(rows.map(\.shots)).sorted().compactMap { k -> String? in
            let points = rows.filter { $0.shots == k }.sorted { $0.x < $1.x }
            guard let base = points.first(where: { $0.x == 0 })?.value, let end = points.last else { return nil }
            var kept = 0.0
            for p in points { if p.value >= base - 0.02 { kept = p.x } else { break } }
            return
                "at \(k) shots accuracy stays within 2 points of the unpruned \(String(format: "%.2f", base)) until \(formatNumber(kept))\(unit) of \(what) are removed, and is \(String(format: "%.2f", end.value)) at \(formatNumber(end.x))\(unit)"
        }
        return parts.isEmpty ? "" : " <strong>What this shows:</strong> " + parts.joined(separator: "; ") + "."
    }

    /// Mean off-diagonal Spearman ρ of a square matrix.
    static func meanOffDiagonal(_ m: [[Double]]) -> Double {
        var sum = 0.0, n = 0
        for (a, row) in m.enumerated() { for (b, v) in row.enumerated() where a != b && v.isFinite { sum += v; n += 1 } }
        return n == 0 ? .nan : sum / Double(n)
    }

    /// "Scale: 0.029 (dark) to 0.031 (bright)." for a heatmap caption.
    static func scaleNote(_ scale: ColorScale) -> String {
        " Colour scale: \(formatNumber(scale.low)) (dark) to \(formatNumber(scale.high)) (bright)."
    }
}
