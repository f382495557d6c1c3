/// `headroom convert`: an HF directory → one `.hrz`, streamed tensor by tensor with bounded memory.
import Foundation
import HRZFormat
import Basics
import OPTSchema
import Files

/// `--dtype`: keep each tensor's source dtype, or cast all to one.
public enum DTypeChoice: String, Sendable, CaseIterable {
    case keep, f16, bf16, f32

    func resolve(_ source: DType) -> DType {
        switch self {
        case .keep: return source
        case .f16: return .f16
        case .bf16: return .bf16
        case .f32: return .f32
        }
    }
}

public struct ConvertOptions: Sendable {
    public var dtype: DTypeChoice = .keep
    public var level: Int = 3
    public var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    /// Where vocab.json and merges.txt are; nil means the HF directory, where they are optional.
    public var tokenizerDirectory: String?
    public var chunkElements: Int = 1 << 20

    public init() {}
}

/// Progress of a long step: `done` of `total` bytes.
public struct ConvertProgress: Sendable {
    public var phase: String
    public var done: Int
    public var total: Int
}

public struct ConvertReport: Sendable {
    public var tensors: Int
    public var rawBytes: Int
    /// Chunk bytes, padding excluded: the figure the compression ratio is taken on.
    public var storedBytes: Int
    public var fileBytes: Int
    public var tokenizerEmbedded: Bool
    public var layout: CheckpointLayout
}

public enum Converter {
    public static let version = "headroom 0.1.0"

    public static func convert(
        _ directory: String, to output: String, options: ConvertOptions = ConvertOptions(),
        progress: ((ConvertProgress) -> Void)? = nil
    ) throws -> ConvertReport {
        let checkpoint = try HFCheckpoint(directory: directory)
        let config = checkpoint.config
        let plan = try claim(checkpoint)
        let tokenizer = try loadTokenizer(
            options.tokenizerDirectory ?? directory, required: options.tokenizerDirectory != nil,
            confinement: options.tokenizerDirectory == nil ? checkpoint.confinement : try HFCache.confinement(of: options.tokenizerDirectory!))
        try checkIndexFits(tokenizer, plan: plan, chunkElements: options.chunkElements, directory: options.tokenizerDirectory ?? directory)
        let sources = try hashSources(checkpoint.files + [path(directory, "config.json")], threads: options.threads, progress: progress)

        let writer = try HRZWriter(path: output, level: options.level, threads: options.threads, chunkElements: options.chunkElements)
        var completed = false
        defer { if !completed { writer.abandon() } }
        let total = plan.reduce(0) { $0 + $1.source.elementCount * options.dtype.resolve($1.source.dtype).size }
        var done = 0
        writer.onProgress = { bytes in
            done += bytes
            progress?(ConvertProgress(phase: "converting", done: done, total: total))
        }
        for item in plan {
            let source = item.source
            try item.file.verifyData(of: source.name)
            let target = options.dtype.resolve(source.dtype)
            try writer.add(name: item.expected.name, dtype: target, shape: item.expected.shape, layer: item.expected.layer) { range, destination in
                source.copy(range, as: target, to: destination)
            }
            source.release()
        }
        let metadata = Metadata(
            config: config, layers: Metadata.fullLayers(config), tokenizer: tokenizer,
            provenance: Provenance(converter: version, sources: sources, dtype: options.dtype.rawValue))
        try writer.finish(metadata: metadata)
        completed = true
        let fileBytes = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
        return ConvertReport(
            tensors: plan.count, rawBytes: total, storedBytes: writer.storedBytes, fileBytes: fileBytes,
            tokenizerEmbedded: tokenizer != nil, layout: checkpoint.layout)
    }

    struct PlannedTensor {
        var expected: ExpectedTensor
        var source: SourceTensor
        var file: CheckpointSource
    }

    /// Matches every expected tensor to exactly one source tensor, checks shapes, and claims every source tensor.
    static func claim(_ checkpoint: HFCheckpoint) throws -> [PlannedTensor] {
        var found: [String: (SourceTensor, CheckpointSource)] = [:]
        for file in checkpoint.sources {
            for tensor in file.tensors {
                guard let name = TensorNames.canonical(tensor.name) else {
                    throw CheckpointError(.unexpectedTensor, file: file.path, tensor: tensor.name)
                }
                if let previous = found[name] {
                    throw CheckpointError(
                        .malformed("tensor also appears as '\(previous.0.name)' in \(previous.1.path)"),
                        file: file.path, tensor: tensor.name)
                }
                found[name] = (tensor, file)
            }
        }
        let expected = ModelSchema.tensors(config: checkpoint.config, layers: Metadata.fullLayers(checkpoint.config))
        var plan: [PlannedTensor] = []
        for e in expected {
            guard let (tensor, file) = found.removeValue(forKey: e.name) else {
                throw CheckpointError(.missingTensor, file: checkpoint.files.joined(separator: ", "), tensor: e.name)
            }
            guard tensor.shape == e.shape else {
                throw CheckpointError(.shapeMismatch(expected: e.shape, actual: tensor.shape), file: file.path, tensor: tensor.name)
            }
            plan.append(PlannedTensor(expected: e, source: tensor, file: file))
        }
        if let (head, file) = found.removeValue(forKey: TensorNames.lmHead) {
            try checkTied(head, file: file, to: plan[0].source, config: checkpoint.config)
        }
        if let (tensor, file) = found.min(by: { $0.key < $1.key })?.value {
            throw CheckpointError(.unexpectedTensor, file: file.path, tensor: tensor.name)
        }
        return plan
    }

    /// OPT ties `lm_head.weight` to `embed_tokens.weight`; when a checkpoint stores both, they must be equal.
    static func checkTied(_ head: SourceTensor, file: CheckpointSource, to embed: SourceTensor, config: OPTConfig) throws {
        let shape = [config.vocabSize, config.wordEmbedProjDim]
        guard head.shape == shape else {
            throw CheckpointError(.shapeMismatch(expected: shape, actual: head.shape), file: file.path, tensor: head.name)
        }
        try file.verifyData(of: head.name)
        let step = 1 << 20
        let a = UnsafeMutablePointer<Float>.allocate(capacity: step), b = UnsafeMutablePointer<Float>.allocate(capacity: step)
        defer { a.deallocate(); b.deallocate() }
        var start = 0
        while start < head.elementCount {
            let range = start..<min(head.elementCount, start + step)
            head.copy(range, as: .f32, to: a)
            embed.copy(range, as: .f32, to: b)
            for i in 0..<range.count where a[i].bitPattern != b[i].bitPattern {
                throw CheckpointError(
                    .malformed("lm_head.weight differs from embed_tokens.weight at element \(range.lowerBound + i); untied OPT heads are not supported"),
                    file: file.path, tensor: head.name)
            }
            start = range.upperBound
        }
        head.release()
    }

    /// The reader refuses an index over `HRZLayout.maxIndexLength`; the tokenizer travels in the index, so a
    /// huge vocab.json is refused here, before any work, instead of producing a file no reader opens.
    static func checkIndexFits(_ tokenizer: EmbeddedTokenizer?, plan: [PlannedTensor], chunkElements: Int, directory: String) throws {
        guard let tokenizer else { return }
        let tokenizerBytes = try JSONEncoder().encode(tokenizer).count
        // Each chunk's index entry takes under 200 bytes; a tensor's own fields under 300.
        let chunks = plan.reduce(0) { $0 + max(1, ($1.source.elementCount + chunkElements - 1) / chunkElements) }
        let room = HRZLayout.maxIndexLength - 200 * chunks - 300 * plan.count - (1 << 20)
        guard tokenizerBytes <= room else {
            throw CheckpointError(
                .malformed(
                    "vocab.json and merges.txt take \(tokenizerBytes) bytes in the index; an .hrz index holds at most \(HRZLayout.maxIndexLength) bytes, \(max(0, room)) of them left for the tokenizer"
                ),
                file: path(directory, "vocab.json"))
        }
    }

    static func loadTokenizer(_ directory: String, required: Bool, confinement: String? = nil) throws -> EmbeddedTokenizer? {
        let vocab = path(directory, "vocab.json"), merges = path(directory, "merges.txt")
        try HFCache.confine(vocab, to: confinement)
        try HFCache.confine(merges, to: confinement)
        let fm = FileManager.default
        guard fm.fileExists(atPath: vocab), fm.fileExists(atPath: merges) else {
            if required {
                let missing = fm.fileExists(atPath: vocab) ? merges : vocab
                throw CheckpointError(.missingFile, file: missing)
            }
            return nil
        }
        guard let v = try FileGuard.contents(atPath: vocab).flatMap({ String(data: $0, encoding: .utf8) }),
            let m = try FileGuard.contents(atPath: merges).flatMap({ String(data: $0, encoding: .utf8) })
        else {
            throw CheckpointError(.malformed("tokenizer files are not UTF-8"), file: directory)
        }
        guard (try? JSONSerialization.jsonObject(with: Data(v.utf8))) is [String: Any] else {
            throw CheckpointError(.malformed("vocab.json is not a JSON object of token → id"), file: vocab)
        }
        return EmbeddedTokenizer(vocab: v, merges: m)
    }

    /// SHA-256 of each source file, read with plain reads (not the mapping) so no pages stay resident.
    static func hashSources(_ files: [String], threads: Int, progress: ((ConvertProgress) -> Void)?) throws -> [SourceFile] {
        let sizes = files.map { FileGuard.size($0) ?? 0 }  // symlinks followed: HF cache snapshots link into blobs/
        let total = sizes.reduce(0, +)
        let counter = LockedCounter()
        let results = ResultSlots<String>(count: files.count)
        let queue = OperationQueue()
        queue.maxConcurrentOperationCount = max(1, threads)
        for (i, file) in files.enumerated() {
            queue.addOperation {
                results.set(i) { try sha256(of: file) { counter.add($0) } }
            }
        }
        while !queue.operations.isEmpty {
            progress?(ConvertProgress(phase: "hashing", done: counter.value, total: total))
            Thread.sleep(forTimeInterval: 0.2)
        }
        queue.waitUntilAllOperationsAreFinished()
        progress?(ConvertProgress(phase: "hashing", done: total, total: total))
        let digests = try results.values(wrap: HRZError.wrapping(file: files.first ?? ""))
        return files.enumerated().map { i, file in
            SourceFile(file: (file as NSString).lastPathComponent, bytes: sizes[i], sha256: digests[i])
        }
    }

    static func sha256(of file: String, progress: (Int) -> Void) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: file) else { throw CheckpointError(.missingFile, file: file) }
        defer { try? handle.close() }
        var hasher = SHA256()
        while true {
            let block = handle.readData(ofLength: 8 << 20)
            if block.isEmpty { break }
            block.withUnsafeBytes { hasher.update($0) }
            progress(block.count)
        }
        return hasher.finalizeHex()
    }
}
