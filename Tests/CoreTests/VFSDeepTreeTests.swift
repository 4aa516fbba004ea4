// No recursion over a file tree in the VFS layer (issue 9): a MemoryFileSystem 2,000 folders
// deep is built, walked and released on a thread with a 64 KiB stack (ARC alone would
// release it one nested call per level).

import Foundation
import XCTest
@testable import Core

final class VFSDeepTreeTests: XCTestCase {
    func testDeepTreeIsBuiltWalkedAndReleasedOnASmallStack() {
        final class Run: @unchecked Sendable {
            var depth = 0
            var released = false
            let done = DispatchSemaphore(value: 0)
        }
        let run = Run()
        let thread = Thread {
            do {
                var fs: MemoryFileSystem? = MemoryFileSystem(clock: { 0 })
                var path = VFSPath.root
                for _ in 0..<2000 {
                    path = try! path.appending([0x64])
                    try! fs!.makeDirectory(path, mode: 0o755)
                }
                run.depth = try! fs!.stat(path).kind == .directory ? path.components.count : 0
                fs = nil   // the whole tree goes here, on this thread's small stack
                run.released = fs == nil
            }
            run.done.signal()
        }
        thread.stackSize = 64 * 1024
        thread.start()
        run.done.wait()
        XCTAssertEqual(run.depth, 2000)
        XCTAssertTrue(run.released)
    }
}
