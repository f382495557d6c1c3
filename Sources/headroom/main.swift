/// `headroom`: argv → one command → one library call. See `headroom help`.
import Foundation
import HRZFormat
import Runtime
import Files

let commands: [Command.Type] = [
    ConvertCommand.self, InspectCommand.self, SynthCommand.self, TokenizeCommand.self, LogitsCommand.self, GenerateCommand.self,
    EvalCommand.self, CompareCommand.self, ImportanceCommand.self, RankCommand.self, InductionCommand.self, PruneCommand.self, SweepCommand.self, StudyCommand.self, ReportCommand.self, DemoCommand.self, BenchCommand.self,
]

func topLevelHelp() -> String {
    var text = """
    headroom: which attention heads and FFNs does in-context learning need? (OPT, CPU)

    Usage: headroom <command> [options]      headroom help <command>      headroom --version

    Commands:

    """
    for c in commands { text += "  " + c.name.padding(toLength: 12, withPad: " ", startingAt: 0) + c.summary + "\n" }
    return text
}

/// Whether `text` names the option `name` as a whole word ("--dat" is not named by "missing --data").
func mentions(_ text: String, _ name: String) -> Bool {
    var rest = text[...]
    while let range = rest.range(of: name) {
        let next = rest[range.upperBound...].first
        if next.map({ !($0.isLetter || $0.isNumber || $0 == "-") }) ?? true { return true }
        rest = rest[range.upperBound...]
    }
    return false
}

func main() -> Int32 {
    var argv = Array(CommandLine.arguments.dropFirst())
    if argv.first == "--version" || argv.first == "version" {
        print("headroom \(Headroom.version)")
        return 0
    }
    guard let name = argv.first, !["help", "--help", "-h"].contains(name) else {
        if argv.count >= 2, let c = commands.first(where: { $0.name == argv[1] }) {
            print(c.usage)
        } else {
            print(topLevelHelp())
        }
        return 0
    }
    argv.removeFirst()
    guard let type = commands.first(where: { $0.name == name }) else {
        let near = Arguments.nearest(name, in: commands.map { $0.name }).map { "; did you mean '\($0)'?" } ?? ""
        printError("Error: unknown command '\(name)'\(near)\nSee 'headroom help'.")
        return 2
    }
    if argv.contains("--help") || argv.contains("-h") {
        print(type.usage)
        return 0
    }
    var args = Arguments(argv, usage: type.usage)
    let original = args
    let command: Command
    do {
        command = try type.init(&args)
        try args.finish()
    } catch {
        // A typo is the likely cause of a failed check, unless the command's own message is about that option.
        let unknown = original.unknownOption()
        let error = unknown.flatMap { mentions("\(error)", $0.name) ? nil : $0.error } ?? error
        // The error, the synopsis's first line and where the rest is: not the whole help.
        let synopsis = type.usage.split(separator: "\n").first.map(String.init) ?? ""
        printError("Error: \(error)\n\n\(synopsis)\nSee 'headroom \(type.name) --help'.")
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

/// OpenBLAS reads its environment only when it loads, so set what it should have had (generic-kernel
/// fallback, spinning idle threads; see `BLAS.preferredEnvironment`) and run again once.
let preferred = BLAS.preferredEnvironment()
if !preferred.isEmpty {
    for (key, value) in preferred { setenv(key, value, 1) }
    execv("/proc/self/exe", CommandLine.unsafeArgv)
    // execv returns only on failure; carry on as loaded.
}

FileGuard.installSignalHandlers()
exit(main())
