/// An HF model directory: `config.json` plus weights in one of four layouts.
import Foundation
import HRZFormat
import Files
import OPTSchema

public enum CheckpointLayout: String, Sendable {
    case safetensors = "model.safetensors"
    case shardedSafetensors = "model.safetensors.index.json"
    case bin = "pytorch_model.bin"
    case shardedBin = "pytorch_model.bin.index.json"
}

public struct HFCheckpoint {
    public let directory: String
    public let config: OPTConfig
    public let layout: CheckpointLayout
    /// Weight files, in shard order.
    public let files: [String]
    public let sources: [CheckpointSource]
    /// For a snapshot of the Hugging Face cache, the repository's `blobs/` that every file read here must
    /// resolve into (`HFCache.confinement`); nil for a plain directory.
    public let confinement: String?

    public init(directory: String) throws(CheckpointError) {
        self.directory = directory
        let confinement = try HFCache.confinement(of: directory)
        self.confinement = confinement
        func checked(_ file: String) throws(CheckpointError) -> String {
            try HFCache.confine(file, to: confinement)
            return file
        }
        config = try Self.loadConfig(checked(path(directory, "config.json")))
        let fm = FileManager.default
        guard
            let layout = [CheckpointLayout.shardedSafetensors, .safetensors, .shardedBin, .bin]
                .first(where: { fm.fileExists(atPath: path(directory, $0.rawValue)) })
        else {
            throw CheckpointError(
                .malformed(
                    "no weights found: expected one of model.safetensors, model.safetensors.index.json, pytorch_model.bin, pytorch_model.bin.index.json"),
                file: directory)
        }
        self.layout = layout
        switch layout {
        case .safetensors, .bin: files = [path(directory, layout.rawValue)]
        case .shardedSafetensors, .shardedBin: files = try Self.shards(checked(path(directory, layout.rawValue)))
        }
        var sources: [CheckpointSource] = []
        for file in files {
            guard fm.fileExists(atPath: file) else { throw CheckpointError(.missingFile, file: file) }
            _ = try checked(file)
            switch layout {
            case .safetensors, .shardedSafetensors: sources.append(try SafetensorsFile(path: file))
            case .bin, .shardedBin: sources.append(try TorchCheckpoint(path: file))
            }
        }
        self.sources = sources
    }

    /// The shard files an index names, in first-appearance order of sorted tensor names (HF's own order).
    static func shards(_ indexPath: String) throws(CheckpointError) -> [String] {
        guard let data = try readInput(indexPath) else { throw CheckpointError(.missingFile, file: indexPath) }
        guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let map = json["weight_map"] as? [String: String]
        else {
            throw CheckpointError(.malformed("not a shard index: needs a \"weight_map\" object of tensor → file"), file: indexPath)
        }
        var files: [String] = []
        for name in map.keys.sorted() {
            let file = map[name]!
            guard !file.contains("/"), !file.isEmpty else {
                throw CheckpointError(.malformed("weight_map entry '\(name)' names file '\(file)' outside the directory"), file: indexPath)
            }
            let full = path((indexPath as NSString).deletingLastPathComponent, file)
            if !files.contains(full) { files.append(full) }
        }
        guard !files.isEmpty else { throw CheckpointError(.malformed("weight_map is empty"), file: indexPath) }
        return files.sorted()
    }

    /// Reads `config.json` into an `OPTConfig`, naming the key of any problem.
    public static func loadConfig(_ file: String) throws(CheckpointError) -> OPTConfig {
        guard let data = try readInput(file) else { throw CheckpointError(.missingFile, file: file) }
        if let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let type = object["model_type"] as? String, type != "opt"
        {
            throw CheckpointError(.badConfig("model_type: '\(type)' is not an OPT model"), file: file)
        }
        let config: OPTConfig
        do {
            config = try JSONDecoder().decode(OPTConfig.self, from: data)
        } catch let error as DecodingError {
            throw CheckpointError(.badConfig(describe(error)), file: file)
        } catch {
            throw CheckpointError(.badConfig("\(error)"), file: file)
        }
        if let problem = config.problems().first {
            throw CheckpointError(.badConfig("\(problem.key): \(problem.reason)"), file: file)
        }
        return config
    }
}

func path(_ directory: String, _ name: String) -> String {
    (directory as NSString).appendingPathComponent(name)
}
