import Foundation
import Testing
@testable import HRZFormat
@testable import Files

/// One case per failure mode of formats/HRZ.md §7; each asserts the error kind and offset.
struct CorruptionTests {
    enum Failure: CaseIterable { case truncated, badMagic, majorVersion, headerFlip, indexFlip, trailingBytes }

    func openError(_ path: String) -> HRZError? {
        do { _ = try HRZReader(path: path); return nil } catch { return error }
    }

    @Test(arguments: Failure.allCases)
    func openFails(_ failure: Failure) throws {
        let good = temporaryPath("good-\(failure).hrz"), bad = temporaryPath("bad-\(failure).hrz")
        _ = try writeSample(good)
        let size = (try FileManager.default.attributesOfItem(atPath: good)[.size] as! Int)
        try mutate(good, to: bad) { b in
            switch failure {
            case .truncated: b.removeLast(10)
            case .badMagic: b[1] = UInt8(ascii: "X")
            case .majorVersion: b[8] = 2
            case .headerFlip: b[20] ^= 0x01
            case .indexFlip: b[b.count - 5] ^= 0x10
            case .trailingBytes: b.append(0)
            }
        }
        let error = try #require(openError(bad))
        switch failure {
        case .truncated: #expect(error.kind == .truncated(needed: 10)); #expect(error.offset == size - 10)
        case .badMagic: #expect(error.kind == .badMagic); #expect(error.offset == 1)
        case .majorVersion: #expect(error.kind == .unsupportedVersion(major: 2, minor: 0)); #expect(error.offset == 8)
        case .headerFlip:
            guard case .checksumMismatch = error.kind else { Issue.record("\(error)"); return }
            #expect(error.offset == 56)
        case .indexFlip:
            guard case .checksumMismatch = error.kind else { Issue.record("\(error)"); return }
            #expect(error.offset == (try HRZReader(path: good)).header.indexOffset)
        case .trailingBytes:
            guard case .malformed = error.kind else { Issue.record("\(error)"); return }
            #expect(error.offset == size)
        }
        #expect(error.description.hasPrefix(bad + ":"))
    }

    /// A newer minor version is read as-is (MUST rule 3).
    @Test func newerMinorVersionReads() throws {
        let good = temporaryPath("minor.hrz"), newer = temporaryPath("minor-new.hrz")
        let contents = try writeSample(good)
        try mutate(good, to: newer) { b in
            b[10] = 7
            let sum = XXH64.hash(Array(b[0..<56]))
            withUnsafeBytes(of: sum.littleEndian) { for i in 0..<8 { b[56 + i] = $0[i] } }
        }
        let reader = try HRZReader(path: newer)
        #expect(reader.header.minor == 7)
        #expect(try reader.bytes("layers.0.fc1.bias") == contents["layers.0.fc1.bias"])
    }

    /// Every single flipped byte anywhere in the file is caught: at open (header, index) or by verify (chunks, padding).
    @Test func everySingleByteFlipIsCaught() throws {
        let good = temporaryPath("flip-good.hrz")
        _ = try writeSample(good, chunkElements: 256)
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: good)))
        let reader = try HRZReader(path: good)
        var chunkRanges: [(Range<Int>, String)] = []
        for t in reader.tensors { for c in t.chunks { chunkRanges.append((c.offset..<(c.offset + c.storedLength), t.name)) } }
        let bad = temporaryPath("flip-bad.hrz")
        // Every byte of the header and of every chunk; every 13th byte of the index; every 97th padding byte.
        var offsets = Array(0..<64) + Array(stride(from: reader.header.indexOffset, to: original.count, by: 13))
        for (r, _) in chunkRanges { offsets += Array(r) }
        offsets += Array(stride(from: 64, to: reader.header.indexOffset, by: 97))
        var caught = 0
        for offset in Set(offsets).sorted() {
            var bytes = original
            bytes[offset] ^= 0x40
            try Data(bytes).write(to: URL(fileURLWithPath: bad))
            let r: HRZReader
            do { r = try HRZReader(path: bad) } catch { caught += 1; continue }
            let problems = r.verify()
            #expect(!problems.isEmpty, "flip at \(offset) not caught")
            if let (range, name) = chunkRanges.first(where: { $0.0.contains(offset) }) {
                #expect(problems.first?.tensor == name)
                #expect(problems.first?.offset == range.lowerBound)
            }
            if !problems.isEmpty { caught += 1 }
        }
        #expect(caught == Set(offsets).count)
    }

    /// Index rules: chunks must tile the data region; names unique; layer order.
    @Test func indexRulesAreEnforced() throws {
        let good = temporaryPath("rules.hrz")
        _ = try writeSample(good)
        let reader = try HRZReader(path: good)
        func rewrite(_ edit: (inout HRZIndex) -> Void) throws -> HRZError? {
            var index = reader.index
            edit(&index)
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            let json = [UInt8](try encoder.encode(index))
            var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: good)))[..<reader.header.indexOffset]
            bytes += json
            let header = HRZHeader(
                indexOffset: reader.header.indexOffset, indexLength: json.count,
                fileLength: reader.header.indexOffset + json.count, indexChecksum: XXH64.hash(json))
            bytes.replaceSubrange(0..<64, with: header.encoded())
            let out = temporaryPath("rules-bad.hrz")
            try Data(bytes).write(to: URL(fileURLWithPath: out))
            do { _ = try HRZReader(path: out); return nil } catch { return error }
        }
        #expect(try rewrite { $0.tensors[1].chunks[0].offset += 4096 }?.chunk == 0)
        #expect(try rewrite { $0.tensors[1].name = $0.tensors[0].name }?.kind == .malformed("duplicate tensor name"))
        #expect(try rewrite { $0.tensors[2].layer = 5 }?.tensor == "layers.0.fc1.bias")
        #expect(try rewrite { $0.tensors[0].shape = [30, 12] }?.tensor == "embed_tokens.weight")
        #expect(try rewrite { $0.metadata.layers[0].heads = [1, 0] } != nil)
        #expect(try rewrite { $0.metadata.config.activationFunction = "gelu" } != nil)
        #expect(try rewrite { $0.tensors[0].chunks[0].planes[1].length += 1 }?.chunk == 0)  // A raw plane's length is fixed.
    }
}
