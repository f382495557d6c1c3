/// Fixture checkpoints converted to fresh `.hrz` files in the test scratch folder.
import Foundation
import Checkpoints

/// Converts a fixture checkpoint (a path relative to the repository, or absolute) to a fresh temporary `.hrz`,
/// optionally embedding OPT's tokenizer from ../shared.
public func convertFixture(_ path: String, tokenizer: Bool = false) throws -> String {
    let out = testScratch() + "fixture-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).hrz"
    var options = ConvertOptions()
    if tokenizer { options.tokenizerDirectory = Repository.tokenizer }
    _ = try Converter.convert(path.hasPrefix("/") ? path : Repository.path(path), to: out, options: options)
    return out
}
