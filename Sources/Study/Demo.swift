/// The embedded demo: a small OPT trained by Tools/train_demo.py to learn in context, and its tasks in the
/// generic JSONL format, shipped as resources so `headroom study` with no arguments runs anywhere.
import Foundation

public enum Demo {
    static var root: URL? { Bundle.module.resourceURL?.appendingPathComponent("Demo") }

    /// The demo model, or nil when the resource bundle is missing.
    public static var model: String? {
        guard let path = root?.appendingPathComponent("demo.hrz").path, FileManager.default.fileExists(atPath: path) else { return nil }
        return path
    }

    /// The directory of the demo tasks (`<task>/{train,validation}.jsonl`).
    public static var data: String? { root?.appendingPathComponent("tasks").path }

    /// The demo task names, sorted.
    public static var tasks: [String] {
        guard let data, let names = try? FileManager.default.contentsOfDirectory(atPath: data) else { return [] }
        return names.filter { FileManager.default.fileExists(atPath: "\(data)/\($0)/validation.jsonl") }.sorted()
    }
}
