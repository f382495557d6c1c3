/// The study's error: which file (or option) and which field in it, and what is wrong. Errors of the stages
/// below (evaluation, analysis, pruning) pass through as they are.
public struct StudyError: Error, CustomStringConvertible {
    /// The file the problem is in, as the study names it; nil for a command-line option.
    public var file: String?
    /// The field of that file, or the option (`--sbatch`).
    public var field: String?
    public var message: String

    public init(file: String? = nil, field: String? = nil, _ message: String) {
        self.file = file
        self.field = field
        self.message = message
    }

    public var description: String {
        switch (file, field) {
        case let (file?, field?): return "\(file): field '\(field)': \(message)"
        case let (file?, nil): return "\(file): \(message)"
        case let (nil, field?): return "\(field): \(message)"
        case (nil, nil): return message
        }
    }
}
