/// OPT's tokenizer: GPT-2 byte-level BPE with OPT's `vocab.json` and `merges.txt`.
///
/// Ids equal HF's slow `GPT2Tokenizer(vocab_file, merges_file).encode(text, add_special_tokens=False)` on
/// every input (checked on a corpus of task text and edge cases). Special-token text such as `</s>` is
/// plain text, as it is for a GPT2Tokenizer built from these two files; no BOS is added unless asked for.
import Foundation
import HRZFormat
import Files

public struct TokenizerError: Error, CustomStringConvertible, Sendable {
    public var file: String
    public var line: Int?
    public var reason: String
    public var description: String { "\(file)" + (line.map { ":\($0)" } ?? "") + ": " + reason }

    public init(file: String, line: Int?, reason: String) {
        self.file = file
        self.line = line
        self.reason = reason
    }
}

public final class Tokenizer: @unchecked Sendable {
    private var bpe = BPE()
    /// symbol → vocabulary id (nil for merge results outside the vocabulary)
    private var symbolToID: [Int32] = []
    private var idToString: [String] = []
    private var cache: [String: [Int]] = [:]
    private let lock = NSLock()
    /// Number of ids in vocab.json (the max id + 1).
    public let vocabularySize: Int
    /// OPT's BOS, `</s>`.
    public let bosID = 2
    /// Vocabulary id of each merge's result, in merge-rank order (lower rank = merged earlier = more frequent).
    public private(set) var mergedTokenIDs: [Int] = []

    /// - Parameters: `vocab` is the text of vocab.json, `merges` the text of merges.txt.
    public init(vocab: String, merges: String, vocabName: String = "vocab.json", mergesName: String = "merges.txt") throws {
        guard let object = try? JSONSerialization.jsonObject(with: Data(vocab.utf8)) as? [String: Any] else {
            throw TokenizerError(file: vocabName, line: nil, reason: "not a JSON object of token → id")
        }
        var maxID = -1
        var entries: [(String, Int)] = []
        for (token, value) in object {
            guard let id = value as? Int, id >= 0, id < 10_000_000 else {
                throw TokenizerError(file: vocabName, line: nil, reason: "token '\(token)' has id \(value), not a non-negative integer")
            }
            entries.append((token, id))
            maxID = max(maxID, id)
        }
        vocabularySize = maxID + 1
        idToString = Array(repeating: "", count: vocabularySize)
        for (token, id) in entries.sorted(by: { $0.1 < $1.1 }) {
            idToString[id] = token
            _ = bpe.symbol(token)
        }
        var lineNumber = 0
        var rank: Int32 = 0
        var mergedSymbols: [Int32] = []
        for line in merges.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let text = line.hasSuffix("\r") ? line.dropLast() : line
            if lineNumber == 1 && text.hasPrefix("#version") { continue }
            if text.isEmpty { continue }
            let parts = text.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw TokenizerError(file: mergesName, line: lineNumber, reason: "expected two space-separated symbols, got '\(text)'")
            }
            let a = bpe.symbol(String(parts[0])), b = bpe.symbol(String(parts[1]))
            let merged = bpe.symbol(String(parts[0]) + String(parts[1]))
            let key = BPE.key(a, b)
            if bpe.merges[key] == nil { bpe.merges[key] = (rank, merged) }  // HF keeps the first rank of a duplicate.
            mergedSymbols.append(merged)
            rank += 1
        }
        for b in 0..<256 { bpe.byteSymbols.append(bpe.symbol(String(Character(ByteMap.encode[b])))) }
        let vocabIDs = Dictionary(entries, uniquingKeysWith: { first, _ in first })
        symbolToID = bpe.symbols.map { Int32(vocabIDs[$0] ?? -1) }
        mergedTokenIDs = mergedSymbols.compactMap {
            let id = symbolToID[Int($0)]; return id >= 0 ? Int(id) : nil
        }
    }

    /// Token ids of `text`, with OPT's BOS (2) first when `bos` is true.
    public func encode(_ text: String, bos: Bool = false) -> [Int] {
        var ids: [Int] = bos ? [bosID] : []
        let scalars = Array(text.unicodeScalars)
        for range in PreTokenizer.split(scalars) {
            let piece = String(String.UnicodeScalarView(scalars[range]))
            lock.lock()
            let cached = cache[piece]
            lock.unlock()
            if let cached { ids += cached; continue }
            let word = Array(piece.utf8).map { bpe.byteSymbols[Int($0)] }
            var pieceIDs: [Int] = []
            for symbol in bpe.apply(word) {
                let id = symbolToID[Int(symbol)]
                // HF maps an out-of-vocabulary BPE piece to the unk token; byte-level BPE never produces one
                // with OPT's files, because every single byte and merge result is in the vocabulary.
                pieceIDs.append(id >= 0 ? Int(id) : 3)
            }
            lock.lock()
            if cache.count > 100_000 { cache.removeAll(keepingCapacity: true) }
            cache[piece] = pieceIDs
            lock.unlock()
            ids += pieceIDs
        }
        return ids
    }

    /// The text of `ids`; bytes that are not valid UTF-8 become U+FFFD (HF decodes with errors="replace").
    /// Ids outside the vocabulary are an error naming the first one.
    public func decode(_ ids: [Int]) throws -> String {
        var bytes: [UInt8] = []
        for id in ids {
            guard id >= 0, id < idToString.count else {
                throw TokenizerError(file: "ids", line: nil, reason: "id \(id) is outside the vocabulary (0..<\(idToString.count))")
            }
            for s in idToString[id].unicodeScalars {
                if let b = ByteMap.decode[s.value] { bytes.append(b) } else { bytes += Array(String(s).utf8) }
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The token string of one id (byte-mapped, as in vocab.json).
    public func token(_ id: Int) -> String? { id >= 0 && id < idToString.count ? idToString[id] : nil }

    /// Reads vocab.json and merges.txt from a directory.
    public convenience init(directory: String) throws {
        let vocabPath = (directory as NSString).appendingPathComponent("vocab.json")
        let mergesPath = (directory as NSString).appendingPathComponent("merges.txt")
        guard let vocab = try FileGuard.contents(atPath: vocabPath).flatMap({ String(data: $0, encoding: .utf8) }) else {
            throw TokenizerError(file: vocabPath, line: nil, reason: "cannot read (missing or not UTF-8)")
        }
        guard let merges = try FileGuard.contents(atPath: mergesPath).flatMap({ String(data: $0, encoding: .utf8) }) else {
            throw TokenizerError(file: mergesPath, line: nil, reason: "cannot read (missing or not UTF-8)")
        }
        try self.init(vocab: vocab, merges: merges, vocabName: vocabPath, mergesName: mergesPath)
    }
}
