// LineReader (SocketServer) over a scripted socket (TestSupport's ScriptedSocket): lines split
// across reads, the length cap, end of stream and socket errors; and the socket API's writeAll.
import XCTest
@testable import Core
import Wire
import SocketServer
import TestSupport

func bytes(_ text: StaticString) -> [UInt8] {
    text.withUTF8Buffer { Array($0) }
}

final class LineReaderTests: XCTestCase {
    private func events(_ chunks: [[UInt8]], maximumLength: Int = 16, chunkSize: Int = 512,
                        failure: SocketError? = nil) -> (events: [LineEvent], error: SocketError?) {
        let socket = ScriptedSocket(chunks, failure: failure)
        var reader = LineReader(maximumLength: maximumLength, chunkSize: chunkSize)
        var result: [LineEvent] = []
        while result.count < 100 {
            do {
                let event = try reader.next(from: socket)
                result.append(event)
                if event == .end { break }
            } catch {
                return (result, error)
            }
        }
        return (result, nil)
    }

    func testLinesSplitAcrossReads() {
        let got = events([bytes("GE"), bytes("T a\r"), bytes("\nSET b"), bytes(" 1\n\n")]).events
        XCTAssertEqual(got, [.line(bytes("GET a")), .line(bytes("SET b 1")), .line([]), .end])
    }

    func testSeveralLinesInOneRead() {
        let got = events([bytes("a\nbb\r\nccc\n")], chunkSize: 4).events
        XCTAssertEqual(got, [.line(bytes("a")), .line(bytes("bb")), .line(bytes("ccc")), .end])
    }

    func testLimitIsTheLineWithoutItsTerminator() {
        let sixteen = [UInt8](repeating: 0x61, count: 16)
        XCTAssertEqual(events([sixteen + [0x0A]]).events, [.line(sixteen), .end])
        XCTAssertEqual(events([sixteen + [0x0D], [0x0A]]).events, [.line(sixteen), .end])
        XCTAssertEqual(events([sixteen + [0x62, 0x0A]]).events, [.tooLong, .end])
    }

    func testLongLineIsReportedOnceAndSkippedThroughItsNewline() {
        // 40 bytes without a newline, dribbled in small reads, then more of it, then a good line.
        let long = [UInt8](repeating: 0x78, count: 40)
        let got = events([Array(long[0 ..< 10]), Array(long[10 ..< 25]), Array(long[25...]), bytes("tail\nok\n")]).events
        XCTAssertEqual(got, [.tooLong, .line(bytes("ok")), .end])
    }

    func testLongLineInOneReadDoesNotSwallowTheNextLine() {
        let got = events([[UInt8](repeating: 0x78, count: 30) + bytes("\nnext\n")]).events
        XCTAssertEqual(got, [.tooLong, .line(bytes("next")), .end])
    }

    func testAnEndlessLineKeepsMemoryBounded() {
        let socket = ScriptedSocket(Array(repeating: [UInt8](repeating: 0x41, count: 100), count: 1000))
        var reader = LineReader(maximumLength: 64, chunkSize: 100)
        XCTAssertEqual(try reader.next(from: socket), .tooLong)
        XCTAssertEqual(try reader.next(from: socket), .end)   // the rest was dropped as it came
        XCTAssertEqual(socket.reads, 1001)
    }

    func testUnterminatedLastLineIsDeliveredThenEnd() {
        XCTAssertEqual(events([bytes("quit")]).events, [.line(bytes("quit")), .end])
        XCTAssertEqual(events([]).events, [.end])
    }

    func testEndRepeats() throws {
        let socket = ScriptedSocket([])
        var reader = LineReader()
        XCTAssertEqual(try reader.next(from: socket), .end)
        XCTAssertEqual(try reader.next(from: socket), .end)
    }

    func testSocketErrorsPropagate() {
        let got = events([bytes("a\nhalf")], failure: .connectionReset)
        XCTAssertEqual(got.events, [.line(bytes("a"))])
        XCTAssertEqual(got.error, .connectionReset)
    }

    func testFeedingBytesDirectly() {
        var reader = LineReader(maximumLength: 4)
        XCTAssertNil(reader.nextEvent())
        bytes("ab").withUnsafeBytes { reader.append($0) }
        XCTAssertNil(reader.nextEvent())
        bytes("c\nd").withUnsafeBytes { reader.append($0) }
        XCTAssertEqual(reader.nextEvent(), .line(bytes("abc")))
        XCTAssertNil(reader.nextEvent())
        reader.finish()
        XCTAssertEqual(reader.nextEvent(), .line(bytes("d")))
        XCTAssertEqual(reader.nextEvent(), .end)
    }

    func testWriteAllLoopsOverPartialWrites() throws {
        let socket = ScriptedSocket([], writeLimit: 3)
        try socket.writeAll(bytes("hello, world"))
        try socket.writeAll("!" as StaticString)
        try socket.writeAll(" bye\n" as StaticString)
        XCTAssertEqual(socket.written, bytes("hello, world! bye\n"))
        socket.close()
        XCTAssertThrowsError(try socket.writeAll(bytes("x"))) { XCTAssertEqual($0 as? SocketError, .closed) }
    }

    func testWriteAllRefusesAWriteThatTakesNothing() {
        let socket = ScriptedSocket([], writeLimit: 0)
        XCTAssertThrowsError(try socket.writeAll(bytes("x"))) { XCTAssertEqual($0 as? SocketError, .closed) }
    }
}
