// The two platforms a Toro kernel is built for, and what the host tool needs to know
// about each: the boot entry symbol the linker script starts at,
// the image's file name, and the do-nothing kernel used as the boot benchmark's floor.

public enum GuestPlatform: String, CaseIterable, Sendable {
    /// QEMU `-M microvm`, booted through the PVH ELF note.
    case microvm
    /// QEMU `-M pc` (SeaBIOS), booted through Multiboot v1.
    case legacy

    /// The symbol Kernel/kernel.ld.in's ENTRY_SYMBOL becomes.
    public var entrySymbol: String {
        switch self {
        case .microvm: "pvh_start"
        case .legacy: "multiboot_start"
        }
    }

    /// The kernel image's file name inside the kernel build folder.
    public var imageName: String { "toro-\(rawValue).elf" }

    /// The do-nothing kernel's source under Kernel/ (see `toro bench boot`).
    public var nullKernelSource: String {
        switch self {
        case .microvm: "null-pvh.S"
        case .legacy: "null-multiboot.S"
        }
    }

    /// The do-nothing kernel's image name inside the kernel build folder.
    public var nullImageName: String {
        switch self {
        case .microvm: "null-pvh.elf"
        case .legacy: "null-multiboot.elf"
        }
    }

    /// The names accepted by `--platform`, for error messages.
    public static var names: String { allCases.map(\.rawValue).joined(separator: ", ") }
}
