/// A minimal, non-executing unpickler for `torch.save` state dicts (pickle protocol 2).
///
/// It interprets opcodes as data only. Globals are resolved against a fixed allowlist to markers;
/// REDUCE only "calls" `collections.OrderedDict()` and `torch._utils._rebuild_tensor_v2(...)`, both
/// of which it models as data. Anything else is an error naming the opcode or global and its offset.
/// Reference: CPython `Lib/pickle.py` (opcode table) and `Lib/pickletools.py` (argument encodings).

/// A storage reference from a persistent id: `('storage', torch.HalfStorage, '0', 'cpu', numel)`.
public struct StorageRef: Equatable, Sendable {
    public var key: String
    public var dtype: DType
    public var elements: Int
}

/// `_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks)`.
public struct TensorRef: Equatable, Sendable {
    public var storage: StorageRef
    public var storageOffset: Int
    public var shape: [Int]
    public var strides: [Int]
}

import HRZFormat

/// Dicts are reference types because pickle mutates them in place after memoizing them.
public final class PickleDict {
    public var items: [(key: PickleValue, value: PickleValue)] = []
    /// Containers nested inside, plus one; see `Unpickler.maxDepth`.
    var depth = 1
    /// Set once the dict is inside another value; a later insertion into it is refused, so `depth` stays exact.
    var sealed = false
}

public final class PickleList {
    public var items: [PickleValue] = []
    var depth = 1
    var sealed = false
}

public indirect enum PickleValue {
    case none, bool(Bool), int(Int), float(Double), string(String), bytes([UInt8])
    case tuple([PickleValue]), list(PickleList), dict(PickleDict)
    case global(String)
    case storage(StorageRef)
    case tensor(TensorRef)
    case mark
}

public struct Unpickler {
    /// Globals we accept. Storage types of other dtypes are recognized only to report "unsupported dtype".
    static let storageTypes: [String: DType] = [
        "torch HalfStorage": .f16, "torch BFloat16Storage": .bf16, "torch FloatStorage": .f32,
    ]
    static let otherStorageTypes: Set<String> = [
        "torch DoubleStorage", "torch LongStorage", "torch IntStorage", "torch ShortStorage", "torch CharStorage",
        "torch ByteStorage", "torch BoolStorage", "torch ComplexFloatStorage", "torch ComplexDoubleStorage",
    ]
    static let callables: Set<String> = ["collections OrderedDict", "torch._utils _rebuild_tensor_v2"]
    static let maxMemo = 10_000_000
    /// How deeply containers may nest. A state dict needs about 4; a hostile pickle of 100 KB can nest tens of
    /// thousands deep, and freeing such a value recurses once per level and overflows the stack. Depth is
    /// tracked as values are built, so nothing deeper than this ever exists.
    static let maxDepth = 100

    let data: UnsafeRawBufferPointer
    let file: String
    /// Where `data` starts in `file`, so errors give absolute offsets.
    let baseOffset: Int
    var position = 0
    var stack: [PickleValue] = []
    /// Nesting depth of each stack entry (scalars 0; lists and dicts read their own, which grows as they fill).
    var depths: [Int] = []
    var memo: [Int: (value: PickleValue, depth: Int)] = [:]

    public init(data: UnsafeRawBufferPointer, file: String, baseOffset: Int = 0) {
        self.data = data
        self.file = file
        self.baseOffset = baseOffset
    }

    func fail(_ kind: CheckpointError.Kind, at offset: Int) -> CheckpointError {
        CheckpointError(kind, file: file, offset: baseOffset + offset)
    }

    mutating func byte() throws(CheckpointError) -> UInt8 {
        guard position < data.count else { throw fail(.truncated(needed: 1), at: position) }
        defer { position += 1 }
        return data[position]
    }

    mutating func take(_ n: Int) throws(CheckpointError) -> UnsafeRawBufferPointer {
        guard n >= 0, position + n <= data.count else { throw fail(.truncated(needed: position + n - data.count), at: position) }
        defer { position += n }
        return UnsafeRawBufferPointer(rebasing: data[position..<(position + n)])
    }

    mutating func uint(_ n: Int) throws(CheckpointError) -> Int {
        let b = try take(n)
        var v = 0
        for i in (0..<n).reversed() { v = v << 8 | Int(b[i]) }
        return v
    }

    mutating func line() throws(CheckpointError) -> String {
        var out: [UInt8] = []
        while true {
            let c = try byte()
            if c == 0x0A { return String(decoding: out, as: UTF8.self) }
            out.append(c)
            if out.count > 1024 { throw fail(.malformed("pickle GLOBAL name too long"), at: position) }
        }
    }

    mutating func push(_ v: PickleValue, depth: Int = 0) {
        stack.append(v)
        depths.append(depth)
    }

    /// The current depth of a value whose recorded depth is `recorded`.
    static func depth(_ v: PickleValue, recorded: Int) -> Int {
        switch v {
        case .list(let l): return l.depth
        case .dict(let d): return d.depth
        default: return recorded
        }
    }

    mutating func pop(at offset: Int) throws(CheckpointError) -> PickleValue {
        try popWithDepth(at: offset).value
    }

    mutating func popWithDepth(at offset: Int) throws(CheckpointError) -> (value: PickleValue, depth: Int) {
        guard let v = stack.popLast(), let d = depths.popLast() else { throw fail(.malformed("pickle stack underflow"), at: offset) }
        return (v, Self.depth(v, recorded: d))
    }

    /// Pops everything above the topmost MARK, and the mark; also returns the deepest popped depth.
    mutating func popMark(at offset: Int) throws(CheckpointError) -> (items: [PickleValue], depth: Int) {
        guard let m = stack.lastIndex(where: { if case .mark = $0 { return true } else { return false } }) else {
            throw fail(.malformed("pickle MARK missing"), at: offset)
        }
        let items = Array(stack[(m + 1)...])
        let depth = zip(items, depths[(m + 1)...]).map { Self.depth($0, recorded: $1) }.max() ?? 0
        stack.removeSubrange(m...)
        depths.removeSubrange(m...)
        return (items, depth)
    }

    /// Pushes a tuple of `items` whose deepest member is `depth` deep; refuses nesting beyond `maxDepth`.
    mutating func pushTuple(_ items: [PickleValue], depth: Int, at offset: Int) throws(CheckpointError) {
        for item in items { seal(item) }
        try checkDepth(depth + 1, at: offset)
        push(.tuple(items), depth: depth + 1)
    }

    func checkDepth(_ depth: Int, at offset: Int) throws(CheckpointError) {
        guard depth <= Self.maxDepth else {
            throw fail(.malformed("pickle nests containers more than \(Self.maxDepth) deep (a state dict needs about 4)"), at: offset)
        }
    }

    /// Marks a list or dict as held by another value.
    func seal(_ v: PickleValue) {
        switch v {
        case .list(let l): l.sealed = true
        case .dict(let d): d.sealed = true
        default: break
        }
    }

    /// Before inserting `values` (deepest `depth`) into a container of current depth `current`: the container
    /// must not already sit inside another value, nor be one of the values; returns the container's new depth.
    func insertionDepth(
        into container: AnyObject, sealed: Bool, current: Int, values: [PickleValue], depth: Int,
        at offset: Int
    ) throws(CheckpointError) -> Int {
        guard !sealed else { throw fail(.malformed("pickle inserts into a container after nesting it elsewhere"), at: offset) }
        for v in values {
            switch v {
            case .list(let l) where l === container: throw fail(.malformed("pickle inserts a list into itself"), at: offset)
            case .dict(let d) where d === container: throw fail(.malformed("pickle inserts a dict into itself"), at: offset)
            default: seal(v)
            }
        }
        try checkDepth(depth + 1, at: offset)
        return max(current, depth + 1)
    }

    mutating func memoize(_ index: Int, at offset: Int) throws(CheckpointError) {
        guard let top = stack.last, let d = depths.last, index >= 0, index < Self.maxMemo else { throw fail(.malformed("bad pickle memo put"), at: offset) }
        memo[index] = (top, d)
    }

    mutating func recall(_ index: Int, at offset: Int) throws(CheckpointError) {
        guard let v = memo[index] else { throw fail(.malformed("pickle memo key \(index) unset"), at: offset) }
        push(v.value, depth: v.depth)
    }

    /// Runs to STOP and returns the top value.
    public mutating func load() throws(CheckpointError) -> PickleValue {
        while true {
            let at = position
            let op = try byte()
            switch op {
            case 0x80:  // PROTO
                let version = try byte()
                guard version <= 2 else { throw fail(.malformed("pickle protocol \(version) is not supported (torch.save writes 2)"), at: at) }
            case UInt8(ascii: "."):  // STOP
                return try pop(at: at)
            case UInt8(ascii: "c"):  // GLOBAL module\nname\n
                let name = try line() + " " + line()
                guard Self.storageTypes[name] != nil || Self.callables.contains(name) || Self.otherStorageTypes.contains(name) else {
                    throw fail(.disallowedGlobal(name), at: at)
                }
                push(.global(name))
            case UInt8(ascii: "q"): try memoize(try uint(1), at: at)  // BINPUT
            case UInt8(ascii: "r"): try memoize(try uint(4), at: at)  // LONG_BINPUT
            case UInt8(ascii: "h"): try recall(try uint(1), at: at)  // BINGET
            case UInt8(ascii: "j"): try recall(try uint(4), at: at)  // LONG_BINGET
            case UInt8(ascii: "}"): push(.dict(PickleDict()), depth: 1)  // EMPTY_DICT
            case UInt8(ascii: "]"): push(.list(PickleList()), depth: 1)  // EMPTY_LIST
            case UInt8(ascii: ")"): push(.tuple([]), depth: 1)  // EMPTY_TUPLE
            case UInt8(ascii: "("): push(.mark)  // MARK
            case UInt8(ascii: "N"): push(.none)  // NONE
            case 0x88: push(.bool(true))  // NEWTRUE
            case 0x89: push(.bool(false))  // NEWFALSE
            case UInt8(ascii: "K"): push(.int(try uint(1)))  // BININT1
            case UInt8(ascii: "M"): push(.int(try uint(2)))  // BININT2
            case UInt8(ascii: "J"): push(.int(Int(Int32(truncatingIfNeeded: try uint(4)))))  // BININT
            case 0x8a:  // LONG1: n, then n bytes little-endian two's complement
                let n = Int(try byte())
                guard n <= 8 else { throw fail(.malformed("pickle LONG1 of \(n) bytes is too large"), at: at) }
                let b = try take(n)
                var v: UInt64 = 0
                for i in (0..<n).reversed() { v = v << 8 | UInt64(b[i]) }
                if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 { v |= ~UInt64(0) << UInt64(8 * n) }
                push(.int(Int(Int64(bitPattern: v))))
            case UInt8(ascii: "G"):  // BINFLOAT, big-endian
                let b = try take(8)
                var bits: UInt64 = 0
                for i in 0..<8 { bits = bits << 8 | UInt64(b[i]) }
                push(.float(Double(bitPattern: bits)))
            case UInt8(ascii: "X"):  // BINUNICODE
                let n = try uint(4)
                push(.string(String(decoding: try take(n), as: UTF8.self)))
            case UInt8(ascii: "U"):  // SHORT_BINSTRING
                let n = try uint(1)
                push(.string(String(decoding: try take(n), as: UTF8.self)))
            case UInt8(ascii: "T"):  // BINSTRING
                let n = try uint(4)
                push(.string(String(decoding: try take(n), as: UTF8.self)))
            case UInt8(ascii: "t"):  // TUPLE
                let (items, depth) = try popMark(at: at)
                try pushTuple(items, depth: depth, at: at)
            case 0x85:  // TUPLE1
                let a = try popWithDepth(at: at)
                try pushTuple([a.value], depth: a.depth, at: at)
            case 0x86:  // TUPLE2
                let b = try popWithDepth(at: at), a = try popWithDepth(at: at)
                try pushTuple([a.value, b.value], depth: max(a.depth, b.depth), at: at)
            case 0x87:  // TUPLE3
                let c = try popWithDepth(at: at), b = try popWithDepth(at: at), a = try popWithDepth(at: at)
                try pushTuple([a.value, b.value, c.value], depth: max(a.depth, b.depth, c.depth), at: at)
            case UInt8(ascii: "s"):  // SETITEM
                let value = try popWithDepth(at: at), key = try popWithDepth(at: at)
                guard case .dict(let d)? = stack.last else { throw fail(.malformed("pickle SETITEM on a non-dict"), at: at) }
                d.depth = try insertionDepth(
                    into: d, sealed: d.sealed, current: d.depth, values: [key.value, value.value],
                    depth: max(key.depth, value.depth), at: at)
                d.items.append((key.value, value.value))
            case UInt8(ascii: "u"):  // SETITEMS
                let (items, depth) = try popMark(at: at)
                guard case .dict(let d)? = stack.last, items.count % 2 == 0 else {
                    throw fail(.malformed("pickle SETITEMS on a non-dict"), at: at)
                }
                d.depth = try insertionDepth(into: d, sealed: d.sealed, current: d.depth, values: items, depth: depth, at: at)
                for i in stride(from: 0, to: items.count, by: 2) { d.items.append((items[i], items[i + 1])) }
            case UInt8(ascii: "a"):  // APPEND
                let value = try popWithDepth(at: at)
                guard case .list(let l)? = stack.last else { throw fail(.malformed("pickle APPEND on a non-list"), at: at) }
                l.depth = try insertionDepth(into: l, sealed: l.sealed, current: l.depth, values: [value.value], depth: value.depth, at: at)
                l.items.append(value.value)
            case UInt8(ascii: "e"):  // APPENDS
                let (items, depth) = try popMark(at: at)
                guard case .list(let l)? = stack.last else { throw fail(.malformed("pickle APPENDS on a non-list"), at: at) }
                l.depth = try insertionDepth(into: l, sealed: l.sealed, current: l.depth, values: items, depth: depth, at: at)
                l.items.append(contentsOf: items)
            case UInt8(ascii: "Q"):  // BINPERSID
                push(.storage(try storage(try pop(at: at), at: at)))
            case UInt8(ascii: "R"):  // REDUCE
                let args = try pop(at: at), callable = try pop(at: at)
                push(try reduce(callable, args, at: at), depth: 1)
            case UInt8(ascii: "b"):  // BUILD: only an OrderedDict's `_metadata` attribute; state is dropped
                let state = try pop(at: at)
                guard case .dict? = stack.last, case .dict = state else {
                    throw fail(.malformed("pickle BUILD is only supported on dicts"), at: at)
                }
            default:
                throw fail(.unsupportedOpcode(op), at: at)
            }
            if stack.count > 1_000_000 { throw fail(.malformed("pickle stack too deep"), at: at) }
        }
    }

    func storage(_ pid: PickleValue, at offset: Int) throws(CheckpointError) -> StorageRef {
        guard case .tuple(let t) = pid, t.count == 5, case .string("storage") = t[0], case .global(let type) = t[1],
            case .string(let key) = t[2], case .int(let elements) = t[4], elements >= 0
        else {
            throw fail(.malformed("persistent id is not ('storage', type, key, location, numel)"), at: offset)
        }
        guard let dtype = Self.storageTypes[type] else { throw fail(.unsupportedDType(type), at: offset) }
        return StorageRef(key: key, dtype: dtype, elements: elements)
    }

    func ints(_ v: PickleValue, at offset: Int) throws(CheckpointError) -> [Int] {
        guard case .tuple(let t) = v else { throw fail(.malformed("expected a tuple of ints"), at: offset) }
        var out: [Int] = []
        for item in t {
            guard case .int(let i) = item else { throw fail(.malformed("expected a tuple of ints"), at: offset) }
            out.append(i)
        }
        return out
    }

    func reduce(_ callable: PickleValue, _ args: PickleValue, at offset: Int) throws(CheckpointError) -> PickleValue {
        guard case .global(let name) = callable, case .tuple(let a) = args else {
            throw fail(.malformed("pickle REDUCE needs a global and a tuple"), at: offset)
        }
        switch name {
        case "collections OrderedDict":
            guard a.isEmpty else { throw fail(.malformed("OrderedDict with arguments"), at: offset) }
            return .dict(PickleDict())
        case "torch._utils _rebuild_tensor_v2":
            guard a.count == 6 || a.count == 7, case .storage(let s) = a[0], case .int(let storageOffset) = a[1] else {
                throw fail(.malformed("_rebuild_tensor_v2 expects (storage, offset, size, stride, requires_grad, hooks)"), at: offset)
            }
            let shape = try ints(a[2], at: offset), strides = try ints(a[3], at: offset)
            guard shape.count == strides.count, shape.allSatisfy({ $0 >= 0 }), strides.allSatisfy({ $0 >= 0 }), storageOffset >= 0 else {
                throw fail(.malformed("tensor size \(shape) / stride \(strides) are inconsistent"), at: offset)
            }
            return .tensor(TensorRef(storage: s, storageOffset: storageOffset, shape: shape, strides: strides))
        default:
            throw fail(.disallowedGlobal(name), at: offset)
        }
    }
}
