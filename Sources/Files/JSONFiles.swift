/// The one JSON configuration of every file Headroom writes and reads: keys sorted (files diff cleanly and
/// digests of values are stable), slashes unescaped (paths stay readable), pretty for files people open,
/// compact for machine files (part files, shard files). Reading names the file and the field that failed.
import Foundation

public enum JSONFiles {
    /// Indented, for files a person reads (results.json, scores files, plans).
    public static func pretty<T: Encodable>(_ value: T) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return [UInt8](try encoder.encode(value))
    }

    /// One line, for files only Headroom reads (part files) and for digests.
    public static func compact<T: Encodable>(_ value: T) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return [UInt8](try encoder.encode(value))
    }

    /// Writes `value` atomically (pretty unless `compact`), creating the directory.
    public static func write<T: Encodable>(_ value: T, to path: String, compact: Bool = false) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try AtomicFile.write(compact ? try self.compact(value) : try pretty(value), to: path)
    }

    /// The value in `path`; nil when the file does not exist. A file that does not decode is an error naming
    /// it and the field (`what` says what the file should have been: "a results.json").
    public static func read<T: Decodable>(_ type: T.Type, from path: String, what: String) throws -> T? {
        guard let data = try FileGuard.contents(atPath: path) else { return nil }
        do { return try JSONDecoder().decode(T.self, from: data) } catch {
            throw FileError(file: path, "not \(what): \(describe(error))")
        }
    }
}

/// A decoding error as `key.path: reason`, the form users can find in their JSON.
public func describe(_ error: Error) -> String {
    guard let error = error as? DecodingError else { return "\(error)" }
    func path(_ keys: [CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingCharacters(in: CharacterSet(charactersIn: "."))
    }
    switch error {
    case .keyNotFound(let key, let ctx): return "\(path(ctx.codingPath + [key])): missing"
    case .typeMismatch(_, let ctx), .valueNotFound(_, let ctx): return "\(path(ctx.codingPath)): \(ctx.debugDescription)"
    case .dataCorrupted(let ctx):
        let where_ = path(ctx.codingPath)
        return (where_.isEmpty ? "" : where_ + ": ") + ctx.debugDescription
    @unknown default: return "\(error)"
    }
}

/// An error about a file that is not a model: a results file, a part file, a record. Names the file, and the
/// field or byte offset where known.
public struct FileError: Error, CustomStringConvertible, Sendable {
    public var file: String
    public var field: String?
    public var offset: Int?
    public var message: String
    public init(file: String, field: String? = nil, offset: Int? = nil, _ message: String) {
        self.file = file
        self.field = field
        self.offset = offset
        self.message = message
    }
    public var description: String {
        file + (field.map { ": field '\($0)'" } ?? "") + (offset.map { ": at byte \($0)" } ?? "") + ": " + message
    }
}
