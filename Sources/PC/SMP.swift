// Starting the application processors (Intel MP spec 1.4 appendix B.4; SDM vol. 3,
// 8.4.4.1): INIT, 10 ms, Startup IPI, 200 us, a second Startup IPI if the CPU has not
// answered. One CPU at a time, each told its index and stack before its start, so the
// order of CPU indices follows the MP table and is the same on every boot.
import X86Asm
import Core
import Synchronization

public enum SMP {
    /// The APIC ID of each CPU index (index 0 is the bootstrap CPU).
    nonisolated(unsafe) public static var apicIDs: [UInt8] = []
    /// The index the next AP takes; written by the BSP before each start.
    nonisolated(unsafe) static var startingIndex = 0
    static let answered = Atomic<Int>(0)
    nonisolated(unsafe) static var onlineHook: ((Int) -> Void)? = nil
    static let apStackPages = 8

    /// Finds the CPUs in the MP table, prepares the scheduler for them and starts every
    /// AP, up to `limit`. Returns how many CPUs run, the BSP included. `online` runs on
    /// each AP before it enters its idle loop (per-CPU device setup).
    public static func startCPUs(lapic: LocalAPIC, tscHz: UInt64, limit: Int,
                                 online: @escaping (Int) -> Void) -> Int {
        let processors: [MPProcessor]
        do {
            processors = try MPTable.find(reader: BootMemoryReader()).processors
        } catch {
            Log.timestamp()
            Log.write("smp: no usable MP table; running on the bootstrap CPU only\n")
            processors = [MPProcessor(apicID: lapic.id, isBootstrap: true)]
        }
        let count = min(processors.count, limit, KernelHeap.maxCPUs)
        apicIDs = processors.prefix(count).map { $0.apicID }
        if apicIDs.first != lapic.id {
            // The table's BSP is not us (should not happen): trust the hardware.
            apicIDs.removeAll { $0 == lapic.id }
            apicIDs.insert(lapic.id, at: 0)
            apicIDs = Array(apicIDs.prefix(count))
        }
        Scheduler.prepare(cpus: count)
        onlineHook = online
        guard count > 1 else { return 1 }
        guard let page = KernelMemory.allocatePages(1, below: 0x9F000) else {
            Log.write("smp: no page below 640 KiB for the start-up code\n")
            return 1
        }
        let base = UnsafeMutableRawPointer(bitPattern: UInt(page))!
        base.copyMemory(from: UnsafeRawPointer(bitPattern: UInt(arch_ap_blob_address()))!, byteCount: Int(arch_ap_blob_size()))
        base.storeBytes(of: UInt32(page) + arch_ap_offset_gdt(), toByteOffset: Int(arch_ap_offset_gdt_base()), as: UInt32.self)
        base.storeBytes(of: UInt32(page) + arch_ap_offset_protected(), toByteOffset: Int(arch_ap_offset_jump32()), as: UInt32.self)
        base.storeBytes(of: UInt32(truncatingIfNeeded: arch_read_cr3()), toByteOffset: Int(arch_ap_offset_cr3()), as: UInt32.self)

        var running = 1
        for index in 1..<count {
            guard let stack = KernelMemory.allocatePages(apStackPages, below: 1 << 32) else { break }
            base.storeBytes(of: UInt32(stack) + UInt32(apStackPages * 4096), toByteOffset: Int(arch_ap_offset_stack()), as: UInt32.self)
            startingIndex = index
            answered.store(0, ordering: .sequentiallyConsistent)
            let id = apicIDs[index]
            lapic.sendIPI(to: id, vector: 0, delivery: .initAssert)
            // The MP spec's 10 ms INIT-to-SIPI wait is for physical CPUs; under a
            // hypervisor (CPUID.1:ECX bit 31) the vCPU is ready at once, as Linux assumes.
            if !runningUnderHypervisor { delay(nanoseconds: 10_000_000, tscHz: tscHz) }
            let vector = UInt8(page >> 12)
            var started = false
            for _ in 0..<2 where !started {
                lapic.sendIPI(to: id, vector: vector, delivery: .startup)
                started = waitForAnswer(index, nanoseconds: 200_000_000, tscHz: tscHz)
            }
            if !started {
                Log.timestamp()
                Log.write("smp: CPU ")
                Log.decimal(index)
                Log.write(" (APIC ID ")
                Log.decimal(UInt64(id))
                Log.write(") did not start\n")
                KernelMemory.freePages(stack, apStackPages)
                break
            }
            running += 1
        }
        KernelMemory.freePages(page, 1)
        if running < count {
            Scheduler.limit(to: running)
            apicIDs = Array(apicIDs.prefix(running))
        }
        return running
    }

    static var runningUnderHypervisor: Bool {
        var regs: (UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &regs) { arch_cpuid(1, 0, $0.baseAddress!.assumingMemoryBound(to: UInt32.self)) }
        return regs.2 & (1 << 31) != 0
    }

    static func waitForAnswer(_ index: Int, nanoseconds: UInt64, tscHz: UInt64) -> Bool {
        let start = arch_rdtsc()
        let ticks = nanoseconds / 1000 * (tscHz / 1_000_000)
        while arch_rdtsc() &- start < ticks {
            if answered.load(ordering: .sequentiallyConsistent) == index { return true }
            arch_pause()
        }
        return false
    }

    public static func delay(nanoseconds: UInt64, tscHz: UInt64) {
        let start = arch_rdtsc()
        let ticks = nanoseconds / 1000 * (tscHz / 1_000_000)
        while arch_rdtsc() &- start < ticks { arch_pause() }
    }

    /// Sends the wake-up IPI to CPU `index`.
    public static func wake(_ index: Int, lapic: LocalAPIC) {
        guard index >= 0, index < apicIDs.count else { return }
        lapic.sendIPI(to: apicIDs[index], vector: InterruptVector.wakeUp)
    }
}

#if hasFeature(Embedded)
/// An application processor's first Swift code (from arch_ap_long_mode, on its stack).
@_cdecl("toro_ap_entry")
func toroAPEntry() -> Never {
    let index = SMP.startingIndex
    arch_idt_load()
    arch_cpu_block_init(UInt32(index))
    PCMachine.installExceptionStack(cpu: index)
    SMP.onlineHook?(index)
    SMP.answered.store(index, ordering: .sequentiallyConsistent)
    Scheduler.runIdleLoop()
}
#endif
