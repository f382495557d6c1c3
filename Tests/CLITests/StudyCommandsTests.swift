import Foundation
import Testing
import TestSupport
@testable import CLI
@testable import Study

/// Every command line the study writes (report captions, stage scripts, messages) parses with the real
/// declarations: renaming or removing an option breaks this test, not a user's copy-paste.
struct StudyCommandsTests {
    @Test(arguments: [false, true])
    func everyCommandTheStudyWritesParses(_ variant: Bool) throws {
        var o = StudyOptions(model: Repository.demoModel, tasks: ["demo_copy", "demo_map_a"], shots: [0, 1, 5], data: Repository.demoTasks)
        if variant {
            o.limit = 12
            o.precision = .bf16
            o.headsGrid = [0, 35.5, 70]
        }
        let all = StudyCommands.all(o, directory: "/tmp/study dir")
        #expect(all.count >= 15)
        for words in all {
            let line = StudyCommands.line(words)
            let resolved = try #require(try HeadroomCLI.resolve(words), "\(line)")
            let parsed = try ParsedArguments(resolved.rest, spec: resolved.type.spec)
            // Placeholders (MODEL.hrz, TASK) are words the parser accepts; every other line builds its command too.
            if words != StudyCommands.start("/tmp/study dir") {
                #expect(throws: Never.self, "\(line)") { _ = try resolved.type.init(parsed) }
            }
            #expect(line.hasPrefix("headroom \(words[0])"))
        }
        // A renamed option is caught: the parser rejects what it does not declare.
        #expect(throws: UsageError.self) { _ = try ParsedArguments(["--importance-exmaples", "3"], spec: StudyCommand.spec) }
    }

    @Test func theStageScriptRunsAUnitTheParserAccepts() throws {
        let study = try Study(
            options: StudyOptions(model: Repository.demoModel, tasks: ["demo_copy"], shots: [0], data: Repository.demoTasks),
            directory: testScratch() + "script-study")
        let script = study.slurmScript(study.plan().stages[0], options: SlurmOptions(executable: "/opt/headroom"))
        let exec = try #require(script.split(separator: "\n").first { $0.hasPrefix("exec ") })
        #expect(exec.contains(" study -o ") && exec.contains(" --unit \"eval:$((SLURM_ARRAY_TASK_ID"))
        let parsed = try ParsedArguments(["-o", "d", "--unit", "eval:0"], spec: StudyCommand.spec)
        #expect(parsed.string("--unit") == "eval:0")
    }
}
