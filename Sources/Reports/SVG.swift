/// Hand-written SVG charts for the study report: heatmap, line chart and bar chart. Each returns one
/// self-contained `<svg>` element with axis labels, a legend or colour scale, and a `<title>` on every
/// mark holding its exact value, so hovering in a browser reads the numbers.
import Foundation

/// A colour scale: sequential (viridis) for magnitudes, diverging (red–white–blue) for signed values
/// such as correlations and accuracy deltas.
public struct ColorScale: Sendable {
    public enum Kind: Sendable { case sequential, diverging }
    public var kind: Kind
    public var low: Double
    public var high: Double

    public init(_ kind: Kind, low: Double, high: Double) {
        self.kind = kind
        self.low = low
        self.high = high > low ? high : low + 1
    }

    /// A scale spanning `values` (diverging: symmetric about 0).
    public static func fitting(_ values: [Double], _ kind: Kind) -> ColorScale {
        let finite = values.filter(\.isFinite)
        let lo = finite.min() ?? 0, hi = finite.max() ?? 1
        if kind == .diverging {
            let m = max(abs(lo), abs(hi), 1e-12)
            return ColorScale(.diverging, low: -m, high: m)
        }
        return ColorScale(.sequential, low: lo, high: hi == lo ? lo + 1 : hi)
    }

    static let viridis: [(Double, Double, Double)] = [
        (68, 1, 84), (72, 40, 120), (62, 74, 137), (49, 104, 142), (38, 130, 142),
        (31, 158, 137), (53, 183, 121), (109, 205, 89), (180, 222, 44), (253, 231, 37),
    ]
    static let redBlue: [(Double, Double, Double)] = [
        (5, 48, 97), (33, 102, 172), (67, 147, 195), (146, 197, 222), (209, 229, 240), (247, 247, 247),
        (253, 219, 199), (244, 165, 130), (214, 96, 77), (178, 24, 43), (103, 0, 31),
    ]

    /// `#rrggbb` for `value`; NaN is light grey.
    public func color(_ value: Double) -> String {
        guard value.isFinite else { return "#dddddd" }
        let t = min(1, max(0, (value - low) / (high - low)))
        let stops = kind == .sequential ? Self.viridis : Self.redBlue
        let x = t * Double(stops.count - 1)
        let i = min(stops.count - 2, Int(x)), f = x - Double(i)
        let (a, b) = (stops[i], stops[i + 1])
        func mix(_ p: Double, _ q: Double) -> Int { Int((p + (q - p) * f).rounded()) }
        return String(format: "#%02x%02x%02x", mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }

    /// Whether text drawn on this value's colour should be white.
    func dark(_ value: Double) -> Bool {
        guard value.isFinite else { return false }
        let t = min(1, max(0, (value - low) / (high - low)))
        return kind == .sequential ? t < 0.55 : (t < 0.2 || t > 0.8)
    }
}

/// Text safe inside SVG/HTML.
public func escapeXML(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
}

/// A number for labels: up to 4 significant digits, no trailing zeros.
public func formatNumber(_ x: Double) -> String {
    guard x.isFinite else { return x.isNaN ? "n/a" : (x > 0 ? "∞" : "−∞") }
    if x == 0 { return "0" }
    let s = abs(x) >= 1e4 || abs(x) < 1e-3 ? String(format: "%.3g", x) : String(format: "%.4g", x)
    return s.replacingOccurrences(of: "-", with: "−")
}

/// "Nice" tick values covering [lo, hi]: steps of 1, 2 or 5 × 10^k.
func ticks(_ lo: Double, _ hi: Double, count: Int = 5) -> [Double] {
    guard hi > lo, lo.isFinite, hi.isFinite else { return [lo] }
    let raw = (hi - lo) / Double(max(1, count))
    let magnitude = pow(10, floor(log10(raw)))
    let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
    var out: [Double] = []
    var v = (lo / step).rounded(.up) * step
    while v <= hi + step * 1e-9 {
        out.append(abs(v) < step * 1e-9 ? 0 : v)
        v += step
    }
    return out
}

let font = "font-family=\"system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif\""

/// The common frame: an `<svg>` of `width × height` with a title line.
func svg(width: Double, height: Double, title: String, body: String) -> String {
    """
    <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" \(font) font-size="12" role="img" aria-label="\(escapeXML(title))">
    <text x="\(Int(width / 2))" y="18" text-anchor="middle" font-size="14" font-weight="600">\(escapeXML(title))</text>
    \(body)</svg>
    """
}

/// A vertical colour bar with ticks, at (x, y), `height` tall.
func colorBar(_ scale: ColorScale, x: Double, y: Double, height: Double, label: String, labelOffset: Double = 50) -> String {
    var out = "<g class=\"colorbar\">"
    let steps = 40
    for i in 0..<steps {
        let v = scale.high - (scale.high - scale.low) * (Double(i) + 0.5) / Double(steps)
        out +=
            "<rect x=\"\(x)\" y=\(q(y + height * Double(i) / Double(steps))) width=\"12\" height=\(q(height / Double(steps) + 0.5)) fill=\"\(scale.color(v))\"/>"
    }
    out += "<rect x=\"\(x)\" y=\"\(y)\" width=\"12\" height=\"\(height)\" fill=\"none\" stroke=\"#999\" stroke-width=\"0.5\"/>"
    for t in ticks(scale.low, scale.high, count: 4) {
        let ty = y + height * (scale.high - t) / (scale.high - scale.low)
        out += "<line x1=\"\(x + 12)\" x2=\"\(x + 15)\" y1=\(q(ty)) y2=\(q(ty)) stroke=\"#555\"/>"
        out += "<text x=\"\(x + 18)\" y=\(q(ty + 4)) font-size=\"11\">\(formatNumber(t))</text>"
    }
    out +=
        "<text transform=\"translate(\(x + labelOffset), \(y + height / 2)) rotate(90)\" text-anchor=\"middle\" font-size=\"11\" fill=\"#333\">\(escapeXML(label))</text>"
    return out + "</g>"
}

/// A quoted coordinate with 2 decimals.
func q(_ v: Double) -> String { "\"" + String(format: "%.2f", v) + "\"" }

public struct Heatmap: Sendable {
    public var title: String
    /// `values[row][column]`; rows are drawn top to bottom.
    public var values: [[Double]]
    public var rowLabel: String
    public var columnLabel: String
    public var valueLabel: String
    public var rowNames: [String]?
    public var columnNames: [String]?
    public var scale: ColorScale?
    public var kind: ColorScale.Kind = .sequential
    /// Cells to outline, as (row, column).
    public var outlined: [(Int, Int)] = []
    /// Print each value in its cell (for small matrices such as correlations).
    public var annotate = false
    public var cell: Double = 18

    public init(title: String, values: [[Double]], rowLabel: String, columnLabel: String, valueLabel: String) {
        self.title = title
        self.values = values
        self.rowLabel = rowLabel
        self.columnLabel = columnLabel
        self.valueLabel = valueLabel
    }

    public func render() -> String {
        let rows = values.count, columns = values.map(\.count).max() ?? 0
        let scale = self.scale ?? ColorScale.fitting(values.flatMap { $0 }, kind)
        let rowNames = self.rowNames ?? (0..<rows).map(String.init)
        let columnNames = self.columnNames ?? (0..<columns).map(String.init)
        let labelWidth = Double((rowNames.map(\.count).max() ?? 1) * 7 + 10)
        let left = 30 + labelWidth, top = 34.0
        let columnNameHeight = Double((columnNames.map(\.count).max() ?? 1) > 3 ? (columnNames.map(\.count).max()! * 6 + 8) : 16)
        let tickWidth = Double(ticks(scale.low, scale.high, count: 4).map { formatNumber($0).count }.max() ?? 3) * 6.5
        let width = max(left + Double(columns) * cell + 46 + tickWidth + 20, Double(title.count) * 8.6 + 24)
        let height = top + Double(rows) * cell + columnNameHeight + 26
        var body = "<g class=\"cells\">"
        for (r, row) in values.enumerated() {
            for (c, v) in row.enumerated() {
                let x = left + Double(c) * cell, y = top + Double(r) * cell
                body += "<rect x=\(q(x)) y=\(q(y)) width=\(q(cell)) height=\(q(cell)) fill=\"\(scale.color(v))\">"
                body += "<title>\(escapeXML("\(rowLabel) \(rowNames[r]), \(columnLabel) \(columnNames[c]): \(formatNumber(v))"))</title></rect>"
                if annotate {
                    body +=
                        "<text x=\(q(x + cell / 2)) y=\(q(y + cell / 2 + 4)) text-anchor=\"middle\" font-size=\"10\" fill=\"\(scale.dark(v) ? "#fff" : "#111")\">\(formatNumber((v * 100).rounded() / 100))</text>"
                }
            }
        }
        body += "</g>"
        for (r, c) in outlined {
            body +=
                "<rect class=\"outline\" x=\(q(left + Double(c) * cell + 1)) y=\(q(top + Double(r) * cell + 1)) width=\(q(cell - 2)) height=\(q(cell - 2)) fill=\"none\" stroke=\"#ff2d55\" stroke-width=\"2\"/>"
        }
        // Row and column names, thinned to every k-th when there are many.
        let every = max(1, Int((12 / cell).rounded(.up)))
        for (r, name) in rowNames.enumerated() where r % every == 0 || rows <= 16 {
            body += "<text x=\(q(left - 4)) y=\(q(top + (Double(r) + 0.5) * cell + 4)) text-anchor=\"end\" font-size=\"10\">\(escapeXML(name))</text>"
        }
        let bottom = top + Double(rows) * cell
        for (c, name) in columnNames.enumerated() where c % every == 0 || columns <= 16 {
            let x = left + (Double(c) + 0.5) * cell
            if name.count > 3 {
                body +=
                    "<text transform=\"translate(\(String(format: "%.2f", x + 3)), \(String(format: "%.2f", bottom + 6))) rotate(-45)\" text-anchor=\"end\" font-size=\"10\">\(escapeXML(name))</text>"
            } else {
                body += "<text x=\(q(x)) y=\(q(bottom + 13)) text-anchor=\"middle\" font-size=\"10\">\(escapeXML(name))</text>"
            }
        }
        body +=
            "<text x=\(q(left + Double(columns) * cell / 2)) y=\(q(bottom + columnNameHeight + 14)) text-anchor=\"middle\" fill=\"#333\">\(escapeXML(columnLabel))</text>"
        body +=
            "<text transform=\"translate(14, \(String(format: "%.2f", top + Double(rows) * cell / 2))) rotate(-90)\" text-anchor=\"middle\" fill=\"#333\">\(escapeXML(rowLabel))</text>"
        body += colorBar(
            scale, x: left + Double(columns) * cell + 14, y: top, height: min(max(Double(rows) * cell, 60), 220), label: valueLabel,
            labelOffset: 24 + tickWidth)
        return svg(width: width, height: height, title: title, body: body)
    }
}

public struct Series: Sendable {
    public var name: String
    public var points: [(x: Double, y: Double)]
    public var dashed = false
    public init(name: String, points: [(x: Double, y: Double)], dashed: Bool = false) {
        self.name = name
        self.points = points
        self.dashed = dashed
    }
}

/// Categorical colours (Okabe–Ito, distinguishable with colour-blindness).
let palette = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000"]

public struct LineChart: Sendable {
    public var title: String
    public var series: [Series]
    public var xLabel: String
    public var yLabel: String
    public var yRange: ClosedRange<Double>?
    /// A horizontal reference line, e.g. chance accuracy.
    public var reference: (y: Double, label: String)? {
        get { references.first }
        set { references = newValue.map { [$0] } ?? [] }
    }
    /// Horizontal reference lines (chance levels of several tasks); equal levels are drawn once.
    public var references: [(y: Double, label: String)] = []
    /// Where to put x ticks (e.g. the shots values); nil chooses "nice" ones.
    public var xTicks: [Double]?
    public var width: Double = 460
    public var height: Double = 300

    public init(title: String, series: [Series], xLabel: String, yLabel: String) {
        self.title = title
        self.series = series
        self.xLabel = xLabel
        self.yLabel = yLabel
    }

    public func render() -> String {
        let xs = series.flatMap { $0.points.map(\.x) }, ys = series.flatMap { $0.points.map(\.y) }.filter(\.isFinite)
        let x0 = xs.min() ?? 0, x1 = max(xs.max() ?? 1, x0 + 1e-9)
        var y0 = yRange?.lowerBound ?? (ys.min() ?? 0), y1 = yRange?.upperBound ?? (ys.max() ?? 1)
        for r in references where yRange == nil { y0 = min(y0, r.y); y1 = max(y1, r.y) }
        if y1 - y0 < 1e-9 { y0 -= 0.5; y1 += 0.5 }
        let left = 56.0, right = 150.0, top = 32.0, bottom = 46.0
        let plotW = width - left - right, plotH = height - top - bottom
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * plotW }
        func py(_ y: Double) -> Double { top + (y1 - y) / (y1 - y0) * plotH }
        var body = "<rect x=\"\(left)\" y=\"\(top)\" width=\(q(plotW)) height=\(q(plotH)) fill=\"#fafafa\" stroke=\"#ccc\"/>"
        for t in ticks(y0, y1) {
            body += "<line x1=\"\(left)\" x2=\(q(left + plotW)) y1=\(q(py(t))) y2=\(q(py(t))) stroke=\"#e6e6e6\"/>"
            body += "<text x=\(q(left - 6)) y=\(q(py(t) + 4)) text-anchor=\"end\" font-size=\"11\">\(formatNumber(t))</text>"
        }
        for t in xTicks ?? ticks(x0, x1, count: 6) {
            body += "<line x1=\(q(px(t))) x2=\(q(px(t))) y1=\(q(top + plotH)) y2=\(q(top + plotH + 4)) stroke=\"#555\"/>"
            body += "<text x=\(q(px(t))) y=\(q(top + plotH + 17)) text-anchor=\"middle\" font-size=\"11\">\(formatNumber(t))</text>"
        }
        // Reference lines at the same height share one line and one label.
        var levels: [(y: Double, labels: [String])] = []
        for r in references {
            if let i = levels.firstIndex(where: { abs($0.y - r.y) < 1e-9 }) { levels[i].labels.append(r.label) } else { levels.append((r.y, [r.label])) }
        }
        for level in levels {
            body +=
                "<line class=\"reference\" x1=\"\(left)\" x2=\(q(left + plotW)) y1=\(q(py(level.y))) y2=\(q(py(level.y))) stroke=\"#888\" stroke-dasharray=\"2 3\"/>"
            body +=
                "<text x=\(q(left + plotW - 4)) y=\(q(py(level.y) - 4)) text-anchor=\"end\" font-size=\"10\" fill=\"#666\">\(escapeXML(level.labels.joined(separator: ", ")))</text>"
        }
        for (i, s) in series.enumerated() {
            let color = palette[i % palette.count]
            let finite = s.points.filter { $0.y.isFinite }
            // A series identical to an earlier one would hide under it: draw it dashed and say so in the legend.
            let twin = series[..<i].first { t in
                let other = t.points.filter { $0.y.isFinite }
                return other.count == finite.count && zip(other, finite).allSatisfy { $0.x == $1.x && abs($0.y - $1.y) < 1e-12 }
            }
            var s = s
            if let twin { s.dashed = true; s.name += " (= \(twin.name))" }
            let path = finite.map { String(format: "%.2f,%.2f", px($0.x), py($0.y)) }.joined(separator: " ")
            body +=
                "<g class=\"series\"><polyline points=\"\(path)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(s.dashed ? " stroke-dasharray=\"6 4\"" : "")/>"
            for p in finite {
                body +=
                    "<circle cx=\(q(px(p.x))) cy=\(q(py(p.y))) r=\"3\" fill=\"\(color)\"><title>\(escapeXML("\(s.name): \(xLabel) \(formatNumber(p.x)) → \(formatNumber(p.y))"))</title></circle>"
            }
            body += "</g>"
            let ly = top + 8 + Double(i) * 18
            body +=
                "<line x1=\(q(left + plotW + 12)) x2=\(q(left + plotW + 34)) y1=\(q(ly)) y2=\(q(ly)) stroke=\"\(color)\" stroke-width=\"2\"\(s.dashed ? " stroke-dasharray=\"6 4\"" : "")/>"
            body += "<text x=\(q(left + plotW + 40)) y=\(q(ly + 4)) font-size=\"11\">\(escapeXML(s.name))</text>"
        }
        body += "<text x=\(q(left + plotW / 2)) y=\(q(height - 8)) text-anchor=\"middle\" fill=\"#333\">\(escapeXML(xLabel))</text>"
        body +=
            "<text transform=\"translate(14, \(String(format: "%.2f", top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\" fill=\"#333\">\(escapeXML(yLabel))</text>"
        return svg(width: width, height: height, title: title, body: body)
    }
}

public struct BarChart: Sendable {
    public var title: String
    public var bars: [(label: String, value: Double)]
    public var xLabel: String
    public var yLabel: String
    public var width: Double = 460
    public var height: Double = 260
    /// Bar colours: the diverging scale's ends, so red means the same as in the heatmaps beside it (the
    /// quantity is positive: the component helps) and blue its opposite.
    public var positiveColor = "#b2182b"
    public var negativeColor = "#2166ac"

    public init(title: String, bars: [(label: String, value: Double)], xLabel: String, yLabel: String) {
        self.title = title
        self.bars = bars
        self.xLabel = xLabel
        self.yLabel = yLabel
    }

    public func render() -> String {
        let values = bars.map(\.value).filter(\.isFinite)
        var y0 = min(0, values.min() ?? 0), y1 = max(0, values.max() ?? 1)
        if y1 - y0 < 1e-12 { y1 = y0 + 1 }
        let pad = (y1 - y0) * 0.05
        y0 = y0 < 0 ? y0 - pad : 0
        y1 += pad
        let left = 56.0, right = 16.0, top = 32.0, bottom = 46.0
        let plotW = width - left - right, plotH = height - top - bottom
        func py(_ y: Double) -> Double { top + (y1 - y) / (y1 - y0) * plotH }
        var body = "<rect x=\"\(left)\" y=\"\(top)\" width=\(q(plotW)) height=\(q(plotH)) fill=\"#fafafa\" stroke=\"#ccc\"/>"
        for t in ticks(y0, y1) {
            body += "<line x1=\"\(left)\" x2=\(q(left + plotW)) y1=\(q(py(t))) y2=\(q(py(t))) stroke=\"#e6e6e6\"/>"
            body += "<text x=\(q(left - 6)) y=\(q(py(t) + 4)) text-anchor=\"end\" font-size=\"11\">\(formatNumber(t))</text>"
        }
        let slot = plotW / Double(max(1, bars.count))
        for (i, bar) in bars.enumerated() where bar.value.isFinite {
            let x = left + Double(i) * slot + slot * 0.15
            let yTop = py(max(0, bar.value)), yBottom = py(min(0, bar.value))
            body +=
                "<rect class=\"bar\" x=\(q(x)) y=\(q(yTop)) width=\(q(slot * 0.7)) height=\(q(max(0.5, yBottom - yTop))) fill=\"\(bar.value >= 0 ? positiveColor : negativeColor)\">"
            body += "<title>\(escapeXML("\(xLabel) \(bar.label): \(formatNumber(bar.value))"))</title></rect>"
        }
        body += "<line x1=\"\(left)\" x2=\(q(left + plotW)) y1=\(q(py(0))) y2=\(q(py(0))) stroke=\"#333\"/>"
        let every = max(1, Int((14 / slot).rounded(.up)))
        for (i, bar) in bars.enumerated() where i % every == 0 {
            body +=
                "<text x=\(q(left + (Double(i) + 0.5) * slot)) y=\(q(top + plotH + 15)) text-anchor=\"middle\" font-size=\"10\">\(escapeXML(bar.label))</text>"
        }
        body += "<text x=\(q(left + plotW / 2)) y=\(q(height - 8)) text-anchor=\"middle\" fill=\"#333\">\(escapeXML(xLabel))</text>"
        body +=
            "<text transform=\"translate(14, \(String(format: "%.2f", top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\" fill=\"#333\">\(escapeXML(yLabel))</text>"
        return svg(width: width, height: height, title: title, body: body)
    }
}
