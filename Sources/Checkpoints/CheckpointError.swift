/// An error reading an HF checkpoint: what failed, and where (file, tensor, byte offset).
import Foundation
import HRZFormat
import Files

public struct CheckpointError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Equatable, Sendable {
        /// The file ends before a structure it declares.
        case truncated(needed: Int)
        /// A structure is inconsistent (bad signature, impossible size, bad JSON …); the string says which.
        case malformed(String)
        /// A dtype other than F16/BF16/F32.
        case unsupportedDType(String)
        /// A pickle names a global outside the allowlist; we parse pickles, never execute them.
        case disallowedGlobal(String)
        /// A pickle opcode outside the supported protocol-2 subset.
        case unsupportedOpcode(UInt8)
        /// A tensor the config requires is in none of the files.
        case missingTensor
        /// A tensor in the files that no part of the model claims.
        case unexpectedTensor
        /// A tensor's shape disagrees with config.json.
        case shapeMismatch(expected: [Int], actual: [Int])
        /// config.json is missing a field, has a wrong type, or describes an unsupported model.
        case badConfig(String)
        /// A file the layout requires is absent.
        case missingFile
        /// A zip entry's CRC-32 does not match its data.
        case crcMismatch(expected: UInt32, actual: UInt32)
        /// An operating-system or lower-level format error.
        case io(String)
    }

    public var kind: Kind
    public var file: String
    public var offset: Int?
    public var tensor: String?

    public init(_ kind: Kind, file: String, offset: Int? = nil, tensor: String? = nil) {
        self.kind = kind
        self.file = file
        self.offset = offset
        self.tensor = tensor
    }

    public var description: String {
        var place: [String] = []
        if let tensor { place.append("tensor '\(tensor)'") }
        if let offset { place.append("at byte \(offset)") }
        return ([file] + (place.isEmpty ? [] : [place.joined(separator: ", ")]) + [reason]).joined(separator: ": ")
    }

    var reason: String {
        switch kind {
        case .truncated(let needed): return "file is truncated (needed \(needed) more bytes)"
        case .malformed(let why): return why
        case .unsupportedDType(let d): return "unsupported dtype '\(d)' (supported: F16, BF16, F32)"
        case .disallowedGlobal(let g): return "pickle references '\(g)', which is not an allowed global (pickles are parsed, never executed)"
        case .unsupportedOpcode(let op): return "unsupported pickle opcode 0x\(String(op, radix: 16))"
        case .missingTensor: return "missing: the config requires this tensor but no checkpoint file has it"
        case .unexpectedTensor: return "unexpected tensor: it is not part of an OPT model with this config"
        case .shapeMismatch(let e, let a): return "shape \(a) disagrees with config.json, which implies \(e)"
        case .badConfig(let why): return why
        case .missingFile: return "no such file"
        case .crcMismatch(let e, let a):
            return "CRC-32 mismatch (expected 0x\(String(e, radix: 16)), got 0x\(String(a, radix: 16))): the file is corrupt"
        case .io(let why): return why
        }
    }
}

/// A whole input file through `FileGuard` (regular files only); nil when it does not exist.
func readInput(_ file: String) throws(CheckpointError) -> Data? {
    do { return try FileGuard.contents(atPath: file) } catch { throw CheckpointError(.io(error.message), file: file, offset: error.offset) }
}
