/// A `torch.save` file: a zip with `<prefix>/data.pkl` (the state dict) and `<prefix>/data/<key>` (storages).
import HRZFormat

public struct TorchCheckpoint: CheckpointSource {
    public let path: String
    public let tensors: [SourceTensor]
    let archive: ZipArchive
    /// Storage entries, by the name of each tensor that uses them, for CRC checks before use.
    let storageEntries: [String: ZipEntry]

    public init(path: String) throws(CheckpointError) {
        self.path = path
        archive = try ZipArchive(path: path)
        let pickles = archive.entries.keys.filter { $0 == "data.pkl" || $0.hasSuffix("/data.pkl") }
        guard pickles.count == 1, let pickleName = pickles.first else {
            throw CheckpointError(.malformed("expected one '*/data.pkl' entry in the archive, found \(pickles.count)"), file: path)
        }
        let prefix = String(pickleName.dropLast("data.pkl".count))
        if let order = archive.entries[prefix + "byteorder"],
            String(decoding: archive.data(order), as: UTF8.self) != "little"
        {
            throw CheckpointError(.malformed("big-endian torch files are not supported"), file: path, offset: order.dataOffset)
        }
        let pickleEntry = archive.entries[pickleName]!
        try archive.verify(pickleEntry)
        var unpickler = Unpickler(data: archive.data(pickleEntry), file: path, baseOffset: pickleEntry.dataOffset)
        let root = try unpickler.load()
        guard case .dict(let dict) = root else {
            throw CheckpointError(.malformed("data.pkl does not hold a state dict"), file: path, offset: pickleEntry.dataOffset)
        }
        var tensors: [SourceTensor] = []
        var entries: [String: ZipEntry] = [:]
        var seen: Set<String> = []
        for (key, value) in dict.items {
            guard case .string(let name) = key, case .tensor(let t) = value else {
                throw CheckpointError(.malformed("state dict entry is not a name → tensor pair"), file: path, offset: pickleEntry.dataOffset)
            }
            guard seen.insert(name).inserted else {
                throw CheckpointError(.malformed("duplicate tensor name"), file: path, tensor: name)
            }
            guard let entry = archive.entries[prefix + "data/" + t.storage.key] else {
                throw CheckpointError(.malformed("storage '\(t.storage.key)' has no archive entry"), file: path, tensor: name)
            }
            guard t.storage.elements <= entry.size / t.storage.dtype.size else {
                throw CheckpointError(
                    .malformed("storage '\(t.storage.key)' declares \(t.storage.elements) elements but its entry holds \(entry.size) bytes"),
                    file: path, offset: entry.dataOffset, tensor: name)
            }
            // The last element the view touches must lie inside the storage; sizes are bounded before multiplying.
            let spans = zip(t.shape, t.strides).map { checkedElementCount([max(0, $0.0 - 1), $0.1]) }
            guard let count = checkedElementCount(t.shape), t.storageOffset <= t.storage.elements,
                spans.allSatisfy({ $0 != nil })
            else {
                throw CheckpointError(
                    .malformed("tensor size \(t.shape) / stride \(t.strides) out of range"),
                    file: path, offset: entry.dataOffset, tensor: name)
            }
            let last = t.storageOffset + spans.reduce(0) { $0 + $1! }
            guard count == 0 || last < t.storage.elements else {
                throw CheckpointError(
                    .malformed("view (offset \(t.storageOffset), size \(t.shape), stride \(t.strides)) exceeds its storage of \(t.storage.elements) elements"),
                    file: path, offset: entry.dataOffset, tensor: name)
            }
            tensors.append(
                SourceTensor(
                    name: name, dtype: t.storage.dtype, shape: t.shape, strides: t.strides,
                    mapping: archive.mapping, storageByteOffset: entry.dataOffset,
                    storageOffset: t.storageOffset, file: path))
            entries[name] = entry
        }
        self.tensors = tensors
        storageEntries = entries
    }

    /// Checks the CRC-32 of the storage behind `tensor`. A flipped byte in a storage is caught here.
    public func verifyStorage(of tensor: String) throws(CheckpointError) {
        if let entry = storageEntries[tensor] { try archive.verify(entry) }
    }
}
