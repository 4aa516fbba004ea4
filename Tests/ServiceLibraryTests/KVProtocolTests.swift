import XCTest
@testable import Core
@testable import KVProtocol

final class KVProtocolTests: XCTestCase {
    func run(_ table: inout KVTable, _ line: String) -> String {
        let (reply, _) = table.handle(ArraySlice(Array(line.utf8)))
        return String(decoding: reply, as: UTF8.self)
    }

    func testCommands() {
        var table = KVTable()
        XCTAssertEqual(run(&table, "GET a"), "NOT_FOUND\n")
        XCTAssertEqual(run(&table, "SET a hello world"), "OK\n")
        XCTAssertEqual(run(&table, "GET a"), "VALUE hello world\n")
        XCTAssertEqual(run(&table, "SET a x\r"), "OK\n")
        XCTAssertEqual(run(&table, "GET a\r"), "VALUE x\n")
        XCTAssertEqual(run(&table, "SET empty "), "OK\n")
        XCTAssertEqual(run(&table, "GET empty"), "VALUE \n")
        XCTAssertEqual(run(&table, "DEL a"), "DELETED\n")
        XCTAssertEqual(run(&table, "DEL a"), "NOT_FOUND\n")
        XCTAssertEqual(table.count, 1)
        let (reply, quit) = table.handle(ArraySlice(Array("QUIT".utf8)))
        XCTAssertEqual(reply, Array("BYE\n".utf8))
        XCTAssertTrue(quit)
    }

    func testGarbageGetsErrors() {
        var table = KVTable()
        for line in ["", "set a b", "SET", "SET a", "GET", "GET a b", "DEL", "HELLO", "\u{0}\u{1}\u{ff}",
                     "SET " + String(repeating: "k", count: 251) + " v"] {
            XCTAssertTrue(run(&table, line).hasPrefix("ERROR"), line)
        }
        XCTAssertEqual(table.count, 0)
    }
}
