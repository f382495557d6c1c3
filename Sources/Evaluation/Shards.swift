/// Evaluation split over machines: `--shard i/N` runs every N-th scoring batch of each cell (batches as an
/// unsharded run forms them, so each shard runs exactly the forwards that run would, and its log-likelihoods
/// are bit-identical) and writes one file per cell and shard; the merge assembles every request's score, and
/// computes the docs' outcomes and the metrics exactly as an unsharded run does. Few-shot draws do not
/// depend on the shard: every shard prepares the whole cell (cheap).
import Foundation
import HRZFormat
import Files

public struct Shard: Sendable, Equatable, CustomStringConvertible {
    public var index: Int
    public var count: Int
    public init(index: Int, count: Int) {
        self.index = index
        self.count = count
    }
    public var description: String { "\(index)/\(count)" }
}

/// Shard `index` of `count` for a merge (`eval`, `importance heads`, `sweep`): a missing file names the
/// command that makes it (`command … --shard i/N`), and one that does not decode names itself.
public func readShard<T: Decodable>(_ type: T.Type, at path: String, index: Int, count: Int, of what: String = "",
                                    command: String) throws -> T {
    guard let data = try FileGuard.contents(atPath: path) else {
        throw TaskError(file: path, line: nil, "shard \(index)/\(count)\(what) is missing; run \(command) … --shard \(index)/\(count)")
    }
    do { return try JSONDecoder().decode(T.self, from: data) } catch {
        throw TaskError(file: path, line: nil, "not a shard file: \(error)")
    }
}

/// One cell's requests as one shard scored them: [request index, loglikelihood, is_greedy (0/1)].
struct ShardFile: Codable {
    var task: String
    var shots: Int
    var shard: [Int]
    var inputs: InputRecord
    var requests: Int
    var scores: [[Double]]
}

extension Evaluator {
    func shardPath(_ task: EvalTask, _ k: Int, _ shard: Shard) -> String {
        "\(options.outputDirectory)/shards/\(task.rawValue)-\(k)shot-\(shard.index)of\(shard.count).json"
    }

    /// Scores this shard's docs of every cell and writes their shard files (results.json is the merge's).
    /// A shard file whose recorded inputs match is kept.
    public func runShard(_ shard: Shard, progress: ((String, Int, Int) -> Void)? = nil, log: (String) -> Void = { _ in }) throws {
        try FileManager.default.createDirectory(atPath: options.outputDirectory + "/shards", withIntermediateDirectories: true)
        for task in options.tasks {
            for k in options.shots {
                let inputs = cellInputs(task, shots: k), path = shardPath(task, k, shard)
                if let data = try FileGuard.contents(atPath: path), let old = try? JSONDecoder().decode(ShardFile.self, from: data),
                   inputs.changes(from: old.inputs) == nil {
                    log("\(task.rawValue)/\(k)-shot shard \(shard): already done, kept")
                    continue
                }
                let work: CellWork
                do { work = try prepareCell(task, shots: k) } catch let error as TaskError where error.missingData {
                    skipped.append(("\(task.rawValue)/\(k)", error))
                    continue
                }
                let scores = try scorer.score(work.requests, batches: { $0 % shard.count == shard.index }) { done, total in
                    progress?("\(task.rawValue) \(k)-shot [shard \(shard)]", done, total)
                }
                let mine = scores.enumerated().compactMap { i, s in s.map { [Double(i), $0.loglikelihood, $0.isGreedy ? 1 : 0] } }
                let file = ShardFile(task: task.rawValue, shots: k, shard: [shard.index, shard.count], inputs: inputs,
                                     requests: scores.count, scores: mine)
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                try AtomicFile.write([UInt8](try encoder.encode(file)), to: path)
            }
        }
    }

    /// Merges the `count` shard files of every cell into results.json (and the requests, samples and
    /// lm-eval files), as an unsharded run writes them. Every shard must be present and computed from this
    /// run's inputs; the error names the first that is not.
    public func mergeShards(_ count: Int, log: (String) -> Void = { _ in }) throws -> ResultsFile {
        let header = ResultsFile(harness: Self.harness, model: modelPath, model_sha256: scorer.model.contentID, mask: options.maskDescription,
                                 precision: options.precision.rawValue, cells: [:])
        try FileManager.default.createDirectory(atPath: options.outputDirectory + "/requests", withIntermediateDirectories: true)
        for task in options.tasks {
            for k in options.shots {
                let inputs = cellInputs(task, shots: k)
                // A cell whose data is missing has no shard files (each shard skipped it too).
                let work: CellWork
                do { work = try prepareCell(task, shots: k) } catch let error as TaskError where error.missingData {
                    skipped.append(("\(task.rawValue)/\(k)", error))
                    continue
                }
                var scores: [Score?] = []
                for shard in 0..<count {
                    let path = shardPath(task, k, Shard(index: shard, count: count))
                    let file = try readShard(ShardFile.self, at: path, index: shard, count: count, of: " of \(task.rawValue)/\(k)-shot", command: "eval")
                    if let change = inputs.changes(from: file.inputs) {
                        throw TaskError(file: path, line: nil, "computed from other inputs (\(change)); run that shard again")
                    }
                    if scores.isEmpty { scores = Array(repeating: nil, count: file.requests) }
                    guard file.requests == scores.count else { throw TaskError(file: path, line: nil, "holds \(file.requests) requests, the other shards \(scores.count)") }
                    for entry in file.scores {
                        guard entry.count == 3, let request = Int(exactly: entry[0]), scores.indices.contains(request) else {
                            throw TaskError(file: path, line: nil, "a score entry is not [request, loglikelihood, is_greedy] for one of \(scores.count) requests")
                        }
                        scores[request] = Score(loglikelihood: entry[1], isGreedy: entry[2] == 1)
                    }
                }
                guard scores.count == work.requests.count, scores.allSatisfy({ $0 != nil }) else {
                    throw TaskError(file: shardPath(task, k, Shard(index: 0, count: count)), line: nil,
                                    "the shards of \(task.rawValue)/\(k)-shot do not cover its \(work.requests.count) requests")
                }
                // Outcomes in the harness's order, as an unsharded run computes them.
                let all = scores.map { $0! }
                var outcomes: [DocOutcome] = []
                var offset = 0
                for item in work.items {
                    outcomes.append(try task.outcome(item.doc, row: item.row, scores: Array(all[offset..<(offset + item.requests.count)])))
                    offset += item.requests.count
                }
                try writeCellFiles(work, scores: all, outcomes: outcomes)
                let cell = CellResult(task: task.rawValue, shots: k, metrics: task.aggregate(outcomes), docs: work.docs, requests: all.count,
                                      seconds: 0, inputs: inputs, stderr: task.standardErrors(outcomes).filter { $0.value.isFinite })
                try merge(cell, key: "\(task.rawValue)/\(k)", header: header, log: log)
                log("\(task.rawValue)/\(k)-shot: merged \(count) shards, \(work.docs) docs")
            }
        }
        return try loadResults() ?? header
    }
}
