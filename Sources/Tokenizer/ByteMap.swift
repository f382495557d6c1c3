/// GPT-2's reversible byte → Unicode map (openai/gpt-2 `encoder.py`, `bytes_to_unicode`; HF `tokenization_gpt2.py`).
///
/// Printable Latin-1 bytes map to themselves; the other 68 bytes map to U+0100 onwards, in byte order,
/// so every byte sequence becomes a string of visible characters that BPE can merge.
enum ByteMap {
    /// byte → scalar
    static let encode: [Unicode.Scalar] = {
        var printable = Array(UInt32(33)...126) + Array(UInt32(161)...172) + Array(UInt32(174)...255)
        var mapped = printable
        var next: UInt32 = 0
        for b in UInt32(0)...255 where !printable.contains(b) {
            printable.append(b)
            mapped.append(256 + next)
            next += 1
        }
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        for (b, m) in zip(printable, mapped) { table[Int(b)] = Unicode.Scalar(m)! }
        return table
    }()

    /// scalar value → byte, for decoding
    static let decode: [UInt32: UInt8] = {
        var table: [UInt32: UInt8] = [:]
        for (b, s) in encode.enumerated() { table[s.value] = UInt8(b) }
        return table
    }()
}
