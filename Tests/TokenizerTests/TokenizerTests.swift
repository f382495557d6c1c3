import Foundation
import Testing
import TestSupport
@testable import HRZFormat
@testable import Tokenizer

/// OPT's real tokenizer files, beside the checkout as CI has them.
let tokenizerDirectory = Repository.tokenizer

let sharedTokenizer: Tokenizer = {
    do { return try Tokenizer(directory: tokenizerDirectory) } catch { fatalError("cannot load \(tokenizerDirectory): \(error)") }
}()

struct CorpusRow: Decodable {
    var source: String
    var text: String
    var ids: [Int]
}

/// The corpus written by Tools/make_tokenizer_reference.py with HF's slow GPT2Tokenizer.
func loadCorpus() throws -> [CorpusRow] {
    let url = Bundle.module.resourceURL!.appendingPathComponent("Fixtures/corpus.jsonl.zst")
    let bytes = try ZstdDecompressor().decompressFrame([UInt8](try Data(contentsOf: url)))
    let lines = bytes.split(separator: UInt8(ascii: "\n")).dropFirst()  // the first line is the header
    return try lines.map { try JSONDecoder().decode(CorpusRow.self, from: Data($0)) }
}

struct TokenizerTests {
    @Test func matchesHFOnTheWholeCorpus() throws {
        let corpus = try loadCorpus()
        #expect(corpus.count > 10_000)
        var mismatches: [String] = []
        for row in corpus {
            let ids = sharedTokenizer.encode(row.text)
            if ids != row.ids { mismatches.append("\(row.source): \(row.text.debugDescription.prefix(80)) → \(ids.prefix(12)) expected \(row.ids.prefix(12))") }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches, first: \(mismatches.prefix(5).joined(separator: "\n"))")
    }

    @Test func decodesBackToTheText() throws {
        for row in try loadCorpus() {
            #expect(try sharedTokenizer.decode(row.ids) == row.text, "\(row.text.debugDescription.prefix(60))")
        }
    }

    @Test func knownIds() throws {
        #expect(sharedTokenizer.encode("Hello world") == [31414, 232])
        #expect(sharedTokenizer.encode("Hello world", bos: true) == [2, 31414, 232])
        #expect(sharedTokenizer.encode("") == [])
        #expect(sharedTokenizer.encode("</s>") == [49138, 29, 15698])  // plain text, not the special id 2
        #expect(sharedTokenizer.vocabularySize == 50265)
    }

    @Test func badInputIsNamed() throws {
        #expect(throws: TokenizerError.self) { try sharedTokenizer.decode([99_999_999]) }
        do {
            _ = try Tokenizer(vocab: "{\"a\": 0}", merges: "#version: 0.2\na b\nbad\n")
            Issue.record("a malformed merges line must be an error")
        } catch let e as TokenizerError {
            #expect(e.line == 3 && e.file == "merges.txt")
        }
    }
}
