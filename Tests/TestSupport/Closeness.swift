/// Closeness assertions that report the worst element and where it is, not two whole arrays.
import Foundation
import Testing

/// Max |a − b| ≤ `tolerance`, reporting the index and both values of the worst element.
public func expectClose(_ a: [Float], _ b: [Float], tolerance: Float, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    guard a.count == b.count else {
        Issue.record("\(what): \(a.count) values, expected \(b.count)", sourceLocation: sourceLocation)
        return
    }
    var worst: Float = 0, at = 0
    for i in 0..<a.count where abs(a[i] - b[i]) > worst || a[i].isNaN { worst = a[i].isNaN ? .infinity : abs(a[i] - b[i]); at = i }
    #expect(
        worst <= tolerance, "\(what): max abs diff \(worst) at index \(at) (\(a.isEmpty ? 0 : a[at]) vs \(b.isEmpty ? 0 : b[at]))",
        sourceLocation: sourceLocation)
}

/// Max |a − b| / |b| ≤ `relative` (|b| below `floor` counts as `floor`), for fp64 results.
public func expectClose(
    _ a: [Double], _ b: [Double], relative: Double, floor: Double = 1e-12, _ what: String, sourceLocation: SourceLocation = #_sourceLocation
) {
    guard a.count == b.count else {
        Issue.record("\(what): \(a.count) values, expected \(b.count)", sourceLocation: sourceLocation)
        return
    }
    var worst = 0.0, at = 0
    for i in 0..<a.count {
        let r = abs(a[i] - b[i]) / max(floor, abs(b[i]))
        if r > worst || r.isNaN { worst = r.isNaN ? .infinity : r; at = i }
    }
    #expect(worst <= relative, "\(what): max relative diff \(worst) at index \(at)", sourceLocation: sourceLocation)
}

/// Bit-for-bit equality (NaN payloads included), reporting the first difference rather than both arrays.
public func expectBitEqual(_ a: [Float], _ b: [Float], _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let first = a.count == b.count ? a.indices.first { a[$0].bitPattern != b[$0].bitPattern } : 0
    var detail = "\(what): \(a.count) vs \(b.count) values; first difference at \(first ?? -1)"
    if let i = first, i < min(a.count, b.count) { detail += " (\(a[i]) vs \(b[i]))" }
    #expect(first == nil, "\(detail)", sourceLocation: sourceLocation)
}
