// swift-tools-version:6.0
// Toro in Swift: one Core, two platform kernels (MicroVM, Legacy), and the host `toro` tool.
//
// Layers (an arrow is "may import"; see DESIGN.md, "Layout"): VirtIO, Wire and Core import
// nothing; Drivers -> Core, VirtIO, Wire; PC -> Core; MicroVM -> PC, Drivers; Legacy -> PC;
// services and their libraries -> Core, Wire; the host back-ends -> VirtIO, Wire; TestSupport
// (tests and fuzz targets only) -> VirtIO, Wire, Core, PC, VhostUser.
//
// The same manifest builds two ways:
//   * hosted (`swift build`, `swift test`): every module but the platforms' boot code, the
//     host tool and back-ends, with unit tests, and the fuzz targets (which, built without
//     libFuzzer, replay input files; Fuzz/build.sh builds them for fuzzing);
//   * embedded (`swift build --triple x86_64-unknown-none-elf --toolset Kernel/toolset.json
//     --product MicroVMKernel|LegacyKernel`): a static archive per platform, which
//     `ld.lld -T Kernel/<platform>.ld` links into a bootable ELF. `./toro build` does both steps.
import Foundation
import PackageDescription

// Services are found, not listed: every folder under Sources/Services/Applications and
// Sources/Services/Probes is one service module (`./toro new NAME` adds a folder and nothing
// else). Each imports Core, Wire and the service libraries; `./toro build --service NAME` links
// the kernel with that one module (Sources/ToroTool/ImageLinker.swift).
func serviceFolders(_ kind: String) -> [String] {
    let folder = Context.packageDirectory + "/Sources/Services/" + kind
    let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
    return names.filter { name in
        var isFolder: ObjCBool = false
        return !name.hasPrefix(".") && FileManager.default.fileExists(atPath: folder + "/" + name, isDirectory: &isFolder)
            && isFolder.boolValue
    }.sorted()
}
let serviceKinds = ["Applications", "Probes"]
let services = serviceKinds.flatMap { kind in serviceFolders(kind).map { (kind: kind, name: $0) } }
// What the applications share; they live with the applications, not in the kernel.
let serviceLibraries: [Target] = [
    // kv's line protocol, table bounds and kv.db file format; pure, so the host's kv server
    // (bench kv) and the boot tests' file checks run the kernel's own code.
    .target(name: "KVProtocol", dependencies: ["Wire"], path: "Sources/Services/Libraries/KVProtocol"),
    // kv's shared table and the streamed load and save of kv.db over the VFS.
    .target(name: "KVStore", dependencies: ["Core", "KVProtocol"], path: "Sources/Services/Libraries/KVStore"),
    // One HTTP/1.1 connection of static-web over any socket and file system.
    .target(name: "StaticFiles", dependencies: ["Core", "Wire"], path: "Sources/Services/Libraries/StaticFiles"),
    // Listen, accept, one thread per connection, the idle report (kv, static-web).
    .target(name: "SocketServer", dependencies: ["Core", "Wire"], path: "Sources/Services/Libraries/SocketServer"),
    // fs-manifest's walk and output format.
    .target(name: "FileManifest", dependencies: ["Core", "Wire"], path: "Sources/Services/Libraries/FileManifest"),
]
let serviceTargets: [Target] = services.map { service in
    .target(name: service.name, dependencies: ["Core", "Wire"] + serviceLibraries.map { .target(name: $0.name) },
            path: "Sources/Services/\(service.kind)/\(service.name)", exclude: ["expected", "scenario"].filter {
                FileManager.default.fileExists(atPath: Context.packageDirectory + "/Sources/Services/\(service.kind)/\(service.name)/\($0)")
            })
}

// Tier 4: the libFuzzer targets. Fuzz/NAME is the executable target FuzzNAME, importing the
// modules it fuzzes (nothing is compiled twice and nothing is stood in for); Fuzz/Support is
// FuzzSupport (the input cursor, the descriptor count, `fuzzMain`). Built plainly, as here,
// each replays the files it is given; Fuzz/build.sh NAME builds it with libFuzzer and
// AddressSanitizer (`-sanitize=fuzzer,address -D FUZZING`, scratch path .build-fuzz).
let fuzzTargets: [(name: String, dependencies: [Target.Dependency])] = [
    ("Ext2Image", ["Core"]),
    ("FUSEClient", ["Core", "Drivers", "FSDriver", "Wire"]),
    ("FUSEReply", ["Drivers", "FSDriver", "Wire"]),
    ("FUSERequest", ["Wire"]),
    ("FUSEServer", ["VhostUser", "Wire"]),
    ("HTTPRequest", ["Wire"]),
    ("InetFrame", ["Wire"]),
    ("InetStack", ["Inet", "Core", "Wire"]),
    ("KVFile", ["KVProtocol", "Wire"]),
    ("PCIWalk", ["PC", "VirtIOPCI", "TestSupport"]),
    ("UsedRing", ["VirtIO", "TestSupport", "Wire"]),
    ("VsockDevice", ["VhostUser", "VirtIO", "TestSupport", "Wire"]),
    ("VsockHeader", ["Drivers", "VsockDriver", "Wire"]),
]
let fuzzing: [Target] = [.target(name: "FuzzSupport", path: "Fuzz/Support")] + fuzzTargets.map { fuzz in
    .executableTarget(name: "Fuzz" + fuzz.name, dependencies: ["FuzzSupport"] + fuzz.dependencies,
                      path: "Fuzz/" + fuzz.name)
}

// Register blocks use `_Volatile`, which the hosted compiler only imports with this feature.
let volatile: [SwiftSetting] = [.enableExperimentalFeature("Volatile")]

let package = Package(
    name: "Toro",
    products: [
        .library(name: "MicroVMKernel", type: .static, targets: ["MicroVM"]),
        .library(name: "LegacyKernel", type: .static, targets: ["Legacy"]),
        // Every module an image can be linked from, built in one `swift build` for the kernel
        // triple; the tool links one platform and one service out of it.
        .library(name: "ToroImages", type: .static, targets: ["MicroVM", "MicroVMScan", "MicroVMVsock", "MicroVMFS", "Legacy", "LegacyScan", "LegacyBlk", "BlkDriver", "LegacyNet", "NetDriver", "Inet"] + services.map(\.name)),
        .executable(name: "toro-cli", targets: ["ToroCLI"]),
        .executable(name: "toro-vsock", targets: ["ToroVsock"]),
        .executable(name: "toro-fs", targets: ["ToroFS"]),
    ],
    targets: [
        // Both sides of the split virtqueue, device bring-up, the transport and guest-memory
        // protocols: shared by the guest drivers, the platforms' transports and the host back-ends.
        .target(name: "VirtIO"),
        // Byte formats guest and host share: vsock header and credit, FUSE, HTTP, CRC-32, and
        // the one little-endian reader/writer.
        .target(name: "Wire"),
        // Platform-neutral kernel: memory, scheduler, clock, boot-info parsing, log, panic, VFS,
        // socket API.
        .target(name: "Core"),
        // Guest device drivers, generic over the transport and guest memory: virtio-vsock
        // (with the connection state and the socket provider) and virtio-fs (with the FUSE
        // client file system).
        .target(name: "Drivers", dependencies: ["Core", "VirtIO", "Wire"], path: "Sources/Drivers/Shared"),
        // One target per driver, so an image that links one keeps none of the other (a
        // module's class metadata shares one .data section, which keeps every method).
        .target(name: "VsockDriver", dependencies: ["Drivers", "Core", "VirtIO", "Wire"], path: "Sources/Drivers/Vsock"),
        .target(name: "FSDriver", dependencies: ["Drivers", "Core", "VirtIO", "Wire"], path: "Sources/Drivers/FS"),
        .target(name: "BlkDriver", dependencies: ["Drivers", "Core", "VirtIO", "Wire"], path: "Sources/Drivers/Blk"),
        .target(name: "NetDriver", dependencies: ["Drivers", "Core", "VirtIO", "Wire"], path: "Sources/Drivers/Net"),
        // Toro's own TCP/IP, platform-neutral: Ethernet, ARP, IPv4, ICMP echo, TCP (RFC 9293)
        // and the socket provider over it (legacy's sockets over virtio-net).
        .target(name: "Inet", dependencies: ["Core", "Wire"]),
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
        .target(name: "VirtIOMMIO", dependencies: ["Core", "VirtIO", "PC"]),
        .target(name: "VirtIOPCI", dependencies: ["VirtIO", "PC"]),
        .testTarget(name: "VirtIOPCITests", dependencies: ["VirtIOPCI", "VirtIO", "PC", "TestSupport"]),
        .testTarget(name: "VirtIOMMIOTests", dependencies: ["VirtIOMMIO", "VirtIO", "PC", "Core", "TestSupport"]),
        .target(name: "MicroVM", dependencies: ["Core", "VirtIO", "VirtIOMMIO", "X86Asm", "PC", "MicroVMBoot"], swiftSettings: volatile),
        // microvm's device scan and each driver's attach function, reached only through an image's driver
        // table, so an image links a driver only when its service uses that kind of device.
        .target(name: "MicroVMScan", dependencies: ["Core", "VirtIO", "VirtIOMMIO", "X86Asm", "PC", "MicroVM"], swiftSettings: volatile),
        .target(name: "MicroVMVsock", dependencies: ["Core", "VirtIO", "VirtIOMMIO", "Drivers", "VsockDriver", "PC", "MicroVM"], swiftSettings: volatile),
        .target(name: "MicroVMFS", dependencies: ["Core", "VirtIO", "VirtIOMMIO", "Drivers", "FSDriver", "X86Asm", "PC", "MicroVM"], swiftSettings: volatile),
        .target(name: "Legacy", dependencies: ["Core", "X86Asm", "PC", "VirtIOPCI", "LegacyBoot"], swiftSettings: volatile),
        // Legacy's PCI device scan, reached only through an image's driver table.
        .target(name: "LegacyScan", dependencies: ["Core", "VirtIO", "VirtIOPCI", "PC", "Legacy"], swiftSettings: volatile),
        .target(name: "LegacyBlk", dependencies: ["Core", "VirtIO", "VirtIOPCI", "Drivers", "BlkDriver", "X86Asm", "PC", "Legacy"], swiftSettings: volatile),
        // Legacy's sockets: virtio-net, the IPv4 interface, TCP and the socket provider over it.
        .target(name: "LegacyNet", dependencies: ["Core", "VirtIO", "VirtIOPCI", "Drivers", "NetDriver", "Inet", "Wire", "X86Asm", "PC", "Legacy"],
                swiftSettings: volatile),
        // The host tool: argument parsing, QEMU command lines, build, compare, bench.
        .target(name: "ToroTool", dependencies: ["KVProtocol", "Wire"]),
        .executableTarget(name: "ToroCLI", dependencies: ["ToroTool"]),
        // The test doubles every test target and fuzz target shares (one target, never in an
        // image: ImageLinker links only kernel modules, service libraries and one service):
        // fake guest memory, the recording transport and the loopback queue (VirtIO), the
        // seeded generator, a recording register bus with scripted reads (PC), a scripted
        // stream socket (Core's socket API), and host-socket helpers for running a host
        // back-end in-process (VhostUser).
        .target(name: "TestSupport", dependencies: ["VirtIO", "Wire", "Core", "PC", "VhostUser"]),
        // The kernel's own tests.
        .testTarget(name: "CoreTests", dependencies: ["Core", "Wire", "TestSupport"]),
        // The service libraries: kv's protocol, file and store, static-web's handler, fs-manifest.
        .testTarget(name: "ServiceLibraryTests",
                    dependencies: ["Core", "Wire", "KVProtocol", "KVStore", "StaticFiles", "FileManifest", "SocketServer", "TestSupport"]),
        // The byte formats: vsock header and credit, FUSE codec, HTTP, CRC-32, little-endian.
        .testTarget(name: "WireTests", dependencies: ["Wire", "TestSupport"]),
        // The drivers' pure parts: vsock connection state and credit, the FUSE client file system.
        .testTarget(name: "DriversTests", dependencies: ["Drivers", "VsockDriver", "FSDriver", "Core", "Wire", "TestSupport"]),
        .testTarget(name: "VirtIOTests", dependencies: ["VirtIO", "TestSupport"]),
        // The TCP/IP stack on a virtual clock: frames and segments in, frames out.
        .testTarget(name: "InetTests", dependencies: ["Inet", "Core", "Wire", "TestSupport"]),
        // Host side of virtio-vsock: a vhost-user back-end for QEMU's vhost-user-vsock-device,
        // Firecracker-style hybrid Unix sockets and TCP port forwarding (`toro-vsock`).
        .target(name: "VhostUser", dependencies: ["VirtIO", "Wire"]),
        .executableTarget(name: "ToroVsock", dependencies: ["VhostUser"]),
        // Host side of virtio-fs: a vhost-user back-end for QEMU's vhost-user-fs-device with a
        // FUSE server confined to one host folder (`toro-fs`).
        .executableTarget(name: "ToroFS", dependencies: ["VhostUser"]),
        // The host back-ends against a simulated guest; they import host modules only (a test
        // that needs a guest driver belongs in DriverDeviceTests).
        .testTarget(name: "VhostUserTests", dependencies: ["VhostUser", "VirtIO", "Wire", "TestSupport"]),
        // The real guest drivers (virtio-fs, vsock) against the real host devices, and the
        // guest's FUSE client against the host's FUSE server, in one process.
        .testTarget(name: "DriverDeviceTests", dependencies: ["Drivers", "VsockDriver", "FSDriver", "BlkDriver", "NetDriver", "Core", "VirtIO", "Wire", "VhostUser",
                                                             "TestSupport"]),
        .testTarget(name: "ToroToolTests", dependencies: ["ToroTool", "KVProtocol", "Wire"]),
        // The PC chips' start-up sequences, run on the host over TestSupport's recording
        // register bus and asserted access by access.
        .testTarget(name: "PCTests", dependencies: ["PC", "TestSupport"], swiftSettings: volatile),
        // Tiers 2-3: boot the kernels under QEMU through the toro tool (run by `./toro test`).
        .testTarget(name: "BootTests", dependencies: ["ToroTool", "Wire", "KVProtocol", "TestSupport"]),
    ] + serviceLibraries + serviceTargets + fuzzing
)
