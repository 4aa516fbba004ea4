// Assertions for typed errors: the exact case thrown, not just "something threw".
import VirtIO
import XCTest

func assertThrows<T>(
    _ expected: VirtqueueError, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> T
) {
    assertThrowsError(expected, file: file, line: line, body)
}

func assertThrows<T>(
    _ expected: VirtIOError, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> T
) {
    assertThrowsError(expected, file: file, line: line, body)
}

private func assertThrowsError<T, E: Error & Equatable>(
    _ expected: E, file: StaticString, line: UInt, _ body: () throws -> T
) {
    do {
        let value = try body()
        XCTFail("expected \(expected), got \(value)", file: file, line: line)
    } catch let error as E {
        XCTAssertEqual(error, expected, file: file, line: line)
    } catch {
        XCTFail("expected \(expected), got \(error)", file: file, line: line)
    }
}

/// Bytes of an ASCII string.
func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
