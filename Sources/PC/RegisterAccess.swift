// How the PC chips reach their registers: one small protocol for a memory-mapped block
// (`MMIOAccess`: loads and stores at byte offsets from the block's base) and one for
// x86 port I/O (`PortAccess`: IN and OUT of 8, 16 and 32 bits). The kernel's
// implementations are here (`MMIOWindow` over `_Volatile`, `X86Ports` over arch.h's
// inline IN/OUT); the recording one that host tests run the chips against is
// `RegisterRecorder` in Sources/TestSupport.
//
// Rules for callers:
//   * A chip is generic over its access (`LocalAPICChip<MMIOWindow>`), never `any`: the
//     kernel's specialisation compiles to the same single MOV/IN/OUT the bare
//     `VolatileMappedRegister` and `arch_outb` calls did.
//   * A chip names its registers in one enum of offsets or ports, and its register
//     values as named constants or small value types; it never adds offsets to a base
//     address itself.
//   * Every access is volatile and happens in program order: neither the compiler nor
//     the CPU (uncached/port I/O, SDM vol. 3, 11.3) merges or reorders them, so the
//     order a recorder sees is the order the device sees.
import _Volatile
import X86Asm

/// Loads and stores of 32, 16 and 8 bits at byte offsets in one memory-mapped register
/// block (virtio-pci's common configuration has fields of each width, and §4.1.3.1 asks
/// for each to be accessed with its own width).
public protocol MMIOAccess {
    func load32(_ offset: UInt) -> UInt32
    func store32(_ offset: UInt, _ value: UInt32)
    func load16(_ offset: UInt) -> UInt16
    func store16(_ offset: UInt, _ value: UInt16)
    func load8(_ offset: UInt) -> UInt8
    func store8(_ offset: UInt, _ value: UInt8)
}

/// x86 port I/O (SDM vol. 2: IN, OUT) of each width.
public protocol PortAccess {
    func in8(_ port: UInt16) -> UInt8
    func out8(_ port: UInt16, _ value: UInt8)
    func in16(_ port: UInt16) -> UInt16
    func out16(_ port: UInt16, _ value: UInt16)
    func in32(_ port: UInt16) -> UInt32
    func out32(_ port: UInt16, _ value: UInt32)
}

/// A register block mapped at a physical address (identity-mapped, uncached: see
/// `Kernel.setUpMemory` and each platform's `mmioWindows`).
public struct MMIOWindow: MMIOAccess {
    public let base: UInt

    public init(base: UInt64) { self.base = UInt(base) }

    @inlinable @inline(__always)
    public func load32(_ offset: UInt) -> UInt32 {
        VolatileMappedRegister<UInt32>(unsafeBitPattern: base + offset).load()
    }

    @inlinable @inline(__always)
    public func store32(_ offset: UInt, _ value: UInt32) {
        VolatileMappedRegister<UInt32>(unsafeBitPattern: base + offset).store(value)
    }

    @inlinable @inline(__always)
    public func load16(_ offset: UInt) -> UInt16 {
        VolatileMappedRegister<UInt16>(unsafeBitPattern: base + offset).load()
    }

    @inlinable @inline(__always)
    public func store16(_ offset: UInt, _ value: UInt16) {
        VolatileMappedRegister<UInt16>(unsafeBitPattern: base + offset).store(value)
    }

    @inlinable @inline(__always)
    public func load8(_ offset: UInt) -> UInt8 {
        VolatileMappedRegister<UInt8>(unsafeBitPattern: base + offset).load()
    }

    @inlinable @inline(__always)
    public func store8(_ offset: UInt, _ value: UInt8) {
        VolatileMappedRegister<UInt8>(unsafeBitPattern: base + offset).store(value)
    }
}

/// The CPU's I/O ports.
public struct X86Ports: PortAccess {
    public init() {}

    @inlinable @inline(__always) public func in8(_ port: UInt16) -> UInt8 { arch_inb(port) }
    @inlinable @inline(__always) public func out8(_ port: UInt16, _ value: UInt8) { arch_outb(port, value) }
    @inlinable @inline(__always) public func in16(_ port: UInt16) -> UInt16 { arch_inw(port) }
    @inlinable @inline(__always) public func out16(_ port: UInt16, _ value: UInt16) { arch_outw(port, value) }
    @inlinable @inline(__always) public func in32(_ port: UInt16) -> UInt32 { arch_inl(port) }
    @inlinable @inline(__always) public func out32(_ port: UInt16, _ value: UInt32) { arch_outl(port, value) }
}
