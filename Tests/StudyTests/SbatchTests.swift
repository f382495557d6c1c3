import Foundation
import Testing
@testable import Study

/// `--sbatch` text reaches stage scripts only as checked `#SBATCH` lines (issue: injected sbatch lines).
struct SbatchTests {
    func refusal(_ text: String) -> String? {
        do { _ = try SbatchOptions(parsing: text); return nil } catch { return "\(error)" }
    }

    @Test func controlCharactersAreRefusedWherever() {
        for text in [
            "--partition=cpu\nrm -rf /", "--partition=cpu\r", "--comment=a\u{0}b", "-p\tcpu", "--comment=\u{7F}", "--comment='a\nb'",
            "--comment=\"x\u{1B}[2J\"",
        ] {
            let e = refusal(text)
            #expect(e?.contains("control character") == true, "\(text.debugDescription): \(e ?? "accepted")")
        }
    }

    @Test func unbalancedQuotesAndStrayWordsAreRefused() {
        #expect(refusal("--comment \"open")?.contains("unbalanced double quote") == true)
        #expect(refusal("--comment 'open")?.contains("unbalanced single quote") == true)
        #expect(refusal("--comment=x\\")?.contains("lone backslash") == true)
        #expect(refusal("--partition=cpu bash")?.contains("'bash' is not an option") == true)
        #expect(refusal("-")?.contains("not an option") == true)
    }

    @Test func reservedOptionsAreRefusedInEverySpelling() {
        let spellings = [
            "--array=0-3", "--array 0-3", "--arr=1", "--a=1", "-a 0-3", "-a0-3",
            "--dependency=afterok:1", "--dependency afterok:1", "--depend=afterok:1", "--dep afterok:1", "-d afterok:1", "-dafterok:1", "-Qdafterok:1",
            "-vQd 1",
            "--output=/tmp/x", "--output /tmp/x", "--out=/tmp/x", "-o /tmp/x", "-o/tmp/x", "-vo/tmp/x",
            "--error=/tmp/x", "--err /tmp/x", "-e /tmp/x", "-e/tmp/x",
            "--parsable", "--pars", "--wrap=id", "--wra id", "--export=NONE", "--exp NONE", "--kill-on-invalid-dep=no", "--kill-on no",
        ]
        for text in spellings {
            let e = refusal(text)
            #expect(e?.contains("which headroom sets itself") == true, "\(text): \(e ?? "accepted")")
        }
    }

    @Test func ordinaryOptionsBecomeOneQuotedLineEach() throws {
        let options = try SbatchOptions(
            parsing: #"--partition=cpu -A proj --time 24:00:00 --comment "two words # not a comment" -c 8 --exclusive --mem=64G -J "a\"b""#)
        #expect(
            options.lines == [
                ["--partition=cpu"], ["-A", "proj"], ["--time", "24:00:00"], ["--comment", "two words # not a comment"], ["-c", "8"],
                ["--exclusive"], ["--mem=64G"], ["-J", "a\"b"],
            ])
        #expect(
            options.scriptLines == [
                "#SBATCH --partition=cpu", "#SBATCH -A proj", "#SBATCH --time 24:00:00",
                "#SBATCH --comment \"two words # not a comment\"", "#SBATCH -c 8", "#SBATCH --exclusive", "#SBATCH --mem=64G",
                #"#SBATCH -J "a\"b""#,
            ])
        #expect(options.sets("time", short: "t") && options.sets("mem") && options.sets("cpus-per-task", short: "c") && !options.sets("gres"))
        // Options that merely start like a reserved one are not refused.
        #expect(refusal("--exclusive --exclude=node1 --error-free") == nil)
    }
}
