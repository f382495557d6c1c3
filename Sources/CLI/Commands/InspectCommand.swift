import Foundation
import HRZFormat
import OPTSchema
import Files

struct InspectCommand: Command {
    static let spec = CommandSpec(
        name: "inspect", summary: "show a .hrz's config, heads and FFNs per layer, sizes; --verify checks every chunk",
        synopsis: ["MODEL.hrz [--verify] [--json]"],
        positionals: [Positional("MODEL.hrz", "")],
        groups: [
            OptionGroup(
                "Options",
                [
                    Option("--verify", "decompress every chunk and check every checksum; exit 1 if anything is wrong"),
                    Option("--json", "print one JSON object instead of the table"),
                ])
        ],
        discussion: """
            Prints the architecture config, the heads and FFN present in each layer (pruned models list the
            original head indices that survive), raw and compressed bytes per layer, provenance and lineage.
            """)

    var model: String
    var verify: Bool
    var json: Bool

    init(_ args: ParsedArguments) throws(UsageError) {
        verify = args.flag("--verify")
        json = args.flag("--json")
        model = try args.positional(required: 0)
    }

    func run() throws -> Int32 {
        let reader = try HRZReader(path: model)
        var problems: [HRZError] = []
        if verify {
            let bar = ProgressBar("verify")
            let total = reader.tensors.reduce(0) { $0 + $1.byteCount }
            var done = 0
            problems = reader.verify { n in
                done += n; if !json { bar.update(phase: "chunks", done: done, total: total) }
            }
            bar.finish()
        }
        if json {
            print(try jsonReport(reader, problems: verify ? problems : nil))
        } else {
            print(textReport(reader))
            if verify {
                if problems.isEmpty {
                    let chunks = reader.tensors.reduce(0) { $0 + $1.chunks.count }
                    print("verify: OK: \(chunks) chunks decoded, every checksum matches")
                } else {
                    for p in problems { printError("verify: \(p)") }
                    print("verify: FAILED: \(problems.count) problem(s)")
                }
            }
        }
        return problems.isEmpty ? 0 : 1
    }

    func textReport(_ r: HRZReader) -> String {
        let c = r.config
        var out = "\(r.path): HRZ \(r.header.major).\(r.header.minor), \(formatBytes(r.header.fileLength)), content id \(r.contentID.prefix(16))\n"
        out += "config: hidden \(c.hiddenSize), layers \(c.numHiddenLayers), heads \(c.numAttentionHeads) (head dim \(c.headDim)), "
        out += "ffn \(c.ffnDim), vocab \(c.vocabSize), positions \(c.maxPositionEmbeddings), word_embed_proj_dim \(c.wordEmbedProjDim)\n"
        out += "        \(c.doLayerNormBefore ? "pre-LN" : "post-LN"), final layer norm \(c.hasFinalLayerNorm ? "yes" : "no"), "
        out += "bias \(c.enableBias ? "yes" : "no"), activation \(c.activationFunction)\n"
        if let t = r.metadata.tokenizer {
            let lines = t.merges.split(separator: "\n")
            let merges = lines.count - (lines.first?.hasPrefix("#version") == true ? 1 : 0)
            out += "tokenizer: embedded (vocab.json \(formatBytes(t.vocab.utf8.count)), \(merges) merges)\n"
        } else {
            out += "tokenizer: none embedded\n"
        }
        let p = r.metadata.provenance
        out += "provenance: \(p.converter), dtype \(p.dtype)\n"
        for s in p.sources { out += "  \(s.file)  \(formatBytes(s.bytes))  sha256 \(s.sha256)\n" }
        for (i, step) in p.lineage.enumerated() { out += "  pruning step \(i + 1): parent sha256 \(step.parent)\n    plan \(step.plan)\n" }
        let dtypes = Dictionary(grouping: r.tensors, by: \.dtype).map { "\($0.key.rawValue) ×\($0.value.count)" }.sorted()
        out += "tensors: \(r.tensors.count) (\(dtypes.joined(separator: ", ")))\n\n"
        out += "layer  heads                       ffn   raw          stored       ratio\n"
        let plans = r.metadata.layers
        var rawTotal = 0, storedTotal = 0
        for s in r.layerSizes() {
            rawTotal += s.raw; storedTotal += s.stored
            let name = s.layer.map(String.init) ?? "model"
            var heads = "-", ffn = "-"
            if let l = s.layer {
                let h = plans[l].heads
                heads = h.count == c.numAttentionHeads ? "\(h.count)/\(c.numAttentionHeads) all" : "\(h.count)/\(c.numAttentionHeads) \(h)"
                ffn = plans[l].ffn ? "yes" : "no"
            }
            out += row(name, heads, ffn, s.raw, s.stored)
        }
        out += row("total", "", "", rawTotal, storedTotal)
        return out
    }

    func row(_ name: String, _ heads: String, _ ffn: String, _ raw: Int, _ stored: Int) -> String {
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s.padding(toLength: n, withPad: " ", startingAt: 0) }
        return pad(name, 7) + pad(heads, 28) + pad(ffn, 6) + pad(formatBytes(raw), 13) + pad(formatBytes(stored), 13)
            + String(format: "%.3f×\n", Double(raw) / Double(max(1, stored)))
    }

    func jsonReport(_ r: HRZReader, problems: [HRZError]?) throws -> String {
        struct Layer: Encodable { var layer: Int?; var heads: [Int]?; var ffn: Bool?; var raw_bytes: Int; var stored_bytes: Int }
        struct Report: Encodable {
            var file: String; var version: String; var file_bytes: Int; var content_id: String
            var config: OPTConfig; var tokenizer_embedded: Bool; var provenance: Provenance
            var layers: [Layer]; var raw_bytes: Int; var stored_bytes: Int; var ratio: Double
            var verified: Bool?; var problems: [String]?
        }
        let layers = r.layerSizes().map { s in
            Layer(
                layer: s.layer, heads: s.layer.map { r.metadata.layers[$0].heads }, ffn: s.layer.map { r.metadata.layers[$0].ffn },
                raw_bytes: s.raw, stored_bytes: s.stored)
        }
        let raw = layers.reduce(0) { $0 + $1.raw_bytes }, stored = layers.reduce(0) { $0 + $1.stored_bytes }
        let report = Report(
            file: r.path, version: "\(r.header.major).\(r.header.minor)", file_bytes: r.header.fileLength,
            content_id: r.contentID, config: r.config, tokenizer_embedded: r.metadata.tokenizer != nil,
            provenance: r.metadata.provenance, layers: layers, raw_bytes: raw, stored_bytes: stored,
            ratio: Double(raw) / Double(max(1, stored)), verified: problems.map { $0.isEmpty },
            problems: problems?.map(\.description))
        return String(decoding: try JSONFiles.pretty(report), as: UTF8.self)
    }
}
