/// An analysis's error about its own files (scores files, rank inputs): the file, the field, what is wrong.
/// Errors of the stages below (evaluation data, the runtime) pass through as they are.
public struct AnalysisError: Error, CustomStringConvertible, Sendable {
    public var file: String
    public var field: String?
    public var message: String
    public init(file: String, field: String? = nil, _ message: String) {
        self.file = file
        self.field = field
        self.message = message
    }
    public var description: String { file + (field.map { ": field '\($0)'" } ?? "") + ": " + message }
}
