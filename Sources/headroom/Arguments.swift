/// A small argv scanner: options are taken out as they are asked for; `finish()` rejects leftovers.
import Runtime
import Evaluation


/// A usage mistake: printed as `Error: …` followed by the command's usage, exit 2 (as getopt-style tools and swift-argument-parser do).
struct UsageError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

struct Arguments {
    private var items: [String]
    /// Options that take a value (`-o DIR`), so a positional is never taken from an option's value, whatever
    /// the order (`importance -o out.json heads M.hrz`).
    private let valueOptions: Set<String>
    /// Every option the command knows, for "did you mean".
    private let known: [String]

    init(_ items: [String], usage: String = "") {
        self.items = items
        var (values, all) = Self.options(in: usage)
        // Spellings every command accepts alike.
        if values.contains("-o") {
            values.insert("--output")
            all.append("--output")
        }
        if values.contains("--tasks") || values.contains("--task") {
            values.formUnion(["--tasks", "--task"])
            all += ["--tasks", "--task"]
        }
        if all.contains("--bos") || all.contains("--no-bos") { all += ["--bos", "--no-bos"] }
        (valueOptions, known) = (values, all)
    }

    /// The options a usage text names, and which of them take a value: an option followed by one space and
    /// a placeholder (`-o DIR`, `[--shots 0,1,5]`, `-o scores.json`, `--shard i/N`). A flag's Options line has
    /// only spaces after its name, and prose after an option ("--heads belongs") has no capital, digit or
    /// punctuation of a placeholder.
    static func options(in usage: String) -> (values: Set<String>, all: [String]) {
        var values = Set<String>(), all: [String] = []
        func isName(_ s: Substring) -> Bool { s.count >= 2 && s.first == "-" && s != "--" && s.dropFirst().allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" } }
        func isPlaceholder(_ s: Substring) -> Bool {
            let word = s.prefix { $0 != "]" }
            // DIR, N, 0,1,5, i/N, scores.json, overlap|inline: not a word of prose ("re-runs", "belongs").
            return !word.isEmpty && !"-|[(".contains(word.first!) && word.contains { $0.isUppercase || $0.isNumber || ".,/|:%<>".contains($0) }
        }
        for line in usage.split(separator: "\n") {
            let words = line.split(separator: " ", omittingEmptySubsequences: false)
            for (i, raw) in words.enumerated() {
                let body = raw.drop { $0 == "[" || $0 == "(" || $0 == "`" }
                let word = body.prefix { $0 != "]" && $0 != "=" && $0 != "," && $0 != ":" && $0 != ")" && $0 != "`" && $0 != "'" && $0 != ";" }
                guard isName(word) else { continue }
                if !all.contains(String(word)) { all.append(String(word)) }
                if body.count == word.count, i + 1 < words.count, isPlaceholder(words[i + 1]) { values.insert(String(word)) }
                if body.hasPrefix(word + "=") { values.insert(String(word)) }
            }
        }
        return (values, all)
    }

    /// An option in the arguments that the usage never names, with the nearest one it does: reported when a
    /// command's own checks fail, since a typo is then the likely cause ("missing --data" after "--dat").
    func unknownOption() -> (name: String, error: UsageError)? {
        guard !known.isEmpty else { return nil }
        for item in items where item.hasPrefix("-") && item != "-" && Double(item) == nil {
            let name = String(item.prefix { $0 != "=" })
            guard !known.contains(name), !["-h", "--help"].contains(name) else { continue }
            return (name, UsageError("unknown option '\(name)'" + (Self.nearest(name, in: known).map { "; did you mean '\($0)'?" } ?? "")))
        }
        return nil
    }

    var isEmpty: Bool { items.isEmpty }

    /// Removes `--name` if present.
    mutating func flag(_ name: String) -> Bool {
        guard let i = items.firstIndex(of: name) else { return false }
        items.remove(at: i)
        return true
    }

    /// Removes `--name VALUE` or `--name=VALUE` and returns VALUE. `-o` is also spelled `--output`.
    mutating func option(_ name: String) throws(UsageError) -> String? {
        if name == "-o", let value = try option("--output") { return value }
        if let i = items.firstIndex(where: { $0.hasPrefix(name + "=") }) {
            let value = String(items[i].dropFirst(name.count + 1))
            items.remove(at: i)
            return value
        }
        guard let i = items.firstIndex(of: name) else { return nil }
        guard i + 1 < items.count else { throw UsageError("\(name) needs a value") }
        let value = items[i + 1]
        items.removeSubrange(i...(i + 1))
        return value
    }

    /// An integer option within `range`.
    mutating func option(_ name: String, default value: Int, in range: ClosedRange<Int>) throws(UsageError) -> Int {
        guard let text = try option(name) else { return value }
        guard let n = Int(text), range.contains(n) else {
            throw UsageError("\(name) takes a whole number from \(range.lowerBound) to \(range.upperBound), got '\(text)'")
        }
        return n
    }

    /// An optional positive whole number (`--limit N`).
    mutating func positive(_ name: String) throws(UsageError) -> Int? {
        guard let text = try option(name) else { return nil }
        guard let n = Int(text), n >= 1 else { throw UsageError("\(name) takes a positive number, got '\(text)'") }
        return n
    }

    /// An option whose value is one of a fixed set.
    mutating func choice<T: RawRepresentable & CaseIterable>(_ name: String, default value: T) throws(UsageError) -> T
    where T.RawValue == String {
        guard let text = try option(name) else { return value }
        guard let v = T(rawValue: text) else {
            throw UsageError("\(name) takes one of \(T.allCases.map(\.rawValue).joined(separator: ", ")), got '\(text)'")
        }
        return v
    }

    /// The task list: `--tasks` everywhere, `--task` accepted as the same option (one spelling need not be
    /// remembered per command).
    mutating func tasks() throws(UsageError) -> String? {
        let plural = try option("--tasks"), singular = try option("--task")
        if plural != nil && singular != nil { throw UsageError("give --tasks once") }
        return plural ?? singular
    }

    /// `--precision fp32|bf16`: the arithmetic of the model's GEMMs (default fp32, exact against HF).
    mutating func precision() throws(UsageError) -> Precision { try choice("--precision", default: Precision.fp32) }

    /// `--bos` / `--no-bos`: whether to prepend the BOS token, with the command's default when neither is given.
    mutating func bos(default value: Bool) throws(UsageError) -> Bool {
        let yes = flag("--bos"), no = flag("--no-bos")
        if yes && no { throw UsageError("give --bos or --no-bos, not both") }
        return yes ? true : no ? false : value
    }

    /// `--shard i/N` (0 ≤ i < N): which of N jobs this one is.
    mutating func shard() throws(UsageError) -> Shard? {
        guard let text = try option("--shard") else { return nil }
        let parts = text.split(separator: "/").map { Int($0) }
        guard parts.count == 2, let i = parts[0], let n = parts[1], n >= 1, (0..<n).contains(i) else {
            throw UsageError("--shard takes i/N with 0 ≤ i < N, got '\(text)'")
        }
        return Shard(index: i, count: n)
    }

    /// The next argument that is neither an option nor an option's value.
    mutating func positional(_ label: String) throws(UsageError) -> String {
        var i = 0
        while i < items.count {
            let item = items[i]
            if !item.hasPrefix("-") || item == "-" { return items.remove(at: i) }
            i += valueOptions.contains(item) ? 2 : 1
        }
        throw UsageError("missing \(label)")
    }

    /// Fails on anything not consumed; an unknown option gets the nearest known one.
    func finish() throws(UsageError) {
        guard let first = items.first else { return }
        guard first.hasPrefix("-") && first != "-" else { throw UsageError("unexpected argument '\(first)'") }
        let name = String(first.prefix { $0 != "=" })
        if let near = Self.nearest(name, in: known) { throw UsageError("unknown option '\(name)'; did you mean '\(near)'?") }
        throw UsageError("unknown option '\(name)'")
    }

    /// The known option closest to `name` by edit distance, if it is close (a typo, not another word).
    static func nearest(_ name: String, in known: [String]) -> String? {
        func distance(_ a: [Character], _ b: [Character]) -> Int {
            var row = Array(0...b.count)
            for i in 1...max(1, a.count) where !a.isEmpty {
                var previous = row[0]
                row[0] = i
                for j in stride(from: 1, through: b.count, by: 1) {
                    let saved = row[j]
                    row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                    previous = saved
                }
            }
            return row[b.count]
        }
        let a = Array(name)
        let scored = known.map { ($0, distance(a, Array($0))) }.filter { $0.0 != name }
        guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= max(1, min(3, name.count / 3)) else { return nil }
        return best.0
    }
}
