/// Every subcommand: parse (in `init`), then `run()`. Exit codes: 0 ok, 1 data/runtime error, 64 usage.
protocol Command {
    static var name: String { get }
    /// One line for `headroom help`.
    static var summary: String { get }
    /// The full help, defaults included.
    static var usage: String { get }
    init(_ args: inout Arguments) throws(UsageError)
    /// Returns the exit code (0 unless the command reports a finding, like `inspect --verify`).
    func run() throws -> Int32
}

/// Thrown by a command that has already printed its own message.
struct ExitCode: Error {
    var code: Int32
}
