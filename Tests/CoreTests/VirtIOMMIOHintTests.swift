import XCTest
@testable import Core

final class VirtIOMMIOHintTests: XCTestCase {
    func parse(_ text: String) throws(VirtIOMMIOHint.ParseError) -> VirtIOMMIOHint { try VirtIOMMIOHint.parse(Array(text.utf8)) }

    func testParsesWhatQEMUWrites() throws {
        XCTAssertEqual(try parse("512@0xfeb00e00:12"), VirtIOMMIOHint(base: 0xFEB0_0E00, size: 512, irq: 12))
        XCTAssertEqual(try parse("4K@0xFEB00000:5"), VirtIOMMIOHint(base: 0xFEB0_0000, size: 4096, irq: 5))
        XCTAssertEqual(try parse("0x200@4096:7:3"), VirtIOMMIOHint(base: 4096, size: 512, irq: 7))
    }

    func testRejectsMalformedEntries() {
        for text in ["", "512", "512@", "512@0xfeb00e00", "@0x1000:5", "512@:5", "512@0x:5", "5x2@0x1000:5",
                     "512@0xfeb0g000:5", "512@0x1000:", "512@0x1000:300", "0@0x1000:5",
                     "16@0xffffffffffffffff:5", "99999999999999999999@0x1000:5", "17179869184G@0x0:1"] {
            XCTAssertThrowsError(try parse(text), text)
        }
    }

    func testCommandLineCarriesSeveralHints() throws {
        let line = try KernelCommandLine(parsing: Array("service=kv virtio_mmio.device=512@0xfeb00e00:12 virtio_mmio.device=512@0xfeb00c00:11".utf8))
        let hints = try line.values("virtio_mmio.device").map { text throws(VirtIOMMIOHint.ParseError) in try VirtIOMMIOHint.parse(text) }
        XCTAssertEqual(hints.map(\.irq), [12, 11])
    }
}
