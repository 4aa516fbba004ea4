// The host tool validates `--service` against its own list (ToroTool/Services.swift); the
// kernel carries the real one (Core/Services/Service.swift). They must name the same
// services, or `toro run` would refuse a real service or boot into "unknown service".

import XCTest
import Core
import ToroTool

final class ServiceListTests: XCTestCase {
    func testHostAndKernelListTheSameServices() {
        let kernel = Core.Services.all.map { service in
            service.name.withUTF8Buffer { String(decoding: $0, as: UTF8.self) }
        }
        let host = ToroTool.Services.all.map(\.name)
        XCTAssertEqual(kernel.sorted(), host.sorted())
    }
}
