/// Mask files for `--mask-heads` and `--mask-ffns` (formats/masks.md): JSON lists of what to switch off,
/// by original indices, read into the runtime's `ModelMask`.
import Foundation
import HRZFormat
import Runtime
import OPTSchema
import Files

public enum MaskFile {
    /// `{"heads": [[layer, head], …]}` → heads[l][h] = false for each pair.
    public static func heads(_ path: String, config: OPTConfig) throws -> [[Bool]] {
        let object = try load(path)
        guard let pairs = object["heads"] as? [[Int]] else { throw TaskError(file: path, line: nil, "field 'heads' must be a list of [layer, head] pairs") }
        var mask = Array(repeating: Array(repeating: true, count: config.numAttentionHeads), count: config.numHiddenLayers)
        for (i, pair) in pairs.enumerated() {
            guard pair.count == 2, (0..<config.numHiddenLayers).contains(pair[0]), (0..<config.numAttentionHeads).contains(pair[1]) else {
                throw TaskError(
                    file: path, line: nil, "heads[\(i)] = \(pair) is not a [layer, head] of a \(config.numHiddenLayers)×\(config.numAttentionHeads) model")
            }
            mask[pair[0]][pair[1]] = false
        }
        return mask
    }

    /// `{"ffns": [layer, …]}` → ffns[l] = false for each layer.
    public static func ffns(_ path: String, config: OPTConfig) throws -> [Bool] {
        let object = try load(path)
        guard let layers = object["ffns"] as? [Int] else { throw TaskError(file: path, line: nil, "field 'ffns' must be a list of layer indices") }
        var mask = Array(repeating: true, count: config.numHiddenLayers)
        for (i, l) in layers.enumerated() {
            guard (0..<config.numHiddenLayers).contains(l) else {
                throw TaskError(file: path, line: nil, "ffns[\(i)] = \(l) is not a layer below \(config.numHiddenLayers)")
            }
            mask[l] = false
        }
        return mask
    }

    static func load(_ path: String) throws -> [String: Any] {
        guard let data = try FileGuard.contents(atPath: path) else { throw TaskError(file: path, line: nil, "cannot read") }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { throw TaskError(file: path, line: nil, "not a JSON object") }
        return object
    }
}
