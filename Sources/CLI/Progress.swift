/// A progress line on stderr with rate and ETA. Redraws in place on a terminal, prints every few seconds otherwise.
import Foundation
import HRZFormat
import Basics

final class ProgressBar {
    private let label: String
    private let start = Date()
    private var lastDraw = Date.distantPast
    private var phase = ""
    private let interactive = isatty(2) != 0
    private var drawn = false

    init(_ label: String) { self.label = label }

    func update(phase: String, done: Int, total: Int, unit: Unit = .bytes) {
        let now = Date()
        let finished = done >= total
        if phase != self.phase {
            if drawn { FileHandle.standardError.write("\n".data(using: .utf8)!) }
            // The first phase is timed from the bar's creation: its first report may come after real work.
            if !self.phase.isEmpty { phaseStart = now }
            self.phase = phase
            drawn = false
        } else if !finished && now.timeIntervalSince(lastDraw) < (interactive ? 0.25 : 5) {
            return
        }
        lastDraw = now
        let elapsed = now.timeIntervalSince(phaseStart)
        // Too early for a rate (a new phase, one item done): say so rather than print an absurd one.
        let measured = elapsed >= 0.5 && done > 0
        let rate = measured ? Double(done) / elapsed : 0
        // Clamped: a total that was under-estimated (a file grew, a size taken from a symlink) never draws a bar
        // past its end or a negative ETA.
        let fraction = total > 0 ? min(1, max(0, Double(done) / Double(total))) : 1
        let eta = finished ? 0 : measured ? Double(max(0, total - done)) / rate : .nan
        let width = 24
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let line = String(
            format: "%@ %@ [%@] %5.1f%% %@/%@ %@/s ETA %@", label, phase, bar, fraction * 100,
            unit.format(done), unit.format(total), measured ? unit.rate(rate) : "--", formatDuration(eta))
        FileHandle.standardError.write(((interactive ? "\r\u{1B}[K" : "") + line + (interactive ? "" : "\n")).data(using: .utf8)!)
        drawn = interactive
    }

    private var phaseStart = Date()

    func finish() {
        if drawn { FileHandle.standardError.write("\n".data(using: .utf8)!) }
        drawn = false
    }

    enum Unit {
        case bytes, count, tokens
        func format(_ n: Int) -> String {
            switch self {
            case .bytes: return formatBytes(n)
            case .count: return "\(n)"
            case .tokens: return "\(n) tok"
            }
        }

        func rate(_ r: Double) -> String {
            self == .count && r < 10 ? String(format: "%.1f", r) : format(Int(r))
        }
    }
}

func formatBytes(_ n: Int) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"]
    var value = Double(n)
    var u = 0
    while value >= 1000 && u < units.count - 1 { value /= 1000; u += 1 }
    return u == 0 ? "\(n) B" : String(format: "%.2f %@", value, units[u])
}

func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite, seconds >= 0, seconds < 1e9 else { return "--:--" }
    let s = Int(seconds.rounded())
    return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
}

/// Prints to stderr with control characters escaped: messages quote names, paths and strings from files, and
/// a terminal escape sequence in a task file must not reach the terminal.
func printError(_ text: String) {
    FileHandle.standardError.write((escapingControlCharacters(text) + "\n").data(using: .utf8)!)
}

/// Every line this executable prints to stdout goes through here (it shadows Swift's `print` for strings in
/// this module): names, paths and provenance read from files are shown with control characters escaped.
func print(_ text: String) {
    Swift.print(escapingControlCharacters(text))
}

/// The overall position in a run of many cells: "cell 3/12, about 4:10 left", the ETA taken from the mean
/// time of the cells finished so far. Prefixed to the current cell's bar.
final class CellCounter {
    private let total: Int
    private var cells: [String] = []
    private var started = Date()
    private var finishedSeconds: [Double] = []

    init(total: Int) { self.total = total }

    private var current = ""

    /// The phase label for `cell`; call with each progress report. It changes only when the cell does, so
    /// the bar keeps its rate within a cell.
    func label(_ cell: String) -> String {
        guard cells.last != cell else { return current }
        if !cells.isEmpty { finishedSeconds.append(Date().timeIntervalSince(started)) }
        cells.append(cell)
        started = Date()
        var text = "[cell \(cells.count)/\(max(total, cells.count))"
        if !finishedSeconds.isEmpty {
            let mean = finishedSeconds.reduce(0, +) / Double(finishedSeconds.count)
            text += ", about \(formatDuration(mean * Double(max(0, total - cells.count + 1)))) left"
        }
        current = text + "] " + cell
        return current
    }
}
