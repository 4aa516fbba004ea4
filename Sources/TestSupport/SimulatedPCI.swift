// A simulated PCI configuration space behind ports 0xCF8/0xCFC (mechanism #1, PCI 3.0
// §3.2.2.3.2), for host tests of the PCI walk and the virtio-pci transport: functions with
// their headers, BARs that read back their size mask after all-ones are written (§6.2.5.1,
// type bits read-only), capability lists, and a command register whose status half is
// not written back. Rules for callers: one test thread.
import PC

/// Configuration space of a few functions, reached through ports 0xCF8/0xCFC.
public final class SimulatedPCI: PortAccess {
    public struct Function {
        public var config = [UInt32](repeating: 0, count: 64)
        /// Per BAR register (0-5): the bits software may write (0: not a BAR).
        public var writable = [UInt32](repeating: 0, count: 6)

        public init() {}
    }

    public var functions: [UInt32: Function] = [:]
    public var address: UInt32 = 0
    /// Every dword write to the data port: (CONFIG_ADDRESS, value).
    public var writes: [(UInt32, UInt32)] = []
    public var reads = 0
    /// Port accesses that mechanism #1 never makes (8- and 16-bit): a test asserts 0.
    public var otherAccesses = 0

    public init() {}

    public static func key(_ bus: UInt8, _ device: UInt8, _ function: UInt8) -> UInt32 {
        UInt32(bus) << 16 | UInt32(device) << 11 | UInt32(function) << 8
    }

    public func add(bus: UInt8 = 0, device: UInt8, function: UInt8 = 0, vendor: UInt16 = 0x1AF4, id: UInt16,
             headerType: UInt8 = 0, status: UInt16 = 0, command: UInt16 = 0x0003,
             line: UInt8 = 0xFF, pin: UInt8 = 0) {
        var f = Function()
        f.config[0] = UInt32(id) << 16 | UInt32(vendor)
        f.config[1] = UInt32(status) << 16 | UInt32(command)
        f.config[2] = 0x0100_0000
        f.config[3] = UInt32(headerType) << 16
        f.config[15] = UInt32(pin) << 8 | UInt32(line)
        functions[Self.key(bus, device, function)] = f
    }

    /// A memory BAR of `size` (a power of two) at `address`; 64-bit ones take two registers.
    public func memoryBar(_ device: UInt8, bar: Int, address: UInt64, size: UInt64,
                   is64: Bool, prefetchable: Bool) {
        let k = Self.key(0, device, 0)
        let low = UInt32(truncatingIfNeeded: address) | (is64 ? 0x4 : 0) | (prefetchable ? 0x8 : 0)
        functions[k]!.config[4 + bar] = low
        functions[k]!.writable[bar] = UInt32(truncatingIfNeeded: ~(size - 1)) & 0xFFFF_FFF0
        if is64 {
            functions[k]!.config[5 + bar] = UInt32(truncatingIfNeeded: address >> 32)
            functions[k]!.writable[bar + 1] = UInt32(truncatingIfNeeded: ~(size - 1) >> 32)
        }
    }

    public func ioBar(_ device: UInt8, bar: Int, port: UInt32, size: UInt32) {
        let k = Self.key(0, device, 0)
        functions[k]!.config[4 + bar] = port | 1
        functions[k]!.writable[bar] = ~(size - 1) & 0xFFFF_FFFC
    }

    /// A capability list: (id, next offset) at each offset; sets status bit 4.
    public func capabilities(_ device: UInt8, first: UInt8, _ entries: [(offset: UInt8, id: UInt8, next: UInt8)]) {
        let k = Self.key(0, device, 0)
        functions[k]!.config[1] |= 0x0010 << 16
        functions[k]!.config[13] = UInt32(first)
        for e in entries { functions[k]!.config[Int(e.offset) / 4] = UInt32(e.next) << 8 | UInt32(e.id) }
    }

    var current: (key: UInt32, register: Int)? {
        guard address & 0x8000_0000 != 0 else { return nil }
        return (address & 0x00FF_FF00, Int(address & 0xFC) / 4)
    }

    public func in32(_ port: UInt16) -> UInt32 {
        guard port == 0xCFC, let (key, register) = current, let f = functions[key] else { return 0xFFFF_FFFF }
        reads += 1
        return f.config[register]
    }

    public func out32(_ port: UInt16, _ value: UInt32) {
        if port == 0xCF8 { address = value; return }
        guard port == 0xCFC, let (key, register) = current, var f = functions[key] else { return }
        writes.append((address, value))
        let headerType = (f.config[3] >> 16) & 0x7F
        if register >= 4 && register < 10 && headerType == 0 {
            let bar = register - 4
            let mask = f.writable[bar]
            // The type bits of a BAR are read-only; a BAR's high half has none.
            let isHighHalf = bar > 0 && f.config[4 + bar - 1] & 0x7 == 0x4 && f.writable[bar - 1] != 0
            let fixed: UInt32 = isHighHalf ? 0 : f.config[register] & (f.config[register] & 1 == 1 ? 0x3 : 0xF)
            f.config[register] = (value & mask) | fixed
        } else if register == 1 {
            f.config[1] = (f.config[1] & 0xFFFF_0000) | (value & 0xFFFF)
        } else {
            f.config[register] = value
        }
        functions[key] = f
    }

    public func in8(_ port: UInt16) -> UInt8 { otherAccesses += 1; return 0xFF }
    public func out8(_ port: UInt16, _ value: UInt8) { otherAccesses += 1 }
    public func in16(_ port: UInt16) -> UInt16 { otherAccesses += 1; return 0xFFFF }
    public func out16(_ port: UInt16, _ value: UInt16) { otherAccesses += 1 }

    /// Writes `bytes` into a function's configuration space at `offset` (capability bodies).
    public func poke(device: UInt8, offset: Int, _ bytes: [UInt8]) {
        let k = Self.key(0, device, 0)
        for (i, byte) in bytes.enumerated() {
            let at = offset + i
            var word = functions[k]!.config[at / 4]
            word &= ~(0xFF << (UInt32(at % 4) * 8))
            word |= UInt32(byte) << (UInt32(at % 4) * 8)
            functions[k]!.config[at / 4] = word
        }
    }
}

