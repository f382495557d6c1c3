/// HF → HRZ tensor names. HF checkpoints name OPT weights `model.decoder.layers.0.fc1.weight`
/// (OPTForCausalLM) or `decoder.layers.0.fc1.weight` (OPTModel, and the original 66B shards);
/// HRZ drops the prefix. This is the one place that knows the prefixes.
public enum TensorNames {
    static let prefixes = ["model.decoder.", "decoder."]
    /// The tied output head; checked equal to `embed_tokens.weight` and not stored.
    public static let lmHead = "lm_head.weight"

    /// The canonical name, or nil when the name has neither prefix and is not the LM head.
    public static func canonical(_ hfName: String) -> String? {
        if hfName == lmHead || hfName == "model." + lmHead { return lmHead }
        for prefix in prefixes where hfName.hasPrefix(prefix) { return String(hfName.dropFirst(prefix.count)) }
        return nil
    }
}
