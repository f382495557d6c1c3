/// The paper's 16 tasks: split choices and prompt formats of harness 11fa0bf with llm-interpret's task files.
/// Each `case` quotes the harness's template. See ../shared/data/tasks/README.md, "Evaluation protocol".
import Foundation

public enum EvalTask: Hashable, Sendable, CaseIterable, RawRepresentable {
    case arcEasy, arcChallenge, openbookqa, hellaswag, piqa, winogrande, boolq, cb, copa
    case multirc, record, rte, wic, wsc, mathqa, lambadaOpenAI
    /// A user task in the generic JSONL format (formats/tasks.md): rows of context, choices and gold.
    case generic(String)

    /// The paper's 16 tasks (generic tasks are named by their directory instead).
    public static let allCases: [EvalTask] = [
        .arcEasy, .arcChallenge, .openbookqa, .hellaswag, .piqa, .winogrande, .boolq, .cb, .copa,
        .multirc, .record, .rte, .wic, .wsc, .mathqa, .lambadaOpenAI,
    ]

    /// One of the 16 by its harness name; generic tasks come from `EvalTask.generic(name)`.
    public init?(rawValue: String) {
        guard let task = Self.allCases.first(where: { $0.rawValue == rawValue }) else { return nil }
        self = task
    }

    public var rawValue: String {
        switch self {
        case .arcEasy: return "arc_easy"
        case .arcChallenge: return "arc_challenge"
        case .lambadaOpenAI: return "lambada_openai"
        case .generic(let name): return name
        default: return "\(self)"
        }
    }

    /// A task by name: one of the 16, or a generic task when DIR/<name>/validation.jsonl exists.
    public static func named(_ name: String, dataDirectory: String?) -> EvalTask? {
        if let task = EvalTask(rawValue: name) { return task }
        guard let dataDirectory, FileManager.default.fileExists(atPath: "\(dataDirectory)/\(name)/validation.jsonl") else { return nil }
        return .generic(name)
    }

    /// The split evaluated: `test_docs` when the task has a test set, else `validation_docs`.
    public var evalSplit: String {
        switch self {
        case .arcEasy, .arcChallenge, .openbookqa, .mathqa: return "test"
        default: return "validation"
        }
    }

    /// The metric the paper reports and prunes against: acc, or em for ReCoRD.
    public var headlineMetric: String { self == .record ? "em" : "acc" }

    /// Where few-shot examples come from; nil for LAMBADA, which samples its own eval split.
    public var fewshotSplit: String? { self == .lambadaOpenAI ? nil : "train" }

    /// Rows of the few-shot split that are eligible (WSC: label == 1 only).
    public func eligibleForFewshot(_ row: Row) throws -> Bool {
        self == .wsc ? try row.label("label", count: 2) == 1 : true
    }

    public func doc(_ row: Row) throws -> TaskDoc {
        switch self {
        case .generic:
            // formats/tasks.md: the continuations are the choices exactly as written (leading space included).
            let choices = try row.nonEmptyStrings("choices")
            if let empty = choices.firstIndex(of: "") { throw row.fail("field 'choices' has an empty choice at index \(empty)") }
            let gold = try row.int("gold")
            guard choices.indices.contains(gold) else { throw row.fail("gold \(gold) is not an index into \(choices.count) choices") }
            return TaskDoc(text: try row.string("context"), target: choices[gold], buildRequests: perContinuation(choices), gold: gold)
        case .arcEasy, .arcChallenge:
            // query = "Question: " + question + "\nAnswer:"; numeric answer keys 1-5 map to A-E.
            let choices = try row.strings("text", in: "choices")
            let key = try row.string("answerKey")
            let letter = ["1": "A", "2": "B", "3": "C", "4": "D", "5": "E"][key] ?? key
            guard let gold = ["A", "B", "C", "D", "E"].firstIndex(of: letter), gold < choices.count else {
                throw row.fail("answerKey '\(key)' does not name one of \(choices.count) choices")
            }
            return multipleChoice("Question: " + (try row.string("question")) + "\nAnswer:", choices, gold)
        case .openbookqa:
            let choices = try row.strings("text", in: "choices")
            let key = try row.string("answerKey").pyStrip()
            guard let gold = ["A", "B", "C", "D"].firstIndex(of: key), gold < choices.count else { throw row.fail("answerKey '\(key)' invalid") }
            return multipleChoice(try row.string("question_stem"), choices, gold)
        case .hellaswag:
            // ctx = ctx_a + " " + ctx_b.capitalize(); query = preprocess(activity_label + ": " + ctx)
            let ctx = (try row.string("ctx_a")) + " " + (try row.string("ctx_b")).pyCapitalize()
            let query = hellaswagPreprocess((try row.string("activity_label")) + ": " + ctx)
            let endings = try row.strings("endings").map(hellaswagPreprocess)
            guard let gold = Int(try row.string("label")), endings.indices.contains(gold) else { throw row.fail("label is not an ending index") }
            return multipleChoice(query, endings, gold)
        case .piqa:
            return multipleChoice(
                "Question: " + (try row.string("goal")) + "\nAnswer:", [try row.string("sol1"), try row.string("sol2")],
                try row.label("label", count: 2))
        case .winogrande:
            // Partial scoring: the context's last block becomes sentence[:idx] + option for each option.
            let sentence = try row.string("sentence")
            guard let blank = sentence.scalars.firstIndex(of: "_") else { throw row.fail("field 'sentence' has no '_'") }
            let options = [try row.string("option1"), try row.string("option2")]
            guard let answer = ["1": 0, "2": 1][try row.string("answer")] else { throw row.fail("field 'answer' must be \"1\" or \"2\"") }
            let prefix = sentence.pySlice(nil, blank)
            let target = " " + sentence.pySlice(blank + 1, nil).pyStrip()
            return TaskDoc(
                text: prefix + options[answer], target: target,
                buildRequests: { context in
                    let blocks = context.components(separatedBy: "\n\n").dropLast()
                    return options.map { Request(context: (blocks + [prefix + $0]).joined(separator: "\n\n"), continuation: target) }
                }, gold: answer)
        case .boolq:
            let label = try row.label("label", count: 2)
            return TaskDoc(
                text: "\(try row.string("passage"))\nQuestion: \(try row.string("question"))?\nAnswer:",
                target: label == 1 ? " yes" : " no", buildRequests: perContinuation([" yes", " no"]), gold: 1 - label)
        case .cb:
            let label = try row.label("label", count: 3)
            let answers = [" True", " False", " Neither"]
            return TaskDoc(
                text: "\(try row.string("premise"))\nQuestion: \(try row.string("hypothesis")). True, False or Neither?\nAnswer:",
                target: answers[label], buildRequests: perContinuation(answers), gold: label)
        case .copa:
            // premise.strip()[:-1] + " because" / " therefore"; choices lower-case their first character.
            let connector = ["cause": "because", "effect": "therefore"][try row.string("question")]
            guard let connector else { throw row.fail("field 'question' must be cause or effect") }
            let text = (try row.string("premise")).pyStrip().pySlice(nil, -1) + " " + connector
            let choices = try [row.string("choice1"), row.string("choice2")].map { " " + $0.pySlice(0, 1).lowercased() + $0.pySlice(1, nil) }
            let label = try row.label("label", count: 2)
            return TaskDoc(text: text, target: choices[label], buildRequests: perContinuation(choices), gold: label)
        case .multirc:
            let answer = try row.string("answer"), label = try row.label("label", count: 2)
            guard let idx = row.fields["idx"] as? [String: Any], idx["paragraph"] is Int, idx["question"] is Int else {
                throw row.fail("field 'idx' needs integer paragraph and question")
            }
            let yes = " \(answer)\nIs the answer correct? yes", no = " \(answer)\nIs the answer correct? no"
            return TaskDoc(
                text: "\(try row.string("paragraph"))\nQuestion: \(try row.string("question"))\nAnswer:",
                target: label == 1 ? yes : no, buildRequests: perContinuation([yes, no]), gold: 1 - label)
        case .record:
            // text = first part + "\n\n" + "  - {highlight}.\n" per highlight; one request per entity.
            let parts = (try row.string("passage")).pyStrip().components(separatedBy: "\n@highlight\n")
            let text = parts[0] + "\n\n" + parts.dropFirst().map { "  - \($0).\n" }.joined()
            let query = try row.string("query")
            let entities = Array(Set(try row.nonEmptyStrings("entities"))).sorted()
            let answers = Array(Set(try row.nonEmptyStrings("answers"))).sorted()
            guard query.contains("@placeholder") else { throw row.fail("field 'query' has no @placeholder") }
            func format(_ entity: String) -> String { "  - \(query)".replacingOccurrences(of: "@placeholder", with: entity) }
            guard let first = answers.first else { throw row.fail("field 'answers' is empty") }
            return TaskDoc(text: text, target: format(first), buildRequests: perContinuation(entities.map(format)), gold: nil)
        case .rte:
            let label = try row.label("label", count: 2)
            return TaskDoc(
                text: "\(try row.string("sentence1"))\nQuestion: \(try row.string("sentence2")) True or False?\nAnswer:",
                target: label == 0 ? " True" : " False", buildRequests: perContinuation([" True", " False"]), gold: label)
        case .wic:
            let s1 = try row.string("sentence1")
            let start = try row.int("start1", in: 0...s1.pyCount)
            let word = s1.pySlice(start, try row.int("end1", in: start...s1.pyCount))
            let label = try row.label("label", count: 2)
            return TaskDoc(
                text:
                    "Sentence 1: \(s1)\nSentence 2: \(try row.string("sentence2"))\nQuestion: Is the word '\(word)' used in the same way in the two sentences above?\nAnswer:",
                target: label == 1 ? " yes" : " no", buildRequests: perContinuation([" yes", " no"]), gold: 1 - label)
        case .wsc:
            let text = try row.string("text"), span1 = try row.string("span1_text"), span2 = try row.string("span2_text")
            let words = text.pySplit()
            let pre = words.prefix(try row.int("span2_index", in: 0...max(0, words.count - 1))).joined(separator: " ")
            let post = text.pySlice(pre.pyCount + span2.pyCount + 1, nil)
            let passage = generalDetokenize(pre + " *\(span2)*" + post)
            let label = try row.label("label", count: 2)
            return TaskDoc(
                text: "Passage: \(passage)\nQuestion: In the passage above, does the pronoun \"*\(span2)*\" refer to \"*\(span1)*\"?\nAnswer:",
                target: label == 1 ? " yes" : " no", buildRequests: perContinuation([" yes", " no"]), gold: 1 - label)
        case .mathqa:
            // choices = [c[4:].rstrip(" ,") for c in re.findall(r"[abcd] \) .*?, |e \) .*?$", options)]
            let choices = mathqaChoices(try row.string("options"))
            guard let gold = ["a", "b", "c", "d", "e"].firstIndex(of: try row.string("correct")), choices.indices.contains(gold) else {
                throw row.fail("field 'correct' does not name one of \(choices.count) parsed options")
            }
            var doc = multipleChoice("Question: " + (try row.string("Problem")) + "\nAnswer:", choices, gold)
            doc.target = choices[gold]  // llm-interpret overrides doc_to_target: no leading space.
            return doc
        case .lambadaOpenAI:
            // text.rsplit(" ", 1): context and " " + last word; two identical requests (score, greedy flag).
            let parts = (try row.string("text")).pyRSplitOnce(" ")
            guard parts.count == 2 else { throw row.fail("field 'text' has no space to split the last word on") }
            let target = " " + parts[1]
            return TaskDoc(text: parts[0], target: target, buildRequests: perContinuation([target, target]), gold: nil)
        }
    }

    /// MultipleChoiceTask: target " " + choices[gold]; one request per choice, " " + choice.
    func multipleChoice(_ query: String, _ choices: [String], _ gold: Int) -> TaskDoc {
        TaskDoc(text: query, target: " " + choices[gold], buildRequests: perContinuation(choices.map { " " + $0 }), gold: gold)
    }
}

/// HellaSwag's `preprocess`: strip, " [title]" → ". ", drop "[…]" tags, "  " → " ".
func hellaswagPreprocess(_ text: String) -> String {
    var t = text.pyStrip().replacingOccurrences(of: " [title]", with: ". ")
    t = t.replacingOccurrences(of: "\\[.*?\\]", with: "", options: .regularExpression)
    return t.replacingOccurrences(of: "  ", with: " ")
}

/// WSC's `general_detokenize`.
func generalDetokenize(_ s: String) -> String {
    var t = s.replacingOccurrences(of: " n't", with: "n't").replacingOccurrences(of: " )", with: ")")
        .replacingOccurrences(of: "( ", with: "(").replacingOccurrences(of: "\" ", with: "\"").replacingOccurrences(of: " \"", with: "\"")
    t = t.replacingOccurrences(of: " (['.,])", with: "$1", options: .regularExpression)
    return t
}

/// MathQA's option parsing: `re.findall(r"[abcd] \) .*?, |e \) .*?$", options)`, then `c[4:].rstrip(" ,")`.
func mathqaChoices(_ options: String) -> [String] {
    guard let regex = try? NSRegularExpression(pattern: "[abcd] \\) .*?, |e \\) .*?$") else { return [] }
    let ns = options as NSString
    return regex.matches(in: options, range: NSRange(location: 0, length: ns.length)).map { m in
        var c = ns.substring(with: m.range).pySlice(4, nil)
        while let last = c.unicodeScalars.last, last == " " || last == "," { c.unicodeScalars.removeLast() }
        return c
    }
}
