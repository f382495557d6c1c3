/// Hub ids in the local Hugging Face cache: `facebook/opt-1.3b` → the snapshot directory that
/// `huggingface-cli download facebook/opt-1.3b` (or `from_pretrained`) left under
/// `$HF_HUB_CACHE`, `$HF_HOME/hub` or `~/.cache/huggingface/hub`, following `refs/main`. Nothing is
/// downloaded: the cache is read as it is.
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

    /// Whether `text` is spelled like a hub id (`owner/name`, optionally `@revision`) rather than a path.
    public static func looksLikeHubID(_ text: String) -> Bool {
        let id = text.split(separator: "@", maxSplits: 1).first.map(String.init) ?? text
        let parts = id.split(separator: "/", omittingEmptySubsequences: false)
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-_."))
        return parts.count == 2 && parts.allSatisfy { !$0.isEmpty && $0 != "." && $0 != ".." && $0.unicodeScalars.allSatisfy(allowed.contains) }
            && !text.hasPrefix(".") && !FileManager.default.fileExists(atPath: text)
    }

    /// The snapshot directory of `id` (`owner/name` or `owner/name@revision`, a branch, tag or commit hash).
    public static func resolve(_ id: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        let hub = hubDirectory(environment: environment)
        let pieces = id.split(separator: "@", maxSplits: 1).map(String.init)
        let name = pieces[0], revision = pieces.count > 1 ? pieces[1] : "main"
        let repo = (hub as NSString).appendingPathComponent("models--" + name.replacingOccurrences(of: "/", with: "--"))
        guard FileManager.default.fileExists(atPath: repo) else {
            throw CheckpointError(.missingFile, file: repo)
                .explained("'\(id)' is not in the Hugging Face cache; download it first: huggingface-cli download \(name)")
        }
        let refFile = (repo as NSString).appendingPathComponent("refs/" + revision)
        var commit = revision
        if let data = try readInput(refFile) {
            commit = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let snapshots = (repo as NSString).appendingPathComponent("snapshots")
        let snapshot = (snapshots as NSString).appendingPathComponent(commit)
        if !commit.isEmpty, !commit.contains("/"), FileManager.default.fileExists(atPath: snapshot) { return snapshot }
        // No such ref: a unique snapshot is unambiguous.
        let all = (try? FileManager.default.contentsOfDirectory(atPath: snapshots))?.filter { !$0.hasPrefix(".") } ?? []
        if revision == "main", all.count == 1 { return (snapshots as NSString).appendingPathComponent(all[0]) }
        throw CheckpointError(.missingFile, file: snapshot)
            .explained("no snapshot of '\(id)' for revision '\(revision)' (snapshots: \(all.sorted().joined(separator: ", ")))")
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
