// The MicroVM platform: QEMU's microvm machine, booted through PVH.
//
// Fixed addresses live in Addresses.swift; the boot path is `toro_kernel_entry`, called
// by the trampoline in Arch/longmode.S after pvh.S.
import Arch
import Core
import X86

final class MicroVMPlatform: Platform {
    let machine: PCMachine
    let name: StaticString = "microvm"
    var console: any Console { machine.console }
    var cpuCount: Int { 1 }
    let mmioWindows: [PhysicalRange] = MicroVMAddresses.mmioWindows

    init(machine: PCMachine) { self.machine = machine }

    func currentCPU() -> Int { 0 }
    func monotonicNanoseconds() -> UInt64 { machine.clock.nanoseconds() }
    func loadPageTables(root: UInt64) { machine.loadPageTables(root: root) }
    func exit(_ status: ExitStatus) -> Never { machine.exit(status) }
    func logBootDetails() { machine.logClock() }
}

#if hasFeature(Embedded)
@_cdecl("toro_kernel_entry")
func toroKernelEntry() -> Never {
    let machine = PCMachine()
    Log.console = machine.console
    guard machine.bootProtocol == UInt32(ARCH_BOOT_PVH) else {
        panic("the MicroVM kernel was not started through PVH")
    }
    let boot: BootInfo
    do {
        boot = try BootInfo.parsePVH(at: machine.bootInfoAddress, reader: BootMemoryReader())
    } catch {
        machine.bootFailed(error)
    }
    let platform = MicroVMPlatform(machine: machine)
    Kernel.start(platform, boot: boot, image: machine.image)
}
#endif
