/// One self-contained HTML file: sections of figures (inline SVG) with captions, the command that made
/// each, and the numbers beside it as CSV files. No JavaScript, no network.
import Foundation
import HRZFormat
import Files

public struct Figure: Sendable {
    /// File-safe id; the CSV is `figures/<id>.csv`.
    public var id: String
    public var svg: String
    public var caption: String
    /// The command that produced the underlying numbers.
    public var command: String
    public var csv: String?

    public init(id: String, svg: String, caption: String, command: String, csv: String? = nil) {
        self.id = id
        self.svg = svg
        self.caption = caption
        self.command = command
        self.csv = csv
    }
}

public struct ReportSection: Sendable {
    public var title: String
    /// Short HTML paragraph(s) introducing the section (already escaped by the caller).
    public var intro: String
    public var figures: [Figure]
    /// Extra HTML after the figures, e.g. a table.
    public var html: String
    /// Extra CSV files written beside the figures' (name → content), e.g. a table's numbers.
    public var files: [String: String]

    public init(title: String, intro: String = "", figures: [Figure] = [], html: String = "", files: [String: String] = [:]) {
        self.title = title
        self.intro = intro
        self.figures = figures
        self.html = html
        self.files = files
    }
}

public struct HTMLReport: Sendable {
    public var title: String
    /// Escaped HTML shown under the title: model, data, date.
    public var summary: String
    /// Escaped HTML paragraphs after the summary: what the report is about and what to look for.
    public var introduction = ""
    public var sections: [ReportSection]

    public init(title: String, summary: String, sections: [ReportSection]) {
        self.title = title
        self.summary = summary
        self.sections = sections
    }

    static let style = """
        body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0 auto; max-width: 1180px;
               padding: 24px 32px 64px; color: #1d1d1f; line-height: 1.45; }
        h1 { font-size: 26px; margin-bottom: 4px; } h2 { font-size: 19px; margin-top: 40px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
        .summary { color: #555; font-size: 14px; } .intro { max-width: 860px; font-size: 14px; }
        .figures { display: flex; flex-wrap: wrap; gap: 18px 28px; }
        figure { margin: 8px 0; max-width: 560px; } figure svg { max-width: 100%; height: auto; }
        figcaption { font-size: 13px; color: #333; max-width: 540px; }
        figcaption code, p code { background: #f3f3f3; padding: 1px 4px; border-radius: 3px; font-size: 12px; }
        .source { display: block; margin-top: 3px; color: #666; font-size: 12px; }
        table { border-collapse: collapse; font-size: 13px; margin: 10px 0; }
        th, td { border-bottom: 1px solid #e3e3e3; padding: 5px 12px; text-align: right; } th:first-child, td:first-child { text-align: left; }
        th { background: #f6f6f6; }
        nav a { margin-right: 14px; font-size: 13px; }
        """

    public func render() -> String {
        var html = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>\(escapeXML(title))</title>
            <style>\(Self.style)</style></head><body>
            <h1>\(escapeXML(title))</h1>
            <p class="summary">\(summary)</p>
            \(introduction.isEmpty ? "" : "<div class=\"intro\">\(introduction)</div>")
            <nav>\(sections.enumerated().map { "<a href=\"#s\($0.offset)\">\(escapeXML($0.element.title))</a>" }.joined())</nav>

            """
        for (i, section) in sections.enumerated() {
            html += "<section id=\"s\(i)\"><h2>\(escapeXML(section.title))</h2>\n"
            if !section.intro.isEmpty { html += "<div class=\"intro\">\(section.intro)</div>\n" }
            if !section.figures.isEmpty {
                html += "<div class=\"figures\">\n"
                for f in section.figures {
                    let data = f.csv == nil ? "" : " Numbers: <a href=\"figures/\(f.id).csv\">figures/\(f.id).csv</a>."
                    html +=
                        "<figure id=\"\(f.id)\">\(f.svg)\n<figcaption>\(f.caption)<span class=\"source\">Made by <code>\(escapeXML(f.command))</code>.\(data)</span></figcaption></figure>\n"
                }
                html += "</div>\n"
            }
            html += section.html + "</section>\n"
        }
        return html + "</body></html>\n"
    }

    /// Writes `DIR/report.html` and `DIR/figures/<id>.csv`, each atomically; returns the report's path.
    @discardableResult
    public func write(to directory: String) throws -> String {
        try FileManager.default.createDirectory(atPath: directory + "/figures", withIntermediateDirectories: true)
        for section in sections {
            for f in section.figures { if let csv = f.csv { try AtomicFile.write([UInt8](csv.utf8), to: "\(directory)/figures/\(f.id).csv") } }
            for (name, csv) in section.files { try AtomicFile.write([UInt8](csv.utf8), to: "\(directory)/figures/\(name)") }
        }
        let path = directory + "/report.html"
        try AtomicFile.write([UInt8](render().utf8), to: path)
        return path
    }
}

/// CSV helpers for the numbers behind figures.
public enum CSV {
    /// A header row, then one row per matrix row: `rowName, v0, v1, …`.
    public static func matrix(_ values: [[Double]], corner: String, rowNames: [String], columnNames: [String]) -> String {
        var out = ([corner] + columnNames).map(field).joined(separator: ",") + "\n"
        for (r, row) in values.enumerated() { out += ([field(rowNames[r])] + row.map { number($0) }).joined(separator: ",") + "\n" }
        return out
    }

    /// Rows of already-formatted cells under a header.
    public static func table(_ header: [String], _ rows: [[String]]) -> String {
        ([header] + rows).map { $0.map(field).joined(separator: ",") }.joined(separator: "\n") + "\n"
    }

    public static func number(_ x: Double) -> String { x.isFinite ? String(format: "%.6g", x) : "nan" }

    static func field(_ s: String) -> String {
        s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }
}

/// A plain HTML table (cells are escaped).
public func htmlTable(_ header: [String], _ rows: [[String]]) -> String {
    "<table><tr>" + header.map { "<th>\(escapeXML($0))</th>" }.joined() + "</tr>"
        + rows.map { "<tr>" + $0.map { "<td>\(escapeXML($0))</td>" }.joined() + "</tr>" }.joined() + "</table>\n"
}
