/// Python `str` operations the harness's prompt code uses, with Python's semantics: indices count code
/// points (Unicode scalars), not Swift `Character`s, and whitespace is `str.isspace()`.

extension Unicode.Scalar {
    /// Python's `str.isspace()`: bidi class WS/B/S or category Zs, which adds U+001C…U+001F to White_Space.
    var isPythonSpace: Bool { properties.isWhitespace || (0x1C...0x1F).contains(value) }
}

extension String {
    var scalars: [Unicode.Scalar] { Array(unicodeScalars) }

    init(scalars: some Sequence<Unicode.Scalar>) {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        self = String(view)
    }

    /// `s[start:end]` by code points, with Python's clamping.
    func pySlice(_ start: Int?, _ end: Int?) -> String {
        let s = scalars
        func clamp(_ i: Int) -> Int { i < 0 ? max(0, s.count + i) : min(i, s.count) }
        let a = clamp(start ?? 0), b = clamp(end ?? s.count)
        return a < b ? String(scalars: s[a..<b]) : ""
    }

    /// `len(s)`.
    var pyCount: Int { unicodeScalars.count }

    /// `s.strip()`.
    func pyStrip() -> String {
        let s = scalars
        guard let first = s.firstIndex(where: { !$0.isPythonSpace }), let last = s.lastIndex(where: { !$0.isPythonSpace }) else { return "" }
        return String(scalars: s[first...last])
    }

    /// `s.split()` (runs of whitespace, no empty parts).
    func pySplit() -> [String] {
        var parts: [String] = []
        var current: [Unicode.Scalar] = []
        for c in unicodeScalars {
            if c.isPythonSpace {
                if !current.isEmpty { parts.append(String(scalars: current)); current = [] }
            } else {
                current.append(c)
            }
        }
        if !current.isEmpty { parts.append(String(scalars: current)) }
        return parts
    }

    /// `s.capitalize()`: first character upper-cased, the rest lower-cased.
    func pyCapitalize() -> String {
        guard let first = unicodeScalars.first else { return "" }
        return String(first).uppercased() + String(scalars: unicodeScalars.dropFirst()).lowercased()
    }

    /// `s.rsplit(sep, 1)` for a non-empty separator.
    func pyRSplitOnce(_ separator: String) -> [String] {
        guard let r = range(of: separator, options: .backwards) else { return [self] }
        return [String(self[..<r.lowerBound]), String(self[r.upperBound...])]
    }
}
