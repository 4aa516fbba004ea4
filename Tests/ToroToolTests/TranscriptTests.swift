// Transcript normalisation, the unified diff, and the compare verdict.

import XCTest
@testable import ToroTool

final class TranscriptTests: XCTestCase {
    func testNormalise() {
        let microvm = "[   0.000010] boot: console ready\r\n[   0.000020] memory: 64 MiB\r\nready: hello\r\n"
            + "Hello from Toro on microvm: 1 CPU, 64 MiB of memory\r\n[   0.003000] exit: 0\r\n"
        let legacy = "\u{1b}cSeaBIOS (version 1.16)\r\nBooting from ROM..[   0.100000] boot: console ready\r\n"
            + "ready: hello\r\nHello from Toro on legacy: 1 CPU, 64 MiB of memory\r\n[   0.200000] exit: 0\r\n"
        let expected = ["ready: hello", "Hello from Toro on <platform>: 1 CPU, 64 MiB of memory", "exit status: 0"]
        XCTAssertEqual(Transcript.normalise(microvm, status: 0), expected)
        XCTAssertEqual(Transcript.normalise(legacy, status: 0), expected)
    }

    func testNormaliseKeepsBlankServiceLinesAndStatus() {
        XCTAssertEqual(Transcript.normalise("[ 0.000001] b\na\n\nb", status: 3), ["a", "", "b", "exit status: 3"])
        XCTAssertEqual(Transcript.normalise("", status: 124), ["exit status: 124"])
        XCTAssertEqual(Transcript.normalise("legacy and microvm\n", status: 0),
                       ["<platform> and <platform>", "exit status: 0"])
    }

    func testParseAndRender() {
        XCTAssertEqual(Transcript.parse("a\r\nb\n"), ["a", "b"])
        XCTAssertEqual(Transcript.parse("a\nb"), ["a", "b"])
        XCTAssertEqual(Transcript.render(["a", "b"]), "a\nb\n")
    }

    func testDiffOfEqualIsEmpty() {
        XCTAssertEqual(Diff.unified(["a"], ["a"], oldName: "x", newName: "y"), "")
    }

    func testDiffNamesTheChangedLine() {
        let old = ["1", "2", "3", "4", "5", "6", "7", "8", "9"]
        var new = old
        new[4] = "five"
        XCTAssertEqual(Diff.unified(old, new, oldName: "expected", newName: "microvm"), """
            --- expected
            +++ microvm
            @@ -2,7 +2,7 @@
             2
             3
             4
            -5
            +five
             6
             7
             8
            """)
    }

    func testDiffInsertionsDeletionsAndSeparateHunks() {
        let old = (1...20).map(String.init)
        var new = old
        new.remove(at: 1)            // "2" removed
        new.append("21")             // added at the end
        let diff = Diff.unified(old, new, oldName: "a", newName: "b", context: 1)
        XCTAssertEqual(diff, """
            --- a
            +++ b
            @@ -1,3 +1,2 @@
             1
            -2
             3
            @@ -20,1 +19,2 @@
             20
            +21
            """)
        XCTAssertEqual(Diff.unified([], ["x"], oldName: "a", newName: "b"), "--- a\n+++ b\n@@ -0,0 +1,1 @@\n+x")
    }

    func testVerdict() {
        let t = ["ready: hello", "exit status: 0"]
        let same = CompareCommand.compare(microvm: t, legacy: t, expected: ("E", t))
        XCTAssertTrue(same.matches)
        XCTAssertTrue(same.report.contains { $0.hasPrefix("match: microvm and legacy") })
        XCTAssertEqual(same.report.last, "compare: everything matches")

        let other = ["ready: hello", "exit status: 3"]
        let differ = CompareCommand.compare(microvm: t, legacy: other, expected: nil)
        XCTAssertFalse(differ.matches)
        XCTAssertTrue(differ.report.joined(separator: "\n").contains("-exit status: 0\n+exit status: 3"))

        let alone = CompareCommand.compare(microvm: t, legacy: t, expected: nil)
        XCTAssertTrue(alone.matches, "two successful runs alike match without an expected transcript")

        // Both failing alike is no match unless an expected transcript records the failure.
        let failing = ["fs-manifest: no shared folder (on <platform>, start with --share DIR)", "exit status: 1"]
        let bothFailed = CompareCommand.compare(microvm: failing, legacy: failing, expected: nil)
        XCTAssertFalse(bothFailed.matches)
        XCTAssertTrue(bothFailed.report.contains("FAILED: on legacy the service never printed ready: and ended with exit status 1"))
        XCTAssertEqual(bothFailed.report.last, "compare: the service failed (no expected transcript records that status)")
        XCTAssertTrue(CompareCommand.compare(microvm: failing, legacy: failing, expected: ("E", failing)).matches)
        let panicked = CompareCommand.compare(microvm: other, legacy: other, expected: nil)
        XCTAssertTrue(panicked.report.contains("FAILED: on microvm the service ended with exit status 3"))

        let doctored = CompareCommand.compare(microvm: t, legacy: t, expected: ("E", ["ready: hullo", "exit status: 0"]))
        XCTAssertFalse(doctored.matches)
        let text = doctored.report.joined(separator: "\n")
        XCTAssertTrue(text.contains("-ready: hullo\n+ready: hello"))
        XCTAssertTrue(text.contains("DIFFER: microvm differs from E"))
        XCTAssertTrue(text.contains("DIFFER: legacy differs from E"))
    }
}
