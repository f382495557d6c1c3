/// A small argv scanner: options are taken out as they are asked for; `finish()` rejects leftovers.
import Evaluation


/// A usage mistake: printed as `Error: …` followed by the command's usage, exit 2 (as getopt-style tools and swift-argument-parser do).
struct UsageError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

struct Arguments {
    private var items: [String]

    init(_ items: [String]) { self.items = items }

    var isEmpty: Bool { items.isEmpty }

    /// Removes `--name` if present.
    mutating func flag(_ name: String) -> Bool {
        guard let i = items.firstIndex(of: name) else { return false }
        items.remove(at: i)
        return true
    }

    /// Removes `--name VALUE` or `--name=VALUE` and returns VALUE.
    mutating func option(_ name: String) throws(UsageError) -> String? {
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

    /// `--shard i/N` (0 ≤ i < N): which of N jobs this one is.
    mutating func shard() throws(UsageError) -> Shard? {
        guard let text = try option("--shard") else { return nil }
        let parts = text.split(separator: "/").map { Int($0) }
        guard parts.count == 2, let i = parts[0], let n = parts[1], n >= 1, (0..<n).contains(i) else {
            throw UsageError("--shard takes i/N with 0 ≤ i < N, got '\(text)'")
        }
        return Shard(index: i, count: n)
    }

    /// The next argument that is not an option.
    mutating func positional(_ label: String) throws(UsageError) -> String {
        guard let i = items.firstIndex(where: { !$0.hasPrefix("-") || $0 == "-" }) else {
            throw UsageError("missing \(label)")
        }
        return items.remove(at: i)
    }

    /// Fails on anything not consumed.
    func finish() throws(UsageError) {
        if let first = items.first {
            throw UsageError(first.hasPrefix("-") ? "unknown option '\(first)'" : "unexpected argument '\(first)'")
        }
    }
}
