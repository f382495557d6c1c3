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
        // The CPU kernels Swift cannot express (vdpbf16ps, AVX-512 intrinsics): bf16 packing and GEMM, the fp32
        // attention head kernel and softmax, and the arithmetic-limit probe. Optimised even in debug builds, so
        // the tests that run them stay quick.
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O2", "-fno-strict-aliasing"])]),
        // Threads helpers, an RNG, SHA-256, huge-page buffers, text checks: what every stage shares.
        .target(name: "Basics"),
        // OPT's configuration, its tensors' names and shapes, and the layer plan of a pruned model.
        .target(name: "OPTSchema"),
        // Files in and out safely: the input/output guard, atomic writes, mappings, resumption records, and the
        // error type that names a file and a place in it.
        .target(name: "Files", dependencies: ["Basics"]),
        .target(name: "HRZFormat", dependencies: ["Basics", "OPTSchema", "Files", "CZstd"]),
        .target(name: "Checkpoints", dependencies: ["Basics", "OPTSchema", "Files", "HRZFormat"]),
        .target(name: "Tokenizer", dependencies: ["Files", "HRZFormat"]),
        .target(name: "Runtime", dependencies: ["Basics", "OPTSchema", "Files", "COpenBLAS", "CKernels", "HRZFormat"]),
        .target(name: "Evaluation", dependencies: ["OPTSchema", "Files", "HRZFormat", "Tokenizer", "Runtime"]),
        .target(name: "Analysis", dependencies: ["Basics", "Files", "HRZFormat", "Tokenizer", "Runtime", "Evaluation"]),
        .target(name: "Pruning", dependencies: ["OPTSchema", "Files", "HRZFormat", "Runtime", "Analysis"]),
        .target(name: "Benchmarks", dependencies: ["Basics", "OPTSchema", "Files", "HRZFormat", "Runtime", "CKernels", "Evaluation", "Analysis", "Pruning"]),
        // One type per artefact (evaluation, importance, oracle, induction, ranks, sweeps, pruning, comparison):
        // its spec, its record, its parts and exact merge, its outputs. The CLI and the study both run these.
        .target(name: "Jobs", dependencies: ["OPTSchema", "Files", "HRZFormat", "Tokenizer", "Runtime", "Evaluation", "Analysis", "Pruning", "Benchmarks"]),
        .target(name: "Reports", dependencies: ["Files", "HRZFormat"]),
        .target(name: "Study", dependencies: ["Basics", "OPTSchema", "Files", "HRZFormat", "Tokenizer", "Runtime", "Evaluation", "Analysis", "Pruning", "Benchmarks", "Jobs", "Reports"],
                resources: [.copy("Demo")]),
        // The command line: every command's options declared once (parsing, usage, --help, did-you-mean).
        .target(name: "CLI", dependencies: ["Basics", "OPTSchema", "Files", "HRZFormat", "Checkpoints", "Tokenizer", "Runtime", "Evaluation", "Analysis", "Pruning", "Benchmarks", "Jobs", "Study"]),
        .executableTarget(name: "headroom", dependencies: ["Files", "Runtime", "CLI"]),
        .target(name: "TestSupport", dependencies: ["Checkpoints"], path: "Tests/TestSupport"),
        .testTarget(name: "HRZFormatTests", dependencies: ["TestSupport", "Basics", "OPTSchema", "Files", "HRZFormat"], resources: [.copy("Fixtures")]),
        .testTarget(name: "CheckpointsTests", dependencies: ["TestSupport", "Basics", "Files", "HRZFormat", "Checkpoints"], resources: [.copy("Fixtures")]),
        .testTarget(name: "TokenizerTests", dependencies: ["TestSupport", "HRZFormat", "Tokenizer"], resources: [.copy("Fixtures")]),
        .testTarget(name: "RuntimeTests", dependencies: ["TestSupport", "Basics", "OPTSchema", "Files", "HRZFormat", "Checkpoints", "Runtime", "Analysis"], resources: [.copy("Fixtures")]),
        .testTarget(name: "EvaluationTests", dependencies: ["TestSupport", "OPTSchema", "HRZFormat", "Checkpoints", "Tokenizer", "Runtime", "Evaluation"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "AnalysisTests", dependencies: ["TestSupport", "HRZFormat", "Checkpoints", "Tokenizer", "Runtime", "Evaluation", "Analysis"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "PruningTests", dependencies: ["TestSupport", "Files", "HRZFormat", "Checkpoints", "Runtime", "Evaluation", "Analysis", "Pruning"]),
        .testTarget(name: "JobsTests", dependencies: ["TestSupport", "Files", "HRZFormat", "Checkpoints", "Runtime", "Evaluation", "Analysis", "Pruning", "Jobs"]),
        .testTarget(name: "ReportsTests", dependencies: ["TestSupport", "Reports"], resources: [.copy("Fixtures")]),
        .testTarget(name: "StudyTests", dependencies: ["TestSupport", "Files", "HRZFormat", "Checkpoints", "Tokenizer", "Runtime", "Evaluation", "Analysis", "Pruning", "Jobs", "Reports", "Study"]),
        .testTarget(name: "CLITests", dependencies: ["TestSupport", "Basics", "Files", "HRZFormat", "Study", "CLI"]),
    ],
    swiftLanguageModes: [.v5]
)
