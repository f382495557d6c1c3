/// Renders `DIR/report.html` from a study directory alone (`headroom report DIR`): the paper's figures
/// as inline SVG, each with a caption, the command that produced its numbers, and the numbers as CSV.
import Analysis
import Evaluation
import Foundation
import Jobs
import HRZFormat
import Pruning
import Reports
import Files

public enum StudyReport {
    struct Manifest: Codable { var model_sha256: String; var options: StudyOptions }

    /// Everything the report reads, loaded once; absent steps are nil or empty and their sections say so.
    struct Inputs {
        var directory: String
        var options: StudyOptions
        var sha: String
        var baseline: ResultsFile?
        var heads: [ScoresFile] = []
        var ffns: [ScoresFile] = []
        var headsSweep: SweepTable?
        var ffnsSweep: SweepTable?
        var combined: SweepTable?
        var prefix: ScoresFile?
        var copying: ScoresFile?
        var comparison: Comparison?

        /// A study file, nil while its step has not run; a file that exists but does not decode is an error.
        func load<T: Decodable>(_ relative: String, as: T.Type) throws -> T? {
            let path = (directory as NSString).appendingPathComponent(relative)
            guard let data = try FileGuard.contents(atPath: path) else { return nil }
            do { return try JSONDecoder().decode(T.self, from: data) } catch {
                throw PruneError(file: path, "cannot read: \(error)")
            }
        }

        var model: String { options.label ?? (options.model as NSString).lastPathComponent }
    }

    public static func render(directory: String) throws -> String {
        let manifestPath = (directory as NSString).appendingPathComponent("study.json")
        guard let data = try FileGuard.contents(atPath: manifestPath) else { throw PruneError(file: manifestPath, "no study here (study.json is missing)") }
        let manifest: Manifest
        do { manifest = try JSONDecoder().decode(Manifest.self, from: data) } catch {
            throw PruneError(file: manifestPath, "not a study manifest: \(error)")
        }
        var inputs = Inputs(directory: directory, options: manifest.options, sha: manifest.model_sha256)
        let o = manifest.options
        inputs.baseline = try inputs.load("baseline/results.json", as: ResultsFile.self)
        for task in o.tasks {
            for k in o.shots {
                if let s = try inputs.load("importance/heads-\(task)-\(k)shot.json", as: ScoresFile.self) { inputs.heads.append(s) }
                if let s = try inputs.load("importance/ffns-\(task)-\(k)shot.json", as: ScoresFile.self) { inputs.ffns.append(s) }
            }
        }
        inputs.headsSweep = try inputs.load("sweeps/heads/sweep.json", as: SweepTable.self)
        inputs.ffnsSweep = try inputs.load("sweeps/ffns/sweep.json", as: SweepTable.self)
        inputs.combined = try inputs.load("sweeps/combined/sweep.json", as: SweepTable.self)
        inputs.prefix = try inputs.load("induction/prefix-matching.json", as: ScoresFile.self)
        inputs.copying = try inputs.load("induction/copying.json", as: ScoresFile.self)
        inputs.comparison = try inputs.load("pruned/comparison.json", as: Comparison.self)
        try checkShapes(inputs)

        let report = HTMLReport(
            title: "Headroom study: \(inputs.model)", summary: summary(inputs),
            sections: [
                baselineSection(inputs), importanceSection(inputs), ffnSection(inputs), curvesSection(inputs, dimension: "heads"),
                curvesSection(inputs, dimension: "ffns"), combinedSection(inputs),
                correlationSection(inputs), inductionSection(inputs), prunedSection(inputs),
            ])
        var withIntroduction = report
        withIntroduction.introduction = introduction(inputs)
        return try withIntroduction.write(to: directory)
    }

    /// Every heads-shaped matrix of one study has one [layers, heads] shape and every FFN one one [layers, 1]
    /// shape; files from different models in one directory would otherwise meet in a mean and trap.
    static func checkShapes(_ i: Inputs) throws {
        func name(_ s: ScoresFile, _ dir: String) -> String {
            switch s.kind {
            case "heads", "ffns": return "\(dir)/importance/\(s.kind)-\(s.task ?? "?")-\(s.shots ?? 0)shot.json"
            default: return "\(dir)/induction/\(s.kind).json"
            }
        }
        for group in [i.heads + [i.prefix, i.copying].compactMap { $0 }, i.ffns] {
            var first: (name: String, shape: [Int])?
            for file in group {
                let here = name(file, i.directory)
                let rows = file.scores.count, columns = file.scores.first?.count ?? 0
                guard rows > 0, columns > 0, file.scores.allSatisfy({ $0.count == columns }) else {
                    throw PruneError(file: here, "scores are not a non-empty rectangular [layers][\(file.kind == "ffns" ? "1" : "heads")] matrix")
                }
                if let first, first.shape != [rows, columns] {
                    throw PruneError(file: here, "scores are [\(rows), \(columns)] but \(first.name) has \(first.shape); one study holds one model's scores")
                }
                if first == nil { first = (here, [rows, columns]) }
            }
        }
    }

    static func summary(_ i: Inputs) -> String {
        let o = i.options
        var parts = [
            "Model <code>\(escapeXML(o.model))</code> (sha256 \(i.sha.prefix(16))…)",
            "tasks \(escapeXML(o.tasks.joined(separator: ", ")))", "shots \(o.shots.map(String.init).joined(separator: ", "))",
            "data <code>\(escapeXML(o.data))</code>",
        ]
        if let l = o.limit { parts.append("first \(l) docs per cell") }
        parts.append(o.arithmetic == .bf16 ? "<b>bf16</b> GEMMs (inputs rounded to bf16, fp32 accumulation)" : "fp32")
        parts.append("rendered \(ISO8601DateFormatter().string(from: Date()))")
        return parts.joined(separator: " · ") + ". Re-render with <code>\(escapeXML(StudyCommands.line(StudyCommands.report(i.directory))))</code>."
    }

    /// A scores file's path relative to the study, from its kind, task and shots.
    static func path(_ s: ScoresFile) -> String? { s.task.map { StudyLayout.scores(s.kind, $0, s.shots ?? 0) } }

    static func metricName(_ task: String, _ o: StudyOptions) -> String { (EvalTask.named(task, dataDirectory: o.data) ?? .copa).headlineMetric }

    static func missing(_ title: String, _ what: String) -> ReportSection {
        ReportSection(title: title, intro: "<p><em>Not available yet: \(what). Run the study again to finish it.</em></p>")
    }

    // MARK: Sections

    static func baselineSection(_ i: Inputs) -> ReportSection {
        guard let b = i.baseline else { return missing("Baseline accuracy", "the baseline evaluation") }
        let o = i.options
        func value(_ task: String, _ k: Int) -> Double { b.cells["\(task)/\(k)"]?.metrics[metricName(task, o)] ?? .nan }
        let rows = o.tasks.map { t in [t, metricName(t, o)] + o.shots.map { k in value(t, k).isFinite ? String(format: "%.3f", value(t, k)) : "—" } }
        let table = htmlTable(["task", "metric"] + o.shots.map { "\($0)-shot" }, rows)
        let chart = LineChart(
            title: "Accuracy by number of in-context examples",
            series: o.tasks.map { t in Series(name: t, points: o.shots.map { (Double($0), value(t, $0)) }) },
            xLabel: "shots", yLabel: "accuracy")
        var chartWithRange = chart
        chartWithRange.yRange = 0...1
        chartWithRange.references = chanceLines(o.tasks, o)
        chartWithRange.xTicks = o.shots.map(Double.init)
        let csv = CSV.table(
            ["task", "metric"] + o.shots.map { "\($0)-shot" }, o.tasks.map { t in [t, metricName(t, o)] + o.shots.map { CSV.number(value(t, $0)) } })
        return ReportSection(
            title: "Baseline accuracy",
            intro: "<p>The unpruned model on each task and number of shots, with the pinned harness's prompts and metric (acc; ReCoRD: em).</p>",
            figures: [
                Figure(
                    id: "baseline", svg: chartWithRange.render(),
                    caption:
                        "Accuracy against the number of in-context examples; dotted lines: chance. A line that rises means the model uses the examples: it learns in context (the paper's premise)."
                        + baselineReading(i, value: value),
                    command: StudyCommands.line(StudyCommands.eval(o, out: StudyLayout.baseline)), csv: csv)
            ],
            html: table)
    }

    static func importanceSection(_ i: Inputs) -> ReportSection {
        guard !i.heads.isEmpty else { return missing("Head importance", "gradient head importance") }
        let aggregate = Ranking.mean(i.heads.map(\.scores))
        var figures = [
            heatmapFigure(
                "heads-aggregate", "Aggregate head importance", aggregate, cell: 22,
                caption:
                    "The paper's gradient importance, averaged over every task and shots value (the plain mean of the raw matrices). Bright heads matter most; a few bright heads among many dark ones is the paper's picture.",
                command: StudyCommands.line(StudyCommands.rank(i.heads.compactMap(StudyReport.path), aggregate: true, out: StudyLayout.ranks("heads"))))
        ]
        // The per-task maps are meant to be compared: one colour scale for all of them.
        let perTask = i.options.tasks.compactMap { task -> (String, [ScoresFile], [[Double]])? in
            let files = i.heads.filter { $0.task == task }
            return files.isEmpty ? nil : (task, files, Ranking.mean(files.map(\.scores)))
        }
        let shared = ColorScale.fitting(perTask.flatMap { $0.2.flatMap { $0 } }, .sequential)
        for (task, files, values) in perTask {
            figures.append(
                heatmapFigure(
                    "heads-\(task)", "\(task) (mean over \(files.map { "\($0.shots ?? 0)" }.joined(separator: "/"))-shot)",
                    values, cell: 14,
                    caption: "Gradient head importance on \(escapeXML(task)), averaged over shots; one colour scale for every task's map.",
                    command: StudyCommands.line(StudyCommands.headImportance(i.options, task: task, shots: files.first?.shots ?? 0)), scale: shared))
        }
        return ReportSection(
            title: "Head importance",
            intro:
                "<p>I[l,h] = Σ<sub>examples</sub> Σ<sub>t</sub> |⟨A<sub>l,h</sub>(t), ∂L/∂A<sub>l,h</sub>(t)⟩|, where A is the head's output before <code>out_proj</code> and L the gold continuation's mean NLL given its few-shot context (the paper's definition, as its code computes it). Hover a cell for its value.</p>",
            figures: figures)
    }

    static func heatmapFigure(
        _ id: String, _ title: String, _ values: [[Double]], cell: Double, caption: String, command: String,
        outlined: [(Int, Int)] = [], valueLabel: String = "importance", scale: ColorScale? = nil
    ) -> Figure {
        var map = Heatmap(title: title, values: values, rowLabel: "layer", columnLabel: "head", valueLabel: valueLabel)
        map.scale = scale ?? ColorScale.fitting(values.flatMap { $0 }, .sequential)
        // Small models get bigger cells, so a 4 × 4 matrix is as readable as a 64 × 72 one.
        map.cell = max(cell, min(36, 200 / Double(max(values.count, values.first?.count ?? 1))))
        map.outlined = outlined
        let columns = values.first?.count ?? 0
        return Figure(
            id: id, svg: map.render(), caption: caption + scaleNote(map.scale!), command: command,
            csv: CSV.matrix(values, corner: "layer\\head", rowNames: values.indices.map(String.init), columnNames: (0..<columns).map(String.init)))
    }

    static func ffnSection(_ i: Inputs) -> ReportSection {
        guard !i.ffns.isEmpty else { return missing("FFN importance", "oracle FFN importance") }
        let labels = i.ffns.map { "\($0.task ?? "?")/\($0.shots ?? 0)" }
        let matrix = i.ffns.map { $0.scores.map { $0[0] } }
        var map = Heatmap(
            title: "Oracle FFN importance per task and shots", values: matrix, rowLabel: "task/shots", columnLabel: "layer", valueLabel: "accuracy drop")
        map.rowNames = labels
        map.kind = .diverging
        map.cell = 20
        let L = matrix.first?.count ?? 0
        let mean = (0..<L).map { l in matrix.map { $0[l] }.reduce(0, +) / Double(matrix.count) }
        let bars = BarChart(
            title: "Aggregate oracle FFN importance", bars: mean.enumerated().map { ("\($0.offset)", $0.element) },
            xLabel: "layer", yLabel: "mean accuracy drop")
        return ReportSection(
            title: "FFN importance",
            intro:
                "<p>Score[l] = baseline accuracy − accuracy with layer l's FFN removed, on each task's eval docs. Each ablation reuses the baseline's inputs to layer l (exact).</p>",
            figures: [
                Figure(
                    id: "ffns-by-task", svg: map.render(),
                    caption: "Accuracy lost when one FFN is removed, per task and shots. Red: the FFN helps; blue: removing it helps."
                        + " Colour scale: \(formatNumber(ColorScale.fitting(matrix.flatMap { $0 }, .diverging).low)) (blue) to \(formatNumber(ColorScale.fitting(matrix.flatMap { $0 }, .diverging).high)) (red).",
                    command: StudyCommands.line(StudyCommands.oracle(i.options, task: i.options.tasks.first ?? "", shots: i.options.shots.first ?? 0)),
                    csv: CSV.matrix(matrix, corner: "cell\\layer", rowNames: labels, columnNames: (0..<L).map(String.init))),
                Figure(
                    id: "ffns-aggregate", svg: bars.render(),
                    caption:
                        "The mean over tasks and shots: the ranking the FFN sweeps and the pruned model use. Red: the FFN helps; blue: removing it helps, as in the map."
                        + (mean.indices.max { mean[$0] < mean[$1] }.map {
                            " <strong>What this shows:</strong> layer \($0)'s FFN matters most (removing it costs \(String(format: "%.3f", mean[$0])) on average); the least important is layer \(mean.indices.min { mean[$0] < mean[$1] }!)'s (\(String(format: "%+.3f", mean.min()!)))."
                        } ?? ""),
                    command: StudyCommands.line(StudyCommands.rank(i.ffns.compactMap(StudyReport.path), aggregate: true, out: StudyLayout.ranks("ffns"))),
                    csv: CSV.table(["layer", "mean_drop"], mean.enumerated().map { ["\($0.offset)", CSV.number($0.element)] })),
            ])
    }

    /// One line chart per task (a series per shots value) plus the mean over tasks.
    /// `total`: how many heads (or FFNs) the model has. Points sit at the share actually removed
    /// (floor(p · total / 100) of them), and grid points that remove the same count are drawn once: a 4-layer
    /// model has only 0–4 FFNs to remove, whatever the grid's percentages.
    static func curves(_ table: SweepTable, dimension: String, _ o: StudyOptions, total: Int?) -> [Figure] {
        let removed: (SweepRow) -> Int = dimension == "heads" ? { $0.heads_removed } : { $0.ffns_removed }
        let percent: (SweepRow) -> Double = dimension == "heads" ? { $0.heads_percent } : { $0.ffns_percent }
        let x: (SweepRow) -> Double = { row in total.map { 100 * Double(removed(row)) / Double(max(1, $0)) } ?? percent(row) }
        let what = dimension == "heads" ? "heads" : "FFNs"
        var figures: [Figure] = []
        func distinct(_ rows: [SweepRow]) -> [SweepRow] {
            var seen = Set<Double>()
            return rows.sorted { x($0) < x($1) }.filter { seen.insert(x($0)).inserted }
        }
        func chart(_ title: String, _ rows: [SweepRow], tasks: [String]) -> LineChart {
            let shots = Array(Set(rows.map(\.shots))).sorted()
            var c = LineChart(
                title: title,
                series: shots.map { k in
                    Series(name: "\(k)-shot", points: distinct(rows.filter { $0.shots == k }).map { (x($0), $0.value) })
                }, xLabel: "% of \(what) removed (lowest importance first)", yLabel: "accuracy")
            c.yRange = 0...1
            c.references = chanceLines(tasks, o)
            let xs = Set(rows.map(x)).sorted()
            if xs.count <= 6 { c.xTicks = xs }  // few distinct counts (FFNs of a small model): tick exactly those
            return c
        }
        let csvHeader = ["task", "shots", "\(dimension)_percent", "metric", "value", "baseline", "delta"]
        for task in o.tasks {
            let rows = table.rows.filter { $0.task == task }
            guard !rows.isEmpty else { continue }
            figures.append(
                Figure(
                    id: "sweep-\(dimension)-\(task)", svg: chart(task, rows, tasks: [task]).render(),
                    caption: "Iterative \(what) pruning on \(escapeXML(task)), each shots value ranked by its own scores.",
                    command: StudyCommands.line(
                        StudyCommands.sweep(
                            o, tasks: [task], shots: o.shots, heads: dimension == "heads" ? o.shots.map { StudyLayout.scores("heads", task, $0) } : [],
                            ffns: dimension == "ffns" ? o.shots.map { StudyLayout.scores("ffns", task, $0) } : [],
                            grid: "\(dimension)=\(StudyCommands.grid(dimension == "heads" ? o.headsGrid : o.ffnsGrid))",
                            out: StudyLayout.sweep(dimension))),
                    csv: CSV.table(
                        csvHeader,
                        rows.map {
                            [$0.task, "\($0.shots)", CSV.number(x($0)), $0.metric, CSV.number($0.value), CSV.number($0.baseline), CSV.number($0.delta)]
                        })))
        }
        // Mean over tasks at each (shots, percent).
        var meanRows: [SweepRow] = []
        for k in Set(table.rows.map(\.shots)).sorted() {
            for p in Set(table.rows.filter { $0.shots == k }.map(x)).sorted() {
                let cell = table.rows.filter { $0.shots == k && x($0) == p }
                guard var row = cell.first else { continue }
                row.task = "mean"
                row.value = cell.map(\.value).reduce(0, +) / Double(cell.count)
                meanRows.append(row)
            }
        }
        if !meanRows.isEmpty {
            let reading = sweepReading(meanRows.map { ($0.shots, x($0), $0.value) }, what: what, unit: "%")
            let finding =
                dimension == "heads"
                ? "the paper removes about 70% of OPT-66B's heads with little loss" : "the paper removes about 20% of OPT-66B's FFNs with little loss"
            figures.insert(
                Figure(
                    id: "sweep-\(dimension)-mean", svg: chart("Mean over tasks", meanRows, tasks: o.tasks).render(),
                    caption:
                        "Iterative \(what) pruning, accuracy averaged over tasks; dotted: chance. A curve that stays flat and then falls means most \(what) can go before in-context learning breaks (\(finding))."
                        + reading,
                    command: StudyCommands.line(
                        StudyCommands.sweep(
                            o, tasks: o.tasks, shots: o.shots,
                            heads: dimension == "heads" ? o.tasks.flatMap { t in o.shots.map { StudyLayout.scores("heads", t, $0) } } : [],
                            ffns: dimension == "ffns" ? o.tasks.flatMap { t in o.shots.map { StudyLayout.scores("ffns", t, $0) } } : [],
                            grid: "\(dimension)=\(StudyCommands.grid(dimension == "heads" ? o.headsGrid : o.ffnsGrid))",
                            out: StudyLayout.sweep(dimension))),
                    csv: CSV.table(["shots", "\(dimension)_percent", "mean_value"], meanRows.map { ["\($0.shots)", CSV.number(x($0)), CSV.number($0.value)] })),
                at: 0)
        }
        return figures
    }

    static func curvesSection(_ i: Inputs, dimension: String) -> ReportSection {
        let title = dimension == "heads" ? "Head pruning" : "FFN pruning"
        guard let t = dimension == "heads" ? i.headsSweep : i.ffnsSweep else { return missing(title, "the \(dimension) sweep") }
        let what = dimension == "heads" ? "heads, ranked globally across layers" : "FFNs"
        return ReportSection(
            title: title,
            intro: "<p>The p% lowest-ranked \(what) are masked and every cell is scored again (count = floor(p · total / 100), as the paper's code).</p>",
            figures: curves(
                t, dimension: dimension, i.options,
                total: dimension == "heads"
                    ? i.heads.first.map { $0.scores.count * ($0.scores.first?.count ?? 0) }
                    : i.ffns.first?.scores.count))
    }

    static func combinedSection(_ i: Inputs) -> ReportSection {
        guard let t = i.combined, !t.rows.isEmpty else { return missing("Combined pruning", "the combined sweep") }
        var figures: [Figure] = []
        for k in Set(t.rows.map(\.shots)).sorted() {
            let rows = t.rows.filter { $0.shots == k }
            let hs = Set(rows.map(\.heads_percent)).sorted(), fs = Set(rows.map(\.ffns_percent)).sorted()
            let values = fs.map { f in
                hs.map { h in
                    let cell = rows.filter { $0.heads_percent == h && $0.ffns_percent == f }.map(\.value)
                    return cell.isEmpty ? .nan : cell.reduce(0, +) / Double(cell.count)
                }
            }
            var map = Heatmap(
                title: "Mean accuracy, \(k)-shot", values: values, rowLabel: "% of FFNs removed", columnLabel: "% of heads removed", valueLabel: "accuracy")
            map.rowNames = fs.map { formatNumber($0) }
            map.columnNames = hs.map { formatNumber($0) }
            map.scale = ColorScale(.sequential, low: 0, high: 1)
            map.annotate = true
            map.cell = 34
            var reading = ""
            if let base = values.first?.first, base.isFinite {
                let kept = fs.indices.flatMap { r in hs.indices.map { (r, $0) } }.filter { values[$0.0][$0.1] >= base - 0.02 }
                if let best = kept.max(by: { (fs[$0.0] + hs[$0.1], hs[$0.1]) < (fs[$1.0] + hs[$1.1], hs[$1.1]) }) {
                    reading =
                        " <strong>What this shows:</strong> the most removed while staying within 2 points of the unpruned \(String(format: "%.2f", base)) is \(formatNumber(hs[best.1]))% of heads with \(formatNumber(fs[best.0]))% of FFNs (\(String(format: "%.2f", values[best.0][best.1])))."
                }
            }
            figures.append(
                Figure(
                    id: "combined-\(k)shot", svg: map.render(),
                    caption:
                        "Heads and FFNs removed together by the aggregate rankings, accuracy averaged over tasks, \(k)-shot. Each cell is one masked evaluation of every task. Colour scale: accuracy 0 (dark) to 1 (bright)."
                        + reading,
                    command: StudyCommands.line(
                        StudyCommands.sweep(
                            i.options, tasks: i.options.tasks, shots: [k],
                            heads: i.options.tasks.flatMap { t in i.options.shots.map { StudyLayout.scores("heads", t, $0) } },
                            ffns: i.options.tasks.flatMap { t in i.options.shots.map { StudyLayout.scores("ffns", t, $0) } },
                            grid: "heads=\(StudyCommands.grid(i.options.headsGrid)),ffns=\(StudyCommands.grid(i.options.combinedFFNs))",
                            rankingFrom: "aggregate", out: StudyLayout.sweep("combined"))),
                    csv: CSV.matrix(values, corner: "ffns%\\heads%", rowNames: fs.map { CSV.number($0) }, columnNames: hs.map { CSV.number($0) })))
        }
        return ReportSection(title: "Combined pruning", intro: "<p>The grid of heads% × FFNs% removed at once.</p>", figures: figures)
    }

    static func correlationSection(_ i: Inputs) -> ReportSection {
        guard i.heads.count > 1 else { return missing("Rank correlations", "head importance for at least two tasks or shots") }
        var figures: [Figure] = []
        let o = i.options
        for k in o.shots {
            let files = i.heads.filter { $0.shots == k }
            guard files.count > 1 else { continue }
            let names = files.map { $0.task ?? "?" }
            let flat = files.map { $0.scores.flatMap { $0 } }
            let m = flat.map { a in flat.map { b in Ranking.spearman(a, b) } }
            let map = correlationMap("Across tasks, \(k)-shot", m, rows: names, columns: names, columnLabel: "task", cell: 34)
            figures.append(
                Figure(
                    id: "spearman-tasks-\(k)shot", svg: map.render(),
                    caption:
                        "Spearman rank correlation of head importance between tasks, \(k)-shot; colour scale −1 (blue) to 1 (red). High values mean the same heads matter for every task, as the paper found. <strong>What this shows:</strong> the mean correlation between two different tasks is \(String(format: "%.2f", meanOffDiagonal(m)))\(meanOffDiagonal(m) >= 0.5 ? ": largely the same heads" : meanOffDiagonal(m) >= 0.2 ? ": partly the same heads" : ": different heads").",
                    command: StudyCommands.line(StudyCommands.rank(files.compactMap(StudyReport.path), aggregate: false, out: StudyLayout.ranks("heads"))),
                    csv: CSV.matrix(m, corner: "", rowNames: names, columnNames: names)))
        }
        // Across shots: one row per task, one column per pair of shots values.
        let pairs = o.shots.indices.flatMap { a in o.shots.indices.filter { $0 > a }.map { (o.shots[a], o.shots[$0]) } }
        let tasks = o.tasks.filter { t in o.shots.allSatisfy { k in i.heads.contains { $0.task == t && $0.shots == k } } }
        if !pairs.isEmpty && !tasks.isEmpty {
            let values = tasks.map { t in
                pairs.map { a, b in
                    Ranking.spearman(
                        i.heads.first { $0.task == t && $0.shots == a }!.scores.flatMap { $0 },
                        i.heads.first { $0.task == t && $0.shots == b }!.scores.flatMap { $0 })
                }
            }
            let map = correlationMap(
                "Across shots", values, rows: tasks, columns: pairs.map { "\($0.0) vs \($0.1)" },
                columnLabel: "shots compared", cell: 40)
            figures.append(
                Figure(
                    id: "spearman-shots", svg: map.render(),
                    caption:
                        "Spearman rank correlation of each task's head importance between numbers of shots; colour scale −1 (blue) to 1 (red). The paper found the important heads barely change with the number of shots. <strong>What this shows:</strong> the mean correlation is \(String(format: "%.2f", values.flatMap { $0 }.filter(\.isFinite).reduce(0, +) / Double(max(1, values.flatMap { $0 }.filter(\.isFinite).count))))).",
                    command: StudyCommands.line(StudyCommands.rank(i.heads.compactMap(StudyReport.path), aggregate: false, out: StudyLayout.ranks("heads"))),
                    csv: CSV.matrix(values, corner: "task", rowNames: tasks, columnNames: map.columnNames!)))
        }
        return ReportSection(title: "Rank correlations", intro: "<p>Ties take average ranks, as <code>scipy.stats.spearmanr</code>.</p>", figures: figures)
    }

    /// A Spearman matrix: diverging scale fixed at −1…1, values printed in the cells.
    static func correlationMap(
        _ title: String, _ values: [[Double]], rows: [String], columns: [String], columnLabel: String,
        cell: Double
    ) -> Heatmap {
        var map = Heatmap(title: title, values: values, rowLabel: "task", columnLabel: columnLabel, valueLabel: "Spearman ρ")
        map.rowNames = rows
        map.columnNames = columns
        map.scale = ColorScale(.diverging, low: -1, high: 1)
        map.annotate = true
        map.cell = cell
        return map
    }

    static func inductionSection(_ i: Inputs) -> ReportSection {
        guard let prefix = i.prefix else { return missing("Induction heads", "the induction scores") }
        // Both probes are shares in 0…1: one colour scale, so equal colours mean equal scores in both maps.
        let probeScale = ColorScale(
            .sequential, low: 0,
            high: max(1e-9, (prefix.scores + (i.copying?.scores ?? [])).flatMap { $0 }.filter(\.isFinite).max() ?? 1))
        var figures = [
            heatmapFigure(
                "prefix-matching", "Prefix matching", prefix.scores, cell: 22,
                caption:
                    "Attention from a repeated token to the token that followed its earlier occurrences (random token sequences repeated 4 times). Induction heads score high.",
                command: StudyCommands.line(StudyCommands.induction(i.options, kind: "prefix-matching")),
                valueLabel: "prefix matching", scale: probeScale)
        ]
        if let copying = i.copying {
            figures.append(
                heatmapFigure(
                    "copying", "Copying", copying.scores, cell: 22,
                    caption: "The paper's copying probe: how much a head's output raises the logit of the token it attends to.",
                    command: StudyCommands.line(StudyCommands.induction(i.options, kind: "copying")),
                    valueLabel: "copying", scale: probeScale))
        }
        if !i.heads.isEmpty {
            let importance = Ranking.mean(i.heads.map(\.scores))
            let flatPrefix = prefix.scores.flatMap { $0 }, flatImportance = importance.flatMap { $0 }
            let H = prefix.scores.first?.count ?? 1
            // Induction heads: prefix matching ≥ 0.3; when no head reaches that, the top 10%.
            let strong = flatPrefix.indices.filter { flatPrefix[$0] >= 0.3 }
            let top =
                strong.isEmpty ? Array(flatPrefix.indices.sorted { (flatPrefix[$0], $0) > (flatPrefix[$1], $1) }.prefix(max(1, flatPrefix.count / 10))) : strong
            let which =
                strong.isEmpty
                ? "the top 10% of heads by prefix matching (none reaches 0.3)" : "the \(strong.count) heads with prefix matching ≥ 0.3 (induction heads)"
            figures.append(
                heatmapFigure(
                    "overlap-heatmap", "Important heads, induction heads outlined", importance, cell: 22,
                    caption: "Aggregate gradient importance, with \(which) outlined in red.",
                    command: StudyCommands.line(
                        StudyCommands.rank(
                            [StudyLayout.induction("prefix-matching"), StudyLayout.aggregate("heads")], aggregate: false, out: "ranks/induction")),
                    outlined: top.map { ($0 / H, $0 % H) }))
            let percents: [Double] = [10, 20, 30, 40, 50]
            let overlap = percents.map { Ranking.topOverlap(flatPrefix, flatImportance, percent: $0) }
            var chart = LineChart(
                title: "Overlap of induction and important heads",
                series: [
                    Series(name: "observed", points: zip(percents, overlap).map { ($0, $1) }),
                    Series(name: "chance", points: percents.map { ($0, $0 / 100) }, dashed: true),
                ],
                xLabel: "top k% of heads by each score", yLabel: "share of top-k% in common")
            chart.yRange = 0...1
            figures.append(
                Figure(
                    id: "overlap", svg: chart.render(),
                    caption:
                        "Of the top k% heads by prefix matching, the share that is also in the top k% by gradient importance; the dashed line is what random sets would give. The paper found induction heads among the most important ones. <strong>What this shows:</strong> at the top 20%, \(String(format: "%.0f", 100 * overlap[1]))% are shared, against \(String(format: "%.0f", 20.0))% by chance\(overlap[1] > 0.3 ? ": induction heads are among the important heads here too" : "").",
                    command: StudyCommands.line(
                        StudyCommands.rank(
                            [StudyLayout.induction("prefix-matching"), StudyLayout.aggregate("heads")], aggregate: false, out: "ranks/induction")),
                    csv: CSV.table(
                        ["top_percent", "overlap", "chance"],
                        percents.indices.map { [CSV.number(percents[$0]), CSV.number(overlap[$0]), CSV.number(percents[$0] / 100)] })))
        }
        return ReportSection(
            title: "Induction heads",
            intro: "<p>Prefix matching and copying, the paper's two induction-head scores, on random token sequences.</p>", figures: figures)
    }

    static func prunedSection(_ i: Inputs) -> ReportSection {
        guard let c = i.comparison else { return missing("Pruned model", "the physically pruned model") }
        let o = i.options
        func mb(_ n: Int) -> String { String(format: "%.2f MB", Double(n) / 1e6) }
        func ratio(_ a: Double, _ b: Double) -> String { String(format: "%.3f×", a / b) }
        var rows = [
            ["file size", mb(c.original.fileBytes), mb(c.pruned.fileBytes), ratio(Double(c.pruned.fileBytes), Double(c.original.fileBytes))],
            [
                "decoder parameters", "\(c.original.layerParameters)", "\(c.pruned.layerParameters)",
                ratio(Double(c.pruned.layerParameters), Double(c.original.layerParameters)),
            ],
            ["heads", "\(c.original.heads)", "\(c.pruned.heads)", ratio(Double(c.pruned.heads), Double(c.original.heads))],
            ["FFNs", "\(c.original.ffns)", "\(c.pruned.ffns)", ratio(Double(c.pruned.ffns), Double(c.original.ffns))],
            [
                "scoring tokens/s", String(format: "%.0f", c.original.tokensPerS), String(format: "%.0f", c.pruned.tokensPerS),
                ratio(c.pruned.tokensPerS, c.original.tokensPerS),
            ],
            [
                "mean accuracy", String(format: "%.3f", c.original.meanMetric), String(format: "%.3f", c.pruned.meanMetric),
                ratio(c.pruned.meanMetric, c.original.meanMetric),
            ],
        ]
        for key in c.original.cells.keys.sorted() {
            let a = c.original.cells[key] ?? .nan, b = c.pruned.cells[key] ?? .nan
            rows.append([key, String(format: "%.3f", a), String(format: "%.3f", b), String(format: "%+.3f", b - a)])
        }
        let header = ["", "original", "pruned", "pruned / original (cells: Δ)"]
        let csv = CSV.table(header.map { $0.isEmpty ? "what" : $0 }, rows)
        let heads = c.plan.selection?["heads"].map { formatNumber($0.percent) } ?? formatNumber(o.pruneHeads)
        let ffns = c.plan.selection?["ffns"].map { formatNumber($0.percent) } ?? formatNumber(o.pruneFFNs)
        return ReportSection(
            title: "Pruned model",
            intro:
                "<p>\(heads)% of heads and \(ffns)% of FFNs removed by the aggregate rankings, physically (<code>pruned/model.hrz</code>), and evaluated on the same cells as the original. Made by <code>\(escapeXML(StudyCommands.line(StudyCommands.prune(o, ffns: !i.ffns.isEmpty))))</code>, then evaluated as the original and timed with a short forward benchmark on both. Numbers: <a href=\"figures/pruned-vs-original.csv\">figures/pruned-vs-original.csv</a>.</p>",
            html: htmlTable(header, rows), files: ["pruned-vs-original.csv": csv])
    }
}
