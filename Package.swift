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
        // Threads helpers, an RNG, SHA-256, huge-page buffers, text checks: what every stage shares.
        .target(name: "Basics"),
        // OPT's configuration, its tensors' names and shapes, and the layer plan of a pruned model.
        .target(name: "OPTSchema"),
        .target(name: "HRZFormat", dependencies: ["Basics", "OPTSchema", "CZstd"]),
        .target(name: "Checkpoints", dependencies: ["Basics", "OPTSchema", "HRZFormat"]),
        .target(name: "Tokenizer", dependencies: ["HRZFormat"]),
        .target(name: "Runtime", dependencies: ["Basics", "OPTSchema", "COpenBLAS", "HRZFormat"]),
        .target(name: "Evaluation", dependencies: ["OPTSchema", "HRZFormat", "Tokenizer", "Runtime"]),
        .target(name: "Analysis", dependencies: ["Basics", "HRZFormat", "Tokenizer", "Runtime", "Evaluation"]),
        .target(name: "Pruning", dependencies: ["OPTSchema", "HRZFormat", "Runtime", "Evaluation", "Analysis"]),
        .target(name: "Benchmarks", dependencies: ["Basics", "HRZFormat", "Runtime", "Evaluation", "Analysis", "Pruning"]),
        .target(name: "Reports", dependencies: ["HRZFormat"]),
        .target(name: "Study", dependencies: ["OPTSchema", "HRZFormat", "Tokenizer", "Runtime", "Evaluation", "Analysis", "Pruning", "Benchmarks", "Reports"],
                resources: [.copy("Demo")]),
        .executableTarget(name: "headroom", dependencies: ["Basics", "OPTSchema", "HRZFormat", "Checkpoints", "Tokenizer", "Runtime", "Evaluation", "Analysis",
                                                          "Pruning", "Benchmarks", "Study"]),
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "HRZFormatTests", dependencies: ["TestSupport", "Basics", "OPTSchema", "HRZFormat"], resources: [.copy("Fixtures")]),
        .testTarget(name: "CheckpointsTests", dependencies: ["TestSupport", "Basics", "HRZFormat", "Checkpoints"], resources: [.copy("Fixtures")]),
        .testTarget(name: "TokenizerTests", dependencies: ["HRZFormat", "Tokenizer"], resources: [.copy("Fixtures")]),
        .testTarget(name: "RuntimeTests", dependencies: ["TestSupport", "Basics", "OPTSchema", "HRZFormat", "Checkpoints", "Runtime"], resources: [.copy("Fixtures")]),
        .testTarget(name: "EvaluationTests", dependencies: ["TestSupport", "OPTSchema", "HRZFormat", "Checkpoints", "Tokenizer", "Runtime", "Evaluation"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "AnalysisTests", dependencies: ["TestSupport", "HRZFormat", "Checkpoints", "Tokenizer", "Runtime", "Evaluation", "Analysis"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "PruningTests", dependencies: ["TestSupport", "HRZFormat", "Checkpoints", "Runtime", "Evaluation", "Analysis", "Pruning"]),
        .testTarget(name: "ReportsTests", dependencies: ["TestSupport", "HRZFormat", "Checkpoints", "Tokenizer", "Runtime", "Evaluation", "Analysis", "Pruning",
                                                         "Reports", "Study"], resources: [.copy("Fixtures")]),
        .testTarget(name: "CLITests", dependencies: ["TestSupport", "Basics", "HRZFormat"]),
    ],
    swiftLanguageModes: [.v5]
)
