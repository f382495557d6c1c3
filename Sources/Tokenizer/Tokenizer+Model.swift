/// Finding a tokenizer: embedded in an `.hrz`, or vocab.json + merges.txt in a directory.
import Foundation
import HRZFormat

extension Tokenizer {
    /// Loads from a directory (vocab.json, merges.txt) or from the files embedded in an `.hrz`.
    public static func load(_ path: String) throws -> Tokenizer {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TokenizerError(file: path, line: nil, reason: "no such file or directory")
        }
        if isDirectory.boolValue { return try Tokenizer(directory: path) }
        let reader = try HRZReader(path: path)
        guard let embedded = reader.metadata.tokenizer else {
            throw TokenizerError(
                file: path, line: nil,
                reason: "no tokenizer embedded; convert with --tokenizer DIR, or pass the directory holding vocab.json and merges.txt")
        }
        return try Tokenizer(vocab: embedded.vocab, merges: embedded.merges, vocabName: path + " (vocab.json)", mergesName: path + " (merges.txt)")
    }
}
