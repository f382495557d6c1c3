/// A JSONL split file (`DIR/<task>/<split>.jsonl`), split into lines once and parsed row by row on demand,
/// so a 48 MB MultiRC train file costs one read and only the rows actually used are decoded.
import Foundation
import HRZFormat
import Files

public final class JSONLFile: @unchecked Sendable {
    public let path: String
    private let data: Data
    /// Byte range of each non-empty line.
    private let lines: [Range<Int>]
    /// 1-based line number in the file of each entry of `lines` (blank lines are skipped, not renumbered).
    private let numbers: [Int]

    public init(path: String) throws {
        self.path = path
        guard let data = try FileGuard.contents(atPath: path) else {
            throw TaskError(file: path, line: nil, "cannot read (missing split?)")
        }
        self.data = data
        var ranges: [Range<Int>] = [], numbers: [Int] = []
        data.withUnsafeBytes { b in
            var start = 0, line = 1
            for i in 0..<b.count where b[i] == UInt8(ascii: "\n") {
                if i > start { ranges.append(start..<i); numbers.append(line) }
                start = i + 1
                line += 1
            }
            if start < b.count { ranges.append(start..<b.count); numbers.append(line) }
        }
        lines = ranges
        self.numbers = numbers
    }

    public var count: Int { lines.count }

    /// Row `index` (0-based), decoded; errors name the file and 1-based line.
    public func row(_ index: Int) throws -> Row {
        guard lines.indices.contains(index) else { throw TaskError(file: path, line: nil, "row \(index) is past the \(lines.count) rows") }
        let slice = data.subdata(in: lines[index])
        guard let object = try? JSONSerialization.jsonObject(with: slice) as? [String: Any] else {
            throw TaskError(file: path, line: numbers[index], "not a JSON object")
        }
        return Row(fields: object, file: path, line: numbers[index])
    }
}
