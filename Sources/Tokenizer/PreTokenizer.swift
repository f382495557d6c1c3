/// GPT-2's pre-tokenizer, hand-written. The pattern (HF `GPT2Tokenizer.pat`, matched with the `regex` module):
///
///     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
///
/// At each position the alternatives are tried in that order, as a backtracking regex engine does.
/// Each branch below quotes the alternative it implements.
enum PreTokenizer {
    enum Class { case letter, number, space, other }

    @inline(__always)
    static func classify(_ s: Unicode.Scalar) -> Class {
        // \s is Unicode White_Space, the `regex` module's definition (it excludes U+001C…U+001F, which
        // Python's str.isspace() includes).
        if s.properties.isWhitespace { return .space }
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
        case .decimalNumber, .letterNumber, .otherNumber: return .number
        default: return .other
        }
    }

    static let contractions: [[Unicode.Scalar]] = ["s", "t", "re", "ve", "m", "ll", "d"].map { Array($0.unicodeScalars) }

    /// Splits `scalars` into pre-tokens, as ranges of scalar indices.
    static func split(_ scalars: [Unicode.Scalar]) -> [Range<Int>] {
        let classes = scalars.map(classify)
        let n = scalars.count
        var out: [Range<Int>] = []
        var i = 0
        func run(from start: Int, _ cls: Class) -> Int {
            var j = start
            while j < n && classes[j] == cls { j += 1 }
            return j
        }
        while i < n {
            // 's|'t|'re|'ve|'m|'ll|'d  (lowercase only, as in the pattern)
            if scalars[i] == "'",
                let c = contractions.first(where: { c in
                    i + 1 + c.count <= n && scalars[(i + 1)..<(i + 1 + c.count)].elementsEqual(c)
                })
            {
                out.append(i..<(i + 1 + c.count))
                i += 1 + c.count
                continue
            }
            // ' ?\p{L}+' | ' ?\p{N}+' | ' ?[^\s\p{L}\p{N}]+'  (the three classes are disjoint, so the
            // alternative is decided by the class of the first scalar after an optional U+0020)
            if classes[i] != .space {
                let end = run(from: i, classes[i])
                out.append(i..<end)
                i = end
                continue
            }
            if scalars[i] == " ", i + 1 < n, classes[i + 1] != .space {
                let end = run(from: i + 1, classes[i + 1])
                out.append(i..<end)
                i = end
                continue
            }
            // scalars[i] is whitespace not followed by a space-prefixed token.
            let end = run(from: i, .space)
            if end == n {
                // '\s+(?!\S)' at the end of the text: the whole run.
                out.append(i..<end)
                i = end
            } else if end - i >= 2 {
                // '\s+(?!\S)': the engine backtracks one scalar so the run is not followed by \S; that last
                // scalar then starts the next token (as ' word' when it is a space).
                out.append(i..<(end - 1))
                i = end - 1
            } else {
                // '\s+': one whitespace scalar right before a non-space.
                out.append(i..<end)
                i = end
            }
        }
        return out
    }
}
