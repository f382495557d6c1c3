/// Every subcommand: its declarations (`spec`), a parse from them into the spec of a library job (`init`),
/// and `run()`, which calls that job. Exit codes: 0 ok, 1 data or runtime error, 2 usage.
import Foundation
import Files

public protocol Command {
    static var spec: CommandSpec { get }
    init(_ args: ParsedArguments) throws(UsageError)
    /// Returns the exit code (0 unless the command reports a finding, like `inspect --verify`).
    func run() throws -> Int32
    /// What the command reads and writes, checked by `FileGuard.preflight` before `run()`, so a bad `-o`
    /// (missing directory, a device, one of the inputs) fails in a second, not after the work.
    var inputs: [String] { get }
    var outputs: [FileGuard.Output] { get }
}

extension Command {
    public var inputs: [String] { [] }
    public var outputs: [FileGuard.Output] { [] }
}

/// A command made of subcommands (`bench forward`, `bench gemm`, …): the first positional names one.
public protocol CommandGroup {
    static var name: String { get }
    static var summary: String { get }
    /// What the group's help says above the list of subcommands.
    static var discussion: String { get }
    static var subcommands: [any Command.Type] { get }
    /// How an unknown subcommand is called in messages ("benchmark").
    static var noun: String { get }
}

/// Thrown by a command that has already printed its own message.
struct ExitCode: Error {
    var code: Int32
}

public enum HeadroomCLI {
    public static let commands: [any Command.Type] = [
        ConvertCommand.self, InspectCommand.self, SynthCommand.self, TokenizeCommand.self, LogitsCommand.self, GenerateCommand.self,
        EvalCommand.self, CompareCommand.self, ImportanceCommand.self, RankCommand.self, InductionCommand.self, PruneCommand.self,
        SweepCommand.self, StudyCommand.self, ReportCommand.self, DemoCommand.self,
    ]
    public static let groups: [any CommandGroup.Type] = [BenchCommands.self]

    static var names: [String] { commands.map { $0.spec.name } + groups.map { $0.name } }

    static func topLevelHelp() -> String {
        var text = """
            headroom: which attention heads and FFNs does in-context learning need? (OPT, CPU)

            Usage: headroom <command> [options]      headroom help <command>      headroom --version

            Commands:

            """
        for c in commands { text += "  " + c.spec.name.padding(toLength: 12, withPad: " ", startingAt: 0) + c.spec.summary + "\n" }
        for g in groups { text += "  " + g.name.padding(toLength: 12, withPad: " ", startingAt: 0) + g.summary + "\n" }
        return text
    }

    static func groupHelp(_ g: any CommandGroup.Type) -> String {
        var text = "Usage: headroom \(g.name) <\(g.noun)> [options]      headroom \(g.name) <\(g.noun)> --help\n\n\(g.discussion)\n\n"
        for c in g.subcommands {
            text += "  " + c.spec.name.split(separator: " ").last!.padding(toLength: 12, withPad: " ", startingAt: 0) + c.spec.summary + "\n"
        }
        return text
    }

    /// Parses `argv` (without the executable) against `type`'s declarations.
    public static func parse(_ type: any Command.Type, _ argv: [String]) throws(UsageError) -> any Command {
        try type.init(try ParsedArguments(argv, spec: type.spec))
    }

    /// The command a full argument list names (`["eval", …]`, `["bench", "forward", …]`), and the rest of the list.
    public static func resolve(_ argv: [String]) throws(UsageError) -> (type: any Command.Type, rest: [String])? {
        guard let name = argv.first else { return nil }
        if let c = commands.first(where: { $0.spec.name == name }) { return (c, Array(argv.dropFirst())) }
        if let g = groups.first(where: { $0.name == name }) {
            var rest = Array(argv.dropFirst())
            // The subcommand is the first word that is neither an option nor an option's value (in any subcommand).
            let valued = Set(g.subcommands.flatMap { $0.spec.options.filter { $0.value != nil }.flatMap(\.spellings) })
            var i = 0
            while i < rest.count {
                let word = rest[i]
                if !word.hasPrefix("-") || word == "-" { break }
                i += valued.contains(String(word.prefix { $0 != "=" })) && !word.contains("=") ? 2 : 1
            }
            guard i < rest.count else { return nil }
            let word = rest.remove(at: i)
            guard let c = g.subcommands.first(where: { $0.spec.name == "\(g.name) \(word)" }) else {
                let names = g.subcommands.map { String($0.spec.name.split(separator: " ").last!) }
                throw UsageError(
                    "unknown \(g.noun) '\(word)'" + (ParsedArguments.nearest(word, in: names).map { "; did you mean '\($0)'?" } ?? "")
                        + " (available: \(names.joined(separator: ", ")))")
            }
            return (c, rest)
        }
        return nil
    }

    /// Runs a whole command line; returns the exit status.
    public static func main(_ arguments: [String]) -> Int32 {
        var argv = arguments
        if argv.first == "--version" || argv.first == "version" {
            print("headroom \(Headroom.version)")
            return 0
        }
        guard let name = argv.first, !["help", "--help", "-h"].contains(name) else {
            let topic = argv.count >= 2 ? Array(argv.dropFirst()) : []
            if let g = groups.first(where: { $0.name == topic.first }) {
                if topic.count >= 2, let c = g.subcommands.first(where: { $0.spec.name == "\(g.name) \(topic[1])" }) {
                    print(c.spec.usage)
                } else {
                    print(groupHelp(g))
                }
            } else if let c = commands.first(where: { $0.spec.name == topic.first }) {
                print(c.spec.usage)
            } else {
                print(topLevelHelp())
            }
            return 0
        }
        guard names.contains(name) else {
            let near = ParsedArguments.nearest(name, in: names).map { "; did you mean '\($0)'?" } ?? ""
            printError("Error: unknown command '\(name)'\(near)\nSee 'headroom help'.")
            return 2
        }
        let wantsHelp = argv.contains("--help") || argv.contains("-h")
        let resolved: (type: any Command.Type, rest: [String])
        do {
            guard let r = try resolve(argv) else {
                // A group without a subcommand: its help (asked for, or as the usage error's pointer).
                let g = groups.first { $0.name == name }!
                if wantsHelp { print(groupHelp(g)); return 0 }
                printError("Error: missing \(g.noun)\n\n\(groupHelp(g))")
                return 2
            }
            resolved = r
        } catch {
            printError("Error: \(error)\nSee 'headroom \(name) --help'.")
            return 2
        }
        let type = resolved.type
        if wantsHelp {
            print(type.spec.usage)
            return 0
        }
        argv = resolved.rest
        let command: any Command
        do {
            command = try parse(type, argv)
        } catch {
            // The error, the synopsis's first line and where the rest is: not the whole help.
            printError("Error: \(error)\n\n\(type.spec.synopsisLine)\nSee 'headroom \(type.spec.name) --help'.")
            return 2
        }
        do {
            try FileGuard.preflight(outputs: command.outputs, inputs: command.inputs)
            return try command.run()
        } catch let exit as ExitCode {
            return exit.code
        } catch {
            printError("Error: \(error)")
            return 1
        }
    }
}
