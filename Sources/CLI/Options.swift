/// Command-line declarations. Every option is declared once, as data (its spellings, whether it takes a
/// value, its default, its help, its group); parsing, the usage text, `--help` and "did you mean" are all
/// generated from those declarations, so a flag cannot be documented one way and parsed another. Shared
/// groups (tasks and data, compute, parts) are declared once in `Groups.swift` and composed into commands.
import Foundation

/// A usage mistake: printed as `Error: …`, the command's synopsis and where its help is; exit 2 (as getopt
/// tools do; swift-argument-parser's default would be 64, EX_USAGE, which scripts rarely test for).
public struct UsageError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

public struct Option: Sendable {
    /// The canonical spelling, `--tasks`; errors and help use it.
    public var name: String
    /// Other spellings: `--task`, `-o`/`--output`.
    public var aliases: [String] = []
    /// The value's placeholder in help (`LIST`, `DIR`); nil for a flag.
    public var value: String?
    public var help: String
    /// The value used when the option is absent, as text (parsed like a given value); shown in help.
    public var defaultValue: String?
    /// Words shown instead of `defaultValue` when the default is computed ("all cores").
    public var defaultText: String?
    /// May be given more than once (each value kept).
    public var repeatable = false

    public init(
        _ name: String, aliases: [String] = [], value: String? = nil, default defaultValue: String? = nil, defaultText: String? = nil,
        repeatable: Bool = false, _ help: String
    ) {
        self.name = name
        self.aliases = aliases
        self.value = value
        self.help = help
        self.defaultValue = defaultValue
        self.defaultText = defaultText
        self.repeatable = repeatable
    }

    public var spellings: [String] { [name] + aliases }
    var takesValue: Bool { value != nil }
}

public struct OptionGroup: Sendable {
    public var title: String
    public var options: [Option]
    public init(_ title: String, _ options: [Option]) {
        self.title = title
        self.options = options
    }
}

public struct Positional: Sendable {
    /// Its placeholder (`MODEL.hrz`), used in "missing MODEL.hrz".
    public var name: String
    public var help: String
    public var optional = false
    /// Takes every remaining positional (`rank SCORES.json …`).
    public var variadic = false
    public init(_ name: String, optional: Bool = false, variadic: Bool = false, _ help: String) {
        self.name = name
        self.help = help
        self.optional = optional
        self.variadic = variadic
    }
}

/// Everything `--help` prints and the parser accepts for one command.
public struct CommandSpec: Sendable {
    public var name: String
    /// One line for `headroom help`.
    public var summary: String
    /// Each form of the command after `headroom NAME `; the first is the one usage errors print.
    public var synopsis: [String]
    public var positionals: [Positional]
    public var groups: [OptionGroup]
    /// What the command does, in prose, between the synopsis and the options.
    public var discussion: String

    public init(name: String, summary: String, synopsis: [String], positionals: [Positional] = [], groups: [OptionGroup] = [], discussion: String = "") {
        self.name = name
        self.summary = summary
        self.synopsis = synopsis
        self.positionals = positionals
        self.groups = groups
        self.discussion = discussion
    }

    public var options: [Option] { groups.flatMap(\.options) }

    /// The declaration spelled `name`.
    public func option(_ name: String) -> Option? { options.first { $0.spellings.contains(name) } }

    /// The first synopsis line as usage errors print it.
    public var synopsisLine: String { "Usage: headroom \(name) \(synopsis.first ?? "")" }

    /// The full help: synopsis forms, discussion, positionals and every option group with defaults.
    public var usage: String {
        var lines: [String] = []
        for (i, form) in synopsis.enumerated() {
            lines.append((i == 0 ? "Usage: " : "       ") + "headroom \(name) \(form)")
        }
        if !discussion.isEmpty { lines += ["", discussion] }
        let described = positionals.filter { !$0.help.isEmpty }
        func entry(_ left: String, _ help: String) -> String {
            let pad = 24
            let head = "  " + left
            return head.count + 2 <= pad
                ? head.padding(toLength: pad, withPad: " ", startingAt: 0) + help : head + "\n" + String(repeating: " ", count: pad) + help
        }
        if !described.isEmpty {
            lines += ["", "Arguments:"]
            for p in described { lines.append(entry(p.name, p.help)) }
        }
        for group in groups where !group.options.isEmpty {
            lines += ["", group.title + ":"]
            for o in group.options {
                let spelled = ([o.name] + o.aliases).joined(separator: ", ") + (o.value.map { " " + $0 } ?? "")
                var help = o.help
                if let shown = o.defaultText ?? o.defaultValue { help += " (default \(shown))" }
                lines.append(entry(spelled, help))
            }
        }
        return lines.joined(separator: "\n")
    }
}
