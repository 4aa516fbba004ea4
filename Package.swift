// swift-tools-version:6.0
// Toro in Swift: one Core, two platform kernels (MicroVM, Legacy), and the host `toro` tool.
//
// The same manifest builds two ways:
//   * hosted (`swift build`, `swift test`): Core and the host tool, with unit tests;
//   * embedded (`swift build --triple x86_64-unknown-none-elf --toolset Kernel/toolset.json
//     --product MicroVMKernel|LegacyKernel`): a static archive per platform, which
//     `ld.lld -T Kernel/<platform>.ld` links into a bootable ELF. `./toro build` does both steps.
import PackageDescription

// Register blocks use `_Volatile`, which the hosted compiler only imports with this feature.
let volatile: [SwiftSetting] = [.enableExperimentalFeature("Volatile")]

let package = Package(
    name: "Toro",
    products: [
        .library(name: "MicroVMKernel", type: .static, targets: ["MicroVM"]),
        .library(name: "LegacyKernel", type: .static, targets: ["Legacy"]),
        .executable(name: "toro-cli", targets: ["ToroCLI"]),
        .executable(name: "toro-vsock", targets: ["ToroVsock"]),
        .executable(name: "toro-fs", targets: ["ToroFS"]),
    ],
    targets: [
        // Platform-neutral kernel: memory, boot-info parsing, log, panic, services.
        .target(name: "Core"),
        // x86-64 primitives shared by both platforms: the 32-bit to long-mode trampoline,
        // exception stubs, port I/O and control registers, and the few libc symbols the
        // Swift runtime links against.
        .target(name: "X86Asm"),
        // PVH ELF note and entry (QEMU microvm).
        .target(name: "MicroVMBoot"),
        // Multiboot v1 header and entry (QEMU pc, SeaBIOS).
        .target(name: "LegacyBoot"),
        // Swift over X86Asm for what both QEMU machines share: the COM1 console, isa-debug-exit,
        // the TSC clock, the LAPIC, IOAPIC, 8259 and 8254 (each generic over its register
        // access), the early boot sequence.
        .target(name: "PC", dependencies: ["Core", "X86Asm"], swiftSettings: volatile),
        .target(name: "MicroVM", dependencies: ["Core", "X86Asm", "PC", "MicroVMBoot"], swiftSettings: volatile),
        .target(name: "Legacy", dependencies: ["Core", "X86Asm", "PC", "LegacyBoot"], swiftSettings: volatile),
        // The host tool: argument parsing, QEMU command lines, build, compare, bench.
        .target(name: "ToroTool", dependencies: ["Core"]),
        .executableTarget(name: "ToroCLI", dependencies: ["ToroTool"]),
        .testTarget(name: "CoreTests", dependencies: ["Core"]),
        // Test doubles for the VirtIO core (fake guest memory, recording transport), shared
        // by the Core tests and the host back-ends' tests.
        .target(name: "VirtIOTestSupport", dependencies: ["Core"]),
        .testTarget(name: "VirtIOTests", dependencies: ["Core", "VirtIOTestSupport"]),
        // virtio-vsock packet codec, connection state machine and credit; the socket API helpers.
        .testTarget(name: "VsockTests", dependencies: ["Core"]),
        // Host side of virtio-vsock: a vhost-user back-end for QEMU's vhost-user-vsock-device,
        // Firecracker-style hybrid Unix sockets and TCP port forwarding (`toro-vsock`).
        .target(name: "VhostUser", dependencies: ["Core"]),
        .executableTarget(name: "ToroVsock", dependencies: ["VhostUser"]),
        // Host side of virtio-fs: a vhost-user back-end for QEMU's vhost-user-fs-device with a
        // FUSE server confined to one host folder (`toro-fs`).
        .executableTarget(name: "ToroFS", dependencies: ["VhostUser"]),
        .testTarget(name: "VhostUserTests", dependencies: ["VhostUser", "VirtIOTestSupport"]),
        // A recording register bus (memory-mapped and port I/O) with scripted reads, so the
        // PC chips' start-up sequences run on the host; and the tests that assert them.
        .target(name: "RegisterTestSupport", dependencies: ["PC"]),
        .testTarget(name: "PCTests", dependencies: ["PC", "RegisterTestSupport"], swiftSettings: volatile),
        .testTarget(name: "ToroToolTests", dependencies: ["ToroTool"]),
        // Tiers 2-3: boot the kernels under QEMU through the toro tool (run by `./toro test`).
        .testTarget(name: "BootTests", dependencies: ["ToroTool", "Core"]),
    ]
)
