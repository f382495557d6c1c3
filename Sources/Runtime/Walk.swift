/// The forward walk: the one loop over layers that every forward shares (batched scoring, generation with
/// its key/value cache, the gradient walk's checkpointed forward). Clients watch it through one tap per layer
/// (`LayerTaps`, the shape of llama.cpp's tensor callback) and an observer per layer; neither changes the
/// arithmetic. The reverse walk (`GradientWalk.swift`) re-runs single layers with taps on the way back.
import Foundation
import HRZFormat

/// The named points inside one layer where a client may read activations.
enum TapPoint: Int, CaseIterable {
    /// [T, C] input of self_attn_layer_norm (pre-LN: the layer's input; post-LN: input + attention)
    case attentionNormInput
    /// [T, 3·H·D], q already scaled by 1/√D
    case qkv
    /// [T, H·D]: the heads' outputs before out_proj
    case ctx
    /// [T, C] what the layer would output with its FFN removed (pre-LN: the residual after attention;
    /// post-LN: its final norm). Computed only when a tap wants it.
    case outputWithoutFFN
    /// [T, C] input of final_layer_norm (pre-LN: the FFN block's input; post-LN: its output + residual)
    case ffnNormInput
    /// [T, F] after the ReLU
    case hidden
}

/// A reader of one layer's internals as the layer computes them: `values` holds `count` floats, valid only
/// during the call.
protocol LayerTaps {
    func wants(_ point: TapPoint) -> Bool
    func tap(_ point: TapPoint, _ values: UnsafePointer<Float>, count: Int) throws
}

/// Several taps read the same layer.
struct TapGroup: LayerTaps {
    var members: [any LayerTaps]
    func wants(_ point: TapPoint) -> Bool { members.contains { $0.wants(point) } }
    func tap(_ point: TapPoint, _ values: UnsafePointer<Float>, count: Int) throws {
        for m in members where m.wants(point) { try m.tap(point, values, count: count) }
    }
}

/// Which parts of one layer run: its present heads (nil: all) and its FFN.
struct LayerMask {
    var heads: [Bool]? = nil
    var ffn = true
    static let all = LayerMask()
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

/// The forward observer's two per-layer taps inside the layer.
private struct ObserverTaps: LayerTaps {
    let observer: any ForwardObserver
    let layer: Int, T: Int, heads: Int, headDim: Int
    func wants(_ point: TapPoint) -> Bool {
        switch point {
        case .qkv: return observer.wantsAttention && heads > 0
        case .outputWithoutFFN: return observer.wantsOutputWithoutFFN
        default: return false
        }
    }
    func tap(_ point: TapPoint, _ values: UnsafePointer<Float>, count: Int) throws {
        switch point {
        case .qkv: observer.attention(layer: layer, qkv: values, T: T, heads: heads, headDim: headDim)
        case .outputWithoutFFN: try observer.layerOutputWithoutFFN(layer, values, count: count)
        default: break
        }
    }
}

/// Appends the new tokens' keys and values of one layer to the cache (generation).
private struct CacheTaps: LayerTaps {
    let cache: KVCache
    let layer: Int, T: Int
    func wants(_ point: TapPoint) -> Bool { point == .qkv && cache.widths[layer] > 0 }
    func tap(_ point: TapPoint, _ qkv: UnsafePointer<Float>, count: Int) throws {
        let HD = cache.widths[layer], past = cache.count
        for t in 0..<T {
            (cache.keys[layer].pointer + (past + t) * HD).update(from: qkv + t * 3 * HD + HD, count: HD)
            (cache.values[layer].pointer + (past + t) * HD).update(from: qkv + t * 3 * HD + 2 * HD, count: HD)
        }
    }
}

extension OPTModel {
    /// x `[T, C]` ← layers `first..<L` (x), in place. The pass's sequences are `spans`; with `cache`, every
    /// span attends first to the cached keys and values of each layer and the new ones are appended (the caller
    /// advances `cache.count`). `saving` taps the one layer whose internals a caller keeps. Per-layer seconds
    /// (decode wait included) go to `layerSeconds`.
    func walk(x: UnsafeMutablePointer<Float>, T: Int, from first: Int = 0, spans: [LayerSpan], mask: ModelMask = ModelMask(),
              cache: KVCache? = nil, observer: (any ForwardObserver)? = nil, saving: (layer: Int, taps: any LayerTaps)? = nil,
              progress: (@Sendable (Int, Int) -> Void)? = nil, layerSeconds: inout [Double]) throws {
        let L = config.numHiddenLayers, D = config.headDim
        // Streaming, the first layer is read ahead like the others (its planes are then used in place).
        stream.prefetch(first)
        for l in first..<L {
            try observer?.layerInput(l, x, count: T * config.hiddenSize)
            let started = DispatchTime.now().uptimeNanoseconds
            let weights = try Profile.measure("wait for layer") { try stream.layer(l, next: l + 1 < L ? l + 1 : nil) }
            let layerMask = LayerMask(heads: mask.heads.map { m in plans[l].heads.map { m[l][$0] } }, ffn: mask.ffns?[l] ?? true)
            var layerSpans = spans
            if let cache, cache.count > 0, cache.widths[l] > 0 {
                let prefix = KVPrefix(keys: cache.keys[l].pointer, values: cache.values[l].pointer, ld: cache.widths[l], count: cache.count)
                for i in layerSpans.indices { layerSpans[i].prefix = .cached(prefix) }
            }
            var taps: [any LayerTaps] = []
            if let observer { taps.append(ObserverTaps(observer: observer, layer: l, T: T, heads: plans[l].heads.count, headDim: D)) }
            if let cache { taps.append(CacheTaps(cache: cache, layer: l, T: T)) }
            if let saving, saving.layer == l { taps.append(saving.taps) }
            try forwardLayer(x: x, T: T, layer: l, weights: weights, spans: layerSpans, mask: layerMask,
                             taps: taps.isEmpty ? nil : TapGroup(members: taps))
            layerSeconds.append(Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
            progress?(l + 1, L)
            try observer?.layerFinished(l, x, count: T * config.hiddenSize, replay: LayerReplay(drainStream: { [self] in stream.drain() }) { [self] input in
                try forwardLayer(x: input, T: T, layer: l, weights: weights, spans: layerSpans, mask: layerMask, taps: nil)
            })
        }
    }
}
