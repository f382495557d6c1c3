// swift-tools-version:6.0
// Headroom: an OPT runtime for interpretability studies of in-context learning.
// Targets are listed in data-flow order; a target imports only targets above it.
import PackageDescription

let package = Package(
    name: "Headroom",
    platforms: [.macOS(.v14)],
    // Language mode 5: the concurrency here is plain threads over disjoint buffers, checked by tests.
    products: [
        .executable(name: "headroom", targets: ["headroom"]),
    ],
    targets: [
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .target(name: "HRZFormat", dependencies: ["CZstd"]),
        .target(name: "Checkpoints", dependencies: ["HRZFormat"]),
        .target(name: "Tokenizer", dependencies: ["HRZFormat"]),
        .target(name: "Runtime", dependencies: ["HRZFormat", "COpenBLAS"]),
        .target(name: "Evaluation", dependencies: ["HRZFormat", "Tokenizer", "Runtime"]),
        .target(name: "Analysis", dependencies: ["HRZFormat", "Tokenizer", "Runtime", "Evaluation"]),
        .target(name: "Pruning", dependencies: ["HRZFormat", "Runtime", "Evaluation", "Analysis"]),
        .target(name: "Benchmarks", dependencies: ["HRZFormat", "Checkpoints", "Runtime", "Evaluation", "Analysis", "Pruning"]),
        .target(name: "Reports", dependencies: ["HRZFormat"]),
        .target(name: "Study", dependencies: ["HRZFormat", "Tokenizer", "Runtime", "Evaluation", "Analysis", "Pruning", "Benchmarks", "Reports"],
                resources: [.copy("Demo")]),
        .executableTarget(name: "headroom", dependencies: ["HRZFormat", "Checkpoints", "Tokenizer", "Runtime", "Evaluation", "Analysis", "Pruning", "Benchmarks", "Reports", "Study"]),
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "HRZFormatTests", dependencies: ["HRZFormat", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "CheckpointsTests", dependencies: ["TestSupport", "Checkpoints", "HRZFormat"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "TokenizerTests", dependencies: ["TestSupport", "Tokenizer", "HRZFormat"], resources: [.copy("Fixtures")]),
        .testTarget(name: "RuntimeTests", dependencies: ["TestSupport", "Runtime", "Checkpoints", "HRZFormat"], resources: [.copy("Fixtures")]),
        .testTarget(name: "EvaluationTests", dependencies: ["TestSupport", "Evaluation", "Runtime", "Tokenizer", "Checkpoints", "HRZFormat"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "AnalysisTests", dependencies: ["TestSupport", "Analysis", "Evaluation", "Runtime", "Checkpoints", "HRZFormat"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "PruningTests", dependencies: ["TestSupport", "Pruning", "Analysis", "Evaluation", "Runtime", "Checkpoints", "HRZFormat"]),
        .testTarget(name: "ReportsTests", dependencies: ["TestSupport", "Reports", "Study", "Pruning", "Analysis", "Evaluation", "Runtime", "Tokenizer", "Checkpoints", "HRZFormat"], resources: [.copy("Fixtures")]),
        .testTarget(name: "CLITests", dependencies: ["TestSupport", "HRZFormat"]),
    ],
    swiftLanguageModes: [.v5]
)
