// fs-manifest's bounds (issue 9): the walk is iterative (a tree 2,000 folders deep is
// walked on a 128 KiB thread stack), stops with a clear error past its depth or entry
// bound, and its error lines read as documented in FSManifest.swift.

import Foundation
import XCTest
@testable import Core
@testable import FileManifest

final class FSManifestBoundsTests: XCTestCase {
    /// `depth` nested folders `/d/d/.../d`, with a file `f` at the bottom.
    func deepTree(_ depth: Int) -> MemoryFileSystem {
        let fs = MemoryFileSystem(clock: { 0 })
        var path = VFSPath.root
        for _ in 0..<depth {
            path = try! path.appending([0x64])
            try! fs.makeDirectory(path, mode: 0o755)
        }
        let handle = try! fs.open(try! path.appending([0x66]), flags: [.write, .create], mode: 0o644)
        _ = [UInt8]("abc".utf8).withUnsafeBytes { try! fs.write(handle, offset: 0, from: $0) }
        try! fs.close(handle)
        return fs
    }

    func testDeepTreeWithinTheBoundGivesTheWholeManifestOnASmallStack() throws {
        /// What the walking thread shares with the test (the test waits for it to finish).
        final class Run: @unchecked Sendable {
            let fs: MemoryFileSystem
            var result: Result<[FSManifest.Entry], FSManifest.WalkError>?
            let done = DispatchSemaphore(value: 0)
            init(_ fs: MemoryFileSystem) { self.fs = fs }
        }
        let run = Run(deepTree(2000))
        // A recursive walk needs far more than 128 KiB for 2,000 levels; the explicit stack does not.
        let thread = Thread {
            run.result = Result { () throws(FSManifest.WalkError) in
                try FSManifest.collect(run.fs, limits: FSManifest.Limits(depth: 2048))
            }
            run.done.signal()
        }
        thread.stackSize = 128 * 1024
        thread.start()
        run.done.wait()
        let result = run.result
        let entries = try XCTUnwrap(result).get()
        XCTAssertEqual(entries.count, 1)
        XCTAssertEqual(entries.first?.path.count, 2000 * 2 + 1, "d/ 2,000 times, then f")
        XCTAssertEqual(entries.first?.size, 3)
    }

    func testTwoHundredDeepFitsTheDefaultBound() throws {
        let entries = try FSManifest.collect(deepTree(200))
        XCTAssertEqual(entries.map(\.size), [3])
    }

    func testDeeperThanTheBoundIsAClearError() {
        XCTAssertThrowsError(try FSManifest.collect(deepTree(5), limits: FSManifest.Limits(depth: 3))) { error in
            let walk = error as? FSManifest.WalkError
            XCTAssertEqual(walk, FSManifest.WalkError(path: Array("d/d/d/d".utf8), cause: .tooDeep(limit: 3)))
            XCTAssertEqual(walk.map { String(decoding: FSManifest.describe($0), as: UTF8.self) },
                           "fs-manifest: d/d/d/d is more than 3 folders deep; no manifest\n")
        }
        // Exactly at the bound is fine: three folders, the file inside the third.
        XCTAssertEqual(try FSManifest.collect(deepTree(3), limits: FSManifest.Limits(depth: 3)).count, 1)
    }

    func testMoreEntriesThanTheBoundIsAClearError() throws {
        let fs = MemoryFileSystem(clock: { 0 })
        try fs.makeDirectory(try VFSPath(parsing: Array("/sub".utf8)), mode: 0o755)
        for index in 0..<10 {
            let handle = try fs.open(try VFSPath(parsing: Array("/sub/f\(index)".utf8)), flags: [.write, .create], mode: 0o644)
            try fs.close(handle)
        }
        // 1 (sub) + 10 files = 11 entries.
        XCTAssertEqual(try FSManifest.collect(fs, limits: FSManifest.Limits(entries: 11)).count, 10)
        XCTAssertThrowsError(try FSManifest.collect(fs, limits: FSManifest.Limits(entries: 10))) { error in
            let walk = error as? FSManifest.WalkError
            XCTAssertEqual(walk, FSManifest.WalkError(path: Array("sub".utf8), cause: .tooManyEntries(limit: 10)))
            XCTAssertEqual(walk.map { String(decoding: FSManifest.describe($0), as: UTF8.self) },
                           "fs-manifest: more than 10 entries (stopped in sub); no manifest\n")
        }
    }

    func testErrorLines() {
        func text(_ error: FSManifest.WalkError) -> String { String(decoding: FSManifest.describe(error), as: UTF8.self) }
        XCTAssertEqual(text(.init(path: [], error: .io)), "fs-manifest: cannot read .: i/o error\n")
        XCTAssertEqual(text(.init(path: Array("a\n".utf8), error: .tooLarge)), "fs-manifest: cannot read a\\x0a: too large\n")
        XCTAssertEqual(text(.init(path: Array("big".utf8), error: .outOfMemory)),
                       "fs-manifest: not enough memory (stopped at big); no manifest\n")
    }

    func testBoundsFromTheCommandLine() throws {
        let defaults = try FSManifest.Limits(commandLine: try KernelCommandLine(parsing: Array("service=fs-manifest".utf8)))
        XCTAssertEqual(defaults, FSManifest.Limits(depth: 256, entries: 100_000))
        let set = try FSManifest.Limits(commandLine: try KernelCommandLine(parsing: Array("manifest-depth=9 manifest-entries=77".utf8)))
        XCTAssertEqual(set, FSManifest.Limits(depth: 9, entries: 77))
        XCTAssertThrowsError(try FSManifest.Limits(commandLine: try KernelCommandLine(parsing: Array("manifest-depth=0".utf8))))
        XCTAssertThrowsError(try FSManifest.Limits(commandLine: try KernelCommandLine(parsing: Array("manifest-entries=x".utf8))))
    }
}
