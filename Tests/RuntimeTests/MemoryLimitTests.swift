import Foundation
import Testing
@testable import HRZFormat
@testable import Runtime
@testable import Files

/// A model whose tensors decode to more than the machine holds (a few hundred KB of zero-filled zstd chunks
/// can declare hundreds of GB) is refused when opened, by name, before anything is allocated from it.
struct MemoryLimitTests {
    @Test func openingRefusesWhatCannotFit() throws {
        let path = try ModelCache.shared.path("safetensors-f32")
        let reader = try HRZReader(path: path)
        let embed = try reader.tensor("embed_tokens.weight").byteCount
        #expect(throws: Never.self) { _ = try OPTModel(path: path, memoryLimit: 1 << 30) }
        do {
            _ = try OPTModel(path: path, memoryLimit: embed)
            Issue.record("a limit below what opening needs must be an error")
        } catch let error as HRZError {
            #expect(error.file == path, "\(error)")
            #expect(error.description.contains("opening needs") && error.description.contains("this machine has \(embed)"))
        }
        #expect(OPTModel.physicalMemory > 1 << 28)
    }
}
