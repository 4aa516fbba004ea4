// InetConfiguration: the defaults, `ip=` and `gateway=` from the kernel command line, every
// refusal with its message, and the next-hop choice.
import Core
@testable import Inet
import Wire
import XCTest

final class InetConfigurationTests: XCTestCase {
    func configuration(_ line: String) throws -> InetConfiguration {
        try InetConfiguration(commandLine: KernelCommandLine(parsing: Array(line.utf8)))
    }

    func refusal(_ line: String) -> KernelArgumentError? {
        do {
            _ = try configuration(line)
            return nil
        } catch {
            return error as? KernelArgumentError
        }
    }

    func testDefaultsAreQEMUUserNetworking() throws {
        let defaults = try configuration("service=kv")
        XCTAssertEqual(defaults, InetConfiguration(address: IPv4Address(10, 0, 2, 15), prefixLength: 24,
                                                   gateway: IPv4Address(10, 0, 2, 2)))
        XCTAssertEqual(defaults, .userNetworking)
        XCTAssertEqual(defaults.netmask, 0xFFFF_FF00)
        XCTAssertEqual(defaults.subnetBroadcast, IPv4Address(10, 0, 2, 255))
    }

    func testAddressAndGatewayFromTheCommandLine() throws {
        XCTAssertEqual(try configuration("service=hostping ip=10.0.3.15/24 gateway=10.0.3.1"),
                       InetConfiguration(address: IPv4Address(10, 0, 3, 15), prefixLength: 24, gateway: IPv4Address(10, 0, 3, 1)))
        XCTAssertEqual(try configuration("ip=192.168.7.9/16"),
                       InetConfiguration(address: IPv4Address(192, 168, 7, 9), prefixLength: 16, gateway: nil),
                       "ip= alone: no gateway (the default one lies in another subnet)")
        XCTAssertEqual(try configuration("gateway=10.0.2.100"),
                       InetConfiguration(address: IPv4Address(10, 0, 2, 15), prefixLength: 24, gateway: IPv4Address(10, 0, 2, 100)))
        XCTAssertEqual(try configuration("ip=172.16.0.1/30 gateway=172.16.0.2").prefixLength, 30)
        XCTAssertEqual(try configuration("ip=10.200.0.1/1").netmask, 0x8000_0000)
    }

    func testMalformedValuesAreRefused() {
        let shape = KernelArgumentError.invalid(key: "ip", reason: "needs an address and prefix length like 10.0.2.15/24")
        for line in ["ip", "ip=", "ip=10.0.2.15", "ip=10.0.2/24", "ip=10.0.2.15.1/24", "ip=10.0.2.256/24",
                     "ip=10.0.2.15/", "ip=10.0.2.15/24x", "ip= 10.0.2.15/24", "ip=10..2.15/24", "ip=1000.0.2.15/24",
                     "ip=10.0.2.15/124", "ip=-1.0.2.15/24", "ip=a.b.c.d/24", "ip=10.0.2.15/24/24"] {
            XCTAssertEqual(refusal(line), shape, line)
        }
        let prefix = KernelArgumentError.invalid(key: "ip", reason: "needs a prefix length between 1 and 30")
        for line in ["ip=10.0.2.15/0", "ip=10.0.2.15/31", "ip=10.0.2.15/32", "ip=10.0.2.15/99"] {
            XCTAssertEqual(refusal(line), prefix, line)
        }
        let unicast = KernelArgumentError.invalid(key: "ip", reason: "must be a unicast address (not 0/8, 127/8 or 224 and above)")
        for line in ["ip=0.0.0.1/8", "ip=127.0.0.1/8", "ip=224.0.0.1/24", "ip=255.255.255.254/24"] {
            XCTAssertEqual(refusal(line), unicast, line)
        }
        let host = KernelArgumentError.invalid(key: "ip", reason: "must not be its subnet's network or broadcast address")
        XCTAssertEqual(refusal("ip=10.0.2.0/24"), host)
        XCTAssertEqual(refusal("ip=10.0.2.255/24"), host)
        XCTAssertEqual(refusal("ip=10.0.3.255/23"), host)

        let gatewayShape = KernelArgumentError.invalid(key: "gateway", reason: "needs an address like 10.0.2.2")
        for line in ["gateway", "gateway=", "gateway=10.0.2.2/24", "gateway=10.0.2", "gateway=x"] {
            XCTAssertEqual(refusal(line), gatewayShape, line)
        }
        let gatewayPlace = KernelArgumentError.invalid(key: "gateway", reason: "must be a host address in the subnet of ip=")
        for line in ["gateway=10.0.3.1", "ip=10.0.3.15/24 gateway=10.0.2.2", "gateway=10.0.2.0", "gateway=10.0.2.255"] {
            XCTAssertEqual(refusal(line), gatewayPlace, line)
        }
        XCTAssertEqual(refusal("gateway=10.0.2.15"),
                       .invalid(key: "gateway", reason: "must not be this host's own address"))
    }

    func testNextHop() {
        let configuration = InetConfiguration.userNetworking
        XCTAssertEqual(configuration.nextHop(for: IPv4Address(10, 0, 2, 3)), IPv4Address(10, 0, 2, 3))
        XCTAssertEqual(configuration.nextHop(for: IPv4Address(10, 0, 2, 2)), IPv4Address(10, 0, 2, 2))
        XCTAssertEqual(configuration.nextHop(for: IPv4Address(10, 0, 3, 1)), IPv4Address(10, 0, 2, 2))
        XCTAssertEqual(configuration.nextHop(for: IPv4Address(8, 8, 8, 8)), IPv4Address(10, 0, 2, 2))
        let isolated = InetConfiguration(address: IPv4Address(10, 0, 3, 15), prefixLength: 24, gateway: nil)
        XCTAssertEqual(isolated.nextHop(for: IPv4Address(10, 0, 3, 1)), IPv4Address(10, 0, 3, 1))
        XCTAssertNil(isolated.nextHop(for: IPv4Address(10, 0, 2, 2)))
    }
}
