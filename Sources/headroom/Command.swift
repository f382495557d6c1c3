import HRZFormat
import Files

/// Every subcommand: parse (in `init`), then `run()`. Exit codes: 0 ok, 1 data/runtime error, 2 usage.
protocol Command {
    static var name: String { get }
    /// One line for `headroom help`.
    static var summary: String { get }
    /// The full help, defaults included.
    static var usage: String { get }
    init(_ args: inout Arguments) throws(UsageError)
    /// Returns the exit code (0 unless the command reports a finding, like `inspect --verify`).
    func run() throws -> Int32
    /// What the command reads and writes, checked by `FileGuard.preflight` before `run()`, so a bad `-o`
    /// (missing directory, a device, one of the inputs) fails in a second, not after the work.
    var inputs: [String] { get }
    var outputs: [FileGuard.Output] { get }
}

extension Command {
    var inputs: [String] { [] }
    var outputs: [FileGuard.Output] { [] }
}

/// Thrown by a command that has already printed its own message.
struct ExitCode: Error {
    var code: Int32
}
