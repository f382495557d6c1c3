import Foundation
import Testing
@testable import Reports
import TestSupport

/// The SVG primitives, checked structurally: what a reader sees must carry the data.
struct SVGTests {
    static func count(_ needle: String, in haystack: String) -> Int { haystack.components(separatedBy: needle).count - 1 }

    @Test func heatmapHasACellPerValueWithItsValueInTheTitle() {
        var map = Heatmap(title: "Importance", values: [[0.5, 1.25, -0.75], [2, 0, 3.5]], rowLabel: "layer", columnLabel: "head", valueLabel: "score")
        map.outlined = [(1, 2)]
        let svg = map.render()
        #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        let cells = svg.components(separatedBy: "<g class=\"cells\">")[1].components(separatedBy: "</g>")[0]
        #expect(Self.count("<rect ", in: cells) == 6)
        for text in ["layer 0, head 1: 1.25", "layer 0, head 2: −0.75", "layer 1, head 2: 3.5"] { #expect(svg.contains("<title>\(text)</title>")) }
        #expect(Self.count("class=\"outline\"", in: svg) == 1)
        // Axis labels, colour bar with its label and ticks spanning the data.
        for label in [">head</text>", ">layer</text>", ">score</text>", ">Importance</text>"] { #expect(svg.contains(label)) }
        let bar = svg.components(separatedBy: "<g class=\"colorbar\">")[1]
        #expect(bar.contains(">0</text>") && bar.contains(">2</text>"))  // "nice" ticks inside −0.75…3.5
        // Extremes get the scale's end colours.
        #expect(svg.contains("fill=\"#440154\"><title>layer 0, head 2") && svg.contains("fill=\"#fde725\"><title>layer 1, head 2"))
    }

    @Test func lineChartPlotsEveryPointInsideItsAxes() {
        var chart = LineChart(
            title: "Pruning",
            series: [
                Series(name: "0-shot", points: [(0, 0.8), (50, 0.7), (90, 0.3)]),
                Series(name: "5-shot", points: [(0, 0.9), (50, 0.85), (90, 0.2)]),
            ],
            xLabel: "% removed", yLabel: "accuracy")
        chart.yRange = 0...1
        chart.reference = (0.25, "chance")
        let svg = chart.render()
        #expect(Self.count("<circle ", in: svg) == 6)
        #expect(Self.count("<polyline ", in: svg) == 2)
        #expect(svg.contains("<title>5-shot: % removed 50 → 0.85</title>"))
        #expect(svg.contains(">0-shot</text>") && svg.contains(">5-shot</text>") && svg.contains(">chance</text>"))
        // y ticks 0…1, x ticks 0…90: the plot area is 56…310 wide and 32…254 tall (460 × 300, margins 56/150/32/46).
        for tick in [">0</text>", ">0.2</text>", ">1</text>", ">80</text>"] { #expect(svg.contains(tick)) }
        let ys = svg.components(separatedBy: "cy=\"").dropFirst().map { Double($0.prefix { $0 != "\"" })! }
        let xs = svg.components(separatedBy: "cx=\"").dropFirst().map { Double($0.prefix { $0 != "\"" })! }
        #expect(ys.allSatisfy { (32...254).contains($0) } && xs.allSatisfy { (56...310).contains($0) })
        #expect(xs.min() == 56 && xs.max() == 310)
        #expect(abs(ys[0] - (32 + 0.2 * 222)) < 0.01)  // 0.8 on a 0…1 axis
    }

    @Test func barChartDrawsSignedBarsFromZero() {
        let svg = BarChart(title: "FFN", bars: [("0", 0.04), ("1", -0.01), ("2", 0)], xLabel: "layer", yLabel: "drop").render()
        #expect(Self.count("class=\"bar\"", in: svg) == 3)
        #expect(svg.contains("<title>layer 1: −0.01</title>"))
        #expect(svg.contains("fill=\"#2166ac\"><title>layer 1"))  // negative bars blue, as the diverging scale: one meaning per colour
    }

    @Test func colorScalesAndNumbers() {
        let diverging = ColorScale.fitting([-2, 1], .diverging)
        #expect(diverging.low == -2 && diverging.high == 2)
        #expect(diverging.color(0) == "#f7f7f7" && diverging.color(-2) == "#053061" && diverging.color(2) == "#67001f")
        #expect(ColorScale(.sequential, low: 0, high: 1).color(.nan) == "#dddddd")
        #expect(formatNumber(0.000123) == "0.000123" && formatNumber(-3) == "−3" && formatNumber(12345) == "1.23e+04")
        #expect(escapeXML("a<b & \"c\"") == "a&lt;b &amp; &quot;c&quot;")
        #expect(CSV.table(["a", "b"], [["x,y", "1"]]) == "a,b\n\"x,y\",1\n")
    }

    /// One golden file: the exact bytes of a small heatmap, to catch unintended changes to what users see.
    @Test func heatmapGolden() throws {
        var map = Heatmap(title: "Spearman", values: [[1, 0.5], [0.5, 1]], rowLabel: "task", columnLabel: "task", valueLabel: "ρ")
        map.rowNames = ["copa", "rte"]
        map.columnNames = ["copa", "rte"]
        map.scale = ColorScale(.diverging, low: -1, high: 1)
        map.annotate = true
        let golden = Bundle.module.resourceURL!.appendingPathComponent("Fixtures/heatmap.svg")
        if ProcessInfo.processInfo.environment["HEADROOM_UPDATE_GOLDEN"] != nil {
            let source = URL(fileURLWithPath: Repository.path("Tests/ReportsTests/Fixtures/heatmap.svg"))
            try map.render().write(to: source, atomically: true, encoding: .utf8)
        }
        #expect(map.render() == (try String(contentsOf: golden, encoding: .utf8)))
    }
}

struct HTMLReportTests {
    @Test func reportIsSelfContainedAndWritesItsCSV() throws {
        let dir = testScratch() + "headroom-report-\(getpid())"
        let figure = Figure(id: "f1", svg: "<svg></svg>", caption: "A caption.", command: "headroom x --y", csv: "a,b\n1,2\n")
        let report = HTMLReport(
            title: "T <1>", summary: "S",
            sections: [
                ReportSection(title: "One", figures: [figure], files: ["extra.csv": "x\n"]),
                ReportSection(title: "Two", html: "<p>done</p>"),
            ])
        let path = try report.write(to: dir)
        let html = try String(contentsOfFile: path, encoding: .utf8)
        #expect(html.hasPrefix("<!DOCTYPE html>") && html.contains("<title>T &lt;1&gt;</title>"))
        #expect(!html.contains("<script") && !html.contains("http://") && !html.contains("https://"))
        #expect(html.contains("<figure id=\"f1\"><svg></svg>") && html.contains("<code>headroom x --y</code>"))
        #expect(html.contains("href=\"figures/f1.csv\"") && html.contains("<a href=\"#s1\">Two</a>"))
        #expect(try String(contentsOfFile: dir + "/figures/f1.csv", encoding: .utf8) == "a,b\n1,2\n")
        #expect(try String(contentsOfFile: dir + "/figures/extra.csv", encoding: .utf8) == "x\n")
    }
}
