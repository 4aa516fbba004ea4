import XCTest
@testable import Core

final class CommandLineTests: XCTestCase {
    func parse(_ text: String) throws -> KernelCommandLine { try KernelCommandLine(parsing: Array(text.utf8)) }

    func testServiceAndEntries() throws {
        let line = try parse("  service=fault  debug x=  virtio_mmio.device=512@0xfeb00e00:12 virtio_mmio.device=512@0xfeb00c00:11\n")
        XCTAssertEqual(line.service, "fault")
        XCTAssertEqual(line.value("debug"), nil)
        XCTAssertTrue(line.entries.contains(KernelCommandLine.Entry(key: "debug", value: nil)))
        XCTAssertEqual(line.value("x"), "")
        XCTAssertEqual(line.values("virtio_mmio.device"), ["512@0xfeb00e00:12", "512@0xfeb00c00:11"])
    }

    func testDefaultServiceIsHello() throws {
        XCTAssertEqual(try parse("").service, "hello")
        XCTAssertEqual(try parse("a=b").service, "hello")
    }

    func testValueMayContainEquals() throws {
        XCTAssertEqual(try parse("k=a=b").value("k"), "a=b")
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

    func testServicesAreFoundByName() {
        XCTAssertNotNil(Services.named("hello"))
        XCTAssertNotNil(Services.named("fault"))
        XCTAssertNotNil(Services.named("memtest"))
        XCTAssertNil(Services.named("nosuch"))
        XCTAssertNil(Services.named("hell"))
    }
}
