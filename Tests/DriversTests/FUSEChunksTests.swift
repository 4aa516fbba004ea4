import XCTest
@testable import Drivers
@testable import VsockDriver
@testable import FSDriver

/// Splitting a large READ or WRITE into requests (FUSEChunks.swift).
final class FUSEChunksTests: XCTestCase {
    func testChunkSplitting() {
        func plan(_ count: Int, _ offset: UInt64, _ maximum: UInt32) -> [FUSEChunk]? {
            FUSEChunks(count: count, fileOffset: offset, maximum: maximum).map { Array($0) }
        }
        XCTAssertEqual(plan(0, 0, 4096), [])
        XCTAssertEqual(plan(4096, 100, 4096), [FUSEChunk(bufferOffset: 0, fileOffset: 100, size: 4096)])
        XCTAssertEqual(plan(10000, 1 << 20, 4096), [
            FUSEChunk(bufferOffset: 0, fileOffset: 1 << 20, size: 4096),
            FUSEChunk(bufferOffset: 4096, fileOffset: (1 << 20) + 4096, size: 4096),
            FUSEChunk(bufferOffset: 8192, fileOffset: (1 << 20) + 8192, size: 1808),
        ])
        XCTAssertEqual(FUSEChunks(count: 10000, fileOffset: 0, maximum: 4096)?.chunkCount, 3)
        XCTAssertEqual(FUSEChunks(count: 8192, fileOffset: 0, maximum: 4096)?.chunkCount, 2)
        XCTAssertEqual(plan(3, 0, 1)?.map(\.size), [1, 1, 1])
        XCTAssertNil(plan(1, 0, 0))
        XCTAssertNil(plan(-1, 0, 4096))
        XCTAssertNil(plan(2, UInt64(Int64.max) - 1, 4096))
        XCTAssertEqual(plan(1, UInt64(Int64.max) - 1, 4096)?.count, 1)
    }
}
