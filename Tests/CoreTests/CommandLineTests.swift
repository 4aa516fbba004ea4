import XCTest
@testable import Core

final class CommandLineTests: XCTestCase {
    func parse(_ text: String) throws -> KernelCommandLine { try KernelCommandLine(parsing: bytes(text)) }
    func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    func testServiceAndEntries() throws {
        let line = try parse("  service=fault  debug x=  virtio_mmio.device=512@0xfeb00e00:12 virtio_mmio.device=512@0xfeb00c00:11\n")
        XCTAssertEqual(line.service, bytes("fault"))
        XCTAssertEqual(line.value("debug"), nil)
        XCTAssertTrue(line.entries.contains(KernelCommandLine.Entry(key: bytes("debug"), value: nil)))
        XCTAssertEqual(line.value("x"), [])
        XCTAssertEqual(line.values("virtio_mmio.device"), [bytes("512@0xfeb00e00:12"), bytes("512@0xfeb00c00:11")])
    }

    func testNoServiceNamedIsNil() throws {
        XCTAssertNil(try parse("").service)
        XCTAssertNil(try parse("a=b").service)
    }

    func testValueMayContainEquals() throws {
        XCTAssertEqual(try parse("k=a=b").value("k"), bytes("a=b"))
    }

    func testMalformedInputIsRejected() {
        XCTAssertThrowsError(try parse("service=a service=b")) { XCTAssertEqual($0 as? CommandLineError, .duplicateService) }
        XCTAssertThrowsError(try parse("service=")) { XCTAssertEqual($0 as? CommandLineError, .emptyService) }
        XCTAssertThrowsError(try parse("service")) { XCTAssertEqual($0 as? CommandLineError, .emptyService) }
        XCTAssertThrowsError(try parse("ok =x")) { XCTAssertEqual($0 as? CommandLineError, .emptyKey(offset: 3)) }
        XCTAssertThrowsError(try KernelCommandLine(parsing: [65, 0xC3, 0xA9])) {
            XCTAssertEqual($0 as? CommandLineError, .invalidByte(offset: 1))
        }
        XCTAssertThrowsError(try KernelCommandLine(parsing: [65, 0x7F])) {
            XCTAssertEqual($0 as? CommandLineError, .invalidByte(offset: 1))
        }
    }

    func testAServiceKnowsItsName() {
        let service = Service(name: "hello", summary: "greets") { _ in .success }
        XCTAssertTrue(service.isNamed("hello"))
        XCTAssertFalse(service.isNamed("hell"))
        XCTAssertFalse(service.isNamed("hello2"))
        XCTAssertNil(try parse("port=80").service)
        XCTAssertEqual(try parse("service=kv port=80").service, bytes("kv"))
        XCTAssertTrue(service.isNamed(bytes("hello")))
        XCTAssertFalse(service.isNamed(bytes("hell")))
    }
}
