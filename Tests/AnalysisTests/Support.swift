import Foundation
@testable import Checkpoints
import TestSupport

/// Converts a fixture checkpoint (a path relative to the repository) to a fresh temporary `.hrz`,
/// optionally embedding OPT's tokenizer from ../shared.
func convertFixture(_ relative: String, tokenizer: Bool = false) throws -> String {
    let out = testScratch() + "headroom-analysis-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).hrz"
    var options = ConvertOptions()
    if tokenizer { options.tokenizerDirectory = ImportanceTests.root.appendingPathComponent("../shared/data/tokenizer/opt").standardized.path }
    _ = try Converter.convert(ImportanceTests.root.appendingPathComponent(relative).path, to: out, options: options)
    return out
}
