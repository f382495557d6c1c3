import Foundation
import HRZFormat
import Tokenizer
import Basics
import Files

struct TokenizeCommand: Command {
    static let spec = CommandSpec(
        name: "tokenize", summary: "print OPT token ids of a text (or of each line of a JSONL file) as JSON",
        synopsis: ["MODEL.hrz|TOKENIZER_DIR TEXT [--bos|--no-bos]", "MODEL.hrz|TOKENIZER_DIR --input FILE.jsonl [--bos|--no-bos]"],
        positionals: [Positional("MODEL.hrz or TOKENIZER_DIR", ""), Positional("TEXT", optional: true, "")],
        groups: [
            OptionGroup(
                "Options",
                [
                    Option("--bos", "prepend OPT's BOS token </s> (id 2)"),
                    Option("--no-bos", "do not (the default)"),
                    Option("--input", value: "FILE", "one JSON string per line (- reads standard input); prints one JSON array of ids per line"),
                    Option("--decode", "the reverse: TEXT (or each line) is a JSON array of ids; prints the text as a JSON string"),
                ])
        ],
        discussion: """
            GPT-2 byte-level BPE with OPT's vocab.json and merges.txt, taken from the .hrz (embedded by
            convert/synth --tokenizer) or from a directory. Ids equal HF's slow GPT2Tokenizer with
            add_special_tokens=False; special-token text such as "</s>" is plain text.
            """)

    var source: String
    var text: String?
    var input: String?
    var bos: Bool
    var decode: Bool

    init(_ args: ParsedArguments) throws(UsageError) {
        bos = try args.bos(default: false)
        decode = args.flag("--decode")
        input = args.string("--input")
        source = try args.positional(required: 0)
        if input == nil {
            text = try args.positional(required: 1)
        } else if let extra = try args.positional(1) {
            throw UsageError("give TEXT or --input FILE, not both (got '\(extra)')")
        }
    }

    var inputs: [String] { [source] + [input].compactMap { $0 }.filter { $0 != "-" } }

    func run() throws -> Int32 {
        let tokenizer = try Tokenizer.load(source)
        func handle(_ line: String, where place: String) throws -> String {
            if decode {
                guard let ids = try? JSONDecoder().decode([Int].self, from: Data(line.utf8)) else {
                    throw TokenizerError(file: place, line: nil, reason: "expected a JSON array of ids")
                }
                do { return String(decoding: try JSONEncoder().encode(try tokenizer.decode(ids)), as: UTF8.self) } catch let e as TokenizerError {
                    throw TokenizerError(file: place, line: nil, reason: e.reason)
                }
            }
            return "[" + tokenizer.encode(line, bos: bos).map(String.init).joined(separator: ",") + "]"
        }
        if let text {
            print(try handle(text, where: "TEXT"))
            return 0
        }
        let data: Data
        if input == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            guard let input, let read = try FileGuard.contents(atPath: input) else {
                throw TokenizerError(file: input ?? "-", line: nil, reason: "cannot read")
            }
            data = read
        }
        let input = input == "-" ? "<stdin>" : input!
        if let bad = firstInvalidUTF8(data) {
            let line = data.prefix(bad).reduce(1) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
            throw TokenizerError(file: input, line: line, reason: "invalid UTF-8 at byte \(bad)")
        }
        var lineNumber = 0
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.isEmpty { continue }
            if decode {
                print(try handle(String(line), where: "\(input):\(lineNumber)"))
                continue
            }
            guard let text = try? JSONDecoder().decode(String.self, from: Data(line.utf8)) else {
                throw TokenizerError(file: input, line: lineNumber, reason: "expected one JSON string per line")
            }
            print(try handle(text, where: "\(input):\(lineNumber)"))
        }
        return 0
    }
}
