/// The runtime's error: where (the model file or the input, and the place in it: a sequence and position, a
/// layer) and what is wrong. Problems of the model file's container are `HRZError`s.
public struct RuntimeError: Error, CustomStringConvertible, Sendable {
    /// The model or input file, when the problem is in one.
    public var file: String?
    /// "sequence 3, position 7", "layer 12", "importance example 4".
    public var place: String?
    public var message: String
    public init(file: String? = nil, place: String? = nil, _ message: String) {
        self.file = file
        self.place = place
        self.message = message
    }
    public var description: String { [file, place].compactMap { $0 }.map { $0 + ": " }.joined() + message }
}
