/// One evaluation document after the task's processing: what the harness's `doc_to_text`, `doc_to_target`
/// and `construct_requests` produce. Reference: lm-evaluation-harness 11fa0bf `lm_eval/base.py`
/// (`Task.fewshot_context`, `MultipleChoiceTask`) with amazon-science/llm-interpret's task files.
import Foundation

/// A loglikelihood request: the score of `continuation` after `context`.
public struct Request: Equatable, Sendable {
    public var context: String
    public var continuation: String

    public init(context: String, continuation: String) {
        self.context = context
        self.continuation = continuation
    }
}

public struct TaskDoc: @unchecked Sendable {
    /// `doc_to_text(doc)`
    public var text: String
    /// `doc_to_target(doc)`: what follows the text in a few-shot example.
    public var target: String
    /// Builds the doc's requests from its full context (few-shot examples + text).
    var buildRequests: (String) -> [Request]
    /// Index of the correct continuation, for metrics (nil where the metric is not argmax over requests).
    public var gold: Int?

    public func requests(context: String) -> [Request] { buildRequests(context) }
}

/// A row field is missing or of the wrong type.
public struct TaskError: Error, CustomStringConvertible, Sendable {
    public var file: String
    public var line: Int?
    public var message: String
    /// A split file is absent (as opposed to present but malformed): evaluation skips that cell.
    public var missingData = false
    public init(file: String, line: Int?, _ message: String) {
        self.file = file
        self.line = line
        self.message = message
    }
    public var description: String { file + (line.map { ":\($0)" } ?? "") + ": " + message }
}

/// An HF `datasets` row, as read from a JSONL line, with typed field access that names what is wrong.
public struct Row: @unchecked Sendable {
    public var fields: [String: Any]
    public var file: String
    public var line: Int

    func fail(_ message: String) -> TaskError { TaskError(file: file, line: line, message) }

    func string(_ key: String) throws -> String {
        guard let v = fields[key] as? String else { throw fail("field '\(key)' is missing or not a string") }
        return v
    }

    func int(_ key: String) throws -> Int {
        if let v = fields[key] as? Int { return v }
        if let v = fields[key] as? Bool { return v ? 1 : 0 }
        throw fail("field '\(key)' is missing or not an integer")
    }

    /// An integer field that must index one of `count` choices (a class label): 0..<count.
    func label(_ key: String, count: Int) throws -> Int {
        let v = try int(key)
        guard (0..<count).contains(v) else { throw fail("field '\(key)' is \(v), outside 0...\(count - 1)") }
        return v
    }

    /// An integer field that must lie in `range` (span indices and offsets).
    func int(_ key: String, in range: ClosedRange<Int>) throws -> Int {
        let v = try int(key)
        guard range.contains(v) else { throw fail("field '\(key)' is \(v), outside \(range.lowerBound)...\(range.upperBound)") }
        return v
    }

    /// A list-of-strings field that must have at least one element.
    func nonEmptyStrings(_ key: String) throws -> [String] {
        let v = try strings(key)
        guard !v.isEmpty else { throw fail("field '\(key)' is an empty list") }
        return v
    }

    func strings(_ key: String, in parent: String? = nil) throws -> [String] {
        let source = parent.map { fields[$0] as? [String: Any] } ?? fields
        guard let v = source?[key] as? [String] else {
            throw fail("field '\(parent.map { "\($0)." } ?? "")\(key)' is missing or not a list of strings")
        }
        return v
    }
}

/// Fresh-context requests, one per continuation: most tasks.
func perContinuation(_ continuations: [String]) -> (String) -> [Request] {
    { context in continuations.map { Request(context: context, continuation: $0) } }
}

/// `fewshot_context`: the examples' text + target joined by blank lines, then the doc's text.
public func fewshotContext(_ doc: TaskDoc, examples: [TaskDoc]) -> String {
    examples.isEmpty ? doc.text : examples.map { $0.text + $0.target }.joined(separator: "\n\n") + "\n\n" + doc.text
}

/// `rnd.sample(range(population), k)` for a few-shot draw, with Python's own refusal ("sample larger than
/// population") turned into an error that names the task, k, the population and its file.
public func drawFewshot(_ rnd: inout PythonRandom, task: EvalTask, k: Int, population: Int, file: String, what: String = "eligible rows") throws -> [Int] {
    guard k <= population else {
        throw TaskError(file: file, line: nil, "task \(task.rawValue): \(k) few-shot examples asked for, but the population has only \(population) \(what)")
    }
    return rnd.sample(population, k)
}
