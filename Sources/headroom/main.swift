/// `headroom`: argv → one command → one library call. The commands and their declarations are the CLI
/// target (`headroom help`); this file only prepares the process.
import CLI
import Foundation
import Runtime
import Files

/// OpenBLAS reads its environment only when it loads, so set what it should have had (generic-kernel
/// fallback, spinning idle threads; see `BLAS.preferredEnvironment`) and run again once.
let preferred = BLAS.preferredEnvironment()
if !preferred.isEmpty {
    for (key, value) in preferred { setenv(key, value, 1) }
    execv("/proc/self/exe", CommandLine.unsafeArgv)
    // execv returns only on failure; carry on as loaded.
}

FileGuard.installSignalHandlers()
// Arguments must be valid UTF-8: Swift would replace a bad byte silently, and a path or a text would then
// name something else than the user typed.
for i in 1..<Int(CommandLine.argc) {
    guard let raw = CommandLine.unsafeArgv[i] else { continue }
    let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(raw).assumingMemoryBound(to: UInt8.self), count: strlen(raw))
    if String(validating: bytes, as: UTF8.self) == nil {
        FileHandle.standardError.write(Data("Error: argument \(i) is not valid UTF-8\nSee 'headroom help'.\n".utf8))
        exit(2)
    }
}
exit(HeadroomCLI.main(Array(CommandLine.arguments.dropFirst())))
