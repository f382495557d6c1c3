/// Per-doc metrics and their aggregation, as each harness task's `process_results` and `aggregation`
/// define them (lm-eval 11fa0bf `lm_eval/tasks/*.py`, `lm_eval/metrics.py`).
import Foundation

/// What one doc contributes to a task's metrics.
public struct DocOutcome: Sendable, Codable {
    /// Metric name → per-doc value (acc, acc_norm, em, f1; LAMBADA's ppl takes the log-likelihood).
    public var values: [String: Double]
    /// MultiRC: (question key, correct) for acc_all. CB: (prediction, gold) for macro F1.
    public var group: String?
    public var prediction: Int?
    public var gold: Int?
}

extension EvalTask {
    /// Metrics of one doc from its requests' scores (in request order).
    public func outcome(_ doc: TaskDoc, row: Row, scores: [Score]) throws -> DocOutcome {
        let ll = scores.map(\.loglikelihood)
        func argmax(_ xs: [Double]) -> Int { xs.indices.max { xs[$0] < xs[$1] || (xs[$0] == xs[$1] && $0 > $1) } ?? 0 }  // first max, as np.argmax
        switch self {
        case .arcEasy, .arcChallenge, .openbookqa, .hellaswag, .piqa, .mathqa:
            // acc: argmax; acc_norm: argmax of ll / len(choice) in characters (code points).
            let gold = doc.gold ?? 0
            let lengths = doc.requests(context: "").map { Double($0.continuation.pyCount - 1) }
            let normalized = zip(ll, lengths).map { $0 / $1 }
            return DocOutcome(values: ["acc": argmax(ll) == gold ? 1 : 0, "acc_norm": argmax(normalized) == gold ? 1 : 0])
        case .winogrande, .copa, .generic:
            return DocOutcome(values: ["acc": argmax(ll) == doc.gold ? 1 : 0])
        case .cb:
            let prediction = argmax(ll)
            return DocOutcome(values: ["acc": prediction == doc.gold ? 1 : 0], prediction: prediction, gold: doc.gold)
        case .boolq, .wic, .wsc:
            // ll_yes, ll_no = results; acc = (ll_yes > ll_no) == label
            let label = try row.int("label")
            return DocOutcome(values: ["acc": (ll[0] > ll[1]) == (label == 1) ? 1 : 0])
        case .rte:
            // ll_true, ll_false = results; pred = ll_false > ll_true; acc = pred == label (1 = not_entailment)
            let label = try row.int("label")
            return DocOutcome(values: ["acc": (ll[1] > ll[0]) == (label == 1) ? 1 : 0])
        case .multirc:
            // pred = ll(yes version) > ll(no version); acc_all: a question counts if all its answers are right.
            let label = try row.int("label")
            guard let idx = row.fields["idx"] as? [String: Any], let p = idx["paragraph"] as? Int, let q = idx["question"] as? Int else {
                throw row.fail("field 'idx' needs paragraph and question")
            }
            return DocOutcome(values: [:], group: "\(p)/\(q)", prediction: (ll[0] > ll[1]) == (label == 1) ? 1 : 0)
        case .record:
            // The argmax entity, scored by max over gold answers of SQuAD exact match and token F1.
            let entities = Array(Set(try row.strings("entities"))).sorted()
            let answers = Array(Set(try row.strings("answers"))).sorted()
            let prediction = entities[argmax(ll)]
            let em = answers.map { squadNormalize(prediction) == squadNormalize($0) ? 1.0 : 0 }.max() ?? 0
            let f1 = answers.map { tokenF1(prediction, $0) }.max() ?? 0
            return DocOutcome(values: ["em": em, "f1": f1])
        case .lambadaOpenAI:
            return DocOutcome(values: ["acc": scores[1].isGreedy ? 1 : 0, "ppl": ll[0]])
        }
    }

    /// Aggregates per-doc outcomes into the task's reported metrics.
    public func aggregate(_ outcomes: [DocOutcome]) -> [String: Double] {
        var out: [String: Double] = [:]
        func mean(_ key: String) -> Double? {
            let xs = outcomes.compactMap { $0.values[key] }
            return xs.isEmpty ? nil : xs.reduce(0, +) / Double(xs.count)
        }
        for key in ["acc", "acc_norm", "em", "f1"] { if let m = mean(key) { out[key] = m } }
        switch self {
        case .lambadaOpenAI:
            if let m = mean("ppl") { out["ppl"] = Foundation.exp(-m) }
        case .cb:
            out["f1"] = macroF1(outcomes.compactMap { o in o.prediction.flatMap { p in o.gold.map { (p, $0) } } }, classes: 3)
        case .multirc:
            // acc_all: per question, all answers right.
            var questions: [String: Bool] = [:]
            var order: [String] = []
            for o in outcomes {
                guard let g = o.group else { continue }
                if questions[g] == nil { order.append(g) }
                questions[g] = (questions[g] ?? true) && o.prediction == 1
            }
            out["acc"] = order.isEmpty ? 0 : Double(order.filter { questions[$0]! }.count) / Double(order.count)
        default:
            break
        }
        return out
    }
}

/// sklearn `f1_score(golds, preds, average="macro")` over the classes that appear in either.
func macroF1(_ pairs: [(prediction: Int, gold: Int)], classes: Int) -> Double {
    let present = (0..<classes).filter { c in pairs.contains { $0.prediction == c || $0.gold == c } }
    guard !present.isEmpty else { return 0 }
    let scores = present.map { c -> Double in
        let tp = Double(pairs.filter { $0.prediction == c && $0.gold == c }.count)
        let fp = Double(pairs.filter { $0.prediction == c && $0.gold != c }.count)
        let fn = Double(pairs.filter { $0.prediction != c && $0.gold == c }.count)
        return tp == 0 ? 0 : 2 * tp / (2 * tp + fp + fn)
    }
    return scores.reduce(0, +) / Double(scores.count)
}

/// SQuAD's `normalize_answer`: lower case, drop punctuation, drop articles, collapse whitespace.
func squadNormalize(_ s: String) -> String {
    let lower = s.lowercased()
    let noPunctuation = String(
        lower.unicodeScalars.filter { !(0x21...0x2F ~= $0.value || 0x3A...0x40 ~= $0.value || 0x5B...0x60 ~= $0.value || 0x7B...0x7E ~= $0.value) }.map(
            Character.init))
    let noArticles = noPunctuation.replacingOccurrences(of: "\\b(a|an|the)\\b", with: " ", options: .regularExpression)
    return noArticles.pySplit().joined(separator: " ")
}

/// SQuAD token F1 between a prediction and one gold answer.
func tokenF1(_ prediction: String, _ gold: String) -> Double {
    let p = squadNormalize(prediction).pySplit(), g = squadNormalize(gold).pySplit()
    var counts: [String: Int] = [:]
    for t in g { counts[t, default: 0] += 1 }
    var common = 0
    for t in p where (counts[t] ?? 0) > 0 { counts[t]! -= 1; common += 1 }
    guard common > 0 else { return 0 }
    let precision = Double(common) / Double(p.count), recall = Double(common) / Double(g.count)
    return 2 * precision * recall / (precision + recall)
}
