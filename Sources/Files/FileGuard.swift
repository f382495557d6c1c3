/// The one place that decides whether a path may be read as input or written as output, and what happens to
/// our files when the process is stopped. Every input is opened through here (a FIFO or device given as a
/// model would otherwise block `open` forever) and remembered by device and inode, so no output is ever
/// renamed over an input (`logits M.hrz -o M.hrz`). Partial outputs are registered while they are written, so
/// SIGINT/SIGTERM remove them, and a mapped file truncated by another process (SIGBUS) ends the run with a
/// one-line error naming it instead of a crash.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

public enum FileGuard {
    // MARK: Inputs

    /// Identity of a file: device and inode, so two spellings of one file (links, `./`, symlinks) compare equal.
    struct Identity: Hashable { var device: UInt64, inode: UInt64 }

    /// Inputs by identity: the path as given, and how many open mappings hold it (nil: declared by the command
    /// for the whole run). A mapped file stops being an input when its last mapping closes, so a step may read
    /// an earlier output (a study's pruned model) and then replace it.
    nonisolated(unsafe) private static var inputs: [Identity: (path: String, mappings: Int?)] = [:]
    private static let lock = NSLock()

    private static func identity(_ info: stat) -> Identity { Identity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino)) }

    /// What `st_mode` says a non-regular file is, for messages.
    static func kindName(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: return "a directory"
        case S_IFIFO: return "a FIFO"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        default: return "not a regular file"
        }
    }

    /// Opens `path` (symlinks followed) for reading, refusing anything but a regular file before it can block,
    /// and records it as an input. Returns the descriptor (blocking mode) and its size.
    public static func openInput(_ path: String, register: Bool = true) throws(FileError) -> (fd: Int32, size: Int) {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw FileError(file: path, "cannot open: \(String(cString: strerror(errno)))") }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let why = String(cString: strerror(errno))
            close(fd)
            throw FileError(file: path, "cannot stat: \(why)")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw FileError(file: path, "is \(kindName(info.st_mode)), not a regular file")
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        if register {
            lock.lock()
            let id = identity(info)
            if let entry = inputs[id] { inputs[id] = (entry.path, entry.mappings.map { $0 + 1 }) } else { inputs[id] = (path, 1) }
            lock.unlock()
        }
        return (fd, Int(info.st_size))
    }

    /// Ends one mapping's hold on an input opened with `openInput(register: true)`.
    public static func releaseInput(fd: Int32) {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return }
        lock.lock(); defer { lock.unlock() }
        let id = identity(info)
        guard let entry = inputs[id], let count = entry.mappings else { return }
        inputs[id] = count > 1 ? (entry.path, count - 1) : nil
    }

    /// A whole file's bytes; nil when it does not exist or cannot be opened (callers say "missing" in their own
    /// words). Throws for a path that exists but is not a regular file, or a read error. Not recorded as an
    /// input: a run reads its own earlier results this way before replacing them (commands declare their
    /// inputs to `preflight`; mapped models and checkpoints are recorded by `MappedFile`).
    public static func contents(atPath path: String) throws(FileError) -> Data? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw FileError(file: path, "is \(kindName(info.st_mode)), not a regular file") }
        guard access(path, R_OK) == 0 else { return nil }
        let (fd, size) = try openInput(path, register: false)
        defer { close(fd) }
        var data = Data(count: size)
        var done = 0
        let failure: Int32? = data.withUnsafeMutableBytes { b -> Int32? in
            while done < size {
                let n = read(fd, b.baseAddress! + done, size - done)
                if n < 0 { if errno == EINTR { continue }; return errno }
                if n == 0 { break }
                done += n
            }
            return nil
        }
        if let failure { throw FileError(file: path, offset: done, "read failed: \(String(cString: strerror(failure)))") }
        if done < size { data.count = done }  // shrank while read: what is there is what was read
        return data
    }

    /// Size of the file at `path` with symlinks followed (an HF cache snapshot is symlinks into `blobs/`), or nil.
    public static func size(_ path: String) -> Int? {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : nil
    }

    /// Records a path as an input without reading it (e.g. a directory of checkpoint files, or a file the
    /// caller opens itself).
    public static func registerInput(_ path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return }
        lock.lock(); inputs[identity(info)] = (path, nil); lock.unlock()
    }

    /// The input `path` is, if it is one (by device and inode).
    static func inputMatching(_ path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        lock.lock(); defer { lock.unlock() }
        return inputs[identity(info)]?.path
    }

    // MARK: Outputs

    /// Throws unless `path` may be replaced by an output: it does not exist, or is a regular file (or a link to
    /// one) that is not one of this run's inputs.
    public static func checkReplaceable(_ path: String) throws(FileError) {
        var info = stat()
        guard stat(path, &info) == 0 else { return }  // absent, or a dangling symlink (rename replaces the link)
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw FileError(file: path, "output exists and is \(kindName(info.st_mode)); refusing to replace it")
        }
        if let input = inputMatching(path) {
            throw FileError(file: path, "output is the input '\(input)'; refusing to overwrite an input (choose another -o)")
        }
    }

    /// What a command will write, checked before any work starts.
    public enum Output: Sendable {
        /// One file, written atomically; its directory must exist.
        case file(String)
        /// A directory of results (created with its parents if missing).
        case directory(String)
    }

    /// Checks every output against the command's inputs before anything expensive runs: a file output's
    /// directory exists and is writable, the file is not an input and not a device or FIFO; a directory
    /// output is a directory or can be created.
    public static func preflight(outputs: [Output], inputs: [String]) throws(FileError) {
        for input in inputs {
            var exists = stat()
            guard stat(input, &exists) == 0 else { throw FileError(file: input, "cannot open: \(String(cString: strerror(errno)))") }
            registerInput(input)
        }
        for output in outputs {
            switch output {
            case .file(let path):
                let directory = (path as NSString).deletingLastPathComponent
                let parent = directory.isEmpty ? "." : directory
                var info = stat()
                guard stat(parent, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
                    throw FileError(file: path, "the output's directory '\(parent)' does not exist")
                }
                guard access(parent, W_OK) == 0 else { throw FileError(file: path, "the output's directory '\(parent)' is not writable") }
                try checkReplaceable(path)
            case .directory(let path):
                var info = stat()
                if stat(path, &info) == 0 {
                    guard (info.st_mode & S_IFMT) == S_IFDIR else {
                        throw FileError(file: path, "output directory exists and is \(kindName(info.st_mode))")
                    }
                    guard access(path, W_OK) == 0 else { throw FileError(file: path, "output directory is not writable") }
                } else {
                    var ancestor = (path as NSString).deletingLastPathComponent
                    while !ancestor.isEmpty, stat(ancestor, &info) != 0 { ancestor = (ancestor as NSString).deletingLastPathComponent }
                    if ancestor.isEmpty { ancestor = "."; _ = stat(ancestor, &info) }
                    guard (info.st_mode & S_IFMT) == S_IFDIR, access(ancestor, W_OK) == 0 else {
                        throw FileError(file: path, "cannot create the output directory under '\(ancestor)'")
                    }
                }
                if let input = inputMatching(path) {
                    throw FileError(file: path, "output directory is the input '\(input)'")
                }
            }
        }
    }

    // MARK: Partial files and signals

    /// Slots of partial-file paths (C strings) the signal handler unlinks; plain words so the handler reads
    /// them without locks.
    static let slotCount = 256
    nonisolated(unsafe) static let partialSlots = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: slotCount)
    nonisolated(unsafe) static var slotsReady: Bool = {
        partialSlots.initialize(repeating: nil, count: slotCount)
        return true
    }()

    /// Registers a partial file for removal if the process is stopped; returns its slot for `unregister`.
    static func registerPartial(_ path: String) -> Int? {
        _ = slotsReady
        lock.lock(); defer { lock.unlock() }
        for i in 0..<slotCount where partialSlots[i] == nil {
            partialSlots[i] = strdup(path)
            return i
        }
        return nil
    }

    static func unregisterPartial(_ slot: Int?) {
        guard let slot else { return }
        lock.lock(); defer { lock.unlock() }
        let p = partialSlots[slot]
        partialSlots[slot] = nil
        free(p)
    }

    /// Mapped files by address range (start, end, message), for naming the file behind a SIGBUS.
    static let mappingCount = 64
    nonisolated(unsafe) static let mappings = UnsafeMutablePointer<(UInt, UInt, UnsafeMutablePointer<CChar>?)>.allocate(capacity: mappingCount)
    nonisolated(unsafe) static var mappingsReady: Bool = {
        mappings.initialize(repeating: (0, 0, nil), count: mappingCount)
        return true
    }()

    static func registerMapping(base: UnsafeRawPointer, count: Int, path: String) -> Int? {
        _ = mappingsReady
        let message = "Error: \(path): the file changed while in use (it was truncated or rewritten by another process); nothing was written\n"
        lock.lock(); defer { lock.unlock() }
        for i in 0..<mappingCount where mappings[i].2 == nil {
            let start = UInt(bitPattern: base)
            mappings[i] = (start, start + UInt(count), strdup(message))
            return i
        }
        return nil
    }

    static func unregisterMapping(_ slot: Int?) {
        guard let slot else { return }
        lock.lock(); defer { lock.unlock() }
        let p = mappings[slot].2
        mappings[slot] = (0, 0, nil)
        free(p)
    }

    /// Removes every registered partial file. Async-signal-safe: reads words and calls `unlink`.
    static func unlinkPartials() {
        guard slotsReady else { return }
        for i in 0..<slotCount { if let p = partialSlots[i] { unlink(p) } }
    }

    /// Installs the handlers: SIGINT/SIGTERM/SIGHUP remove partial outputs and then die by the same signal
    /// (so the shell sees the usual status); SIGBUS on a mapped input prints which file changed and exits 1.
    /// Call once at program start.
    public static func installSignalHandlers() {
        _ = slotsReady
        _ = mappingsReady
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { sig in
                FileGuard.unlinkPartials()
                signal(sig, SIG_DFL)
                raise(sig)
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = 0
            sigaction(sig, &action, nil)
        }
        // A parent may start us with these blocked (test runners do); blocked, they would never remove partials.
        var unblock = sigset_t()
        sigemptyset(&unblock)
        for sig in [SIGINT, SIGTERM, SIGHUP, SIGBUS] { sigaddset(&unblock, sig) }
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
        var bus = sigaction()
        bus.__sigaction_handler.sa_sigaction = { _, info, _ in
            let address = UInt(bitPattern: info?.pointee._sifields._sigfault.si_addr)
            var message: UnsafeMutablePointer<CChar>? = nil
            for i in 0..<FileGuard.mappingCount {
                let m = FileGuard.mappings[i]
                if let text = m.2, address >= m.0, address < m.1 { message = text; break }
            }
            FileGuard.unlinkPartials()
            if let message {
                _ = write(2, message, strlen(message))
                _exit(1)
            }
            signal(SIGBUS, SIG_DFL)
            raise(SIGBUS)
        }
        sigemptyset(&bus.sa_mask)
        bus.sa_flags = SA_SIGINFO
        sigaction(SIGBUS, &bus, nil)
    }

    /// This machine's host name as it appears in partial file names (`NAME.partial-HOST-PID`): letters,
    /// digits, `.` and `-` only. On a shared file system, a process can tell its own host's partial files
    /// from other machines' and only ever judges its own host's PIDs.
    public static let hostTag: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count - 1)
        let name = String(cString: buffer).unicodeScalars.filter { CharacterSet.alphanumerics.contains($0) || $0 == "." || $0 == "-" }
        return name.isEmpty ? "localhost" : String(String.UnicodeScalarView(name))
    }()

    /// Removes `path.partial-HOST-PID` files that processes of this host left and that no longer run (a killed
    /// earlier run), and old-style `path.partial-PID` ones. Other hosts' partial files are left alone.
    static func removeStalePartials(of path: String) {
        let directory = (path as NSString).deletingLastPathComponent
        let name = (path as NSString).lastPathComponent + ".partial-"
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: directory.isEmpty ? "." : directory) else { return }
        for entry in entries where entry.hasPrefix(name) {
            var rest = entry.dropFirst(name.count)
            if rest.hasPrefix(hostTag + "-") { rest = rest.dropFirst(hostTag.count + 1) }
            guard let pid = Int32(rest), pid != getpid() else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH {
                unlink((directory.isEmpty ? "" : directory + "/") + entry)
            }
        }
    }
}
