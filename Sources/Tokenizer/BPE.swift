/// Byte-pair merges applied by rank, exactly as HF `GPT2Tokenizer.bpe`: repeatedly find the adjacent
/// pair with the lowest merge rank and merge every occurrence of it, left to right, until no pair ranks.
struct BPE {
    /// Symbol strings; ids < vocab size are vocabulary ids, the rest are merge results absent from the vocabulary.
    var symbols: [String] = []
    var symbolIDs: [String: Int] = [:]
    /// (left, right) → (rank, merged symbol)
    var merges: [UInt64: (rank: Int32, merged: Int32)] = [:]
    /// Byte → symbol of the single byte-mapped character.
    var byteSymbols: [Int32] = []

    @inline(__always) static func key(_ a: Int32, _ b: Int32) -> UInt64 { UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b)) }

    mutating func symbol(_ s: String) -> Int32 {
        if let id = symbolIDs[s] { return Int32(id) }
        symbols.append(s)
        symbolIDs[s] = symbols.count - 1
        return Int32(symbols.count - 1)
    }

    /// Merges one pre-token given as byte symbols.
    func apply(_ word: [Int32]) -> [Int32] {
        var word = word
        while word.count > 1 {
            var best: (rank: Int32, merged: Int32, left: Int32, right: Int32)? = nil
            for i in 0..<(word.count - 1) {
                if let m = merges[Self.key(word[i], word[i + 1])], best == nil || m.rank < best!.rank {
                    best = (m.rank, m.merged, word[i], word[i + 1])
                }
            }
            guard let b = best else { break }
            var next: [Int32] = []
            next.reserveCapacity(word.count)
            var i = 0
            while i < word.count {
                if i < word.count - 1 && word[i] == b.left && word[i + 1] == b.right {
                    next.append(b.merged)
                    i += 2
                } else {
                    next.append(word[i])
                    i += 1
                }
            }
            word = next
        }
        return word
    }
}
