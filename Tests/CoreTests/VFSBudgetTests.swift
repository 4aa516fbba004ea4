// VFS.read(count:) sizes a new array by its caller's count (often a file's size): it is
// admitted against the memory budget first and refused with `.outOfMemory`, the descriptor
// untouched (issue 9).
import XCTest
@testable import Core

final class VFSBudgetTests: XCTestCase {
    func testAReadTheBudgetRefusesIsOutOfMemoryAndLeavesTheOffset() throws {
        let vfs = VFS()
        try vfs.mount(MemoryFileSystem(clock: { 0 }))
        let fd = try vfs.open(Array("/f".utf8), flags: [.read, .write, .create])
        XCTAssertEqual(try vfs.write(fd, Array("hello".utf8)), 5)
        XCTAssertEqual(try vfs.seek(fd, offset: 0, from: .start), 0)
        MemoryBudget.isEnforced = true
        MemoryBudget.reserveOverride = Int.max / 4
        XCTAssertThrowsError(try vfs.read(fd, count: 1 << 30)) { XCTAssertEqual($0 as? FileSystemError, .outOfMemory) }
        MemoryBudget.isEnforced = false
        MemoryBudget.reserveOverride = nil
        XCTAssertEqual(try vfs.read(fd, count: 100), Array("hello".utf8), "nothing was consumed by the refusal")
        try vfs.close(fd)
    }
}
