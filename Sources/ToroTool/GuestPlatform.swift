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

    /// The platform's attach function for a device kind a service uses (`sockets`,
    /// `files`), as the image's driver table names it; nil when the platform has no driver
    /// for that kind yet (MicroVM/DeviceAttach.swift).
    public func attachSymbol(_ device: String) -> String? {
        switch (self, device) {
        case (.microvm, "sockets"): "toro_attach_sockets_mmio"
        case (.microvm, "files"): "toro_attach_files_mmio"
        case (.legacy, "sockets"): "toro_attach_sockets_pci"
        case (.legacy, "files"): "toro_attach_files_pci"
        default: nil
        }
    }

    /// The platform's device scan, linked when the service uses any device.
    public var scanSymbol: String? { self == .microvm ? "toro_scan_mmio" : "toro_scan_pci" }

    /// The names accepted by `--platform`, for error messages.
    public static var names: String { allCases.map(\.rawValue).joined(separator: ", ") }
}
