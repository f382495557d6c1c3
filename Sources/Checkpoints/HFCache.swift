/// Hub ids in the local Hugging Face cache: `facebook/opt-1.3b` → the snapshot directory that
/// `huggingface-cli download facebook/opt-1.3b` (or `from_pretrained`) left under
/// `$HF_HUB_CACHE`, `$HF_HOME/hub` or `~/.cache/huggingface/hub`, following `refs/main`. Nothing is
/// downloaded: the cache is read as it is, and nothing outside it is read through it:
/// - a revision (`id@rev`) is a plain name (a branch or tag: letters, digits, `.`, `_`, `-`) or a 40-digit
///   commit hash, never a path;
/// - `refs/<rev>` must hold a 40-digit commit hash whose snapshot exists (a ref naming a missing commit is
///   refused, not replaced by another snapshot);
/// - every file read through a snapshot must resolve inside that repository's `blobs/` (`confinement`).
/// Errors name files, never their contents.
import Foundation
import HRZFormat

public enum HFCache {
    /// Where hub repositories are cached, by huggingface_hub's own rule.
    public static func hubDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let cache = environment["HF_HUB_CACHE"], !cache.isEmpty { return cache }
        if let home = environment["HF_HOME"], !home.isEmpty { return (home as NSString).appendingPathComponent("hub") }
        let base = environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? (NSHomeDirectory() as NSString).appendingPathComponent(".cache")
        return (base as NSString).appendingPathComponent("huggingface/hub")
    }

    static let nameCharacters = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")

    /// A path component that is a plain name: not empty, not `.` or `..`, no leading dot, only letters, digits, `-_.`.
    static func isPlainName(_ s: Substring) -> Bool {
        !s.isEmpty && !s.hasPrefix(".") && s.unicodeScalars.allSatisfy(nameCharacters.contains)
    }

    /// 40 lowercase hexadecimal digits: a git commit hash as huggingface_hub names snapshots.
    static func isCommitHash<S: StringProtocol>(_ s: S) -> Bool { s.count == 40 && s.allSatisfy { $0.isHexDigit && !$0.isUppercase } }

    /// Whether `text` is spelled like a hub id (`owner/name`, optionally `@revision`) rather than a path.
    public static func looksLikeHubID(_ text: String) -> Bool {
        let id = text.split(separator: "@", maxSplits: 1).first.map(String.init) ?? text
        let parts = id.split(separator: "/", omittingEmptySubsequences: false)
        return parts.count == 2 && parts.allSatisfy(isPlainName) && !text.hasPrefix(".") && !FileManager.default.fileExists(atPath: text)
    }

    /// The snapshot directory of `id` (`owner/name` or `owner/name@revision`, a branch, tag or commit hash).
    public static func resolve(_ id: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        let hub = hubDirectory(environment: environment)
        let pieces = id.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let name = pieces[0], revision = pieces.count > 1 ? pieces[1] : "main"
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy(isPlainName) else {
            throw CheckpointError(.malformed("'\(name)' is not a hub id (owner/name, each a plain name)"), file: id)
        }
        guard isPlainName(Substring(revision)) else {
            throw CheckpointError(
                .malformed("revision '\(revision)' is not a branch or tag name (letters, digits, '.', '_', '-') or a 40-digit commit hash"),
                file: id)
        }
        let repo = (hub as NSString).appendingPathComponent("models--" + name.replacingOccurrences(of: "/", with: "--"))
        guard FileManager.default.fileExists(atPath: repo) else {
            throw CheckpointError(.missingFile, file: repo)
                .explained("'\(id)' is not in the Hugging Face cache; download it first: huggingface-cli download \(name)")
        }
        let snapshots = (repo as NSString).appendingPathComponent("snapshots")
        let refFile = (repo as NSString).appendingPathComponent("refs/" + revision)
        let commit: String
        if let data = try readInput(refFile) {
            // The ref's contents are never printed: a ref is a commit hash or it is refused.
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard isCommitHash(text) else {
                throw CheckpointError(.malformed("does not hold a 40-digit commit hash, as huggingface_hub writes refs"), file: refFile)
            }
            commit = text
            guard isSnapshot((snapshots as NSString).appendingPathComponent(commit)) else {
                throw CheckpointError(.missingFile, file: refFile)
                    .explained("names a commit with no snapshot under \(snapshots); download '\(id)' again")
            }
        } else if isCommitHash(revision) {
            commit = revision
        } else {
            // No ref at all for main: a single snapshot is unambiguous (a cache filled by commit).
            let all = (try? FileManager.default.contentsOfDirectory(atPath: snapshots))?.filter { isCommitHash($0) } ?? []
            guard revision == "main", all.count == 1 else {
                throw CheckpointError(.missingFile, file: refFile)
                    .explained(
                        "no snapshot of '\(id)' for revision '\(revision)' (no such ref; \(all.count) snapshot\(all.count == 1 ? "" : "s") in the cache)")
            }
            commit = all[0]
        }
        let snapshot = (snapshots as NSString).appendingPathComponent(commit)
        guard isSnapshot(snapshot) else {
            throw CheckpointError(.missingFile, file: snapshot).explained("no snapshot of '\(id)' for revision '\(revision)'")
        }
        return snapshot
    }

    /// A real directory (not a link to one elsewhere).
    static func isSnapshot(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// For a snapshot directory of the cache (`…/models--OWNER--NAME/snapshots/COMMIT`, as given or resolved),
    /// the real path of that repository's `blobs/`, inside which every file read through the snapshot must
    /// resolve; nil for any other directory. A snapshot that is itself a link elsewhere is refused.
    public static func confinement(of directory: String) throws(CheckpointError) -> String? {
        let standard = lexical(directory)
        let snapshots = (standard as NSString).deletingLastPathComponent
        let repo = (snapshots as NSString).deletingLastPathComponent
        guard (snapshots as NSString).lastPathComponent == "snapshots", (repo as NSString).lastPathComponent.hasPrefix("models--") else { return nil }
        guard isSnapshot(standard) else {
            throw CheckpointError(.malformed("a snapshot of the Hugging Face cache must be a directory inside it, not a link elsewhere"), file: directory)
        }
        return realPath((repo as NSString).appendingPathComponent("blobs")) ?? ((repo as NSString).appendingPathComponent("blobs"))
    }

    /// Throws unless `file` resolves (all links followed) inside `blobs`; a missing file passes (its reader says so).
    public static func confine(_ file: String, to blobs: String?) throws(CheckpointError) {
        guard let blobs, FileManager.default.fileExists(atPath: file) else { return }
        guard let real = realPath(file), real.hasPrefix(blobs + "/") else {
            throw CheckpointError(.malformed("resolves outside the cache's blobs/ of its repository; a snapshot's files must link into it"), file: file)
        }
    }

    /// `path` with `.` and `..` removed by its text alone (Foundation's `standardizingPath` follows links, which
    /// would hide a snapshot that is a link elsewhere).
    static func lexical(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/") where part != "." {
            if part == "..", let last = parts.last, last != ".." { parts.removeLast() } else { parts.append(part) }
        }
        return (path.hasPrefix("/") ? "/" : "") + parts.joined(separator: "/")
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

extension CheckpointError {
    /// The same error with a sentence saying what to do.
    func explained(_ why: String) -> CheckpointError {
        var copy = self
        copy.kind = .malformed(why)
        return copy
    }
}
