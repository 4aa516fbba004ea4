// PCI configuration space through configuration mechanism #1 (PCI Local Bus Specification
// 3.0, §3.2.2.3.2: the address port 0xCF8, the data port 0xCFC) and the walk of a machine's
// devices: bus 0 and every bus behind a PCI-to-PCI bridge, each function's BARs with their
// sizes, its capability list, its interrupt line. `PCIBus` is the kernel's, over the CPU's
// ports; host tests run `PCIBusChip` over a simulated configuration space (Tests/PCTests).
//
// Rules for callers:
//   * `scan()` once, early (it allocates from the heap, and sizes BARs by writing all-ones
//     to them with the function's decoding switched off for that moment): before any
//     driver uses a device. It is bounded: at most 256 buses, each visited once, 32
//     devices of 8 functions each, 48 capabilities per function; a bridge that names a bus
//     already seen, a capability pointer into the header or back to one already walked,
//     end that walk with a log line.
//   * Values from configuration space are the device's (or firmware's) word, not ours:
//     a BAR of size 0 or one that does not decode, a capability of length 0, are left out.
//   * `enableBusMastering` before a device does DMA: SeaBIOS enables I/O and memory
//     decoding, not bus mastering.
//
// Register layout (PCI 3.0 §6.1, type 0 and type 1 headers): 0x00 vendor (16), device (16);
// 0x04 command (16), status (16); 0x08 revision, class code (24); 0x0E header type (bit 7:
// multi-function); 0x10-0x24 BAR0-5 (type 1: BAR0-1, then 0x19 secondary bus); 0x34
// capabilities pointer (valid when status bit 4 is set); 0x3C interrupt line, 0x3D pin.

/// Where a function sits: bus, device (0-31) and function (0-7).
public struct PCIAddress: Equatable, Sendable {
    public var bus: UInt8
    public var device: UInt8
    public var function: UInt8

    public init(bus: UInt8, device: UInt8, function: UInt8) {
        self.bus = bus
        self.device = device
        self.function = function
    }

    /// The CONFIG_ADDRESS word for the dword at `offset` (enable bit 31).
    public func configAddress(_ offset: UInt8) -> UInt32 {
        0x8000_0000 | UInt32(bus) << 16 | UInt32(device & 0x1F) << 11 | UInt32(function & 7) << 8
            | UInt32(offset & 0xFC)
    }
}

/// One decoded base address register.
public struct PCIBar: Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        case io
        case memory32
        case memory64
    }
    /// BAR number (0-5; a 64-bit BAR is named by its low half).
    public var index: Int
    public var kind: Kind
    public var address: UInt64
    public var size: UInt64
    public var prefetchable: Bool

    public init(index: Int, kind: Kind, address: UInt64, size: UInt64, prefetchable: Bool) {
        self.index = index
        self.kind = kind
        self.address = address
        self.size = size
        self.prefetchable = prefetchable
    }
}

/// One entry of a function's capability list.
public struct PCICapability: Equatable, Sendable {
    /// The capability ID (0x09: vendor-specific, which virtio-pci uses).
    public var id: UInt8
    /// Where it starts in configuration space.
    public var offset: UInt8

    public init(id: UInt8, offset: UInt8) {
        self.id = id
        self.offset = offset
    }
}

/// A function found by `scan`.
public struct PCIFunction: Equatable, Sendable {
    public var address: PCIAddress
    public var vendorID: UInt16
    public var deviceID: UInt16
    /// Class, subclass and programming interface (0x0B-0x09).
    public var classCode: UInt32
    public var bars: [PCIBar]
    public var capabilities: [PCICapability]
    /// The interrupt line firmware wrote (0xFF: none) and the pin (0: none, 1-4: INTA-INTD).
    public var interruptLine: UInt8
    public var interruptPin: UInt8

    public func bar(_ index: Int) -> PCIBar? { bars.first { $0.index == index } }
}

/// The kernel's configuration space, over the CPU's I/O ports.
public typealias PCIBus = PCIBusChip<X86Ports>

extension PCIBusChip where Ports == X86Ports {
    public init() { self.init(ports: X86Ports()) }
}

public struct PCIBusChip<Ports: PortAccess> {
    public static var addressPort: UInt16 { 0xCF8 }
    public static var dataPort: UInt16 { 0xCFC }
    static var maximumCapabilities: Int { 48 }

    let ports: Ports

    public init(ports: Ports) { self.ports = ports }

    public func read32(_ at: PCIAddress, _ offset: UInt8) -> UInt32 {
        ports.out32(Self.addressPort, at.configAddress(offset))
        return ports.in32(Self.dataPort)
    }

    public func write32(_ at: PCIAddress, _ offset: UInt8, _ value: UInt32) {
        ports.out32(Self.addressPort, at.configAddress(offset))
        ports.out32(Self.dataPort, value)
    }

    /// A 16-bit field: the dword read, shifted (no sub-dword port access, so a simulated
    /// bus and the real one see the same dword cycles).
    public func read16(_ at: PCIAddress, _ offset: UInt8) -> UInt16 {
        UInt16(truncatingIfNeeded: read32(at, offset) >> (UInt32(offset & 2) * 8))
    }

    public func read8(_ at: PCIAddress, _ offset: UInt8) -> UInt8 {
        UInt8(truncatingIfNeeded: read32(at, offset) >> (UInt32(offset & 3) * 8))
    }

    /// Writes the 16-bit command register, leaving the status half alone (its bits are
    /// write-one-to-clear: writing back what was read would clear them).
    func writeCommand(_ at: PCIAddress, _ command: UInt16) {
        write32(at, 0x04, UInt32(command))
    }

    /// Sets the bus-master bit (command bit 2), keeping the other command bits.
    public func enableBusMastering(_ at: PCIAddress) {
        writeCommand(at, read16(at, 0x04) | 0x0004)
    }

    /// Every function on bus 0 and behind its bridges, in bus order. `log` receives one line
    /// per oddity that ended part of the walk.
    public func scan(log: (StaticString) -> Void = { _ in }) -> [PCIFunction] {
        var found: [PCIFunction] = []
        var seen = [Bool](repeating: false, count: 256)
        var pending: [UInt8] = [0]
        seen[0] = true
        while !pending.isEmpty {
            let bus = pending.removeFirst()
            for device in UInt8(0)..<32 {
                let first = PCIAddress(bus: bus, device: device, function: 0)
                guard read16(first, 0x00) != 0xFFFF else { continue }
                let functions: UInt8 = read8(first, 0x0E) & 0x80 != 0 ? 8 : 1
                for function in UInt8(0)..<functions {
                    let at = PCIAddress(bus: bus, device: device, function: function)
                    let vendor = read16(at, 0x00)
                    guard vendor != 0xFFFF else { continue }
                    let headerType = read8(at, 0x0E) & 0x7F
                    if headerType == 1 {
                        let secondary = read8(at, 0x19)
                        if secondary == 0 || seen[Int(secondary)] {
                            log("pci: a bridge names a bus already walked; not following it")
                        } else {
                            seen[Int(secondary)] = true
                            pending.append(secondary)
                        }
                    }
                    found.append(PCIFunction(
                        address: at, vendorID: vendor, deviceID: read16(at, 0x02),
                        classCode: read32(at, 0x08) >> 8,
                        bars: headerType == 0 ? bars(at, count: 6) : (headerType == 1 ? bars(at, count: 2) : []),
                        capabilities: capabilities(at, log: log),
                        interruptLine: read8(at, 0x3C), interruptPin: read8(at, 0x3D)))
                }
            }
        }
        return found
    }

    /// Decodes and sizes BARs 0..<count (PCI 3.0 §6.2.5.1): decoding off, all-ones written,
    /// the size mask read, the original restored, decoding back as it was.
    func bars(_ at: PCIAddress, count: Int) -> [PCIBar] {
        let command = read16(at, 0x04)
        writeCommand(at, command & ~0x0003)
        defer { writeCommand(at, command) }
        var result: [PCIBar] = []
        var index = 0
        while index < count {
            let offset = UInt8(0x10 + 4 * index)
            let original = read32(at, offset)
            write32(at, offset, 0xFFFF_FFFF)
            let mask = read32(at, offset)
            write32(at, offset, original)
            if original & 1 == 1 {
                let sizeMask = mask & 0xFFFF_FFFC
                if sizeMask != 0 {
                    let size = UInt64((~sizeMask &+ 1) & 0xFFFF)
                    if size != 0 {
                        result.append(PCIBar(index: index, kind: .io, address: UInt64(original & 0xFFFF_FFFC),
                                             size: size, prefetchable: false))
                    }
                }
                index += 1
                continue
            }
            let type = (original >> 1) & 3
            let prefetchable = original & 0x8 != 0
            if type == 2 && index + 1 < count {
                let highOffset = offset + 4
                let originalHigh = read32(at, highOffset)
                write32(at, highOffset, 0xFFFF_FFFF)
                let maskHigh = read32(at, highOffset)
                write32(at, highOffset, originalHigh)
                let full = UInt64(maskHigh) << 32 | UInt64(mask & 0xFFFF_FFF0)
                if full != 0 {
                    result.append(PCIBar(index: index, kind: .memory64,
                                         address: UInt64(originalHigh) << 32 | UInt64(original & 0xFFFF_FFF0),
                                         size: ~full &+ 1, prefetchable: prefetchable))
                }
                index += 2
                continue
            }
            let sizeMask = mask & 0xFFFF_FFF0
            if sizeMask != 0 && type == 0 {
                result.append(PCIBar(index: index, kind: .memory32, address: UInt64(original & 0xFFFF_FFF0),
                                     size: UInt64(~sizeMask &+ 1), prefetchable: prefetchable))
            }
            index += 1
        }
        return result
    }

    /// The capability list (PCI 3.0 §6.7), when status bit 4 says there is one.
    func capabilities(_ at: PCIAddress, log: (StaticString) -> Void) -> [PCICapability] {
        guard read16(at, 0x06) & 0x0010 != 0 else { return [] }
        var result: [PCICapability] = []
        var pointer = read8(at, 0x34) & 0xFC
        while pointer != 0 {
            guard pointer >= 0x40 else {
                log("pci: a capability pointer leads into the header; the list ends there")
                break
            }
            guard !result.contains(where: { $0.offset == pointer }), result.count < Self.maximumCapabilities else {
                log("pci: a capability list loops; it ends at the repeat")
                break
            }
            let word = read32(at, pointer)
            result.append(PCICapability(id: UInt8(truncatingIfNeeded: word), offset: pointer))
            pointer = UInt8(truncatingIfNeeded: word >> 8) & 0xFC
        }
        return result
    }
}
