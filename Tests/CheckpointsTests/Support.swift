import Foundation
import Testing
@testable import Checkpoints
@testable import HRZFormat
import TestSupport

/// The committed fixtures written by Tools/make_reference.py.
let fixtures = Bundle.module.resourceURL!.appendingPathComponent("Fixtures").path

let layoutFixtures = [
    "safetensors-f32", "safetensors-sharded-f16", "bin-f32", "bin-sharded-bf16",
    "bin-decoder-prefix-f16", "post-ln-350m-style",
]

func fixture(_ name: String) -> String { fixtures + "/" + name }

struct Reference: Decodable {
    struct Tensor: Decodable {
        var shape: [Int]
        var dtype: String
        var sha256: [String: String]
    }
    var tensors: [String: Tensor]

    static func load(_ name: String) throws -> Reference {
        try JSONDecoder().decode(Reference.self, from: Data(contentsOf: URL(fileURLWithPath: fixture(name) + "/reference.json")))
    }
}

/// A fresh scratch directory per test.
func scratchDirectory(_ label: String) -> String {
    let dir = testScratch() + "headroom-ckpt-\(getpid())-\(label)-\(UInt32.random(in: 0...UInt32.max))"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// Copies a fixture directory so a test can damage it.
func copyFixture(_ name: String) throws -> String {
    let dir = scratchDirectory(name) + "/" + name
    try FileManager.default.copyItem(atPath: fixture(name), toPath: dir)
    return dir
}

/// Leaves nothing behind: neither the output nor a partial file beside it.
func expectNoOutput(_ output: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let dir = (output as NSString).deletingLastPathComponent
    let leftovers = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasPrefix((output as NSString).lastPathComponent) }
    #expect(leftovers.isEmpty, "left behind: \(leftovers)", sourceLocation: sourceLocation)
}

/// Converts and returns the CheckpointError it must throw.
func convertError(_ dir: String, sourceLocation: SourceLocation = #_sourceLocation) -> CheckpointError? {
    let output = scratchDirectory("out") + "/model.hrz"
    defer { expectNoOutput(output, sourceLocation: sourceLocation) }
    do {
        _ = try Converter.convert(dir, to: output)
        Issue.record("conversion of \(dir) should have failed", sourceLocation: sourceLocation)
        return nil
    } catch let error as CheckpointError {
        return error
    } catch {
        Issue.record("unexpected error type: \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// Writes a safetensors file: header JSON padded to 8 bytes, then the data in order.
func writeSafetensors(_ path: String, _ tensors: [(name: String, dtype: String, shape: [Int], bytes: [UInt8])]) throws {
    var header: [String: Any] = [:]
    var data: [UInt8] = []
    for t in tensors {
        header[t.name] = ["dtype": t.dtype, "shape": t.shape, "data_offsets": [data.count, data.count + t.bytes.count]]
        data += t.bytes
    }
    var json = [UInt8](try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
    while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
    var out = [UInt8]()
    withUnsafeBytes(of: UInt64(json.count).littleEndian) { out += $0 }
    out += json + data
    try Data(out).write(to: URL(fileURLWithPath: path))
}

/// The tensors of a safetensors fixture as (name, dtype, shape, bytes), for rewriting.
func safetensorsContents(_ path: String) throws -> [(name: String, dtype: String, shape: [Int], bytes: [UInt8])] {
    let file = try SafetensorsFile(path: path)
    return file.tensors.map { t in
        var bytes = [UInt8](repeating: 0, count: t.elementCount * t.dtype.size)
        bytes.withUnsafeMutableBytes { t.copy(0..<t.elementCount, as: t.dtype, to: $0.baseAddress!) }
        return (t.name, t.dtype.rawValue.uppercased(), t.shape, bytes)
    }
}

func editJSON(_ path: String, _ edit: (inout [String: Any]) -> Void) throws {
    var object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
    edit(&object)
    try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path))
}
