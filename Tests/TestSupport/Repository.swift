/// Where tests find things: the repository, its fixtures and the shared data beside the checkout, derived
/// once here (not from each test file's own path).
import Foundation

public enum Repository {
    /// The checkout's root.
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    /// A path relative to the root.
    public static func path(_ relative: String) -> String { root.appendingPathComponent(relative).standardized.path }
    /// `../shared/data` beside the checkout (CI has it there too).
    public static let data = path("../shared/data")
    /// The real task data (HF `datasets` rows, one JSONL per split).
    public static let tasks = path("../shared/data/tasks")
    /// OPT's vocab.json and merges.txt.
    public static let tokenizer = path("../shared/data/tokenizer/opt")
    /// The checkpoint fixtures Tools/make_reference.py wrote.
    public static let checkpoints = path("Tests/CheckpointsTests/Fixtures")
    /// The tiny real-vocabulary model the evaluation tests score with.
    public static let tinyRealVocab = path("Tests/EvaluationTests/Fixtures/tiny-real-vocab")
    /// The embedded demo model and its tasks.
    public static let demoModel = path("Sources/Study/Demo/demo.hrz")
    public static let demoTasks = path("Sources/Study/Demo/tasks")
}
