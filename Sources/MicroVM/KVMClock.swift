// The KVM paravirtual clock (Linux Documentation/virt/kvm/x86/msr.rst, pvclock): when
// CPUID leaf 0x40000000 says "KVMKVMKVM" and leaf 0x40000001 EAX bit 3
// (KVM_FEATURE_CLOCKSOURCE2) is set, the hypervisor keeps a pvclock_vcpu_time_info
// structure up to date at an address the guest registers with MSR 0x4b564d01, and writes
// the wall clock at boot into the structure registered with MSR 0x4b564d00.
// TCG offers neither; the platform then falls back to the TSC (see MicroVMPlatform).
import X86Asm
import Core

final class KVMClock {
    static let systemTimeMSR: UInt32 = 0x4B56_4D01
    static let wallClockMSR: UInt32 = 0x4B56_4D00

    /// pvclock_vcpu_time_info (32 bytes): version u32 @0, tsc_timestamp u64 @8,
    /// system_time u64 @16, tsc_to_system_mul u32 @24, tsc_shift s8 @28, flags u8 @29.
    let timeInfo: UnsafeMutableRawPointer
    /// pvclock_wall_clock (12 bytes): version u32 @0, sec u32 @4, nsec u32 @8.
    let wallClock: UnsafeMutableRawPointer

    static var isAvailable: Bool {
        var regs: (UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &regs) { arch_cpuid(0x4000_0000, 0, $0.baseAddress!.assumingMemoryBound(to: UInt32.self)) }
        // "KVMKVMKVM\0\0\0" in EBX, ECX, EDX.
        guard regs.1 == 0x4B4D_564B, regs.2 == 0x564B_4D56, regs.3 == 0x0000_004D, regs.0 >= 0x4000_0001 else { return false }
        withUnsafeMutableBytes(of: &regs) { arch_cpuid(0x4000_0001, 0, $0.baseAddress!.assumingMemoryBound(to: UInt32.self)) }
        return regs.0 & (1 << 3) != 0
    }

    init?() {
        guard KVMClock.isAvailable, let page = KernelMemory.allocatePages(1) else { return nil }
        let base = UnsafeMutableRawPointer(bitPattern: UInt(page))!
        base.initializeMemory(as: UInt8.self, repeating: 0, count: 4096)
        timeInfo = base
        wallClock = base + 64
        arch_wrmsr(KVMClock.systemTimeMSR, page | 1)
        arch_wrmsr(KVMClock.wallClockMSR, page + 64)
    }

    /// Nanoseconds since the host's reference point (pvclock's system time).
    func nanoseconds() -> UInt64 {
        while true {
            let version = timeInfo.load(fromByteOffset: 0, as: UInt32.self)
            if version & 1 != 0 { continue }            // an update is in progress
            let tscStamp = timeInfo.load(fromByteOffset: 8, as: UInt64.self)
            let systemTime = timeInfo.load(fromByteOffset: 16, as: UInt64.self)
            let multiplier = UInt64(timeInfo.load(fromByteOffset: 24, as: UInt32.self))
            let shift = timeInfo.load(fromByteOffset: 28, as: Int8.self)
            var delta = arch_rdtsc() &- tscStamp
            delta = shift >= 0 ? delta << UInt64(shift) : delta >> UInt64(-Int(shift))
            let scaled = delta.multipliedFullWidth(by: multiplier)
            let result = systemTime &+ (scaled.high << 32 | scaled.low >> 32)
            if timeInfo.load(fromByteOffset: 0, as: UInt32.self) == version { return result }
        }
    }

    /// Unix seconds of the host's wall clock at pvclock time zero.
    var wallClockBaseSeconds: Int64 {
        Int64(wallClock.load(fromByteOffset: 4, as: UInt32.self))
    }
}
