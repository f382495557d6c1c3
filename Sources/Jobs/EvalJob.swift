/// `headroom eval` and the study's evaluation units: every task × shots cell scored with the harness's
/// prompts. A cell's items are its scoring batches (as `Scorer.plan` forms them); its outputs are
/// OUTDIR/cells/STEM.json (the cell's result, its record and the stamps of its files), OUTDIR/requests/STEM.jsonl
/// and OUTDIR/samples/STEM.jsonl. OUTDIR/results.json and OUTDIR/lm-eval/results-Kshot.json are assembled
/// from the cell files after every cell (and repaired by any later run), so a cell is done only when its own
/// files are as it left them.
import Foundation
import Evaluation
import Runtime
import Files

public final class EvalJob {
    public let model: String
    public let options: EvalOptions
    /// Cells skipped for missing data.
    public let skips = Skips()
    let evaluator: Evaluator

    public init(model: String, options: EvalOptions) throws {
        self.model = model
        self.options = options
        evaluator = try Evaluator(modelPath: model, options: options)
    }

    public var cells: Cells { Cells(tasks: options.tasks, shots: options.shots) }
    var directory: String { options.outputDirectory }

    /// Every cell not done, whole (a killed run resumes inside its cell), then results.json.
    @discardableResult
    public func run(context: JobContext = JobContext()) throws -> ResultsFile {
        for (task, k) in cells.all {
            var cell = cell(task, k)
            try cell.runWhole(context: context)
        }
        return try assemble(context: context)
    }

    /// Part `part` of every cell (OUTDIR/shards/STEM-iofN.json); `merge` joins them.
    public func run(part: Part, context: JobContext = JobContext()) throws {
        for (task, k) in cells.all {
            var cell = cell(task, k)
            try cell.runPart(part, context: context)
        }
    }

    /// One cell's part (a study unit).
    public func run(task: EvalTask, shots k: Int, part: Part, context: JobContext = JobContext()) throws {
        var cell = cell(task, k)
        if part == .whole {
            try cell.runWhole(context: context)
            try assemble(context: context)
        } else {
            try cell.runPart(part, context: context)
        }
    }

    /// Joins `count` parts of every cell, then results.json.
    @discardableResult
    public func merge(parts count: Int, context: JobContext = JobContext()) throws -> ResultsFile {
        for (task, k) in cells.all {
            var cell = cell(task, k)
            try cell.merge(count, context: context)
        }
        return try assemble(context: context)
    }

    /// Joins `count` parts of one cell (a study unit of a split cell).
    public func merge(task: EvalTask, shots k: Int, parts count: Int, context: JobContext = JobContext()) throws {
        var cell = cell(task, k)
        try cell.merge(count, context: context)
    }

    func cell(_ task: EvalTask, _ k: Int) -> EvalCell {
        EvalCell(job: self, task: task, shots: k, record: evaluator.cellInputs(task, shots: k))
    }

    /// The record of one cell (model, data files, limit, mask contents, batch tokens, precision, tool).
    public func record(_ task: EvalTask, _ k: Int) -> InputRecord { evaluator.cellInputs(task, shots: k) }

    /// Relative paths of one cell's own outputs.
    public static func outputs(_ task: EvalTask, _ k: Int) -> [String] {
        let stem = Cells.stem(task, k)
        return ["cells/\(stem).json", "requests/\(stem).jsonl", "samples/\(stem).jsonl"]
    }

    /// Rewrites results.json and the lm-eval files from every cell file of this model in OUTDIR (cells of
    /// earlier runs into the same directory included), under the directory's lock.
    @discardableResult
    public func assemble(context: JobContext = JobContext()) throws -> ResultsFile {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return try DirectoryLock.withLock(directory) {
            let results = try ResultsFile.assemble(directory: directory, header: header, log: context.log)
            try evaluator.writeResults(results)
            return results
        }
    }

    var header: ResultsFile {
        ResultsFile(
            harness: Evaluator.harness, model: model, model_sha256: evaluator.modelID, mask: options.maskDescription,
            precision: options.precision.rawValue, cells: [:])
    }
}

/// One evaluation cell as the part scheme runs it.
struct EvalCell: PartedCell {
    typealias Result = [[Double]]  // per request of the batch: [request index, loglikelihood, is_greedy 0/1]
    let job: EvalJob
    let task: EvalTask
    let shots: Int
    let record: InputRecord
    var work: Evaluator.CellWork?
    var plan: ScoringPlan?
    var started = Date()

    init(job: EvalJob, task: EvalTask, shots: Int, record: InputRecord) {
        self.job = job
        self.task = task
        self.shots = shots
        self.record = record
    }

    var label: String { Cells.key(task, shots) + "-shot" }
    var partDirectory: String { job.directory }
    var stem: String { Cells.stem(task, shots) }

    func status() throws -> OutputStatus { CellFile.status(directory: job.directory, stem: stem, record: record) }

    mutating func prepare() throws -> Int {
        started = Date()
        let work = try job.evaluator.prepareCell(task, shots: shots)
        self.work = work
        plan = try job.evaluator.scorer.plan(work.requests)
        return plan!.batches.count
    }

    mutating func run(item: Int, context: JobContext) throws -> [[Double]] {
        BatchScores.encode(try job.evaluator.scorer.score(plan!, batch: item))
    }

    func check(_ result: [[Double]], item: Int) -> String? { BatchScores.check(result, plan: plan, batch: item) }

    mutating func finish(_ results: [[[Double]]], context: JobContext) throws {
        guard let work else { return }
        let all = BatchScores.assemble(results, requests: work.requests.count)
        let (metrics, outcomes) = try job.evaluator.outcomes(work, scores: all)
        try job.evaluator.writeCellFiles(work, scores: all, outcomes: outcomes)
        let result = CellResult(
            task: task.rawValue, shots: shots, metrics: metrics, docs: work.docs, requests: all.count,
            seconds: Date().timeIntervalSince(started), inputs: record,
            stderr: task.standardErrors(outcomes).filter { $0.value.isFinite })
        try CellFile.write(result, directory: job.directory, stem: stem)
        try job.assemble(context: context)
    }

    mutating func skip(_ reason: TaskError, context: JobContext) {
        job.skips.add(Cells.key(task, shots), reason)
    }
}

/// OUTDIR/cells/STEM.json: a finished cell's result with the stamps of the request and sample files it wrote.
struct CellFile: Codable {
    var result: CellResult
    /// Relative path → `fileStamp` when written.
    var outputs: [String: String]

    static func path(_ directory: String, _ stem: String) -> String { "\(directory)/cells/\(stem).json" }

    static func write(_ result: CellResult, directory: String, stem: String) throws {
        var outputs: [String: String] = [:]
        for name in ["requests/\(stem).jsonl", "samples/\(stem).jsonl"] { outputs[name] = fileStamp("\(directory)/\(name)") ?? "missing" }
        try JSONFiles.write(CellFile(result: result, outputs: outputs), to: path(directory, stem))
    }

    /// Done when the cell file has this record and every file it names is as it was written.
    static func status(directory: String, stem: String, record: InputRecord) -> OutputStatus {
        guard let file = try? JSONFiles.read(CellFile.self, from: path(directory, stem), what: "a cell file") else { return .absent }
        return .of(file.result.inputs, against: record, intact: file.outputs.allSatisfy { fileStamp("\(directory)/\($0.key)") == $0.value })
    }
}

extension ResultsFile {
    /// results.json from every cell file in `directory` computed from `header`'s model (others are left out,
    /// and said so: results.json describes one model).
    static func assemble(directory: String, header: ResultsFile, log: (String) -> Void) throws -> ResultsFile {
        var results = header
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory + "/cells")) ?? []).filter { $0.hasSuffix(".json") }.sorted()
        var other: [String] = []
        for name in names {
            guard let file = try? JSONFiles.read(CellFile.self, from: "\(directory)/cells/\(name)", what: "a cell file") else { continue }
            let key = "\(file.result.task)/\(file.result.shots)"
            if file.result.inputs?["model"] == header.model_sha256 { results.cells[key] = file.result } else { other.append(key) }
        }
        if !other.isEmpty { log("left \(other.joined(separator: ", ")) out of results.json: computed from another model") }
        return results
    }
}
