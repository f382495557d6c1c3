/// Text from files and from the user, checked and made safe to print.
import Foundation

/// The byte offset of the first byte that is not valid UTF-8 in `bytes`, nil if all of it is valid.
/// (Swift's `String(decoding:as:)` would silently replace it with U+FFFD.)
public func firstInvalidUTF8<C: Collection>(_ bytes: C) -> Int? where C.Element == UInt8 {
    var offset = 0
    var iterator = bytes.makeIterator()
    var decoder = UTF8()
    var position = 0
    while true {
        switch decoder.decode(&iterator) {
        case .scalarValue(let s):
            position += UTF8.width(s)
            offset = position
        case .emptyInput: return nil
        case .error: return offset
        }
    }
}

/// `text` with control characters (C0 except tab and newline, DEL, C1) shown as `\u{…}`, so a string from a
/// file (a name, provenance) cannot move the cursor or recolour the terminal when printed.
public func escapingControlCharacters(_ text: String) -> String {
    var out = ""
    for scalar in text.unicodeScalars {
        let v = scalar.value
        if (v < 0x20 && v != 0x09 && v != 0x0A) || (v >= 0x7F && v < 0xA0) {
            out += "\\u{" + String(v, radix: 16) + "}"
        } else {
            out.unicodeScalars.append(scalar)
        }
    }
    return out
}
