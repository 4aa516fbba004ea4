// `virtio_mmio.device=<size>@<base>:<irq>[:<id>]` entries, which QEMU appends to the
// kernel command line of a microvm for every virtio-mmio transport (with acpi=off), and
// which Linux's virtio_mmio driver parses (drivers/virtio/virtio_mmio.c, vm_cmdline_set).
// <size> is a number with an optional K/M/G suffix; <base> and <size> take C prefixes
// (0x hexadecimal); <irq> is decimal. Malformed entries are reported, not guessed at.

public struct VirtIOMMIOHint: Equatable {
    public var base: UInt64
    public var size: UInt64
    public var irq: Int

    public init(base: UInt64, size: UInt64, irq: Int) { self.base = base; self.size = size; self.irq = irq }

    public enum ParseError: Error, Equatable {
        /// The entry does not have the `<size>@<base>:<irq>` shape.
        case malformed
        /// A number is not a number, or overflows.
        case badNumber
        /// The size is zero or the window wraps around the address space.
        case badWindow
    }

    public static func parse(_ bytes: [UInt8]) throws(ParseError) -> VirtIOMMIOHint {
        guard let at = bytes.firstIndex(of: 64) else { throw .malformed }                  // '@'
        guard let colon = bytes[(at + 1)...].firstIndex(of: 58) else { throw .malformed }   // ':'
        let size = try number(bytes[..<at], allowSuffix: true)
        let base = try number(bytes[(at + 1)..<colon], allowSuffix: false)
        let irqEnd = bytes[(colon + 1)...].firstIndex(of: 58) ?? bytes.count
        let irq = try number(bytes[(colon + 1)..<irqEnd], allowSuffix: false)
        guard size > 0, base.addingReportingOverflow(size).overflow == false else { throw .badWindow }
        guard irq < 256 else { throw .badNumber }
        return VirtIOMMIOHint(base: base, size: size, irq: Int(irq))
    }

    static func number(_ digits: ArraySlice<UInt8>, allowSuffix: Bool) throws(ParseError) -> UInt64 {
        var text = digits
        var shift: UInt64 = 0
        if allowSuffix, let last = text.last {
            switch last {
            case 75, 107: shift = 10; text = text.dropLast()   // K k
            case 77, 109: shift = 20; text = text.dropLast()   // M m
            case 71, 103: shift = 30; text = text.dropLast()   // G g
            default: break
            }
        }
        var radix: UInt64 = 10
        if text.count > 2, text[text.startIndex] == 48, text[text.startIndex + 1] | 0x20 == 120 {   // 0x
            radix = 16
            text = text.dropFirst(2)
        }
        guard !text.isEmpty else { throw .badNumber }
        var value: UInt64 = 0
        for byte in text {
            let digit: UInt64
            switch byte {
            case 48...57: digit = UInt64(byte - 48)
            case 97...102 where radix == 16: digit = UInt64(byte - 87)
            case 65...70 where radix == 16: digit = UInt64(byte - 55)
            default: throw .badNumber
            }
            let (times, o1) = value.multipliedReportingOverflow(by: radix)
            let (sum, o2) = times.addingReportingOverflow(digit)
            guard !o1, !o2 else { throw .badNumber }
            value = sum
        }
        guard shift == 0 || value <= UInt64.max >> shift else { throw .badNumber }
        return value << shift
    }
}
