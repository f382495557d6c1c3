/// What a plan costs: tokens and FLOPs per unit from the tasks' real prompts (a sample of each cell,
/// tokenized and scaled to the cell's size), seconds from a throughput measured on this machine for the
/// model's shape (a one-layer model of that shape, synthesized and timed once, cached in DIR), and the wall
/// time on N machines like this one by list scheduling the units in dependency order.
import Analysis
import Benchmarks
import Evaluation
import Foundation
import Jobs
import HRZFormat
import Runtime
import OPTSchema
import Files

/// Throughput measured on this machine for one model shape.
public struct Calibration: Codable, Sendable {
    public var shape: String
    public var cpu: String
    public var threads: Int
    /// GFLOP/s of a forward (GEMMs, attention and LM head), all positions' logits, 2 × 256 tokens.
    public var forwardGflops: Double
    /// Time of gradient importance's forward + backward over the time of its forward alone.
    public var backwardRatio: Double
    public var measured: String

    static func shape(_ c: OPTConfig) -> String {
        "hidden \(c.hiddenSize), \(c.numHiddenLayers) layers, \(c.numAttentionHeads) heads, FFN \(c.ffnDim), vocabulary \(c.vocabSize)"
    }

    public static func cpuName() -> String {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let name = info.split(separator: "\n").first { $0.hasPrefix("model name") }?.split(separator: ":", maxSplits: 1).last
        return name.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown CPU"
    }

    /// The calibration cached at `path` if it is for this shape, CPU and thread count; else measures one on a
    /// synthesized one-layer model of `config`'s shape and caches it.
    public static func load(_ config: OPTConfig, threads: Int, cache path: String, log: (String) -> Void) throws -> Calibration {
        if let data = try FileGuard.contents(atPath: path), let old = try? JSONDecoder().decode(Calibration.self, from: data),
            old.shape == shape(config), old.cpu == cpuName(), old.threads == threads
        {
            // A cache with an impossible throughput (zero, negative, not finite) is measured again, not trusted.
            if old.forwardGflops.isFinite, old.forwardGflops > 0, old.backwardRatio.isFinite, old.backwardRatio > 0 { return old }
            log("\(path): field 'forwardGflops' or 'backwardRatio' is not a positive finite number; calibrating again")
        }
        log("calibrating: timing one layer of the shape \(shape(config)) on \(threads) thread\(threads == 1 ? "" : "s")")
        let model = NSTemporaryDirectory() + "headroom-calibration-\(getpid()).hrz"
        defer { try? FileManager.default.removeItem(atPath: model) }
        var synth = SynthOptions()
        synth.layers = 1
        synth.threads = threads
        try Synthesizer.write(config: config, to: model, options: synth)
        var bench = ForwardBenchOptions()
        bench.model = model
        bench.sequences = 2
        bench.tokens = 256
        bench.runs = 2
        bench.threads = threads
        bench.resident = true
        let forward = try ForwardBenchmark.run(bench) { _ in }
        let backward = try BackwardBenchmark.run(model: model, sequences: 2, tokens: 256, threads: threads, runs: 2)
        let calibration = Calibration(
            shape: shape(config), cpu: cpuName(), threads: threads, forwardGflops: forward.gflops,
            backwardRatio: backward.ratio, measured: timestamp())
        try JSONFiles.write(calibration, to: path)
        return calibration
    }
}

/// Forwards of some sequences: the tokens they hold, the FLOPs they take.
struct Passes {
    var sequences = 0.0
    var tokens = 0.0
    /// Σ over sequences of tokens², for causal attention.
    var squares = 0.0
    /// Rows of logits computed.
    var logitRows = 0.0

    mutating func add(_ length: Int, logits: Int) {
        sequences += 1
        tokens += Double(length)
        squares += Double(length) * Double(length)
        logitRows += Double(logits)
    }

    func scaled(_ f: Double) -> Passes { Passes(sequences: sequences * f, tokens: tokens * f, squares: squares * f, logitRows: logitRows * f) }

    /// FLOPs through `layers` layers (plus the LM head for `heads` of the logit rows' worth of passes).
    func flops(_ c: OPTConfig, layers: Double, heads: Double = 1, layerFraction: Double = 1) -> Double {
        let C = Double(c.hiddenSize), F = Double(c.ffnDim)
        let perLayer = 2 * tokens * (4 * C * C + 2 * C * F) * layerFraction + 2 * squares * C
        return layers * perLayer + heads * 2 * logitRows * C * Double(c.vocabSize)
    }
}

extension Study {
    /// The plan with every unit's cost (`config`: the shape to cost for; the model's own by default).
    public func costedPlan(config: OPTConfig? = nil, threads: Int, sample: Int = 32) throws -> (plan: StudyPlan, calibration: Calibration) {
        let config = try config ?? HRZReader(path: options.model).config
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let calibration = try Calibration.load(config, threads: threads, cache: path("calibration.json"), log: log)
        let rate = calibration.forwardGflops * 1e9
        let L = Double(config.numHiddenLayers)

        // Each cell's evaluation and importance examples, from a sample tokenized with the model's tokenizer.
        var eo = EvalOptions(tasks: tasks, shots: options.shots, dataDirectory: options.data, outputDirectory: path(StudyLayout.baseline))
        eo.limit = min(options.limit ?? sample, sample)
        eo.precision = options.arithmetic
        let evaluator = try Evaluator(modelPath: options.model, options: eo)
        let scorer = evaluator.scorer
        var evalPasses: [String: Passes] = [:], importancePasses: [String: Passes] = [:]
        for (task, k) in cells {
            let key = "\(task.rawValue)/\(k)"
            progress("tokenizing samples \(key)", evalPasses.count, cells.count)
            if let work = try? evaluator.prepareCell(task, shots: k), work.docs > 0 {
                var groups: [[Int]: [Int]] = [:]
                for r in work.requests {
                    let t = try scorer.tokens(r)
                    groups[t.context, default: []].append(t.continuation.count)
                }
                var p = Passes()
                for (context, continuations) in groups { p.add(context.count + continuations.reduce(0, +), logits: continuations.reduce(0, +)) }
                let docs = min(options.limit ?? Int.max, Self.rows("\(options.data)/\(task.rawValue)/\(task.evalSplit).jsonl"))
                evalPasses[key] = p.scaled(Double(docs) / Double(work.docs))
            }
            if let (requests, _) = try? ImportanceData.tokenized(task: task, shots: k, dataDirectory: options.data, limit: sample, scorer: scorer),
                !requests.isEmpty
            {
                var p = Passes()
                for r in requests { p.add(r.context.count + r.continuation.count, logits: r.continuation.count) }
                let split = task == .lambadaOpenAI ? task.evalSplit : "train"
                let examples = min(options.importanceExamples, Self.rows("\(options.data)/\(task.rawValue)/\(split).jsonl"))
                importancePasses[key] = p.scaled(Double(examples) / Double(requests.count))
            }
        }
        func cost(_ p: Passes, flops: Double, factor: Double = 1) -> StudyPlan.Cost {
            StudyPlan.Cost(tokens: p.tokens, flops: flops * factor, seconds: flops / rate * factor)
        }
        let none = StudyPlan.Cost(tokens: 0, flops: 0, seconds: 0)
        func evalCost(_ select: (Int) -> Double, layerFraction: Double = 1) -> StudyPlan.Cost {
            var total = none
            for (i, c) in cells.enumerated() {
                guard let p = evalPasses["\(c.task.rawValue)/\(c.shots)"] else { continue }
                let share = select(i)
                let x = cost(p.scaled(share), flops: p.scaled(share).flops(config, layers: L, layerFraction: layerFraction))
                total.tokens += x.tokens; total.flops += x.flops; total.seconds += x.seconds
            }
            return total
        }
        let n = Double(shards)
        let remaining = max(0, 1 - options.pruneHeads / 100 / 3 - options.pruneFFNs / 100 * 2 / 3)
        var plan = self.plan()
        for s in plan.stages.indices {
            for u in plan.stages[s].units.indices {
                let unit = UnitID(stage: plan.stages[s].name, id: plan.stages[s].units[u].id)
                var c = none
                switch work(unit) {
                case .eval(let dir, let part)?:
                    c = evalCost({ _ in 1 / Double(part.count) }, layerFraction: dir == StudyLayout.baseline ? 1 : remaining)
                case .heads(let t, let k, let part)?:
                    if let p = importancePasses["\(t.rawValue)/\(k)"]?.scaled(1 / Double(part.count)) {
                        c = cost(p, flops: p.flops(config, layers: L), factor: calibration.backwardRatio)
                    }
                case .ffns(let t, let k, let part)?:
                    if let p = evalPasses["\(t.rawValue)/\(k)"]?.scaled(1 / Double(part.count)) {
                        // A part's batches: the baseline pass, then for each layer l the layers above l from the record.
                        let above = (0..<config.numHiddenLayers).reduce(0.0) { $0 + L - 1 - Double($1) }
                        c = cost(p, flops: p.flops(config, layers: L + above, heads: 1 + L))
                    }
                case .sweep(let name, let shard)?:
                    let points: Double =
                        name == "heads"
                        ? Double(options.headsGrid.count)
                        : name == "ffns"
                            ? Double(options.ffnsGrid.count)
                            : Double(options.headsGrid.count * options.combinedFFNs.count)
                    let maxShots = options.shots.max()
                    c = evalCost({ i in (name != "combined" || self.cells[i].shots == maxShots ? points : 0) / Double(shard.count) })
                case .induction?:
                    var p = Passes()
                    for s in 0..<options.inductionSequences { p.add(4 * (2 * s + 25), logits: 4 * (2 * s + 25)) }
                    c = cost(p, flops: p.flops(config, layers: L))
                case .compare?:
                    var p = Passes()
                    for _ in 0..<(2 * 4 * 4) { p.add(128, logits: 1) }  // warm-up and 3 runs of 4 × 128 tokens, both models
                    c = cost(p, flops: p.flops(config, layers: L))
                default: break
                }
                plan.stages[s].units[u].cost = c
            }
        }
        return (plan, calibration)
    }

    /// Non-empty lines of a JSONL file (0 if it is missing).
    static func rows(_ path: String) -> Int {
        guard let data = try? FileGuard.contents(atPath: path) else { return 0 }
        var count = 0, nonEmpty = false
        for byte in data {
            if byte == UInt8(ascii: "\n") { if nonEmpty { count += 1 }; nonEmpty = false } else if byte > 32 { nonEmpty = true }
        }
        return count + (nonEmpty ? 1 : 0)
    }
}

extension StudyPlan {
    /// Wall seconds on `machines` machines, each running one unit at a time: stages in plan order, a stage's
    /// units (longest first) each on the machine free soonest, none before the stages it comes after end.
    public func wallSeconds(machines: Int) -> Double {
        var free = [Double](repeating: 0, count: max(1, machines))
        var end: [String: Double] = [:]
        for stage in stages {
            let ready = stage.after.map { end[$0] ?? 0 }.max() ?? 0
            var finish = ready
            for unit in stage.units.sorted(by: { ($0.cost?.seconds ?? 0) > ($1.cost?.seconds ?? 0) }) {
                let m = free.indices.min { free[$0] < free[$1] }!
                let start = max(free[m], ready)
                free[m] = start + (unit.cost?.seconds ?? 0)
                finish = max(finish, free[m])
            }
            end[stage.name] = finish
        }
        return end.values.max() ?? 0
    }

    /// The critical path: the wall time with a machine for every unit.
    public var criticalPathSeconds: Double { wallSeconds(machines: stages.map(\.units.count).reduce(0, +)) }

    /// The table `--plan` prints.
    public func table(calibration: Calibration, machines: [Int]) -> String {
        func hours(_ s: Double) -> String { s < 3600 ? String(format: "%.2f", s / 3600) : String(format: "%.0f", s / 3600) }
        func si(_ x: Double) -> String {
            let units = [(1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")]
            for (scale, name) in units where x >= scale { return String(format: "%.1f %@", x / scale, name) }
            return String(format: "%.0f ", x)
        }
        var lines = [
            String(
                format: "calibrated on %@, %d thread%@: forward %.0f GFLOP/s, forward + backward %.2f× the forward",
                calibration.cpu, calibration.threads, calibration.threads == 1 ? "" : "s", calibration.forwardGflops, calibration.backwardRatio),
            "shape: \(calibration.shape); shards: \(shards)", "",
            "stage".padding(toLength: 14, withPad: " ", startingAt: 0) + "units".leftPad(7) + "tokens".leftPad(11) + "FLOP".leftPad(11)
                + "core-hours".leftPad(12),
        ]
        var total = (units: 0, tokens: 0.0, flops: 0.0, seconds: 0.0)
        for stage in stages {
            let tokens = stage.units.reduce(0) { $0 + ($1.cost?.tokens ?? 0) }, flops = stage.units.reduce(0) { $0 + ($1.cost?.flops ?? 0) }
            let seconds = stage.units.reduce(0) { $0 + ($1.cost?.seconds ?? 0) }
            total.units += stage.units.count; total.tokens += tokens; total.flops += flops; total.seconds += seconds
            lines.append(
                stage.name.padding(toLength: 14, withPad: " ", startingAt: 0) + "\(stage.units.count)".leftPad(7) + si(tokens).leftPad(11)
                    + si(flops).leftPad(11) + hours(seconds * Double(calibration.threads)).leftPad(12))
        }
        lines.append(
            "total".padding(toLength: 14, withPad: " ", startingAt: 0) + "\(total.units)".leftPad(7) + si(total.tokens).leftPad(11)
                + si(total.flops).leftPad(11) + hours(total.seconds * Double(calibration.threads)).leftPad(12))
        lines.append("")
        func duration(_ s: Double) -> String {
            s < 120
                ? String(format: "%.0f s", s)
                : s < 7200
                    ? String(format: "%.0f min", s / 60)
                    : s < 172_800
                        ? String(format: "%.1f h", s / 3600)
                        : String(format: "%.1f days", s / 86400)
        }
        let walls = machines.map { "\($0): \(duration(wallSeconds(machines: $0)))" }
        lines.append("wall time on N machines like this one (N: time): " + walls.joined(separator: ", "))
        lines.append("critical path (a machine per unit): \(duration(criticalPathSeconds))")
        return lines.joined(separator: "\n")
    }
}

extension String {
    func leftPad(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
