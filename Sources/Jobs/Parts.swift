/// The one shard-and-resume scheme of every job. A job's cell (an evaluation cell, a gradient importance
/// cell, a sweep's cell, …) is a list of items numbered 0..<n: scoring batches, example chunks, grid points by
/// batches. Part i of N owns the items j with j mod N = i. A part runs its items in order and keeps their
/// results in one part file, `DIR/shards/STEM-iofN.json`, rewritten atomically as it goes (at least every
/// `JobContext.checkpointSeconds`), so a killed part resumes at its first unfinished item. The cell's outputs
/// are computed from all n item results in item order, by one run (one part of one) or by a merge of N parts;
/// either way from the same item results in the same order, so a sharded cell equals an unsharded one.
///
/// A merge trusts nothing it reads: each part file must be the part it is named for, computed from the
/// cell's inputs, complete, holding exactly the items it owns and results of the shape the job expects. The
/// error names the part file.
import Foundation
import Evaluation
import Files

/// Part `index` of `count` (a `--shard i/N`, or a study unit's share of a cell).
public struct Part: Sendable, Equatable, Hashable, Codable, CustomStringConvertible {
    public var index: Int
    public var count: Int
    public init(index: Int, count: Int) {
        self.index = index
        self.count = count
    }
    public static let whole = Part(index: 0, count: 1)
    public var description: String { "\(index)/\(count)" }
    /// The items 0..<n this part owns, ascending.
    public func items(of n: Int) -> [Int] { index < n ? Array(stride(from: index, to: n, by: count)) : [] }
    /// Parses `i/N` (0 ≤ i < N ≤ `Part.maxCount`), nil otherwise (`1/2/`, `-1/2`, `2/2`).
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]), (1...Part.maxCount).contains(n), (0..<n).contains(i),
            parts.allSatisfy({ $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) })
        else { return nil }
        self.init(index: i, count: n)
    }
    /// The most parts one cell may be split into.
    public static let maxCount = 100_000
}

/// What a part file holds (`DIR/shards/STEM-iofN.json`).
struct PartFile<Result: Codable>: Codable {
    static var format: String { "headroom-part/1" }
    var format: String
    /// The job kind and the cell, for the reader ("eval copa/5").
    var cell: String
    /// [index, count].
    var part: [Int]
    /// Items of the whole cell.
    var items: Int
    var inputs: InputRecord
    /// Finished items of this part, ascending, and their results in the same order.
    var done: [Int]
    var results: [Result]
    /// All owned items are done.
    var complete: Bool
    /// Why the cell could not run (its data is missing): then nothing else holds.
    var skipped: String?
}

/// Whether a cell's outputs are there and were computed from the cell's current inputs.
public enum OutputStatus: Equatable, Sendable {
    case done
    /// They exist but were computed from other inputs: what changed, in one line.
    case stale(String)
    case absent

    /// The status of outputs recorded with `old` (nil: none) against `record`, given the files are intact.
    public static func of(_ old: InputRecord??, against record: InputRecord, intact: Bool = true) -> OutputStatus {
        guard let old, intact else { return .absent }
        guard let change = record.changes(from: old) else { return .done }
        return .stale(change)
    }
}

/// One cell of a job, as the part scheme runs it.
public protocol PartedCell {
    associatedtype Result: Codable
    /// "eval copa/5": the job and the cell, for messages and part files.
    var label: String { get }
    /// Part files are DIR/shards/STEM-iofN.json.
    var partDirectory: String { get }
    var stem: String { get }
    /// What the cell's results depend on; part files and outputs recorded with another record are recomputed.
    var record: InputRecord { get }
    /// Whether the cell's outputs exist and match `record` (then nothing runs), or what changed.
    func status() throws -> OutputStatus
    /// Prepares the work (reads and tokenizes the cell's data) and returns its item count. Throws a
    /// `TaskError` with `missingData` when the cell's data is missing.
    mutating func prepare() throws -> Int
    /// Runs item `item` (after `prepare`).
    mutating func run(item: Int, context: JobContext) throws -> Result
    /// Checks one item result read from a part file; the message says what is wrong with it.
    func check(_ result: Result, item: Int) -> String?
    /// Writes the cell's outputs from every item's result, in item order.
    mutating func finish(_ results: [Result], context: JobContext) throws
    /// Records that the cell was skipped (missing data); `finish` will not be called.
    mutating func skip(_ reason: TaskError, context: JobContext)
}

extension PartedCell {
    public func check(_ result: Result, item: Int) -> String? { nil }

    func partPath(_ part: Part) -> String { "\(partDirectory)/shards/\(stem)-\(part.index)of\(part.count).json" }

    /// Runs the cell whole: kept when finished, else every item (resuming a part file of 1 left by a killed
    /// run), then `finish`; the part file is removed once the outputs are written.
    public mutating func runWhole(context: JobContext) throws {
        switch try status() {
        case .done:
            context.log("\(label): already done, kept")
            return
        case .stale(let change):
            context.log("\(label): inputs changed (\(change)); recomputing")
        case .absent:
            break
        }
        guard let results = try runPart(.whole, context: context) else { return }
        try finish(results, context: context)
        try? FileManager.default.removeItem(atPath: partPath(.whole))
    }

    /// Runs the items part `part` owns, resuming from its part file, and writes the part file complete.
    /// Returns every result of the cell when the part is the whole cell; nil when the cell was skipped.
    @discardableResult
    public mutating func runPart(_ part: Part, context: JobContext) throws -> [Result]? {
        let path = partPath(part)
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let n: Int
        do { n = try prepare() } catch let error as TaskError where error.missingData {
            skip(error, context: context)
            try write(
                PartFile<Result>(
                    format: PartFile<Result>.format, cell: label, part: [part.index, part.count], items: 0, inputs: record,
                    done: [], results: [], complete: true, skipped: "\(error)"), to: path)
            return nil
        }
        let owned = part.items(of: n)
        var file = PartFile<Result>(
            format: PartFile<Result>.format, cell: label, part: [part.index, part.count], items: n, inputs: record,
            done: [], results: [], complete: false, skipped: nil)
        if let old = try? readPart(path), old.part == file.part, old.items == n, old.skipped == nil {
            if let change = record.changes(from: old.inputs) {
                context.log("\(label) [part \(part)]: inputs changed (\(change)); starting again")
            } else if Set(old.done).isSubset(of: Set(owned)), old.done == old.done.sorted(), old.done.count == old.results.count,
                zip(old.done, old.results).allSatisfy({ check($1, item: $0) == nil })
            {
                (file.done, file.results) = (old.done, old.results)
                if old.complete && old.done == owned {
                    context.log("\(label) [part \(part)]: already done, kept")
                } else if !old.done.isEmpty {
                    context.log("\(label) [part \(part)]: resuming after \(old.done.count) of \(owned.count) items")
                }
            }
        }
        let finishedItems = Set(file.done)
        var lastSave = Date()
        var progressDone = file.done.count
        context.progress(label, progressDone, owned.count)
        for item in owned where !finishedItems.contains(item) {
            let result = try run(item: item, context: context)
            // Keep item order in the file whatever order resumed items arrive in.
            let at = file.done.firstIndex { $0 > item } ?? file.done.count
            file.done.insert(item, at: at)
            file.results.insert(result, at: at)
            progressDone += 1
            context.progress(label, progressDone, owned.count)
            if Date().timeIntervalSince(lastSave) >= context.checkpointSeconds && progressDone < owned.count {
                try write(file, to: path)
                lastSave = Date()
            }
        }
        file.complete = true
        try write(file, to: path)
        return part == .whole ? file.results : nil
    }

    /// Joins the `count` part files into the cell's outputs: each must be that part, of these inputs, complete,
    /// with exactly its own items and results the job accepts. Always reads and checks every part (cheap next
    /// to computing them), so a merge never vouches for parts it has not seen.
    public mutating func merge(_ count: Int, context: JobContext) throws {
        // The cell as this merge sees it: what each part must hold is decided here, not by the parts.
        let n: Int
        do { n = try prepare() } catch let error as TaskError where error.missingData {
            skip(error, context: context)
            return
        }
        var results = [Result?](repeating: nil, count: n)
        for i in 0..<count {
            let part = Part(index: i, count: count)
            let path = partPath(part)
            guard FileManager.default.fileExists(atPath: path) else {
                throw JobError(file: path, "shard \(part) of \(label) is missing; run that shard (--shard \(part)) first")
            }
            let file = try readPart(path)
            guard file.format == PartFile<Result>.format else {
                throw JobError(file: path, field: "format", "is '\(file.format)', expected '\(PartFile<Result>.format)'")
            }
            guard file.part == [i, count] else { throw JobError(file: path, field: "part", "is \(file.part), but the file is part [\(i), \(count)]") }
            if let change = record.changes(from: file.inputs) {
                throw JobError(file: path, field: "inputs", "computed from other inputs (\(change)); run that shard again")
            }
            guard file.skipped == nil else {
                throw JobError(file: path, field: "skipped", "the shard found no data, but this merge does; run that shard again")
            }
            guard file.complete else { throw JobError(file: path, field: "complete", "the shard has not finished; run it again to complete it") }
            guard file.items == n else { throw JobError(file: path, field: "items", "is \(file.items); the cell has \(n) items") }
            let owned = part.items(of: n)
            guard file.done == owned, file.results.count == owned.count else {
                let extra = Set(file.done).subtracting(owned).sorted(), missing = Set(owned).subtracting(file.done).sorted()
                throw JobError(
                    file: path, field: "done",
                    extra.isEmpty
                        ? "lacks item\(missing.count == 1 ? "" : "s") \(missing.prefix(5).map(String.init).joined(separator: ", ")) that it owns"
                        : "holds item\(extra.count == 1 ? "" : "s") \(extra.prefix(5).map(String.init).joined(separator: ", ")) that shard \(part) does not own"
                )
            }
            for (item, result) in zip(file.done, file.results) {
                if let problem = check(result, item: item) { throw JobError(file: path, field: "results", "item \(item): \(problem)") }
                results[item] = result
            }
        }
        guard results.allSatisfy({ $0 != nil }) else {
            throw JobError(file: partPath(Part(index: 0, count: count)), "the \(count) parts do not cover the cell's items")
        }
        try finish(results.map { $0! }, context: context)
        context.log("\(label): merged \(count) parts")
    }

    func readPart(_ path: String) throws -> PartFile<Result> {
        guard let data = try FileGuard.contents(atPath: path) else { throw JobError(file: path, "cannot read") }
        do { return try JSONDecoder().decode(PartFile<Result>.self, from: data) } catch {
            throw JobError(file: path, "not a part file: \(describe(error))")
        }
    }

    func write(_ file: PartFile<Result>, to path: String) throws {
        try AtomicFile.write(try JSONFiles.compact(file), to: path)
    }
}
