/// The oracle's replay cache: every layer's input `[T, C]` of every pass of a sequence of forward calls,
/// recorded once (an observer of the forward) and replayed from any layer (where the forward resumes). Size is
/// tokens × hidden × 4 bytes × layers: beyond `budget` bytes it spills to a temporary file. With
/// `recordWithoutFFN`, each layer's output *as if its FFN were removed* is kept too, so an FFN ablation at
/// layer l starts at layer l + 1.
import Foundation
import Runtime

public final class LayerInputCache: ForwardObserver, ForwardResume, @unchecked Sendable {
    public enum Mode: Sendable { case record, replay(fromLayer: Int), replayWithoutFFN(layer: Int) }
    public var mode: Mode = .record
    let store: SpillStore
    let recordsWithoutFFN: Bool
    /// [pass][layer] → handle in `store`; passes in the order the forward calls ran them.
    var passes: [[Int]] = []
    var withoutFFN: [[Int]] = []
    /// The pass being recorded.
    private var current: [Int] = [], currentWithoutFFN: [Int] = []
    var cursor = 0

    public init(budget: Int? = nil, directory: String = NSTemporaryDirectory(), recordWithoutFFN: Bool = false) {
        store = SpillStore(budget: budget, directory: directory)
        recordsWithoutFFN = recordWithoutFFN
    }

    /// Switches to replaying from `layer`, starting again at the first recorded pass.
    public func replay(fromLayer layer: Int) {
        mode = .replay(fromLayer: layer)
        cursor = 0
    }

    /// Switches to replaying with layer `layer`'s FFN removed: layers above it run on its recorded
    /// FFN-less output. Needs `recordWithoutFFN`.
    public func replayWithoutFFN(layer: Int) {
        precondition(recordsWithoutFFN, "replayWithoutFFN needs a cache made with recordWithoutFFN")
        mode = .replayWithoutFFN(layer: layer)
        cursor = 0
    }

    /// Bytes held in memory and in the spill file.
    public var byteCount: Int { store.residentBytes + store.spilledBytes }
    public var spilledBytes: Int { store.spilledBytes }

    var recording: Bool { if case .record = mode { return true } else { return false } }

    // MARK: Recording (an observer of the forward)

    public func wants(_ point: TapPoint, layer: Int) -> Bool {
        recording && (point == .layerInput || (point == .outputWithoutFFN && recordsWithoutFFN))
    }

    public func passStarted(tokens: Int) {
        current = []
        currentWithoutFFN = []
    }

    public func observe(_ tap: Tap) throws {
        switch tap.point {
        case .layerInput: current.append(try store.append(tap.values, count: tap.count))
        case .outputWithoutFFN: currentWithoutFFN.append(try store.append(tap.values, count: tap.count))
        default: break
        }
    }

    public func passFinished() {
        guard recording else { return }
        passes.append(current)
        if recordsWithoutFFN { withoutFFN.append(currentWithoutFFN) }
    }

    // MARK: Replaying (where the forward resumes)

    public func resume(into x: UnsafeMutablePointer<Float>, count: Int, layers: Int) throws -> Int? {
        let table: [[Int]], layer: Int, first: Int
        switch mode {
        case .record: return nil
        case .replay(let from): (table, layer, first) = (passes, from, from)
        case .replayWithoutFFN(let l): (table, layer, first) = (withoutFFN, l, l + 1)
        }
        guard cursor < table.count, table[cursor].count == layers, store.count(table[cursor][layer]) == count else {
            throw RuntimeError("layer-input cache does not match this forward (replay must repeat the recorded calls)")
        }
        try store.read(table[cursor][layer], into: x)
        cursor += 1
        return first
    }
}

extension ForwardOptions {
    /// Records into `cache` (in its record mode) and replays from it (in its replay modes).
    public var layerInputs: LayerInputCache? {
        get { resume as? LayerInputCache }
        set {
            observers.removeAll { $0 is LayerInputCache }
            if let newValue { observers.append(newValue) }
            resume = newValue
        }
    }
}
