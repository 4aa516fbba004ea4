// The wall clock of the PC: the MC146818-compatible real-time clock in CMOS, read once
// at boot through the index/data port pair.
//
// This file is only the port I/O. The read protocol (wait while Update-In-Progress,
// read twice until two reads agree, bounded) is `RTCRegisters.read` and the decoding
// (BCD or binary, 12- or 24-hour, century) is `CalendarTime.fromRTC`, both in Core
// (Core/Clock/CalendarTime.swift), where the host tests cover them.
//
// Rules for callers:
//   * `read` never hangs: when the chip is absent (reads 0xFF) or stuck updating it gives
//     up after a bounded number of port reads and returns nil; the kernel then has no
//     wall time, which it must report rather than invent.
//   * The RTC keeps UTC on QEMU (`-rtc base=utc`, its default); this file does not guess
//     a time zone.
//   * Not reentrant: the index port selects the register the next data access sees.
//     Call it from one CPU, with nothing else (no handler) touching ports 0x70/0x71.
//   * NMI: bit 7 of the index port masks NMIs on real chipsets. Every index this file
//     writes has bit 7 CLEAR, so NMIs stay enabled, consistently, as Linux's CMOS_READ
//     does. "As found" is not an option: the index port is write-only on most chipsets
//     (QEMU returns 0xFF for a read), so the previous setting cannot be read back.
//
// References: MC146818A datasheet (address map, register A UIP, register B DM and
// 24/12); ACPI 6.5 5.2.9 FADT CENTURY (index 0x32 on PCs and QEMU); QEMU
// hw/rtc/mc146818rtc.c (ports 0x70/0x71, RTC_CENTURY 0x32).
import X86Asm
import Core

/// Fixed PC I/O ports of the CMOS RTC (IBM PC/AT; QEMU hw/rtc/mc146818rtc.c).
enum CMOSPorts {
    /// Write: bits 6-0 select the RTC RAM index; bit 7 set masks NMI (left clear here).
    static let index: UInt16 = 0x70
    /// Read or write the selected register.
    static let data: UInt16 = 0x71
}

public struct CMOSClock {
    /// Bit 7 of the index port: NMI disable. Never set by this file (see the header).
    static let nmiDisable: UInt8 = 0x80

    public init() {}

    /// The current wall time, or nil when the RTC is absent, stuck, or holds an invalid
    /// date. Costs two to six full register reads plus the wait for an update.
    public func read() -> CalendarTime? {
        guard let registers = readRegisters() else { return nil }
        return CalendarTime.fromRTC(registers)
    }

    /// The raw registers of a consistent read (see `RTCRegisters.read`).
    func readRegisters() -> RTCRegisters? {
        RTCRegisters.read { CMOSClock.register($0) }
    }

    /// One byte of RTC RAM at `index` (0...127), NMI left enabled.
    static func register(_ index: UInt8) -> UInt8 {
        arch_outb(CMOSPorts.index, index & ~nmiDisable)
        return arch_inb(CMOSPorts.data)
    }
}
