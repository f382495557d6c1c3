/// `--sbatch "ARGS"`: the user's own sbatch options, parsed into words as a shell would and checked before
/// any of them reaches a stage script, where Slurm reads them from `#SBATCH` lines. What is refused:
/// - control characters (newline, carriage return, NUL, tab, DEL, …) anywhere: one would end the `#SBATCH`
///   line and start a shell line of the script;
/// - the options headroom sets itself, in every spelling sbatch's getopt accepts: long (`--array=…`,
///   `--array …`), any abbreviation of the long name (`--arr=…`), short (`-a …`), short with its value attached
///   (`-a0-3`) and short after bundled flags (`-Qd123`);
/// - a word that is neither an option nor the value of the option before it.
/// Each accepted option becomes one `#SBATCH` line, its words quoted where Slurm's own `#SBATCH` parser would
/// otherwise split or cut them (whitespace, quotes, backslash, `#`).
import Foundation

public struct SbatchOptions: Sendable, Equatable {
    /// One option per entry, with its detached value if it has one: `["--partition", "cpu"]`, `["--time=24:00:00"]`.
    public private(set) var lines: [[String]] = []

    /// Options headroom writes itself (`--array`, `--dependency`, the log files, …): long name and short letter.
    static let reserved: [(long: String, short: Character?)] = [
        ("array", "a"), ("dependency", "d"), ("output", "o"), ("error", "e"), ("parsable", nil), ("wrap", nil),
        ("export", nil), ("kill-on-invalid-dep", nil),
    ]
    /// sbatch's short options that take no value, so a bundle like `-Qv` goes on to its next letter.
    static let shortFlags: Set<Character> = ["H", "h", "O", "Q", "s", "u", "v", "V", "W"]

    public init() {}

    /// Parses and checks `text`; the error names the offending word and why.
    public init(parsing text: String) throws {
        if let bad = text.unicodeScalars.first(where: Self.isControl) {
            throw StudyError(
                field: "--sbatch",
                "holds the control character U+\(String(format: "%04X", bad.value)); "
                    + "options go on #SBATCH lines, which a control character would end")
        }
        let words = try Self.words(text)
        var i = 0
        while i < words.count {
            let word = words[i]
            guard word.hasPrefix("-"), word != "-", word != "--" else {
                throw StudyError(field: "--sbatch", "'\(word)' is not an option (options start with - or --; a value follows its option)")
            }
            try Self.checkReserved(word)
            // A detached value: `--partition cpu`, `-p cpu`. Long options written with `=` and short options with
            // their value attached carry it already.
            let takesNext =
                i + 1 < words.count && !words[i + 1].hasPrefix("-")
                && (word.hasPrefix("--") ? !word.contains("=") : word.count == 2 && !Self.shortFlags.contains(word.last!))
            if takesNext {
                lines.append([word, words[i + 1]])
                i += 2
            } else {
                lines.append([word])
                i += 1
            }
        }
    }

    /// Whether the user set `--name` (or its short letter) themselves, in any spelling.
    public func sets(_ long: String, short: Character? = nil) -> Bool {
        lines.contains { Self.names(of: $0[0]).contains { $0 == .long(long) || (short != nil && $0 == .short(short!)) } }
    }

    /// The `#SBATCH` lines, one per option.
    public var scriptLines: [String] { lines.map { "#SBATCH " + $0.map(Self.quoted).joined(separator: " ") } }

    public var isEmpty: Bool { lines.isEmpty }

    // MARK: Checks

    static func isControl(_ s: Unicode.Scalar) -> Bool { s.value < 0x20 || s.value == 0x7F || (0x80..<0xA0).contains(s.value) }

    enum Name: Equatable { case long(String), short(Character), abbreviation(String) }

    /// The option names a word spells: a long name (or a prefix of one, as getopt_long accepts), or the short
    /// letters of a bundle up to and including the first that takes a value.
    static func names(of word: String) -> [Name] {
        if word.hasPrefix("--") {
            let name = String(word.dropFirst(2).prefix { $0 != "=" })
            return [.long(name)] + reserved.map(\.long).filter { $0 != name && $0.hasPrefix(name) && !name.isEmpty }.map { .abbreviation($0) }
        }
        var out: [Name] = []
        for c in word.dropFirst() {
            out.append(.short(c))
            if !shortFlags.contains(c) { break }  // this letter takes the rest of the word (or the next word) as its value
        }
        return out
    }

    static func checkReserved(_ word: String) throws {
        for name in names(of: word) {
            for r in reserved {
                let hit: Bool
                switch name {
                case .long(let n): hit = n == r.long
                case .abbreviation(let n): hit = n == r.long
                case .short(let c): hit = c == r.short
                }
                if hit {
                    throw StudyError(
                        field: "--sbatch",
                        "'\(word)' sets --\(r.long)\(r.short.map { " (-\($0))" } ?? ""), which headroom sets itself; "
                            + "pass partition, account, time, CPUs, memory and the like")
                }
            }
        }
    }

    /// Splits `text` into words as a shell would (single and double quotes, backslash outside single quotes).
    public static func words(_ text: String) throws -> [String] {
        var words: [String] = [], current = "", quote: Character?, escaped = false, inWord = false
        for c in text {
            if escaped { current.append(c); escaped = false; continue }
            if c == "\\" && quote != "'" { escaped = true; inWord = true; continue }
            if let q = quote {
                if c == q { quote = nil } else { current.append(c) }
                continue
            }
            if c == "'" || c == "\"" { quote = c; inWord = true; continue }
            if c.isWhitespace {
                if inWord { words.append(current); current = ""; inWord = false }
                continue
            }
            current.append(c)
            inWord = true
        }
        guard quote == nil, !escaped else {
            throw StudyError(field: "--sbatch", escaped ? "ends in a lone backslash" : "has an unbalanced \(quote == "'" ? "single" : "double") quote")
        }
        if inWord { words.append(current) }
        return words
    }

    /// A word as Slurm's `#SBATCH` parser reads it back: bare when it is plain, else in double quotes with `"` and
    /// `\` escaped (that parser splits at whitespace, strips quotes, honours backslash and ends the line at `#`).
    static func quoted(_ word: String) -> String {
        let plain = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=:,./@%+")
        if !word.isEmpty, word.unicodeScalars.allSatisfy(plain.contains) { return word }
        return "\"" + word.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
