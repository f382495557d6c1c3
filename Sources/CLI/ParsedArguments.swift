/// argv parsed against a command's declarations: options in any order, `--name VALUE` or `--name=VALUE`, a
/// value always taken by the option before it (so `--sbatch "--partition=cpu"` is a value, not an unknown
/// option), positionals in order, `--` ending the options. Typed accessors apply each option's declared
/// default and give one error wording for every command.
import Foundation
import Evaluation
import Jobs
import Runtime

public struct ParsedArguments {
    public let spec: CommandSpec
    /// Canonical name → values in the order given (flags: one empty string per occurrence).
    private var values: [String: [String]] = [:]
    public private(set) var positionals: [String] = []

    /// Parses `argv`; unknown options and misplaced values are usage errors naming the nearest known option.
    public init(_ argv: [String], spec: CommandSpec) throws(UsageError) {
        self.spec = spec
        var i = 0, onlyPositionals = false
        while i < argv.count {
            let arg = argv[i]
            i += 1
            if onlyPositionals || !arg.hasPrefix("-") || arg == "-" || Double(arg) != nil {
                positionals.append(arg)
                continue
            }
            if arg == "--" { onlyPositionals = true; continue }
            let name = String(arg.prefix { $0 != "=" }), inline = arg.contains("=") ? String(arg.drop { $0 != "=" }.dropFirst()) : nil
            guard let option = spec.option(name) else { throw Self.unknown(name, spec: spec) }
            if option.takesValue {
                let value: String
                if let inline {
                    value = inline
                } else {
                    guard i < argv.count else { throw UsageError("\(name) needs a value (\(option.value!))") }
                    value = argv[i]
                    i += 1
                }
                if !option.repeatable, values[option.name] != nil { throw UsageError("give \(option.name) once") }
                values[option.name, default: []].append(value)
            } else {
                guard inline == nil else { throw UsageError("\(name) takes no value") }
                values[option.name, default: []].append("")
            }
        }
        let most = spec.positionals.contains(where: \.variadic) ? Int.max : spec.positionals.count
        if positionals.count > most { throw UsageError("unexpected argument '\(positionals[most])'") }
    }

    static func unknown(_ name: String, spec: CommandSpec) -> UsageError {
        UsageError("unknown option '\(name)'" + (nearest(name, in: spec.options.flatMap(\.spellings)).map { "; did you mean '\($0)'?" } ?? ""))
    }

    // MARK: Accessors

    /// Whether the option was given at all.
    public func given(_ name: String) -> Bool { values[canonical(name)] != nil }

    func canonical(_ name: String) -> String {
        guard let o = spec.option(name) else { preconditionFailure("\(spec.name) declares no option \(name)") }
        return o.name
    }

    /// A flag.
    public func flag(_ name: String) -> Bool { given(name) }

    /// The option's value, or its declared default, or nil.
    public func string(_ name: String) -> String? {
        values[canonical(name)]?.last ?? spec.option(name)?.defaultValue
    }

    /// The option's value or default; a usage error "missing NAME PLACEHOLDER" when neither exists.
    public func required(_ name: String, _ why: String = "") throws(UsageError) -> String {
        guard let value = string(name) else {
            let o = spec.option(name)!
            throw UsageError("missing \(o.name) \(o.value ?? "")" + why)
        }
        return value
    }

    /// Every value of a repeatable option, each split at commas.
    public func list(_ name: String) -> [String] {
        (values[canonical(name)] ?? spec.option(name)?.defaultValue.map { [$0] } ?? []).flatMap { $0.split(separator: ",").map(String.init) }
    }

    /// A whole number within `range` (the default when absent, if there is one).
    public func int(_ name: String, in range: ClosedRange<Int>) throws(UsageError) -> Int? {
        guard let text = string(name) else { return nil }
        guard let n = Int(text), range.contains(n) else {
            throw UsageError("\(name) takes a whole number from \(range.lowerBound) to \(range.upperBound), got '\(text)'")
        }
        return n
    }

    /// A whole number within `range` that has a declared default.
    public func int(_ name: String, in range: ClosedRange<Int>, orDefault fallback: Int) throws(UsageError) -> Int {
        try int(name, in: range) ?? fallback
    }

    /// One of a fixed set.
    public func choice<T: RawRepresentable & CaseIterable>(_ name: String, as type: T.Type) throws(UsageError) -> T? where T.RawValue == String {
        guard let text = string(name) else { return nil }
        guard let v = T(rawValue: text) else {
            throw UsageError("\(name) takes one of \(T.allCases.map(\.rawValue).joined(separator: ", ")), got '\(text)'")
        }
        return v
    }

    /// Positional `i` of the declared positionals; a usage error "missing NAME" when required and absent.
    public func positional(_ i: Int) throws(UsageError) -> String? {
        if i < positionals.count { return positionals[i] }
        guard i < spec.positionals.count, !spec.positionals[i].optional else { return nil }
        throw UsageError("missing \(spec.positionals[i].name)")
    }

    /// The positional `i` that must be present.
    public func positional(required i: Int) throws(UsageError) -> String {
        guard let p = try positional(i) else { throw UsageError("missing \(spec.positionals[min(i, spec.positionals.count - 1)].name)") }
        return p
    }

    // MARK: Shared options

    /// `--threads N`: 1…1024, all cores by default.
    public func threads() throws(UsageError) -> Int {
        try int("--threads", in: 1...1024) ?? ProcessInfo.processInfo.activeProcessorCount
    }

    /// `--precision fp32|bf16` (default fp32, exact against HF).
    public func precision() throws(UsageError) -> Precision { try choice("--precision", as: Precision.self) ?? .fp32 }

    /// `--memory-budget B`.
    public func memoryBudget() throws(UsageError) -> Int? { try parseBytes(string("--memory-budget"), "--memory-budget") }

    /// `--bos` / `--no-bos`, with the command's default when neither is given.
    public func bos(default value: Bool) throws(UsageError) -> Bool {
        let yes = flag("--bos"), no = flag("--no-bos")
        if yes && no { throw UsageError("give --bos or --no-bos, not both") }
        return yes ? true : no ? false : value
    }

    /// `--shard i/N` (0 ≤ i < N).
    public func part() throws(UsageError) -> Part? {
        guard let text = string("--shard") else { return nil }
        guard let part = Part(text) else { throw UsageError("--shard takes i/N with 0 ≤ i < N ≤ \(Part.maxCount), got '\(text)'") }
        return part
    }

    /// `--merge-shards N`.
    public func mergeShards() throws(UsageError) -> Int? {
        let n = try int("--merge-shards", in: 1...Part.maxCount)
        if n != nil && given("--shard") { throw UsageError("give --shard i/N or --merge-shards N, not both") }
        return n
    }

    /// The known option closest to `name` by edit distance, if it is close (a typo, not another word).
    public static func nearest(_ name: String, in known: [String]) -> String? {
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
