/// The forward walk: the one loop over layers that every forward shares (batched scoring, generation with
/// its key/value cache, the gradient walk's checkpointed forward, single-layer probes). Clients watch it
/// through one public observer at named tap points, the shape of llama.cpp's tensor callback: the key/value
/// cache, the backward's saved activations, the oracle's replay record, the analyses and the benchmark timer
/// are all observers that ask for the points they want. No observer changes the arithmetic. The reverse walk
/// (`GradientWalk.swift`) re-runs single layers with an observer on the way back.
import Foundation
import HRZFormat

/// The named points of one layer where an observer may read activations.
public enum TapPoint: Int, CaseIterable, Sendable {
    /// `[T, C]` the layer's input, before anything runs.
    case layerInput
    /// `[T, C]` input of self_attn_layer_norm (pre-LN: the layer's input; post-LN: input + attention).
    case attentionNormInput
    /// `[T, 3·H·D]`, q already scaled by 1/√D (the pass's sequences packed by rows).
    case qkv
    /// `[T, H·D]`: the heads' outputs before out_proj.
    case ctx
    /// `[T, C]` what the layer would output with its FFN removed (pre-LN: the residual after attention;
    /// post-LN: its final norm). Computed only when an observer wants it.
    case outputWithoutFFN
    /// `[T, C]` input of final_layer_norm (pre-LN: the FFN block's input; post-LN: its output + residual).
    case ffnNormInput
    /// `[T, F]` after the ReLU (the bf16 backend then computes the FFN unfused).
    case hidden
    /// `[T, C]` the layer's output.
    case layerOutput
}

/// One tap: where in the model, the values (valid only during the call) and the pass's shape.
public struct Tap {
    public let layer: Int
    public let point: TapPoint
    /// `count` floats in the layout the point documents.
    public let values: UnsafePointer<Float>
    public let count: Int
    /// Tokens of the pass.
    public let tokens: Int
    /// Heads present in this layer, and the head size.
    public let heads: Int
    public let headDim: Int
}

/// Watches the forward walk. `wants` says which points of which layer it reads (others are not shown it, and a
/// point nobody wants that costs extra is not computed); `observe` reads one. The lifecycle calls have defaults.
public protocol ForwardObserver: AnyObject {
    func wants(_ point: TapPoint, layer: Int) -> Bool
    func observe(_ tap: Tap) throws
    /// A pass of `tokens` tokens starts at the embeddings (not when it resumes at a later layer).
    func passStarted(tokens: Int)
    /// That pass has run every layer.
    func passFinished()
    /// Layer `layer` has run; `replay` runs it again, with the weights it just used, on another input (timers).
    /// `seconds`: its time, waiting for its weights included.
    func layerFinished(_ layer: Int, seconds: Double, replay: LayerReplay) throws
}

extension ForwardObserver {
    public func passStarted(tokens: Int) {}
    public func passFinished() {}
    public func layerFinished(_ layer: Int, seconds: Double, replay: LayerReplay) throws {}
}

/// Where a pass starts: `resume` fills x `[T, C]` with a state it kept and returns the first layer to run on
/// it, or returns nil to start at the embeddings.
public protocol ForwardResume: AnyObject {
    func resume(into x: UnsafeMutablePointer<Float>, count: Int, layers: Int) throws -> Int?
}

/// Runs one layer again, with the weights it just used, on another input `[T, C]` in place: what a streamed
/// layer costs against the same layer with its weights already decoded, at the same moment (`drain` first,
/// so nothing decodes behind the re-run).
public struct LayerReplay {
    let drainStream: () -> Void
    let body: (UnsafeMutablePointer<Float>) throws -> Void
    /// Waits until the background decode of later layers has finished.
    public func drain() { drainStream() }
    public func run(on x: UnsafeMutablePointer<Float>) throws { try body(x) }
}

/// Which parts of one layer run: its present heads (nil: all) and its FFN.
struct LayerMask {
    var heads: [Bool]? = nil
    var ffn = true
    static let all = LayerMask()
}

/// The observers of one layer, as the layer code asks them.
struct LayerTaps {
    let observers: [any ForwardObserver]
    let layer: Int, T: Int, heads: Int, headDim: Int

    func wants(_ point: TapPoint) -> Bool { observers.contains { $0.wants(point, layer: layer) } }

    func tap(_ point: TapPoint, _ values: UnsafePointer<Float>, _ count: Int) throws {
        for o in observers where o.wants(point, layer: layer) {
            try o.observe(Tap(layer: layer, point: point, values: values, count: count, tokens: T, heads: heads, headDim: headDim))
        }
    }
}

extension OPTModel {
    /// x `[T, C]` ← layers `first..<last` (x), in place. The pass's sequences are `spans` (a span's prefix is rows
    /// of the same pass or a key/value cache); `mask` removes heads and FFNs; `observers` watch.
    func walk(
        x: UnsafeMutablePointer<Float>, T: Int, from first: Int = 0, to last: Int? = nil, spans: [LayerSpan],
        mask: ModelMask = ModelMask(), observers: [any ForwardObserver] = []
    ) throws {
        let L = last ?? config.numHiddenLayers, D = config.headDim
        // Streaming, the first layer is read ahead like the others (its planes are then used in place).
        stream.prefetch(first)
        for l in first..<L {
            let taps = LayerTaps(observers: observers, layer: l, T: T, heads: plans[l].heads.count, headDim: D)
            try taps.tap(.layerInput, x, T * config.hiddenSize)
            let started = DispatchTime.now().uptimeNanoseconds
            let weights = try Profile.measure("wait for layer") { try stream.layer(l, next: l + 1 < L ? l + 1 : nil) }
            let layerMask = LayerMask(heads: mask.heads.map { m in plans[l].heads.map { m[l][$0] } }, ffn: mask.ffns?[l] ?? true)
            try forwardLayer(x: x, T: T, layer: l, weights: weights, spans: spans, mask: layerMask, taps: taps)
            try taps.tap(.layerOutput, x, T * config.hiddenSize)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            for o in observers {
                try o.layerFinished(
                    l, seconds: seconds,
                    replay: LayerReplay(drainStream: { [self] in stream.drain() }) { [self] input in
                        try forwardLayer(
                            x: input, T: T, layer: l, weights: weights, spans: spans, mask: layerMask,
                            taps: LayerTaps(observers: [], layer: l, T: T, heads: 0, headDim: D))
                    })
            }
        }
    }
}

/// Per-layer time of the last pass (waiting for its weights included), and progress (layers done, layers):
/// an observer, so a bar can move inside one long forward (a 16K-token batch through OPT-66B takes hours).
public final class LayerClock: ForwardObserver {
    public private(set) var seconds: [Double] = []
    let progress: ((Int, Int) -> Void)?
    let layers: Int
    public init(layers: Int, progress: ((Int, Int) -> Void)? = nil) {
        self.layers = layers
        self.progress = progress
    }
    public func wants(_ point: TapPoint, layer: Int) -> Bool { false }
    public func observe(_ tap: Tap) throws {}
    public func layerFinished(_ layer: Int, seconds: Double, replay: LayerReplay) throws {
        self.seconds.append(seconds)
        progress?(layer + 1, layers)
    }
}
