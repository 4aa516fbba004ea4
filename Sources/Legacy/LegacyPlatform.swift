// The Legacy platform (ToroKernel's machine): QEMU's pc machine with SeaBIOS, booted
// through Multiboot v1.
//
// Fixed addresses live in Addresses.swift; the boot path is `toro_kernel_entry`, called
// by the trampoline in Arch/longmode.S after multiboot.S.
import Arch
import Core
import X86

final class LegacyPlatform: Platform {
    let machine: PCMachine
    let name: StaticString = "legacy"
    var console: any Console { machine.console }
    var cpuCount: Int { 1 }
    let mmioWindows: [PhysicalRange] = LegacyAddresses.mmioWindows

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
    Log.put(10)   // SeaBIOS leaves its "Booting from ROM.." line unterminated
    guard machine.bootProtocol == UInt32(ARCH_BOOT_MULTIBOOT) else {
        panic("the Legacy kernel was not started through Multiboot")
    }
    let boot: BootInfo
    do {
        boot = try BootInfo.parseMultiboot(magic: machine.bootMagic, at: machine.bootInfoAddress,
                                           reader: BootMemoryReader())
    } catch {
        machine.bootFailed(error)
    }
    Kernel.start(LegacyPlatform(machine: machine), boot: boot, image: machine.image)
}
#endif
